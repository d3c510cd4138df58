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
