import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DLQ_MAX_RETRIES } from "../src/delivery/deadLetterConsumer";
import { MAX_EVENT_BYTES, utf8Length } from "../src/destination/calls";
import type { Env } from "../src/env";
import worker from "../src/index";
import { KEY_PREFIX } from "../src/kv/keys";
import { putFallback } from "../src/ledger/fallback";
import { bytesOfBase64 } from "../src/ledger/records";
import { MAX_QUEUE_MESSAGE_BYTES, type RelayMessage } from "../src/queue/message";
import type { InjectedAnswer } from "../standin/segment";
import { FAULT_MATRIX, type FaultCell, type FaultEnd } from "./fault-matrix";
import { dbFailingOn, faultyKv, faultyQueue, type KvMethod } from "./faults";
import { ADMIN_TOKEN, callWorker, PUBLISHED, postWebhook, withUniqueId } from "./helpers";
import {
  deadLetterFor,
  poisonedMessage,
  quarantined,
  queueMessages,
  refusedLetter,
  relayMessage,
  seedDeadLetter,
} from "./messages";
import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

interface Observation {
  status?: number;
  end: FaultEnd;
  reason?: string;
}

const MAX_RETRIES = Number(env.MAX_RETRIES ?? 20);
const kvFailingOn = (method: KvMethod, prefix = "") =>
  faultyKv(env.DEDUP, (m, key) => m === method && (typeof key !== "string" || key.startsWith(prefix)));

type Body = RelayMessage | { raw: unknown };

/** Runs one consumer batch (main queue or DLQ) on the real bindings, as the queue would deliver it. */
async function consume(
  queue: string,
  bodies: Body[],
  options: { attempts?: number; env?: Partial<Env>; enqueuedAt?: Date } = {},
) {
  const batch = createMessageBatch<unknown>(
    queue,
    queueMessages(bodies, options.attempts, options.enqueuedAt),
  );
  const retries = batch.messages.map((message) => vi.spyOn(message, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...options.env } as Env, ctx);
  const result = await getQueueResult(batch, ctx);
  const delays = retries.map((spy) => spy.mock.calls[0]?.[0]?.delaySeconds);
  return { ...result, delays };
}

/** Where the first message of a main-queue batch ended, checked in Segment and in KV. */
async function consumeAndObserve(
  bodies: Body[],
  answers: InjectedAnswer[],
  options: { attempts?: number; env?: Partial<Env>; enqueuedAt?: Date } = {},
): Promise<Observation & { delay?: number; received: string[] }> {
  const { standIn } = useSegmentStandIn();
  standIn.failNext(...answers);
  const result = await consume("pendo-events", bodies, options);
  const [first] = bodies;
  const received = standIn.messageIds;
  const firstId = `msg-0-${first && "eventId" in first ? first.eventId : "raw"}`;
  if (result.retryMessages.some((retry: { msgId: string }) => retry.msgId === firstId)) {
    return { end: "retried by the queue", delay: result.delays[0], received };
  }
  expect(result.explicitAcks).toContain(firstId);
  const letter = first && "eventId" in first ? await deadLetterFor(first.eventId) : await malformedLetter();
  if (letter) return { end: "dead-lettered", reason: letter.reason, received };
  const ids = first && "calls" in first ? first.calls.map((call) => JSON.parse(call).messageId) : [];
  if (ids.length > 0 && ids.every((id) => received.includes(id))) return { end: "delivered", received };
  throw new Error(`the event ended nowhere: ${JSON.stringify(result)}`);
}

async function malformedLetter() {
  const row = await env.LEDGER.prepare(
    "SELECT reason FROM records WHERE kind = 'dead-letters' AND reason = 'malformed-message' LIMIT 1",
  ).first<{ reason: string }>();
  return row ?? undefined;
}

