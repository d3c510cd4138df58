/**
 * A Segment stand-in that behaves as Segment's HTTP Tracking API is documented to behave
 * (segment.com/docs/connections/sources/catalog/libraries/server/http-api): Basic auth with the
 * write key as user name; 400 for invalid JSON, a request over 500 KB or an event over 32 KB;
 * 200 for a batch over 2,500 events, which is then dropped whole; 200 for calls with no
 * identity or a track with no event name, which are dropped one by one; dedup on messageId.
 *
 * It can play any destination profile (src/destination/profiles.ts), with that destination's rules:
 * its auth form, its size caps (RudderStack: 413 over 4,000 KB), its success body (RudderStack's
 * plain `OK`, Jitsu's `{ok, errors, okEvents}`), its refusals (RudderStack refuses a whole batch
 * holding an event with no identity; Jitsu refuses events inside a 200; Customer.io drops them
 * silently unless the request carries `X-Strict-Mode: 1`) and Jitsu's messageId rewriting, after
 * which two ids cut to the same 64 characters are one event and the second is dropped.
 *
 * It never accepts something the destination would refuse, so a relay bug shows up as a lost or
 * refused event here. Failures can be injected to play an outage: a status, a 429 with Retry-After, a
 * redirect elsewhere (as a moved or mistyped endpoint answers), or a hang that only ends when the
 * caller gives up.
 */

import { type DestinationProfile, PROFILES } from "../src/destination/profiles";

export const SEGMENT_LIMITS = {
  requestBytes: PROFILES.segment.maxRequestBytes,
  eventBytes: PROFILES.segment.maxEventBytes,
  batchEvents: PROFILES.segment.maxRequestEvents,
} as const;

/** Jitsu's messageId rewriting (bulker ingest/router_batch_handler.go): `_` for other characters, 64 at most. */
export function jitsuMessageId(id: string): string {
  return id.replace(/[^a-zA-Z0-9._-]/g, "_").slice(0, 64);
}

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
  /**
   * Events this destination considers malformed, answered in the profile's form: 400 for the
   * batch (Segment, Hightouch, RudderStack, Customer.io in strict mode), named in a 200 (Jitsu),
   * or dropped behind a 200 (Customer.io without strict mode).
   */
  rejectEvent: (call: Record<string, unknown>) => boolean = () => false;
  /** The destination this stand-in plays. */
  profile: DestinationProfile = PROFILES.segment;

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
    const profile = this.profile;
    if (request.method !== "POST" || url.pathname !== profile.path) return answer(404, "not found");
    const writeKey =
      profile.auth === "x-write-key"
        ? (request.headers.get("x-write-key") ?? undefined)
        : basicAuthUser(request.headers.get("authorization"));
    if (writeKey === undefined || !this.writeKeys.includes(writeKey)) {
      const text = await request.text();
      return this.record(answer(401, "invalid write key"), 0, encoder.encode(text).length, false);
    }
    const bytes = new Uint8Array(await request.arrayBuffer());

    const injected =
      this.scripted.shift() ?? (Math.random() < this.failureShare ? this.randomFailure() : undefined);
    if (injected !== undefined) return this.inject(injected, request, bytes.length);

    if (bytes.length > profile.maxRequestBytes) {
      // RudderStack's gateway answers 413; Segment and its followers 400.
      const status = profile.name === "rudderstack" ? 413 : 400;
      return this.record(answer(status, "request too large"), 0, bytes.length);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return this.record(answer(400, "invalid JSON"), 0, bytes.length);
    }
    const batch = (payload as { batch?: unknown }).batch;
    const sentAt = (payload as { sentAt?: unknown }).sentAt;
    if (!Array.isArray(batch)) return this.record(answer(400, "batch must be an array"), 0, bytes.length);
    const calls = batch as Record<string, unknown>[];
    for (const call of calls) {
      if (encoder.encode(JSON.stringify(call)).length > profile.maxEventBytes) {
        return this.record(
          answer(400, `event exceeds ${profile.maxEventBytes / 1024}KB`),
          batch.length,
          bytes.length,
        );
      }
    }
    const strict = profile.name !== "customerio" || request.headers.get("x-strict-mode") === "1";
    const anonymous = (call: Record<string, unknown>) => !call.userId && !call.anonymousId;
    if (profile.refusesWholeBatch && calls.some(anonymous)) {
      return this.record(answer(400, "non-identifiable request"), batch.length, bytes.length);
    }
    const rejected = calls.filter((call) => this.rejectEvent(call));
    if (rejected.length > 0 && strict && profile.name !== "jitsu") {
      return this.record(answer(400, "invalid event"), batch.length, bytes.length);
    }
    if (batch.length > profile.maxRequestEvents) {
      for (const call of batch)
        this.dropped.push({ reason: `batch over ${profile.maxRequestEvents} events`, call });
      return this.record(this.success(batch.length, []), batch.length, bytes.length);
    }
    const errors: string[] = [];
    for (const call of calls) {
      if (profile.messageIds === "short" && typeof call.messageId === "string")
        call.messageId = jitsuMessageId(call.messageId);
      if (rejected.includes(call)) {
        const reason = strict ? "invalid event" : "invalid event (dropped: no X-Strict-Mode)";
        this.dropped.push({ reason, call });
        errors.push(`Message ID: ${String(call.messageId)}: invalid event`);
      } else this.accept(writeKey, String(sentAt ?? ""), call);
    }
    return this.record(this.success(batch.length, errors), batch.length, bytes.length);
  }

  /** The profile's 2xx body: RudderStack's plain OK, Jitsu's counts and errors, Segment's JSON. */
  private success(received: number, errors: string[]): Response {
    if (this.profile.name === "rudderstack") return new Response("OK", { status: 200 });
    if (this.profile.name === "jitsu") {
      const okEvents = received - errors.length;
      const body =
        errors.length === 0
          ? { ok: true, receivedEvents: received, okEvents }
          : { ok: false, errors, receivedEvents: received, okEvents };
      return Response.json(body);
    }
    return answer(200, "ok");
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
