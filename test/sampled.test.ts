import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PROFILES } from "../src/destination/profiles";
import { targetOf } from "../src/destination/target";
import type { Env } from "../src/env";
import worker from "../src/index";
import { visitorHash } from "../src/ledger/flags";
import type { RelayMessage } from "../src/queue/message";
import { R2_PREFIX } from "../src/r2/keys";
import { SegmentStandIn } from "../standin/segment";
import { bucketFailing, dbFailingOn } from "./faults";
import {
  ADMIN_TOKEN,
  callWorker,
  keptQueue,
  PUBLISHED,
  postWebhook,
  TOKEN,
  WRITE_KEY,
  withUniqueId,
} from "./helpers";
import { deadLetterFor, queueMessages, refusedLetter, relayMessage, storeForTest } from "./messages";
import { useSegmentStandIn } from "./standin";

/**
 * Issue 27's sampled bugs (bench/sample-mutants.ts): one test per bug the suite let through, each
 * written against what the README promises (nothing lost, nothing sent twice, exact counts, the
 * tokens), not against the line the bug was planted in.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

const MAX_RETRIES = Number(env.MAX_RETRIES);

/** A source of its own, with its own write key (so its own destination and its own counters). */
async function ownSource() {
  const name = `sampled-${crypto.randomUUID().slice(0, 8)}`;
  const writeKey = `sampled-write-key-${name}`;
  const target = await targetOf(PROFILES.segment, "https://api.segment.io", writeKey);
  const kept = keptQueue();
  const bindings = {
    SOURCES: JSON.stringify({ [name]: { writeKey, tokens: [TOKEN] } }),
    // Kept here, not delivered: the test drives the consumer and the chain itself.
    EVENTS: kept.queue,
  } as Partial<Env>;
  const { standIn } = useSegmentStandIn(new SegmentStandIn([WRITE_KEY, writeKey]));
  const message = (extra: Partial<RelayMessage> = {}): RelayMessage => ({
    ...relayMessage(),
    source: name,
    ...extra,
  });
  const parked = () =>
    env.LEDGER.prepare("SELECT seq, object_key AS objectKey FROM parked WHERE destination = ?")
      .bind(target.id)
      .all<{ seq: string; objectKey: string }>()
      .then((r) => r.results);
  const parkedObjects = async () =>
    (await env.ARCHIVE.list({ prefix: `${R2_PREFIX.parked}${target.id}/` })).objects.map((o) => o.key);
  /** The source's counters, summed over every hour and event. */
  const counts = async () => {
    const { results } = await env.LEDGER.prepare("SELECT events FROM counts WHERE source = ?")
      .bind(name)
      .all<{ events: string }>();
    const sum = [0, 0, 0, 0];
    for (const row of results)
      for (const event of Object.values(JSON.parse(row.events) as Record<string, number[]>))
        for (let i = 0; i < 4; i++) sum[i] = (sum[i] ?? 0) + (event[i] ?? 0);
    const [delivered, deadLettered, dropped, refused] = sum;
    return { delivered, deadLettered, dropped, refused };
  };
  const admin = (path: string) =>
    callWorker(
      new Request(`https://relay.test/admin${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
      bindings,
    );
  return { name, target, kept, bindings, standIn, message, parked, parkedObjects, counts, admin };
}

/** One consumer invocation, as the queue would deliver the batch; each retry's delay too. */
async function consume(
  queue: string,
  bodies: (RelayMessage | { raw: unknown })[],
  options: { attempts?: number; enqueuedAt?: Date; env?: Partial<Env> } = {},
) {
  const batch = createMessageBatch<unknown>(
    queue,
    queueMessages(bodies, options.attempts, options.enqueuedAt),
  );
  const retries = batch.messages.map((message) => vi.spyOn(message, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...options.env } as Env, ctx);
  await waitOnExecutionContext(ctx);
  const result = await getQueueResult(batch, ctx);
  return { ...result, delays: retries.map((spy) => spy.mock.calls[0]?.[0]?.delaySeconds) };
}

describe("retries: exactly MAX_RETRIES of them", () => {
  it("retries a message that fails on its MAX_RETRIES-th delivery, and dead-letters it only after the last retry", async () => {
    const source = await ownSource();
    source.standIn.failNext(503, 503);
    const message = source.message();
    // Delivery MAX_RETRIES has one retry left: the queue allows MAX_RETRIES after the first.
    const before = await consume("pendo-events", [message], { attempts: MAX_RETRIES, env: source.bindings });
    expect(before.explicitAcks).toEqual([]);
    expect(before.retryMessages).toHaveLength(1);
    expect(await deadLetterFor(message.eventId)).toBeUndefined();
    // Delivery MAX_RETRIES + 1 was the last: stored, then acked.
    const last = await consume("pendo-events", [message], {
      attempts: MAX_RETRIES + 1,
      env: source.bindings,
    });
    expect(last.explicitAcks).toHaveLength(1);
    expect(await deadLetterFor(message.eventId)).toMatchObject({
      reason: "retries-exhausted",
      attempts: MAX_RETRIES + 1,
    });
  });
});

describe("the counters count what happened, once", () => {
  it("counts nothing for a send that failed, and one delivery when its retry gets through", async () => {
    const source = await ownSource();
    source.standIn.failNext(503);
    const message = source.message();
    const failed = await consume("pendo-events", [message], { env: source.bindings });
    expect(failed.retryMessages).toHaveLength(1);
    expect(await source.counts()).toEqual({ delivered: 0, deadLettered: 0, dropped: 0, refused: 0 });
    const retried = await consume("pendo-events", [message], { attempts: 2, env: source.bindings });
    expect(retried.explicitAcks).toHaveLength(1);
    expect(await source.counts()).toEqual({ delivered: 1, deadLettered: 0, dropped: 0, refused: 0 });
  });

  it("counts a parked event of a flagged visitor as dropped, not delivered, when the drain reaches it", async () => {
    const source = await ownSource();
    await source.admin(`/destinations/${source.target.id}/hold`);
    const visitor = `sampled-flagged-${crypto.randomUUID()}`;
    const from = Date.now();
    const parked = await consume("pendo-events", [source.message({ visitor, eventTime: from + 1_000 })], {
      env: source.bindings,
    });
    expect(parked.explicitAcks).toHaveLength(1);
    expect(await source.parked()).toHaveLength(1);
    // Flagged from before the event's own time, after it was parked.
    await env.LEDGER.prepare("INSERT INTO flag_history VALUES (?, ?, ?, 1, 0)")
      .bind(source.name, await visitorHash(visitor), from)
      .run();
    await source.admin(`/destinations/${source.target.id}/resume`);
    const [control] = source.kept.sent.splice(0);
    await consume("pendo-events", [{ raw: control?.body }], { env: source.bindings });
    expect(source.standIn.requests).toEqual([]);
    expect(await source.parked()).toEqual([]);
    expect(await source.counts()).toEqual({ delivered: 0, deadLettered: 0, dropped: 1, refused: 0 });
  });

  it("tallies a bulk replay by what became of each record: replayed, dropped, failed", async () => {
    const event = `sampledReplay${crypto.randomUUID().slice(0, 8)}`;
    const flagged = `sampled-replay-${crypto.randomUUID()}`;
    const visitor = `sampled-replay-${crypto.randomUUID()}`;
    const plain = {
      ...relayMessage({ ...withUniqueId(PUBLISHED.guideDisplayed), event, visitorId: visitor }),
      visitor,
    };
    const dropped = {
      ...relayMessage({ ...withUniqueId(PUBLISHED.guideDisplayed), event, visitorId: flagged }),
      visitor: flagged,
      eventTime: Date.now(),
    };
    await storeForTest(refusedLetter(plain), refusedLetter(dropped));
    await env.LEDGER.prepare("INSERT INTO flag_history VALUES ('default', ?, ?, 1, 0)")
      .bind(await visitorHash(flagged), Date.now() - 60_000)
      .run();
    const replay = await callWorker(
      new Request(`https://relay.test/admin/dead-letters/replay?event=${event}`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    );
    expect(replay.response.status).toBe(200);
    expect(replay.json).toMatchObject({ replayed: 1, dropped: 1, failed: 0 });
    expect(replay.enqueued.map((m) => m.eventId)).toEqual([plain.eventId]);
  });
});

