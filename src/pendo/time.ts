/**
 * Pendo's `timestamp` is Unix seconds in every published example, while nested times such as
 * `createdAt` are milliseconds. A value below 1e11 is read as seconds: 1e11 seconds is the year
 * 5138, 1e11 milliseconds is 1973, so no plausible time is ambiguous at that boundary.
 */
const SECONDS_BELOW = 1e11;
const EARLIEST = Date.UTC(2000, 0, 1);
const MAX_AHEAD_MS = 86_400_000; // a day of clock skew

export type TimeFallbackReason = "missing" | "before-2000" | "in-future";

export interface EventTime {
  iso: string;
  fallback?: { reason: TimeFallbackReason; received: number | null };
}

export function eventTime(raw: number | null | undefined, receivedAt: number): EventTime {
  if (raw === null || raw === undefined) return fallback("missing", null, receivedAt);
  const ms = Math.abs(raw) < SECONDS_BELOW ? Math.round(raw * 1000) : Math.round(raw);
  if (ms < EARLIEST) return fallback("before-2000", raw, receivedAt);
  if (ms > receivedAt + MAX_AHEAD_MS) return fallback("in-future", raw, receivedAt);
  return { iso: new Date(ms).toISOString() };
}

function fallback(reason: TimeFallbackReason, received: number | null, receivedAt: number): EventTime {
  return { iso: new Date(receivedAt).toISOString(), fallback: { reason, received } };
}
