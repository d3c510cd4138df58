import { cutDetail } from "../log";

export interface SegmentTarget {
  endpoint: string;
  writeKey: string;
}

/** One request's result: Segment answered (any status), or no answer came. */
export type SegmentAttempt =
  | { ok: true; status: number; body: string; retryAfter: string | null; location: string | null }
  | { ok: false; reason: "timeout" }
  | { ok: false; reason: "network"; detail: string };

/**
 * POST {endpoint}/v1/batch with Basic auth (base64 of the write key and a colon, as Segment's
 * HTTP API requires). A hung Segment is cut off after `timeoutMs`. Redirects are not followed: a
 * followed 301 turns the POST into a GET whose 200 would look like a delivery. The write key goes
 * into the header only: never into a log, an error or a returned value.
 */
export async function postBatch(
  target: SegmentTarget,
  body: string,
  timeoutMs: number,
): Promise<SegmentAttempt> {
  try {
    const response = await fetch(`${target.endpoint}/v1/batch`, {
      method: "POST",
      headers: {
        authorization: `Basic ${btoa(`${target.writeKey}:`)}`,
        "content-type": "application/json",
        "user-agent": "pendo-segment-relay",
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const delivered = response.status >= 200 && response.status < 300;
    // Success bodies are not needed; reading them only costs time.
    const text = delivered ? "" : cutDetail(await response.text());
    if (delivered) await response.body?.cancel();
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
