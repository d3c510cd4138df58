/**
 * Pendo's `timestamp` is Unix seconds in every published example, while nested times such as
 * `createdAt` are milliseconds. A value below 1e11 is read as seconds: 1e11 seconds is the year
 * 5138, 1e11 milliseconds is 1973, so no plausible time is ambiguous at that boundary.
 */
const SECONDS_BELOW = 1e11;
const EARLIEST = Date.UTC(2000, 0, 1);
const MAX_AHEAD_MS = 86_400_000; // a day of clock skew

export type TimeFallbackReason = "missing" | "unreadable" | "before-2000" | "in-future";

export interface EventTime {
  iso: string;
  fallback?: { reason: TimeFallbackReason; received: unknown };
}

/**
 * The event's time, from whatever `timestamp` held: a number, the digits of an integer too large
 * for one, or anything else. What cannot be a plausible time is replaced by `receivedAt`, and the
 * fallback says why and what arrived.
 */
export function eventTime(raw: unknown, receivedAt: number): EventTime {
  if (raw === null || raw === undefined) return fallback("missing", null, receivedAt);
  const value = typeof raw === "string" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== "number" || !Number.isFinite(value)) return fallback("unreadable", raw, receivedAt);
  const ms = Math.abs(value) < SECONDS_BELOW ? Math.round(value * 1000) : Math.round(value);
  if (ms < EARLIEST) return fallback("before-2000", raw, receivedAt);
  if (ms > receivedAt + MAX_AHEAD_MS) return fallback("in-future", raw, receivedAt);
  return { iso: new Date(ms).toISOString() };
}

function fallback(reason: TimeFallbackReason, received: unknown, receivedAt: number): EventTime {
  return { iso: new Date(receivedAt).toISOString(), fallback: { reason, received } };
}
