/** `text` cut to at most `max` characters, an ellipsis marking the cut. */
export function cutText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** The counters' hour bucket of a time. */
export const hourOf = (ms: number) => Math.floor(ms / HOUR_MS);
