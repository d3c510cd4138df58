import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_REQUEST_BYTES } from "../src/destination/batch";
import type { Env } from "../src/env";
import worker from "../src/index";
import type { RelayMessage } from "../src/queue/message";
import { bucketFailing, dbFailingOn } from "./faults";
import { PUBLISHED, WRITE_KEY, withUniqueId } from "./helpers";
import { deadLetterFor, poisonedMessage, queueMessages, relayMessage } from "./messages";
import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

const MAX_RETRIES = Number(env.MAX_RETRIES);

// The production retry schedule (wrangler.toml defaults), not the tests' short one.
const PRODUCTION_RETRY = { RETRY_BASE_SECONDS: "30", RETRY_MAX_SECONDS: "21600" };

type Body = RelayMessage | { raw: unknown };

async function consume(
  bodies: Body[] = [relayMessage()],
  options: { attempts?: number; env?: Partial<Env> } = {},
) {
  const batch = createMessageBatch<unknown>("pendo-events", queueMessages(bodies, options.attempts));
  // getQueueResult reports which messages were retried but not their delay: spy on retry().
  const delays = batch.messages.map((message) => vi.spyOn(message, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...PRODUCTION_RETRY, ...options.env } as Env, ctx);
  const result = await getQueueResult(batch, ctx);
  const retryMessages = result.retryMessages.map((retry: { msgId: string }) => {
    const spy = delays[batch.messages.findIndex((message) => message.id === retry.msgId)];
    return { msgId: retry.msgId, delaySeconds: spy?.mock.calls[0]?.[0]?.delaySeconds };
  });
  return { ...result, retryMessages };
}

describe("consumer: success", () => {
  it("sends one /v1/batch request for the batch, with Basic auth and sentAt, and acks every message", async () => {
    const { standIn, spy } = useSegmentStandIn();
    const bodies = [relayMessage(), relayMessage(withUniqueId(PUBLISHED.visitorCreated)), relayMessage()];
    const before = Date.now();
    const result = await consume(bodies);

    expect(result.explicitAcks).toHaveLength(3);
    expect(result.retryMessages).toEqual([]);
    expect(spy).toHaveBeenCalledTimes(1);
    const [url, init] = spy.mock.calls[0] as [string, RequestInit];
    expect(url).toBe("https://api.segment.io/v1/batch");
    const headers = new Headers(init.headers);
    expect(headers.get("authorization")).toBe(`Basic ${btoa(`${WRITE_KEY}:`)}`);
    expect(headers.get("content-type")).toBe("application/json");
    // A followed redirect would turn the POST into a GET whose 200 looks like a delivery.
    expect(init.redirect).toBe("manual");
    const sent = JSON.parse(init.body as string);
    expect(sent.batch).toEqual(bodies.flatMap((body) => body.calls.map((call) => JSON.parse(call))));
    expect(Date.parse(sent.sentAt)).toBeGreaterThanOrEqual(before - 1);
    expect(standIn.received).toHaveLength(4); // guide, visitor track + identify, guide
  });

  it("splits a batch over 480 KB into several requests, each within the limit", async () => {
    const { standIn } = useSegmentStandIn();
    const bodies = Array.from({ length: 40 }, () => {
      const webhook = withUniqueId(PUBLISHED.trackEventReceived);
      (webhook.properties as Record<string, unknown>).eventProperties = { notes: "n".repeat(20_000) };
      return relayMessage(webhook);
    });
    const result = await consume(bodies);
    expect(result.explicitAcks).toHaveLength(40);
    expect(standIn.requests.length).toBeGreaterThan(1);
    for (const request of standIn.requests) expect(request.bytes).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    expect(standIn.received).toHaveLength(40);
  });
});

