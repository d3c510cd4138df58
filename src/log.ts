/**
 * One JSON object per line, so `wrangler tail --format json | jq` and Workers Logs can filter on
 * fields. Callers pass only non-secret fields; write keys and tokens are never given to log().
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

/** Longest detail (Segment's answer, an error message) kept in a log line or a stored record. */
export const DETAIL_LIMIT = 2_048;

export const cutDetail = (text: string): string =>
  text.length > DETAIL_LIMIT ? `${text.slice(0, DETAIL_LIMIT)}…` : text;