describe("nothing is lost on the way to a park or out of one", () => {
  it("retries a batch whose destination opened while it was being parked, leaving nothing parked", async () => {
    const source = await ownSource();
    await source.admin(`/destinations/${source.target.id}/hold`);
    // The destination is resumed (open: nothing parked) just as the batch's object is written.
    const opening = new Proxy(env.ARCHIVE, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        if (property !== "put") return value.bind(target);
        return async (...args: unknown[]) => {
          if (String(args[0]).startsWith(R2_PREFIX.parked))
            await env.LEDGER.prepare("UPDATE destinations SET state = 'open', chain = NULL WHERE id = ?")
              .bind(source.target.id)
              .run();
          return value.apply(target, args);
        };
      },
    });
    const message = source.message();
    const result = await consume("pendo-events", [message], {
      env: { ...source.bindings, ARCHIVE: opening },
    });
    // Not parked (no row would ever drain it), so not acked: retried, and sent the ordinary way.
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    expect(await source.parked()).toEqual([]);
    expect(await source.parkedObjects()).toEqual([]);
    const retried = await consume("pendo-events", [message], { attempts: 2, env: source.bindings });
    expect(retried.explicitAcks).toHaveLength(1);
    expect(source.standIn.messageIds).toEqual(message.calls.map((call) => JSON.parse(call).messageId));
  });

  it("keeps a batch parked when the drain cannot store the dead letter of an event in it", async () => {
    const source = await ownSource();
    await source.admin(`/destinations/${source.target.id}/hold`);
    const message = source.message();
    await consume("pendo-events", [message], { env: source.bindings });
    const [row] = await source.parked();
    expect(row).toBeDefined();
    await source.admin(`/destinations/${source.target.id}/resume`);
    const [control] = source.kept.sent.splice(0);
    // Segment refuses the event for good (a dead letter), and R2 takes no record's bytes.
    source.standIn.failNext(413);
    await consume("pendo-events", [{ raw: control?.body }], {
      env: { ...source.bindings, ARCHIVE: bucketFailing(env.ARCHIVE, R2_PREFIX.records, "put") },
    });
    expect(await deadLetterFor(message.eventId)).toBeUndefined();
    // Neither stored nor delivered: still parked, its bytes where they were.
    expect((await source.parked()).map((r) => r.seq)).toEqual([row?.seq]);
    const object = await env.ARCHIVE.get(row?.objectKey as string);
    expect(await object?.text()).toContain(message.calls[0]);
  });

  it("never lets a dead-letter queue retry outlive the queue's retention", async () => {
    // Enqueued 23.8 hours ago on the 24 h retention: 12 minutes left, less the 10-minute margin.
    const result = await consume("pendo-events-dlq", [relayMessage()], {
      attempts: 10,
      enqueuedAt: new Date(Date.now() - 23.8 * 3_600_000),
      env: {
        LEDGER: dbFailingOn(env.LEDGER, "INTO records"),
        ARCHIVE: bucketFailing(env.ARCHIVE, "", "put"),
      },
    });
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.delays[0]).toBeLessThanOrEqual(0.2 * 3_600 - 600);
  });
});

describe("tokens match whole, never by prefix", () => {
  it("refuses the webhook token with anything after it, in the query or as Bearer", async () => {
    for (const options of [{ token: `${TOKEN}x` }, { token: null, bearer: `${TOKEN}-and-more` }]) {
      const { response, enqueued } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), options);
      expect(response.status).toBe(401);
      expect(enqueued).toEqual([]);
    }
  });

  it("refuses the admin token with anything after it", async () => {
    const { response } = await callWorker(
      new Request("https://relay.test/admin/dead-letters", {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}0` },
      }),
    );
    expect(response.status).toBe(401);
  });
});
