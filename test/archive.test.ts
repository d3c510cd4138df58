import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runJobStep } from "../src/archive/jobs";
import { listArchive } from "../src/archive/read";
import { parseSettings } from "../src/config";
import { PROFILES } from "../src/destination/profiles";
import { targetOf } from "../src/destination/target";
import type { Env } from "../src/env";
import worker from "../src/index";
import { decodeRelayMessage, type RelayMessage } from "../src/queue/message";
import { decodeFrames } from "../src/r2/frames";
import { archiveKey, groupId } from "../src/r2/keys";
import { SegmentStandIn } from "../standin/segment";
import { bucketFailing, faultyQueue } from "./faults";
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
import { queueMessages, relayMessage } from "./messages";
import { useSegmentStandIn } from "./standin";

/**
 * The raw archive and sending a time range again: what the edge and the consumer keep per batch,
 * a dry run's count and preview, a job that is paced, resumable and cancellable, and two replays
 * of one range at once.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

/** A source of its own, webhooks posted to it and consumed (delivered and archived). */
async function archivedSource(count: number, extra: Partial<Env> = {}) {
  const name = `arch-${crypto.randomUUID().slice(0, 8)}`;
  const kept = keptQueue();
  const bindings = {
    SOURCES: JSON.stringify({ [name]: { writeKey: WRITE_KEY, tokens: [TOKEN] } }),
    EVENTS: kept.queue,
    ...extra,
  } as Partial<Env>;
  const webhooks = Array.from({ length: count }, () => withUniqueId(PUBLISHED.guideDisplayed));
  const bodies = webhooks.map((webhook) => JSON.stringify(webhook, null, 1)); // with newlines, as sent
  const enqueued: RelayMessage[] = [];
  for (const body of bodies) {
    const posted = await postWebhook(body, { path: `/pendo/${name}`, env: bindings });
    expect(posted.response.status).toBe(202);
  }
  // What the edge enqueued went to the kept queue.
  for (const { body } of kept.sent.splice(0)) {
    const decoded = decodeRelayMessage(body);
    if (decoded.ok) enqueued.push(decoded.message);
  }
  const { standIn } = useSegmentStandIn();
  await consume(enqueued, bindings);
  const consumeKept = async () => {
    const messages = kept.sent.splice(0);
    for (const message of messages) await consume([{ raw: message.body }], bindings);
    return messages;
  };
  return { name, bindings, kept, webhooks, bodies, enqueued, standIn, consumeKept };
}

async function consume(bodies: RelayMessage[] | { raw: unknown }[], bindings: Partial<Env>) {
  const batch = createMessageBatch<unknown>("pendo-events", queueMessages(bodies));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return getQueueResult(batch, ctx);
}

