/**
 * Delay before the next delivery of a message that failed transiently. Exponential, capped, and
 * jittered over the upper half of the window ("equal jitter"): full jitter (0..window) spreads
 * load slightly better but can pick 0 s every time, which would let retries burn through
 * `max_retries` in minutes; the lower bound is what makes the default schedule span > 24 h.
 */
export function retryDelaySeconds(
  attempt: number,
  baseSeconds: number,
  maxSeconds: number,
  random = Math.random,
): number {
  const window = retryWindowSeconds(attempt, baseSeconds, maxSeconds);
  return Math.max(1, Math.round(window / 2 + (random() * window) / 2));
}

/** The upper bound of the delay after delivery `attempt` (1-based) fails. */
export function retryWindowSeconds(attempt: number, baseSeconds: number, maxSeconds: number): number {
  return Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, attempt - 1));
}

export interface RetryStep {
  attempt: number;
  minSeconds: number;
  maxSeconds: number;
  /** Earliest and latest time since the first delivery at which this retry runs. */
  cumulativeMin: number;
  cumulativeMax: number;
}

/** The whole schedule for the given settings, for docs/operations.md. */
export function retrySchedule(maxRetries: number, baseSeconds: number, maxSeconds: number): RetryStep[] {
  const steps: RetryStep[] = [];
  let low = 0;
  let high = 0;
  for (let attempt = 1; attempt <= maxRetries; attempt++) {
    const window = retryWindowSeconds(attempt, baseSeconds, maxSeconds);
    const min = Math.max(1, Math.round(window / 2));
    low += min;
    high += window;
    steps.push({ attempt, minSeconds: min, maxSeconds: window, cumulativeMin: low, cumulativeMax: high });
  }
  return steps;
}

/** Room for a retried message's batch window and its delivery before the queue's retention ends. */
export const RETENTION_MARGIN_SECONDS = 600;

/** Seconds a retried message still has before the queue's retention deletes it, less the margin. */
export function secondsBeforeExpiry(enqueuedAt: Date, retentionSeconds: number, now: number): number {
  return (enqueuedAt.getTime() + retentionSeconds * 1000 - now) / 1000 - RETENTION_MARGIN_SECONDS;
}

/** `wanted`, cut to what the queue's retention leaves the message: no delay outlives it. */
export function delayWithinRetention(
  wanted: number,
  enqueuedAt: Date,
  retentionSeconds: number,
  now: number,
): number {
  return Math.max(0, Math.min(wanted, Math.floor(secondsBeforeExpiry(enqueuedAt, retentionSeconds, now))));
}