/** A dead letter waiting in KV because D1 refused it: found by its uniqueId. */
async function fallbackFor(eventId: string) {
  const { keys } = await env.DEDUP.list({ prefix: KEY_PREFIX.fallback });
  for (const key of keys) {
    const value = await env.DEDUP.get<{ eventId: string; reason: string }>(key.name, "json");
    if (value?.eventId === eventId) return { key: key.name, ...value };
  }
  return undefined;
}

const ledgerFailingOn = (fragment: string | RegExp) => dbFailingOn(env.LEDGER, fragment);
const failingKv = faultyKv(env.DEDUP, () => true);

/** Posts a webhook with the given bindings, then follows it: to Segment, to KV, or back to the sender. */
async function postAndObserve(body: unknown, bindings: Partial<Env>): Promise<Observation> {
  const { response, json, enqueued } = await postWebhook(body, { env: bindings });
  const status = response.status;
  if (status >= 500) {
    expect(enqueued.length === 0 || bindings.EVENTS !== undefined).toBe(true);
    return { status, end: "sender retries" };
  }
  if (status === 400) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    expect((await quarantined()).some((entry) => entry.rawBody === text)).toBe(true);
    return { status, end: "quarantined" };
  }
  if (json.status === "dead-lettered") {
    const letter = await deadLetterFor(json.eventId as string);
    return { status, end: "dead-lettered", reason: letter?.reason };
  }
  expect(enqueued).toHaveLength(1);
  const delivered = await consumeAndObserve(enqueued, []);
  return { status, end: delivered.end };
}

const doNotProcess = (flag: boolean) => ({
  ...withUniqueId(PUBLISHED.visitorCreated),
  visitorId: `fault-${crypto.randomUUID()}`,
  event: "visitorDoNotProcessUpdated",
  properties: { doNotProcess: flag },
});

