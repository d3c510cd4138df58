import { cutDetail } from "../delivery/records";

export interface SegmentTarget {
  endpoint: string;
  writeKey: string;
}

export type SegmentAttempt =
  | { kind: "response"; status: number; body: string; retryAfter: string | null }
  | { kind: "timeout" }
  | { kind: "network"; detail: string };

/**
 * POST {endpoint}/v1/batch with Basic auth (base64 of the write key and a colon, as Segment's
 * HTTP API requires). A hung Segment is cut off after `timeoutMs`. The write key goes into the
 * header only: never into a log, an error or a returned value.
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
      signal: AbortSignal.timeout(timeoutMs),
    });
    const ok = response.status < 400;
    // Success bodies are not needed; reading them only costs time.
    const text = ok ? "" : cutDetail(await response.text());
    if (ok) await response.body?.cancel();
    return {
      kind: "response",
      status: response.status,
      body: text,
      retryAfter: response.headers.get("retry-after"),
    };
  } catch (error) {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError"))
      return { kind: "timeout" };
    return { kind: "network", detail: cutDetail(error instanceof Error ? error.message : String(error)) };
  }
}
