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