function admin(path: string, bindings: Partial<Env> = {}) {
  return callWorker(
    new Request(`https://relay.test/admin${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }),
    bindings,
  );
}

/**
 * Replays a seeded dead letter with the given bindings (after `before`, if any) and follows the
 * event: what any replay call enqueued is delivered through the consumer; otherwise the record
 * must still be stored, and unclaimed, so a later replay can send it.
 */
async function replayAndObserve(
  bindings: Partial<Env>,
  before?: (id: string) => Promise<string[]>,
): Promise<Observation> {
  const { id, message } = await seedDeadLetter();
  const earlier = (await before?.(id)) ?? [];
  const { response, sent } = await admin(`/dead-letters/${id}/replay`, bindings);
  const bodies = [...earlier, ...sent.map(([body]) => body)].map((body) => ({ raw: body }));
  const stored = await deadLetterFor(message.eventId);
  if (bodies.length === 0) {
    expect(stored?.state).toBe("stored");
    return { status: response.status, end: stored ? "dead-lettered" : "delivered" };
  }
  expect(bodies).toHaveLength(1); // never sent twice
  const { standIn } = useSegmentStandIn();
  await consume("pendo-events", bodies);
  const delivered = message.calls.every((call) => standIn.messageIds.includes(JSON.parse(call).messageId));
  return { status: response.status, end: delivered ? "delivered" : "dead-lettered" };
}

const SCENARIOS: Record<string, () => Promise<Observation>> = {
  "edge-kv-get": () => postAndObserve(withUniqueId(PUBLISHED.guideDisplayed), { DEDUP: kvFailingOn("get") }),
  "edge-queue-send": () =>
    postAndObserve(withUniqueId(PUBLISHED.guideDisplayed), { EVENTS: faultyQueue(env.EVENTS, () => true) }),
  "edge-kv-put-marker": () =>
    postAndObserve(withUniqueId(PUBLISHED.guideDisplayed), { DEDUP: kvFailingOn("put", KEY_PREFIX.dedup) }),
  "edge-quarantine-stored": () =>
    postAndObserve(JSON.stringify({ visitorId: `q-${crypto.randomUUID()}` }), {}),
  "edge-d1-quarantine": () =>
    postAndObserve(JSON.stringify({ visitorId: "v" }), { LEDGER: ledgerFailingOn("INSERT") }),
  "edge-too-large-stored": () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    (webhook.properties as Record<string, unknown>).bio = "b".repeat(40_000);
    return postAndObserve(webhook, {});
  },
  "edge-d1-dead-letter": () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    (webhook.properties as Record<string, unknown>).bio = "b".repeat(40_000);
    return postAndObserve(webhook, { LEDGER: ledgerFailingOn("INSERT INTO records") });
  },
  "edge-d1-flag-set": () => postAndObserve(doNotProcess(true), { LEDGER: ledgerFailingOn("INTO flags") }),
  "edge-d1-flag-clear": () => postAndObserve(doNotProcess(false), { LEDGER: ledgerFailingOn("INTO flags") }),
  "edge-escaped-calls": async () => {
    const webhook = {
      ...withUniqueId(PUBLISHED.visitorCreated),
      event: "visitorMetadataUpdated",
      properties: { metadata: { agent: { note: '"'.repeat(15_800) } } },
    };
    // Each call fits Segment's 32 KB, yet as JSON strings inside a JSON message they would not fit
    // the queue's 128,000 bytes: every `"` would cost four bytes instead of two.
    const { calls } = relayMessage(webhook);
    for (const call of calls) expect(utf8Length(call)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(utf8Length(JSON.stringify({ calls }))).toBeGreaterThan(MAX_QUEUE_MESSAGE_BYTES);
    return postAndObserve(webhook, {});
  },
  "segment-2xx": () => consumeAndObserve([relayMessage()], []),
  "segment-3xx": async () => {
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => errors.push(line));
    const seen = await consumeAndObserve(
      [relayMessage()],
      [{ status: 301, location: "https://segment.com/docs" }],
    );
    expect(seen.received).toEqual([]);
    const line = errors.map((l) => JSON.parse(l)).find((l) => l.msg === "segment-request");
    expect(line).toMatchObject({ level: "error", status: 301, outcome: "redirected" });
    expect(line.detail).toContain("https://segment.com/docs");
    return seen;
  },
  "segment-400": async () => {
    const poisoned = poisonedMessage();
    const others = [relayMessage(), relayMessage()];
    const seen = await consumeAndObserve([poisoned, ...others], []);
    for (const other of others)
      expect(seen.received).toContain(JSON.parse(other.calls[0] as string).messageId);
    return seen;
  },
  "segment-413": () => consumeAndObserve([relayMessage()], [413]),
  "segment-429-retry-after": async () => {
    // Backoff at attempt 5 is 240-480 s with the production base: longer than Retry-After wins.
    const seen = await consumeAndObserve([relayMessage()], [{ status: 429, retryAfter: "1" }], {
      attempts: 5,
      env: { RETRY_BASE_SECONDS: "30", RETRY_MAX_SECONDS: "21600" },
    });
    expect(seen.delay).toBeGreaterThanOrEqual(240);
    return seen;
  },
  "segment-429": () => consumeAndObserve([relayMessage()], [429]),
  "segment-5xx": () => consumeAndObserve([relayMessage()], [503]),
  "segment-timeout": () =>
    consumeAndObserve([relayMessage()], ["hang"], { env: { SEGMENT_TIMEOUT_MS: "200" } }),
  "segment-network": async () => {
    vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("connection reset"));
    const result = await consume("pendo-events", [relayMessage()]);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.explicitAcks).toEqual([]);
    return { end: "retried by the queue" };
  },
  "segment-last-attempt": () => consumeAndObserve([relayMessage()], [503], { attempts: MAX_RETRIES + 1 }),
  "segment-past-retention": () =>
    // Enqueued 23.9 hours ago: the next retry would land after the queue's 24 h retention.
    consumeAndObserve([relayMessage()], [503], { enqueuedAt: new Date(Date.now() - 23.9 * 3_600_000) }),
  "consumer-d1-dead-letter": async () => {
    const message = relayMessage();
    const { standIn } = useSegmentStandIn();
    standIn.failNext(413);
    const result = await consume("pendo-events", [message], {
      env: { LEDGER: ledgerFailingOn("INTO records") },
    });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await deadLetterFor(message.eventId)).toBeUndefined();
    const kept = await fallbackFor(message.eventId);
    return { end: kept ? "dead-lettered" : "delivered", reason: kept?.reason };
  },
  "consumer-d1-and-kv-dead-letter": async () => {
    // Enqueued 23.5 hours ago: whatever the delay, it must end before the 24 h retention does.
    const seen = await consumeAndObserve([relayMessage()], [413], {
      env: { LEDGER: ledgerFailingOn("INTO records"), DEDUP: failingKv },
      enqueuedAt: new Date(Date.now() - 23.5 * 3_600_000),
    });
    expect(seen.delay).toBeLessThanOrEqual(0.5 * 3_600 - 600);
    return seen;
  },
  "consumer-d1-flags": async () => {
    const seen = await consumeAndObserve([relayMessage()], [], {
      env: { LEDGER: ledgerFailingOn("FROM json_each(?) AS p") },
    });
    expect(seen.received).toEqual([]);
    return seen;
  },
  "consumer-d1-counters": () =>
    consumeAndObserve([relayMessage()], [], {
      env: { LEDGER: ledgerFailingOn(/INTO (counts|delivery|drift)/) },
    }),
  "consumer-budget": async () => {
    // Two poisoned events among 20 need more than 3 requests to isolate: the rest waits.
    const bodies = [
      poisonedMessage(),
      ...Array.from({ length: 18 }, () => relayMessage()),
      poisonedMessage(),
    ];
    const { standIn } = useSegmentStandIn();
    const result = await consume("pendo-events", bodies, { env: { SEGMENT_REQUEST_BUDGET: "3" } });
    expect(standIn.requests).toHaveLength(3);
    expect(result.retryMessages.length).toBeGreaterThan(0);
    expect(result.explicitAcks.length + result.retryMessages.length).toBe(bodies.length);
    return { end: "retried by the queue" };
  },
  "consumer-malformed": async () => {
    const neighbour = relayMessage();
    const { standIn } = useSegmentStandIn();
    const result = await consume("pendo-events", [{ raw: { hello: "world" } }, neighbour]);
    expect(result.explicitAcks).toHaveLength(2);
    expect(standIn.messageIds).toContain(JSON.parse(neighbour.calls[0] as string).messageId);
    const letter = await malformedLetter();
    return { end: "dead-lettered", reason: letter?.reason };
  },
  "consumer-v1": () => {
    const message = relayMessage();
    const v1 = { v: 1, ...message };
    return consumeAndObserve([{ ...message }], [], {}).then(async () => {
      const { standIn } = useSegmentStandIn();
      const result = await consume("pendo-events", [{ raw: v1 }]);
      expect(result.explicitAcks).toHaveLength(1);
      return {
        end: standIn.messageIds.length === message.calls.length ? "delivered" : "retried by the queue",
      };
    });
  },
  "dlq-stored": async () => {
    const message = relayMessage();
    const result = await consume("pendo-events-dlq", [message]);
    expect(result.explicitAcks).toHaveLength(1);
    return { end: "dead-lettered", reason: (await deadLetterFor(message.eventId))?.reason };
  },
  "dlq-d1": async () => {
    const message = relayMessage();
    const result = await consume("pendo-events-dlq", [message], {
      env: { LEDGER: ledgerFailingOn("INTO records") },
    });
    expect(result.explicitAcks).toHaveLength(1);
    const kept = await fallbackFor(message.eventId);
    return { end: kept ? "dead-lettered" : "delivered", reason: kept?.reason };
  },
  "dlq-d1-and-kv": async () => {
    const result = await consume("pendo-events-dlq", [relayMessage()], {
      attempts: 3,
      env: { LEDGER: ledgerFailingOn("INTO records"), DEDUP: kvFailingOn("put") },
    });
    expect(result.explicitAcks).toEqual([]);
    // Growing: attempt 3 waits 120-240 s, more than the first try's 30-60 s.
    expect(result.delays[0]).toBeGreaterThanOrEqual(120);
    return { end: "retried by the queue" };
  },
  "dlq-d1-and-kv-last": async () => {
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => errors.push(line));
    const message = relayMessage();
    const result = await consume("pendo-events-dlq", [message], {
      attempts: DLQ_MAX_RETRIES + 1,
      env: { LEDGER: ledgerFailingOn("INTO records"), DEDUP: kvFailingOn("put") },
    });
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    const lost = errors.map((l) => JSON.parse(l)).find((l) => l.msg === "dead-letter-lost");
    const recovered = new TextDecoder().decode(bytesOfBase64(lost?.messageBase64 ?? ""));
    expect(recovered).toContain(message.calls[0]);
    // One bounded line: the largest message (128 KB) in base64 stays under 256 KB of logs.
    expect(errors.join("\n").length).toBeLessThan(256 * 1024);
    return { end: "retried by the queue" };
  },
  "replay-queue-send": () => replayAndObserve({ EVENTS: faultyQueue(env.EVENTS, () => true) }),
  "replay-d1-claim": () => replayAndObserve({ LEDGER: ledgerFailingOn("SET state = 'replaying'") }),
  "replay-d1-delete": () => replayAndObserve({ LEDGER: ledgerFailingOn("DELETE FROM records") }),
  "replay-twice": () =>
    replayAndObserve({}, async (id) => {
      const first = await admin(`/dead-letters/${id}/replay`, {
        LEDGER: ledgerFailingOn("DELETE FROM records"),
      });
      expect(first.json).toMatchObject({ status: "replayed", removed: false });
      return first.sent.map(([body]) => body);
    }),
  "cron-moves-fallback": () => cronAndObserve({}),
  "cron-d1-down": () => cronAndObserve({ LEDGER: ledgerFailingOn("INTO records") }),
};

