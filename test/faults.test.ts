import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DLQ_MAX_RETRIES } from "../src/delivery/deadLetterConsumer";
import { parkBatch, readParked } from "../src/delivery/park";
import { MAX_EVENT_BYTES, utf8Length } from "../src/destination/calls";
import { PROFILES } from "../src/destination/profiles";
import { targetOf } from "../src/destination/target";
import type { Env } from "../src/env";
import worker from "../src/index";
import { dedupKey, KEY_PREFIX } from "../src/kv/keys";
import { visitorHash } from "../src/ledger/flags";
import { bytesOfBase64, type LedgerRecord } from "../src/ledger/records";
import {
  encodeControl,
  encodeRelayMessage,
  MAX_QUEUE_MESSAGE_BYTES,
  type RelayMessage,
} from "../src/queue/message";
import { R2_PREFIX } from "../src/r2/keys";
import { storeRecords } from "../src/records/store";
import type { InjectedAnswer } from "../standin/segment";
import { SegmentStandIn } from "../standin/segment";
import { FAULT_MATRIX, type FaultCell, type FaultEnd } from "./fault-matrix";
import { bucketFailing, dbFailingOn, faultyKv, faultyQueue, type KvMethod } from "./faults";
import {
  ADMIN_TOKEN,
  callWorker,
  keptQueue,
  PUBLISHED,
  postWebhook,
  runCron,
  TOKEN,
  WRITE_KEY,
  withUniqueId,
} from "./helpers";
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

/** A dead letter whose row waits in R2 (`pending/`) because D1 refused it: found by its uniqueId. */
async function pendingFor(eventId: string) {
  const { objects } = await env.ARCHIVE.list({ prefix: R2_PREFIX.pending });
  for (const object of objects) {
    const value = await (await env.ARCHIVE.get(object.key))?.json<{
      rows: { eventId: string; reason: string }[];
    }>();
    const row = value?.rows.find((r) => r.eventId === eventId);
    if (row) return { key: object.key, ...row };
  }
  return undefined;
}

/** A source of its own (its own write key, so its own destination), for outage mode. */
async function outageSource() {
  const name = `out-${crypto.randomUUID().slice(0, 8)}`;
  const writeKey = `outage-write-key-${name}`;
  const target = await targetOf(PROFILES.segment, "https://api.segment.io", writeKey);
  const bindings = {
    SOURCES: JSON.stringify({ [name]: { writeKey, tokens: [TOKEN] } }),
    // Kept here, not delivered: a chain step is driven by the test itself.
    EVENTS: keptQueue().queue,
  } as Partial<Env>;
  const standIn = new SegmentStandIn([WRITE_KEY, writeKey]);
  const message = (): RelayMessage => ({ ...relayMessage(), source: name });
  const parked = () =>
    env.LEDGER.prepare("SELECT seq, object_key AS objectKey, messages FROM parked WHERE destination = ?")
      .bind(target.id)
      .all<{ seq: string; objectKey: string; messages: number }>()
      .then((r) => r.results);
  const state = () =>
    env.LEDGER.prepare("SELECT state, next_probe_at AS nextProbeAt FROM destinations WHERE id = ?")
      .bind(target.id)
      .first<{ state: string; nextProbeAt: number }>();
  const seed = (state: string, failingSince: number | null, chain = "test-chain") =>
    env.LEDGER.prepare(
      `INSERT INTO destinations (id, host, state, failing_since, outage_at, next_probe_at, chain, updated_at)
       VALUES (?, 'api.segment.io', ?, ?, ?, 0, ?, ?)`,
    )
      .bind(target.id, state, failingSince, state === "outage" ? Date.now() : null, chain, Date.now())
      .run();
  /** One chain step, as the queue would deliver its control message. */
  const step = (extra: Partial<Env> = {}) =>
    consume(
      "pendo-events",
      [
        {
          raw: encodeControl({
            v: "control",
            kind: "destination",
            destination: target.id,
            chain: "test-chain",
          }),
        },
      ],
      { env: { ...bindings, ...extra } },
    );
  return { name, target, bindings, standIn, message, parked, state, seed, step };
}

