/** `text` cut to at most `max` characters, an ellipsis marking the cut. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  // Never half a surrogate pair: SQLite would store it as invalid UTF-8.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** The counters' hour bucket of a time. */
export const hourOf = (ms: number) => Math.floor(ms / HOUR_MS);

const utf8 = new TextEncoder();

/**
 * `text` cut so that its UTF-8 form is at most `maxBytes`, an ellipsis (3 bytes) marking the cut:
 * what bounds a ledger row, where D1 counts bytes, not characters.
 */
export function cutUtf8(text: string, maxBytes: number): string {
  // Every UTF-16 code unit is at most 3 bytes of UTF-8: short enough text needs no measuring.
  if (text.length * 3 <= maxBytes) return text;
  if (utf8.encode(text).length <= maxBytes) return text;
  let low = 0;
  let high = Math.min(text.length, maxBytes);
  // The longest prefix that fits with the ellipsis, by bisection over the (monotone) byte length.
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (utf8.encode(cutText(text, mid + 1)).length <= maxBytes) low = mid;
    else high = mid - 1;
  }
  return cutText(text, low + 1);
}