describe("consumer: transient failures retry with a delay", () => {
  it.each([500, 502, 503, 504, 408, 410, 460])("retries on %i with backoff", async (status) => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(status);
    const result = await consume([relayMessage(), relayMessage()]);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(2);
    // Attempt 1 with RETRY_BASE_SECONDS=30: the delay lies in the upper half of [0, 30].
    for (const retry of result.retryMessages) {
      expect(retry.delaySeconds).toBeGreaterThanOrEqual(15);
      expect(retry.delaySeconds).toBeLessThanOrEqual(30);
    }
  });

  it("backs off exponentially with the attempt count, capped", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(500, 500);
    const fifth = await consume([relayMessage()], { attempts: 5 });
    const late = await consume([relayMessage()], { attempts: 15 });
    const fifthDelay = fifth.retryMessages[0]?.delaySeconds as number;
    expect(fifthDelay).toBeGreaterThanOrEqual(240);
    expect(fifthDelay).toBeLessThanOrEqual(480);
    expect(late.retryMessages[0]?.delaySeconds).toBeLessThanOrEqual(21_600);
    expect(late.retryMessages[0]?.delaySeconds).toBeGreaterThanOrEqual(10_800);
  });

  it("waits Retry-After on 429, capped at 300 s", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext({ status: 429, retryAfter: "120" }, { status: 429, retryAfter: "86400" });
    const honoured = await consume([relayMessage()]);
    const capped = await consume([relayMessage()]);
    expect(honoured.retryMessages[0]?.delaySeconds).toBe(120);
    expect(capped.retryMessages[0]?.delaySeconds).toBe(300);
  });

  it("backs off on 429 without Retry-After", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(429);
    const result = await consume([relayMessage()]);
    expect(result.retryMessages[0]?.delaySeconds).toBeGreaterThanOrEqual(15);
    expect(result.retryMessages[0]?.delaySeconds).toBeLessThanOrEqual(30);
  });

  it("gives up on a hung Segment after SEGMENT_TIMEOUT_MS and retries", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext("hang");
    const result = await consume([relayMessage()], { env: { SEGMENT_TIMEOUT_MS: "200" } });
    expect(result.retryMessages).toHaveLength(1);
    expect(standIn.requests[0]?.injected).toBe(true);
  });

  it("retries on a network error", async () => {
    vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("connection reset"));
    const result = await consume([relayMessage()]);
    expect(result.retryMessages).toHaveLength(1);
  });
});

describe("consumer: permanent failures become dead letters", () => {
  it("bisects a 400 to isolate the one event Segment rejects in a batch of 100", async () => {
    const { standIn } = useSegmentStandIn();
    const bodies = Array.from({ length: 100 }, () => relayMessage());
    const poisoned = poisonedMessage();
    bodies[37] = poisoned;
    const result = await consume(bodies);

    expect(result.explicitAcks).toHaveLength(100);
    expect(result.retryMessages).toEqual([]);
    expect(standIn.received).toHaveLength(99);
    expect(standIn.messageIds).not.toContain(JSON.parse(poisoned.calls[0] as string).messageId);
    // log2(100) rounds up to 7 levels: at most one failing and one passing request per level.
    expect(standIn.requests.length).toBeLessThanOrEqual(1 + 2 * 7);
    const letter = await deadLetterFor(poisoned.eventId);
    expect(letter).toMatchObject({ reason: "segment-rejected", lastStatus: 400, attempts: 1 });
    expect(letter?.detail).toContain("32KB");
    expect(letter?.message).toEqual(poisoned);
  });

  it.each([401, 403, 413, 501, 505])("dead-letters on %i without retrying", async (status) => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(status);
    const body = relayMessage();
    const result = await consume([body]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toEqual([]);
    expect(await deadLetterFor(body.eventId)).toMatchObject({
      reason: "segment-refused",
      lastStatus: status,
    });
  });

  it("still retries a message failing on attempt MAX_RETRIES: that retry is the last one allowed", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(503);
    const body = relayMessage();
    const result = await consume([body], { attempts: MAX_RETRIES });
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    expect(await deadLetterFor(body.eventId)).toBeUndefined();
  });

  it("dead-letters a message still failing on its last allowed attempt", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(503);
    const body = relayMessage();
    const result = await consume([body], { attempts: MAX_RETRIES + 1 });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await deadLetterFor(body.eventId)).toMatchObject({
      reason: "retries-exhausted",
      lastStatus: 503,
      attempts: MAX_RETRIES + 1,
    });
  });

  it("keeps messages queued, never acked, while no write key is configured, logging it once", async () => {
    const spy = vi.spyOn(globalThis, "fetch");
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => errors.push(line));
    const result = await consume([relayMessage(), relayMessage(), relayMessage()], {
      env: { SEGMENT_WRITE_KEY: undefined },
    });
    expect(spy).not.toHaveBeenCalled();
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(3);
    expect(errors.filter((line) => line.includes('"no-write-key"'))).toHaveLength(1);
  });

  it("retries instead of acking when neither the ledger nor R2's pending/ can take the dead letter", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(401);
    const brokenR2 = bucketFailing(env.ARCHIVE, "pending/", "put");
    const brokenDb = dbFailingOn(env.LEDGER, "INTO records");
    const result = await consume([relayMessage()], { env: { ARCHIVE: brokenR2, LEDGER: brokenDb } });
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
  });
});

describe("dead-letter queue consumer", () => {
  it("stores what the queue gave up on, with its reason", async () => {
    const body = relayMessage();
    const batch = createMessageBatch<unknown>("pendo-events-dlq", queueMessages([body]));
    const ctx = createExecutionContext();
    await worker.queue(batch, env as Env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await deadLetterFor(body.eventId)).toMatchObject({ reason: "queue-exhausted", message: body });
  });
});
