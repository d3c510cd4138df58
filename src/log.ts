/**
 * One JSON object per line, so `wrangler tail --format json | jq` and Workers Logs can filter on
 * fields. Callers pass only non-secret fields; write keys and tokens are never given to log().
 *
 * LOG_LEVEL decides what is written below warn: every line written is a Workers Logs event, billed
 * past the plan's inclusion (see docs/benchmarks.md), and console.log is the largest part of the
 * edge's own CPU time. Warnings and errors are always written, whatever LOG_LEVEL says.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

// Set from the validated settings (config.ts) once they are read; until then info, the default.
let threshold = RANK.info;

/** The configured LOG_LEVEL; anything above warn is capped there, since warnings always show. */
export function setLogLevel(level: LogLevel): void {
  threshold = Math.min(RANK[level], RANK.warn);
}

/** Whether a line at this level would be written: lets a caller skip building its fields. */
export function logs(level: LogLevel): boolean {
  return RANK[level] >= threshold;
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (RANK[level] < threshold) return;
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

/** Longest sender-chosen name (an event name) a log line carries: a batch of lines stays bounded. */
export const LOGGED_NAME_LIMIT = 200;

/** Longest detail (Segment's answer, an error message) kept in a log line or a stored record. */
export const DETAIL_LIMIT = 2_048;

export const cutDetail = (text: string): string =>
  text.length > DETAIL_LIMIT ? `${text.slice(0, DETAIL_LIMIT)}…` : text;