/** Dead-letter rows that D1 refused, waiting in R2 (`pending/`) as the consumers leave them. */
async function pendingLetter(): Promise<{ message: RelayMessage; letter: LedgerRecord }> {
  const message = relayMessage();
  const letter = refusedLetter(message);
  const stored = await storeRecords(env.ARCHIVE, ledgerFailingOn("INTO records"), [letter], {
    now: letter.createdAt,
    secondStore: true,
  });
  expect(stored).toMatchObject({ ok: true, where: "pending" });
  return { message, letter };
}

const ledgerFailingOn = (fragment: string | RegExp) => dbFailingOn(env.LEDGER, fragment);

/** Posts a webhook with the given bindings, then follows it: to Segment, to KV, or back to the sender. */
async function postAndObserve(body: unknown, bindings: Partial<Env>): Promise<Observation> {
  const { response, json, enqueued } = await postWebhook(body, { env: bindings });
  const status = response.status;
  if (status >= 500) {
    // The sender retries only if nothing says the event was taken: no dedup marker (a marker would
    // answer its retry "duplicate", and the event would be lost), nothing on the real queue.
    const uniqueId =
      typeof body === "object" && body !== null ? (body as { uniqueId?: string }).uniqueId : undefined;
    if (uniqueId) expect(await env.DEDUP.get(dedupKey("default", uniqueId))).toBeNull();
    if (bindings.EVENTS === undefined) expect(enqueued).toEqual([]);
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
    return postAndObserve(webhook, { LEDGER: ledgerFailingOn("INTO records") });
  },
  "edge-r2-quarantine": () =>
    postAndObserve(JSON.stringify({ visitorId: "v" }), {
      ARCHIVE: bucketFailing(env.ARCHIVE, "records/", "put"),
    }),
  "edge-r2-dead-letter": () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    (webhook.properties as Record<string, unknown>).bio = "b".repeat(40_000);
    return postAndObserve(webhook, { ARCHIVE: bucketFailing(env.ARCHIVE, "records/", "put") });
  },
  "edge-over-budget": async () => {
    const source = `budget-${crypto.randomUUID().slice(0, 8)}`;
    const SOURCES = JSON.stringify({ [source]: { writeKey: WRITE_KEY, tokens: [TOKEN] } });
    const body = JSON.stringify({ visitorId: `over-${crypto.randomUUID()}`, padding: "p".repeat(2_000) });
    const first = await postWebhook(body, {
      path: `/pendo/${source}`,
      env: { SOURCES, RECORD_BUDGET_BYTES: "1048576" },
    });
    expect(first.response.status).toBe(400);
    // The source is at its budget now (as if a megabyte of junk had arrived before).
    await env.LEDGER.prepare("UPDATE record_bytes SET bytes = 1048576 WHERE source = ?").bind(source).run();
    const second = await postWebhook(body, {
      path: `/pendo/${source}`,
      env: { SOURCES, RECORD_BUDGET_BYTES: "1048576" },
    });
    expect(second.response.status).toBe(400);
    expect(second.json.issues).toEqual(first.json.issues);
    const rows = await env.LEDGER.prepare(
      "SELECT holds, object_key AS objectKey FROM records WHERE kind = 'quarantine' AND source = ? ORDER BY id",
    )
      .bind(source)
      .all<{ holds: string; objectKey: string | null }>();
    // The first keeps its bytes; the second only its row. Nothing was deleted to make room.
    expect(rows.results.map((r) => r.holds)).toEqual(["body", "none"]);
    expect(rows.results[1]?.objectKey).toBeNull();
    const counted = await env.LEDGER.prepare("SELECT rows_only AS n FROM record_bytes WHERE source = ?")
      .bind(source)
      .first<{ n: number }>();
    expect(counted?.n).toBe(1);
    return { status: second.response.status, end: "quarantined" };
  },
  "edge-d1-flag-set": () =>
    postAndObserve(doNotProcess(true), { LEDGER: ledgerFailingOn("INTO flag_history") }),
  "edge-d1-flag-clear": () =>
    postAndObserve(doNotProcess(false), { LEDGER: ledgerFailingOn("INTO flag_history") }),
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
    const kept = await pendingFor(message.eventId);
    if (kept) await env.ARCHIVE.delete(kept.key);
    return { end: kept ? "dead-lettered" : "delivered", reason: kept?.reason };
  },
  "consumer-d1-and-r2-pending": async () => {
    // Enqueued 23.5 hours ago: whatever the delay, it must end before the 24 h retention does.
    const seen = await consumeAndObserve([relayMessage()], [413], {
      env: {
        LEDGER: ledgerFailingOn("INTO records"),
        ARCHIVE: bucketFailing(env.ARCHIVE, "pending/", "put"),
      },
      enqueuedAt: new Date(Date.now() - 23.5 * 3_600_000),
    });
    expect(seen.delay).toBeLessThanOrEqual(0.5 * 3_600 - 600);
    return seen;
  },
  "consumer-r2-dead-letter": async () => {
    const message = relayMessage();
    const seen = await consumeAndObserve([message], [413], {
      env: { ARCHIVE: bucketFailing(env.ARCHIVE, "records/", "put") },
    });
    // Never acked before its bytes are stored, and no row points at bytes that are not there.
    expect(await deadLetterFor(message.eventId)).toBeUndefined();
    return seen;
  },
  "consumer-outage": async () => {
    const outage = await outageSource();
    // Failing for 301 s already: this batch's failure starts outage mode.
    await outage.seed("open", Date.now() - 301_000);
    useSegmentStandIn(outage.standIn);
    outage.standIn.failNext(503);
    const message = outage.message();
    const result = await consume("pendo-events", [message], { env: outage.bindings });
    expect(result.explicitAcks).toHaveLength(1);
    expect((await outage.state())?.state).toBe("outage");
    const [parked] = await outage.parked();
    if (!parked) return { end: "retried by the queue" };
    const object = await env.ARCHIVE.get(parked.objectKey);
    expect(await object?.text()).toContain(message.calls[0]);
    return { end: "parked" };
  },
  "consumer-r2-park": async () => {
    const outage = await outageSource();
    await outage.seed("outage", Date.now() - 400_000);
    const result = await consume("pendo-events", [outage.message()], {
      env: { ...outage.bindings, ARCHIVE: bucketFailing(env.ARCHIVE, "parked/", "put") },
    });
    expect(await outage.parked()).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    return { end: "retried by the queue" };
  },
  "consumer-d1-park": async () => {
    const outage = await outageSource();
    await outage.seed("outage", Date.now() - 400_000);
    const objects = async () => (await env.ARCHIVE.list({ prefix: `parked/${outage.target.id}/` })).objects;
    // The insert fails, and the ledger then says no row landed: the object goes with it.
    const refused = await consume("pendo-events", [outage.message()], {
      env: { ...outage.bindings, LEDGER: ledgerFailingOn("INTO parked") },
    });
    expect(refused.retryMessages).toHaveLength(1);
    expect(await objects()).toEqual([]);
    // The ledger cannot say whether the row landed: the object is kept (a landed row must not
    // point at nothing), and holds the message.
    const message = outage.message();
    const result = await consume("pendo-events", [message], {
      env: { ...outage.bindings, LEDGER: ledgerFailingOn(/\bparked\b/) },
    });
    expect(result.retryMessages).toHaveLength(1);
    const kept = await objects();
    expect(kept).toHaveLength(1);
    const read = await readParked(env.ARCHIVE, kept[0]?.key as string);
    expect(read.ok && read.messages.map((m) => m.eventId)).toEqual([message.eventId]);
    return { end: "retried by the queue" };
  },
  "consumer-d1-flags": async () => {
    const seen = await consumeAndObserve([relayMessage()], [], {
      env: { LEDGER: ledgerFailingOn("FROM json_each(?) AS q") },
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
    const kept = await pendingFor(message.eventId);
    if (kept) await env.ARCHIVE.delete(kept.key);
    return { end: kept ? "dead-lettered" : "delivered", reason: kept?.reason };
  },
  "dlq-d1-and-kv": async () => {
    const result = await consume("pendo-events-dlq", [relayMessage()], {
      attempts: 3,
      env: { LEDGER: ledgerFailingOn("INTO records"), ARCHIVE: bucketFailing(env.ARCHIVE, "", "put") },
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
      env: { LEDGER: ledgerFailingOn("INTO records"), ARCHIVE: bucketFailing(env.ARCHIVE, "", "put") },
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
  "drain-probe-ok": async () => {
    const outage = await outageSource();
    await outage.seed("outage", Date.now() - 400_000);
    const messages = [outage.message(), outage.message()];
    expect((await parkBatch(env.ARCHIVE, env.LEDGER, outage.target, messages, Date.now())).ok).toBe(true);
    const { standIn } = useSegmentStandIn(outage.standIn);
    await outage.step();
    const ids = messages.flatMap((m) => m.calls.map((call) => JSON.parse(call).messageId));
    expect(standIn.messageIds).toEqual(ids);
    expect(await outage.parked()).toEqual([]);
    expect((await env.ARCHIVE.list({ prefix: `parked/${outage.target.id}/` })).objects).toEqual([]);
    expect((await outage.state())?.state).toBe("open");
    return { end: "delivered" };
  },
  "drain-probe-fails": async () => {
    const outage = await outageSource();
    await outage.seed("outage", Date.now() - 400_000);
    await parkBatch(env.ARCHIVE, env.LEDGER, outage.target, [outage.message()], Date.now());
    useSegmentStandIn(outage.standIn);
    outage.standIn.failNext(503);
    const before = Date.now();
    await outage.step();
    expect(await outage.parked()).toHaveLength(1);
    const state = await outage.state();
    expect(state?.state).toBe("outage");
    expect(state?.nextProbeAt).toBeGreaterThanOrEqual(before + 60_000);
    return { end: "parked" };
  },
  "drain-r2-get": async () => {
    const outage = await outageSource();
    await outage.seed("outage", Date.now() - 400_000);
    await parkBatch(env.ARCHIVE, env.LEDGER, outage.target, [outage.message()], Date.now());
    const { standIn } = useSegmentStandIn(outage.standIn);
    await outage.step({ ARCHIVE: bucketFailing(env.ARCHIVE, "parked/", "get") });
    expect(standIn.requests).toEqual([]);
    expect(await outage.parked()).toHaveLength(1);
    return { end: "parked" };
  },
  "drain-r2-missing": async () => {
    const outage = await outageSource();
    await outage.seed("outage", Date.now() - 400_000);
    await parkBatch(env.ARCHIVE, env.LEDGER, outage.target, [outage.message()], Date.now());
    const [parked] = await outage.parked();
    await env.ARCHIVE.delete(parked?.objectKey ?? "");
    useSegmentStandIn(outage.standIn);
    await outage.step();
    expect(await outage.parked()).toEqual([]);
    const letter = await deadLetterFor(parked?.seq ?? "");
    expect(letter?.detail).toContain("R2 has no object");
    return { end: letter ? "dead-lettered" : "delivered", reason: letter?.reason };
  },
  "replay-queue-send": () => replayAndObserve({ EVENTS: faultyQueue(env.EVENTS, () => true) }),
  "replay-d1-claim": () => replayAndObserve({ LEDGER: ledgerFailingOn("SET state = 'sent'") }),
  "replay-r2-missing": () =>
    replayAndObserve({}, async (id) => {
      const row = await env.LEDGER.prepare("SELECT object_key AS key FROM records WHERE id = ?")
        .bind(id)
        .first<{ key: string }>();
      await env.ARCHIVE.delete(row?.key ?? "");
      return [];
    }),
  "replay-r2-get": () => replayAndObserve({ ARCHIVE: bucketFailing(env.ARCHIVE, "records/", "get") }),
  "replay-twice": () =>
    replayAndObserve({}, async (id) => {
      const first = await admin(`/dead-letters/${id}/replay`);
      expect(first.json).toMatchObject({ status: "replayed" });
      return first.sent.map(([body]) => body);
    }),
  "replay-flagged": async () => {
    const visitor = `flagged-${crypto.randomUUID()}`;
    const at = Date.now() - 3_600_000;
    const message = { ...relayMessage(), visitor, eventTime: at };
    const letter = refusedLetter(message);
    await storeRecords(env.ARCHIVE, env.LEDGER, [letter], { now: letter.createdAt });
    // Set before the event's own time, so it applies: a replay must not send it.
    await env.LEDGER.prepare("INSERT INTO flag_history VALUES ('default', ?, ?, 1, ?)")
      .bind(await visitorHash(visitor), at - 60_000, Date.now())
      .run();
    const { response, json, sent } = await admin(`/dead-letters/${letter.id}/replay`);
    expect(sent).toEqual([]);
    expect(json).toMatchObject({ ok: true, status: "dropped", eventId: message.eventId });
    expect((await deadLetterFor(message.eventId))?.state).toBe("dropped");
    return { status: response.status, end: "dropped (do-not-process)" };
  },
  "cron-moves-pending": async () => {
    const { message } = await pendingLetter();
    await runCron({});
    const inLedger = await deadLetterFor(message.eventId);
    expect(await pendingFor(message.eventId)).toBeUndefined();
    expect(inLedger?.message).toEqual(message);
    return { end: inLedger ? "dead-lettered" : "delivered", reason: inLedger?.reason };
  },
  "cron-d1-down": async () => {
    const { message } = await pendingLetter();
    await runCron({ LEDGER: ledgerFailingOn("INTO records") });
    const inLedger = await deadLetterFor(message.eventId);
    const kept = await pendingFor(message.eventId);
    // Exactly one store holds it: never both, never neither.
    expect(Boolean(inLedger) !== Boolean(kept)).toBe(true);
    if (kept) await env.ARCHIVE.delete(kept.key);
    return { end: "dead-lettered", reason: (inLedger ?? kept)?.reason };
  },
  "cron-pending-tombstone": async () => {
    const { message, letter } = await pendingLetter();
    const copy = await pendingFor(message.eventId);
    const rows = await (await env.ARCHIVE.get(copy?.key ?? ""))?.text();
    await runCron({});
    const replayed = await admin(`/dead-letters/${letter.id}/replay`);
    expect(replayed.json).toMatchObject({ status: "replayed" });
    // The first move's delete "failed": the same rows wait in pending/ once more.
    await env.ARCHIVE.put(copy?.key ?? "", rows ?? "");
    await runCron({});
    expect((await deadLetterFor(message.eventId))?.state).toBe("sent");
    const again = await admin(`/dead-letters/${letter.id}/replay`);
    expect(again.response.status).toBe(409);
    const { standIn } = useSegmentStandIn();
    await consume(
      "pendo-events",
      [...replayed.sent, ...again.sent].map(([body]) => ({ raw: body })),
    );
    const ids = message.calls.map((call) => JSON.parse(call).messageId);
    expect(standIn.messageIds).toEqual(ids);
    return { end: "delivered" };
  },
  "cron-moves-kv-fallback": async () => {
    const message = relayMessage();
    const letter = refusedLetter(message);
    // As a deploy before the R2 move wrote it.
    const key = `${KEY_PREFIX.fallback}${letter.id}`;
    const { holds: _holds, object: _object, state: _state, issues: _issues, ...rest } = letter;
    await env.DEDUP.put(key, JSON.stringify({ ...rest, message: encodeRelayMessage(message) }), {
      expirationTtl: 3_600,
    });
    await runCron({});
    expect(await env.DEDUP.get(key)).toBeNull();
    const inLedger = await deadLetterFor(message.eventId);
    expect(inLedger?.message).toEqual(message);
    return { end: inLedger ? "dead-lettered" : "delivered", reason: inLedger?.reason };
  },
};

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
