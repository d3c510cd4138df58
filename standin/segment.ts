/**
 * A Segment stand-in that behaves as Segment's HTTP Tracking API is documented to behave
 * (segment.com/docs/connections/sources/catalog/libraries/server/http-api): Basic auth with the
 * write key as user name; 400 for invalid JSON, a request over 500 KB or an event over 32 KB;
 * 200 for a batch over 2,500 events, which is then dropped whole; 200 for calls with no
 * identity or a track with no event name, which are dropped one by one; dedup on messageId.
 *
 * It never accepts something Segment would refuse, so a relay bug shows up as a lost or refused
 * event here. Failures can be injected to play an outage: a status, a 429 with Retry-After, a
 * redirect elsewhere (as a moved or mistyped endpoint answers), or a hang that only ends when the
 * caller gives up.
 */

export const SEGMENT_LIMITS = {
  requestBytes: 500 * 1024,
  eventBytes: 32 * 1024,
  batchEvents: 2_500,
} as const;

export type InjectedAnswer = number | { status: number; retryAfter?: string; location?: string } | "hang";

export interface ReceivedEvent {
  writeKey: string;
  sentAt: string;
  call: Record<string, unknown>;
}

export interface StandInRequest {
  status: number;
  events: number;
  bytes: number;
  injected: boolean;
}

const encoder = new TextEncoder();

export class SegmentStandIn {
  /** Calls Segment would keep, first delivery of each messageId only. */
  readonly received: ReceivedEvent[] = [];
  /** Calls Segment answers 200 for but drops, with the documented reason. */
  readonly dropped: { reason: string; call: unknown }[] = [];
  readonly requests: StandInRequest[] = [];
  duplicates = 0;
  /** Every call kept, counted, even when `keep` bounds `received`. */
  acceptedCount = 0;
  private readonly seen = new Set<string>();
  /** Called with each call Segment would keep, as it arrives. */
  onEvent: (event: ReceivedEvent) => void = () => {};
  /** Keep at most this many received calls (oldest dropped first); unbounded in tests. */
  keep = Number.POSITIVE_INFINITY;
  private readonly scripted: InjectedAnswer[] = [];
  /** Events this Segment considers malformed: a batch holding one is answered 400, as Segment does. */
  rejectEvent: (call: Record<string, unknown>) => boolean = () => false;

  constructor(
    private readonly writeKeys: readonly string[],
    /** Share of requests (0..1) answered with `randomFailure`, for outage scenarios. */
    private failureShare = 0,
    /** The answer a random failure gets. */
    public randomFailure: () => InjectedAnswer = () => 500,
  ) {}

  /** The next requests get these answers, in order, before the normal behaviour resumes. */
  failNext(...answers: InjectedAnswer[]): void {
    this.scripted.push(...answers);
  }

  setFailureShare(share: number): void {
    this.failureShare = share;
  }

  /** Distinct messageIds Segment would keep, over the stand-in's whole life. */
  get distinctMessageIds(): number {
    return this.seen.size;
  }

  get messageIds(): string[] {
    return this.received.map((event) => String(event.call.messageId));
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/v1/batch") return answer(404, "not found");
    const writeKey = basicAuthUser(request.headers.get("authorization"));
    if (writeKey === undefined || !this.writeKeys.includes(writeKey)) {
      const text = await request.text();
      return this.record(answer(401, "invalid write key"), 0, encoder.encode(text).length, false);
    }
    const bytes = new Uint8Array(await request.arrayBuffer());

    const injected =
      this.scripted.shift() ?? (Math.random() < this.failureShare ? this.randomFailure() : undefined);
    if (injected !== undefined) return this.inject(injected, request, bytes.length);

    if (bytes.length > SEGMENT_LIMITS.requestBytes)
      return this.record(answer(400, "request too large"), 0, bytes.length);
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return this.record(answer(400, "invalid JSON"), 0, bytes.length);
    }
    const batch = (payload as { batch?: unknown }).batch;
    const sentAt = (payload as { sentAt?: unknown }).sentAt;
    if (!Array.isArray(batch)) return this.record(answer(400, "batch must be an array"), 0, bytes.length);
    for (const call of batch) {
      if (encoder.encode(JSON.stringify(call)).length > SEGMENT_LIMITS.eventBytes) {
        return this.record(answer(400, "event exceeds 32KB"), batch.length, bytes.length);
      }
    }
    if ((batch as Record<string, unknown>[]).some((call) => this.rejectEvent(call))) {
      return this.record(answer(400, "invalid event"), batch.length, bytes.length);
    }
    if (batch.length > SEGMENT_LIMITS.batchEvents) {
      for (const call of batch) this.dropped.push({ reason: "batch over 2500 events", call });
      return this.record(answer(200, "ok"), batch.length, bytes.length);
    }
    for (const call of batch as Record<string, unknown>[]) this.accept(writeKey, String(sentAt ?? ""), call);
    return this.record(answer(200, "ok"), batch.length, bytes.length);
  }

  private accept(writeKey: string, sentAt: string, call: Record<string, unknown>): void {
    if (!call.userId && !call.anonymousId) {
      this.dropped.push({ reason: "no userId or anonymousId", call });
    } else if (call.type === "track" && !call.event) {
      this.dropped.push({ reason: "track without event", call });
    } else if (typeof call.messageId === "string" && this.seen.has(call.messageId)) {
      this.duplicates++;
    } else {
      if (typeof call.messageId === "string") this.seen.add(call.messageId);
      const event = { writeKey, sentAt, call };
      this.acceptedCount++;
      this.received.push(event);
      if (this.received.length > this.keep) this.received.shift();
      this.onEvent(event);
    }
  }

  private async inject(injected: InjectedAnswer, request: Request, bytes: number): Promise<Response> {
    if (injected === "hang") {
      this.requests.push({ status: 0, events: 0, bytes, injected: true });
      // Like a Segment that never answers: only the caller's own timeout ends the wait.
      return new Promise<Response>((_, reject) => {
        const abort = () => reject(request.signal.reason ?? new DOMException("aborted", "AbortError"));
        if (request.signal.aborted) abort();
        request.signal.addEventListener("abort", abort);
      });
    }
    const { status, retryAfter, location } = typeof injected === "number" ? { status: injected } : injected;
    const headers: Record<string, string> = {};
    if (retryAfter) headers["retry-after"] = retryAfter;
    if (location) headers.location = location;
    const response = answer(status, "injected failure", headers);
    return this.record(response, 0, bytes, true);
  }

  private record(response: Response, events: number, bytes: number, injected = false): Response {
    this.requests.push({ status: response.status, events, bytes, injected });
    return response;
  }
}

function basicAuthUser(header: string | null): string | undefined {
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim()) : null;
  if (!match?.[1]) return undefined;
  let decoded: string;
  try {
    decoded = atob(match[1]);
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  return colon > 0 ? decoded.slice(0, colon) : undefined;
}

function answer(status: number, message: string, headers: Record<string, string> = {}): Response {
  const body = status < 400 ? { success: true } : { success: false, message };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
