/**
 * JSON values as the relay sees them after parsing. Lives below `pendo/`, `destination/` and `kv/`,
 * which all need it.
 */

/** A JSON object: not null, not an array (valibot's object schemas accept arrays). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
