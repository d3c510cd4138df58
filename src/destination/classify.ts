import type { SegmentAttempt } from "./client";
import { type DestinationProfile, PROFILES, type RejectedEvent, readSuccessBody } from "./profiles";

/**
 * How to treat Segment's answer, following analytics-node 3.x: only a 2xx is a delivery; 400
 * rejected (never retried whole: bisect); 429 rate-limited (Retry-After); 5xx except 501/505, and
 * 408, 410, 460, timeouts and network errors are transient; a 3xx is a misconfigured endpoint,
 * retried like a transient failure but reported as an error; any other answer is refused for good.
 * A 2xx is read by the destination's profile: events it names as refused are `partial`, never
 * delivered; a 2xx that refuses the whole request (`success: false`) is treated as a 400.
 */
export type SegmentOutcome =
  | { kind: "delivered"; status: number }
  | { kind: "partial"; status: number; rejected: RejectedEvent[] }
  | { kind: "rejected"; status: number; detail: string }
  | { kind: "rate-limited"; status: 429; retryAfterSeconds: number | undefined }
  | { kind: "redirected"; status: number; detail: string }
  | { kind: "transient"; status: number | null; detail: string }
  | { kind: "refused"; status: number; detail: string };

const TRANSIENT_4XX = new Set([408, 410, 460]);
const FINAL_5XX = new Set([501, 505]);
// analytics-node caps a Retry-After wait at 300 s and waits at least 1 s.
const RETRY_AFTER_MIN = 1;
const RETRY_AFTER_MAX = 300;

export function classifySegmentResponse(
  attempt: SegmentAttempt,
  now: number,
  profile: DestinationProfile = PROFILES.segment,
): SegmentOutcome {
  if (!attempt.ok) {
    return {
      kind: "transient",
      status: null,
      detail: attempt.reason === "timeout" ? "timed out" : attempt.detail,
    };
  }
  const { status, body } = attempt;
  if (status >= 200 && status < 300) {
    const reading = readSuccessBody(profile, body);
    if (reading.kind === "accepted") return { kind: "delivered", status };
    if (reading.kind === "partial") return { kind: "partial", status, rejected: reading.rejected };
    return { kind: "rejected", status, detail: `${status} with a refusal: ${reading.detail}` };
  }
  if (status >= 300 && status < 400) {
    const detail = `the endpoint redirects (${status}) to ${attempt.location ?? "nowhere"}: fix DESTINATION_URL`;
    return { kind: "redirected", status, detail };
  }
  if (status === 400) return { kind: "rejected", status, detail: body };
  if (status === 429)
    return { kind: "rate-limited", status, retryAfterSeconds: retryAfterSeconds(attempt.retryAfter, now) };
  if (TRANSIENT_4XX.has(status) || (status >= 500 && !FINAL_5XX.has(status))) {
    return { kind: "transient", status, detail: body };
  }
  return { kind: "refused", status, detail: body };
}

/** Retry-After as seconds or an HTTP date, clamped to [1, 300]; undefined when absent or unreadable. */
export function retryAfterSeconds(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  let seconds = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : (Date.parse(trimmed) - now) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  seconds = Math.ceil(seconds);
  return Math.min(RETRY_AFTER_MAX, Math.max(RETRY_AFTER_MIN, seconds));
}
