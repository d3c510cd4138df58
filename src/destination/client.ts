import { cutDetail } from "../log";
import { authHeaders, type DestinationProfile } from "./profiles";

export interface SegmentTarget {
  endpoint: string;
  writeKey: string;
  profile: DestinationProfile;
}

/** One request's result: Segment answered (any status), or no answer came. */
export type SegmentAttempt =
  | { ok: true; status: number; body: string; retryAfter: string | null; location: string | null }
  | { ok: false; reason: "timeout" }
  | { ok: false; reason: "network"; detail: string };

// A success body past this is not read further: Jitsu lists one error line per refused event.
const MAX_SUCCESS_BODY_CHARS = 1_000_000;

/**
 * POST {endpoint}{profile.path} with the profile's auth (Basic with the write key and a colon, as
 * Segment's HTTP API requires, or Jitsu's X-Write-Key) and headers (Customer.io's strict mode). A hung Segment is cut off after `timeoutMs`. Redirects are not followed: a
 * followed 301 turns the POST into a GET whose 200 would look like a delivery. The write key goes
 * into the header only: never into a log, an error or a returned value.
 */
export async function postBatch(
  target: SegmentTarget,
  body: string,
  timeoutMs: number,
): Promise<SegmentAttempt> {
  try {
    const { profile } = target;
    const response = await fetch(`${target.endpoint}${profile.path}`, {
      method: "POST",
      headers: {
        ...authHeaders(profile, target.writeKey),
        ...profile.headers,
        "content-type": "application/json",
        "user-agent": "pendo-segment-relay",
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const delivered = response.status >= 200 && response.status < 300;
    // A success body is read only where the profile documents rejected events in it.
    let text: string;
    if (!delivered) text = cutDetail(await response.text());
    else if (profile.readsSuccessBody) text = (await response.text()).slice(0, MAX_SUCCESS_BODY_CHARS);
    else {
      text = "";
      await response.body?.cancel();
    }
    return {
      ok: true,
      status: response.status,
      body: text,
      retryAfter: response.headers.get("retry-after"),
      location: response.headers.get("location"),
    };
  } catch (error) {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError"))
      return { ok: false, reason: "timeout" };
    return {
      ok: false,
      reason: "network",
      detail: cutDetail(error instanceof Error ? error.message : String(error)),
    };
  }
}