function admin(path: string, method: string, bindings: Partial<Env>, body?: unknown) {
  return callWorker(
    new Request(`https://relay.test/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
    bindings,
  );
}

const range = () => ({
  from: new Date(Date.now() - 3_600_000).toISOString(),
  to: new Date(Date.now() + 60_000).toISOString(),
});
const messageIdsOf = (messages: RelayMessage[]) =>
  messages.flatMap((m) => m.calls.map((c) => JSON.parse(c).messageId));

describe("ARCHIVE_MODE=all keeps every accepted webhook, per queue batch", () => {
  it("writes one object for a batch's webhooks, each as received, byte for byte", async () => {
    const a = await archivedSource(3);
    // The webhook travelled with its calls (queue message v3).
    expect(a.enqueued.map((m) => m.raw)).toEqual(a.bodies);
    const { objects } = await env.ARCHIVE.list({ prefix: `archive/${a.name}/` });
    expect(objects).toHaveLength(1);
    const data = new Uint8Array(
      await ((await env.ARCHIVE.get(objects[0]?.key ?? "")) as R2ObjectBody).arrayBuffer(),
    );
    const frames = decodeFrames(data);
    expect(frames.ok).toBe(true);
    const text = new TextDecoder();
    expect(frames.frames.map((f) => text.decode(f.bytes))).toEqual(a.bodies);
    expect(frames.frames.map((f) => f.meta.eventId)).toEqual(a.webhooks.map((w) => w.uniqueId));
  });

  it("does not archive with failures or off; off sends no webhook bytes on the queue", async () => {
    const failures = await archivedSource(1, { ARCHIVE_MODE: "failures" });
    expect(failures.enqueued[0]?.raw).toBe(failures.bodies[0]);
    const off = await archivedSource(1, { ARCHIVE_MODE: "off" });
    expect(off.enqueued[0]?.raw).toBeUndefined();
    for (const name of [failures.name, off.name])
      expect((await env.ARCHIVE.list({ prefix: `archive/${name}/` })).objects).toEqual([]);
  });
});

describe("POST /admin/archive/replay", () => {
  it("answers a dry run with the count and what the first maps to today, sending nothing", async () => {
    const a = await archivedSource(4);
    const dry = await admin("/archive/replay", "POST", a.bindings, {
      source: a.name,
      ...range(),
      dryRun: true,
    });
    expect(dry.response.status).toBe(200);
    expect(dry.json).toMatchObject({ dryRun: true, events: 4, batches: 1, complete: true });
    const first = dry.json.first as { eventId: string; willSend: { messageId: string }[] };
    expect(first.eventId).toBe(a.webhooks[0]?.uniqueId);
    expect(first.willSend.map((call) => call.messageId)).toEqual(
      messageIdsOf([a.enqueued[0] as RelayMessage]),
    );
    expect(a.kept.sent).toEqual([]);
  });

  it("runs a job: today's mapping, the original messageIds, paced steps, its progress", async () => {
    const a = await archivedSource(3);
    const made = await admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() });
    expect(made.response.status).toBe(202);
    const job = made.json.job as { id: string; total: number; state: string };
    expect(job).toMatchObject({ total: 3, state: "running" });
    // The first step's control message; the step enqueues the webhooks, mapped afresh.
    const steps = a.kept.sent.splice(0);
    expect(steps).toHaveLength(1);
    await consume([{ raw: steps[0]?.body }], a.bindings);
    const replayed = a.kept.sent.splice(0).map((m) => decodeRelayMessage(m.body));
    const messages = replayed.flatMap((r) => (r.ok ? [r.message] : []));
    expect(messageIdsOf(messages)).toEqual(messageIdsOf(a.enqueued));
    for (const message of messages) expect(message.replayedAt).toEqual(expect.any(Number));
    const shown = await admin(`/archive/replay/${job.id}`, "GET", a.bindings);
    expect(shown.json).toMatchObject({ id: job.id, state: "done", sent: 3, total: 3, skipped: 0 });
    // They reach the destination through the consumer, as any event (Segment keeps one of each).
    const before = a.standIn.duplicates;
    await consume(messages, a.bindings);
    expect(a.standIn.duplicates).toBe(before + messageIdsOf(messages).length);
  });

  it("refuses a second replay of an overlapping range while one runs, even asked at once", async () => {
    const a = await archivedSource(1);
    const asked = await Promise.all([
      admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() }),
      admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() }),
    ]);
    expect(asked.map((r) => r.response.status).sort()).toEqual([202, 409]);
    const refused = asked.find((r) => r.response.status === 409);
    const made = asked.find((r) => r.response.status === 202);
    expect((refused?.json.job as { id: string } | undefined)?.id).toBe(
      (made?.json.job as { id: string } | undefined)?.id,
    );
  });

  it("cancels a job: its next step sends nothing", async () => {
    const a = await archivedSource(2);
    const made = await admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() });
    const id = (made.json.job as { id: string }).id;
    const cancelled = await admin(`/archive/replay/${id}`, "DELETE", a.bindings);
    expect(cancelled.json).toMatchObject({ id, state: "cancelled" });
    await a.consumeKept();
    expect(a.kept.sent).toEqual([]);
    expect((await admin(`/archive/replay/${id}`, "GET", a.bindings)).json).toMatchObject({ sent: 0 });
  });

  it("says so when an archived object is gone, and goes on", async () => {
    const a = await archivedSource(2);
    for (const object of (await env.ARCHIVE.list({ prefix: `archive/${a.name}/` })).objects)
      await env.ARCHIVE.delete(object.key);
    const dry = await admin("/archive/replay", "POST", a.bindings, {
      source: a.name,
      ...range(),
      dryRun: true,
    });
    expect(dry.json).toMatchObject({ events: 0, batches: 0 });
    expect(dry.json.first).toBeNull();
  });

  it("sends to another destination with the events' own messageIds", async () => {
    const a = await archivedSource(1);
    const other = `other-${crypto.randomUUID().slice(0, 8)}`;
    const otherKey = `other-key-${other}`;
    const target = await targetOf(PROFILES.segment, "https://api.segment.io", otherKey);
    const bindings = {
      ...a.bindings,
      SOURCES: JSON.stringify({
        [a.name]: { writeKey: WRITE_KEY, tokens: [TOKEN] },
        [other]: { writeKey: otherKey, tokens: [TOKEN] },
      }),
    };
    const made = await admin("/archive/replay", "POST", bindings, {
      source: a.name,
      ...range(),
      destination: target.id,
    });
    expect(made.response.status).toBe(202);
    await consume([{ raw: a.kept.sent.splice(0)[0]?.body }], bindings);
    const [replayed] = a.kept.sent.splice(0).flatMap((m) => {
      const decoded = decodeRelayMessage(m.body);
      return decoded.ok ? [decoded.message] : [];
    });
    expect(replayed?.destination).toBe(target.id);
    const standIn = new SegmentStandIn([otherKey]);
    useSegmentStandIn(standIn);
    await consume([replayed as RelayMessage], bindings);
    expect(standIn.messageIds).toEqual(messageIdsOf(a.enqueued));
  });

  it("answers 400 naming the field for a bad request", async () => {
    const a = await archivedSource(0);
    const cases: [unknown, string][] = [
      [{ source: a.name, from: "2026-12-01T00:00:00Z", to: "2026-11-01T00:00:00Z" }, "to"],
      [{ source: a.name, from: "yesterday", to: "2026-12-01T00:00:00Z" }, "from"],
      [{ source: "nope-no-such", ...range() }, "source"],
      [{ source: a.name, ...range(), destination: "segment-000000000000" }, "destination"],
      [{ source: a.name, ...range(), surprise: 1 }, "surprise"],
    ];
    for (const [body, path] of cases) {
      const answer = await admin("/archive/replay", "POST", a.bindings, body);
      expect(answer.response.status).toBe(400);
      expect((answer.json.issues as { path: string }[]).map((issue) => issue.path)).toContain(path);
    }
  });
});

describe("archive replay jobs, the hard cases", () => {
  it("moves past a stretch of objects outside the range, listed or empty hours alike", async () => {
    const source = `stretch-${crypto.randomUUID().slice(0, 8)}`;
    const hour = 3_600_000;
    const base = Math.floor(Date.now() / hour) * hour - 10 * hour;
    // Hour 0: objects written before the range starts; hours 1-2: nothing; hour 3: the one wanted.
    const put = (at: number, n: number) =>
      env.ARCHIVE.put(archiveKey(source, at, groupId(at, `${n}`.padStart(12, "0"))), "x", {
        customMetadata: { events: "1", first: String(at), last: String(at) },
      });
    for (let n = 0; n < 5; n++) await put(base + 60_000 + n, n);
    await put(base + 3 * hour + 5, 9);
    const from = base + 30 * 60_000;
    const to = base + 4 * hour;
    let after: string | undefined;
    const keys: string[] = [];
    // One list a call: the listing must move on each time, never stand still.
    for (let call = 0; call < 6; call++) {
      const listing = await listArchive(env.ARCHIVE, source, from, to, {
        after,
        maxObjects: 50,
        maxLists: 1,
      });
      keys.push(...listing.objects.map((object) => object.key));
      if (listing.complete) break;
      expect(listing.scanned).toBeDefined();
      expect(listing.scanned && (after === undefined || listing.scanned > after)).toBe(true);
      after = listing.objects.at(-1)?.key ?? listing.scanned;
    }
    expect(keys).toEqual([
      archiveKey(source, base + 3 * hour + 5, groupId(base + 3 * hour + 5, "000000000009")),
    ]);
  });

  it("fails a job after ten steps in a row the queue refused, saying why", async () => {
    const a = await archivedSource(1);
    const made = await admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() });
    const id = (made.json.job as { id: string }).id;
    const [first] = a.kept.sent.splice(0);
    const broken = { ...a.bindings, EVENTS: faultyQueue(a.kept.queue, () => true) } as Partial<Env>;
    const config = parseSettings({ ...env, ...broken } as Env);
    if (!config.ok) throw new Error("settings");
    let chain = (JSON.parse(first?.body as string) as { chain: string }).chain;
    const answers: unknown[] = [];
    for (let step = 0; step < 10; step++) {
      const next = `step${step}`;
      answers.push(
        await runJobStep({ ...env, ...broken } as Env, config.settings, id, chain, next, Date.now()),
      );
      chain = next;
    }
    expect(answers.slice(0, 9)).toEqual(Array.from({ length: 9 }, () => ({ delaySeconds: 30 })));
    expect(answers[9]).toBeUndefined();
    const job = (await admin(`/archive/replay/${id}`, "GET", a.bindings)).json;
    expect(job).toMatchObject({ state: "failed", sent: 0 });
    expect(job.detail).toMatch(/the queue refused 10 steps in a row/);
  });

  it("gives its lease back when a step throws, so the successor 30 s later runs it", async () => {
    const a = await archivedSource(2);
    const made = await admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() });
    const id = (made.json.job as { id: string }).id;
    const [first] = a.kept.sent.splice(0);
    const config = parseSettings({ ...env, ...a.bindings } as Env);
    if (!config.ok) throw new Error("settings");
    const chain = (JSON.parse(first?.body as string) as { chain: string }).chain;
    // R2 does not answer the step's listing: the step throws after taking the lease.
    const broken = { ...env, ...a.bindings, ARCHIVE: bucketFailing(env.ARCHIVE, "archive/", "list") } as Env;
    await expect(runJobStep(broken, config.settings, id, chain, "after-throw", Date.now())).rejects.toThrow();
    const row = await env.LEDGER.prepare(
      "SELECT lease_until AS lease, failures, chain FROM replay_jobs WHERE id = ?",
    )
      .bind(id)
      .first();
    expect(row).toEqual({ lease: 0, failures: 1, chain: "after-throw" });
    // The successor (the new token) runs the step in full.
    const next = await runJobStep(
      { ...env, ...a.bindings } as Env,
      config.settings,
      id,
      "after-throw",
      "t3",
      Date.now(),
    );
    expect(next).toBeUndefined();
    expect((await admin(`/archive/replay/${id}`, "GET", a.bindings)).json).toMatchObject({
      state: "done",
      sent: 2,
    });
  });

  it("sees a replay to the source's own destination, named or not, as overlapping", async () => {
    const a = await archivedSource(1);
    const own = await targetOf(PROFILES.segment, "https://api.segment.io", WRITE_KEY);
    const named = await admin("/archive/replay", "POST", a.bindings, {
      source: a.name,
      ...range(),
      destination: own.id,
    });
    expect(named.response.status).toBe(202);
    expect((named.json.job as { destination: string | null }).destination).toBeNull();
    const unnamed = await admin("/archive/replay", "POST", a.bindings, { source: a.name, ...range() });
    expect(unnamed.response.status).toBe(409);
  });

  it("reads a range only up to ARCHIVE_SETTLE_SECONDS ago, and says so", async () => {
    const a = await archivedSource(1);
    const settling = { ...a.bindings, ARCHIVE_SETTLE_SECONDS: "600" } as Partial<Env>;
    const dry = await admin("/archive/replay", "POST", settling, {
      source: a.name,
      ...range(),
      dryRun: true,
    });
    expect(dry.response.status).toBe(200);
    // The webhook came seconds ago: not in the range as run.
    expect(dry.json).toMatchObject({ events: 0 });
    expect(Date.parse(dry.json.to as string)).toBeLessThanOrEqual(Date.now() - 600_000);
    const recent = await admin("/archive/replay", "POST", settling, {
      source: a.name,
      from: new Date(Date.now() - 60_000).toISOString(),
      to: new Date().toISOString(),
    });
    expect(recent.response.status).toBe(400);
    expect((recent.json.issues as { path: string; message: string }[])[0]).toMatchObject({
      path: "from",
      message: expect.stringContaining("ARCHIVE_SETTLE_SECONDS"),
    });
  });

  it("archives a webhook on its first attempt even when its source is not configured now", async () => {
    const name = `gone-${crypto.randomUUID().slice(0, 8)}`;
    // Its source was removed from SOURCES after the webhook was accepted: it waits in the queue.
    const bindings = {
      SOURCES: JSON.stringify({ [`other-${name}`]: { writeKey: WRITE_KEY, tokens: [TOKEN] } }),
      EVENTS: keptQueue().queue,
    } as Partial<Env>;
    const message: RelayMessage = { ...relayMessage(), source: name };
    const result = await consume([message], bindings);
    expect(result.retryMessages).toHaveLength(1);
    const { objects } = await env.ARCHIVE.list({ prefix: `archive/${name}/` });
    expect(objects).toHaveLength(1);
  });
});