/** A dead letter in KV's fallback store, then one cron run with the given bindings. */
async function cronAndObserve(bindings: Partial<Env>): Promise<Observation> {
  const message = relayMessage();
  const letter = refusedLetter(message);
  await putFallback(env.DEDUP, letter, 3_600);
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }),
    { ...env, ...bindings } as Env,
    ctx,
  );
  const inLedger = await deadLetterFor(message.eventId);
  const inKv = await fallbackFor(message.eventId);
  // Exactly one store holds it: never both, never neither.
  expect(Boolean(inLedger) !== Boolean(inKv)).toBe(true);
  if (inKv) await env.DEDUP.delete(inKv.key);
  return { end: "dead-lettered", reason: (inLedger ?? inKv)?.reason };
}

describe("fault matrix (docs/reliability.md)", () => {
  it("has a scenario for every row, and a row for every scenario", () => {
    expect(Object.keys(SCENARIOS).sort()).toEqual(FAULT_MATRIX.map((cell) => cell.id).sort());
  });

  it.each(FAULT_MATRIX.map((cell) => [`${cell.stage}: ${cell.fault}`, cell] as const))(
    "%s",
    async (_name, cell: FaultCell) => {
      const scenario = SCENARIOS[cell.id];
      if (!scenario) throw new Error(`no scenario for ${cell.id}`);
      const seen = await scenario();
      expect({ status: seen.status, end: seen.end, reason: seen.reason }).toEqual({
        status: cell.expect.status,
        end: cell.expect.end,
        reason: cell.expect.reason,
      });
    },
  );
});
