import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import type { RelayMessage } from "../src/queue/message";
import { dbFailingOn } from "./faults";
import {
  ADMIN_TOKEN,
  callWorker,
  decoded as decodedMessage,
  PUBLISHED,
  postWebhook,
  runCron,
  withUniqueId,
} from "./helpers";
import { deadLetterFor, queueMessages, seedDeadLetter } from "./messages";
import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

function forVisitor(visitorId: string, webhook: object = PUBLISHED.guideDisplayed) {
  return { ...withUniqueId(webhook), visitorId };
}
const doNotProcess = (visitorId: string, flag: boolean) => ({
  ...forVisitor(visitorId, PUBLISHED.visitorCreated),
  event: "visitorDoNotProcessUpdated",
  properties: { doNotProcess: flag },
});

/** Runs one consumer batch over these messages; answers the messageIds Segment received. */
async function consume(messages: RelayMessage[], overrides: Partial<Env> = {}, failNext?: number) {
  const { standIn } = useSegmentStandIn();
  if (failNext !== undefined) standIn.failNext(failNext);
  const batch = createMessageBatch<unknown>("pendo-events", queueMessages(messages));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...overrides } as Env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { received: standIn.messageIds, result };
}

/** Posts each webhook (each enqueued at the edge), then consumes them all in one batch. */
async function relay(webhooks: object[], overrides: Partial<Env> = {}) {
  const enqueued: RelayMessage[] = [];
  for (const webhook of webhooks) {
    const { response, enqueued: sent } = await postWebhook(webhook, { env: overrides });
    expect(response.status).toBeLessThan(300);
    enqueued.push(...sent);
  }
  return consume(enqueued, overrides);
}

const idsOf = (message: RelayMessage) => message.calls.map((call) => JSON.parse(call).messageId as string);
const at = (seconds: number) => ({ timestamp: 1_790_000_000 + seconds });

/** The entry of the visitor's history in force at `time` (by default: now), as the consumer reads it. */
async function flagRow(visitor: string, time = Number.MAX_SAFE_INTEGER) {
  const { visitorHash } = await import("../src/ledger/flags");
  return env.LEDGER.prepare(
    `SELECT flagged, event_time AS eventTime FROM flag_history WHERE source = 'default' AND visitor_hash = ?
       AND event_time <= ? ORDER BY event_time DESC, flagged DESC LIMIT 1`,
  )
    .bind(await visitorHash(visitor), time)
    .first<{ flagged: number; eventTime: number }>();
}

describe("do not process (applied by the consumer, per batch, from the ledger)", () => {
  it("delivers the flag, then drops the visitor's later events until it is cleared", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const set = await postWebhook({ ...doNotProcess(visitor, true), ...at(100) });
    expect(set.response.status).toBe(202);
    const traits = JSON.parse(set.enqueued[0]?.calls[1] as string).traits;
    expect(traits).toEqual({ doNotProcess: true });
    const later = await postWebhook({ ...forVisitor(visitor), ...at(200) });
    const other = await postWebhook({ ...forVisitor(`other-${visitor}`), ...at(200) });
    // Nothing is dropped at the edge: the event is accepted and enqueued.
    expect(later.response.status).toBe(202);
    const { received } = await consume([...set.enqueued, ...later.enqueued, ...other.enqueued]);
    for (const id of idsOf(set.enqueued[0] as RelayMessage)) expect(received).toContain(id);
    for (const id of idsOf(later.enqueued[0] as RelayMessage)) expect(received).not.toContain(id);
    for (const id of idsOf(other.enqueued[0] as RelayMessage)) expect(received).toContain(id);

    await relay([{ ...doNotProcess(visitor, false), ...at(300) }]);
    const after = await postWebhook({ ...forVisitor(visitor), ...at(400) });
    const next = await consume(after.enqueued);
    for (const id of idsOf(after.enqueued[0] as RelayMessage)) expect(next.received).toContain(id);
  });

  it("keeps events from before the flag's own time, and drops those at or after it", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    await relay([{ ...doNotProcess(visitor, true), ...at(100) }]);
    const before = await postWebhook({ ...forVisitor(visitor), ...at(99) });
    const same = await postWebhook({ ...forVisitor(visitor), ...at(100) });
    const { received } = await consume([...before.enqueued, ...same.enqueued]);
    for (const id of idsOf(before.enqueued[0] as RelayMessage)) expect(received).toContain(id);
    for (const id of idsOf(same.enqueued[0] as RelayMessage)) expect(received).not.toContain(id);
  });

  it("applies a flag from the same batch before it sends anything of that batch", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const flag = await postWebhook({ ...doNotProcess(visitor, true), ...at(100) });
    // The edge already set it; clear the row to prove the consumer applies the message itself.
    const { visitorHash } = await import("../src/ledger/flags");
    await env.LEDGER.prepare("DELETE FROM flag_history WHERE visitor_hash = ?")
      .bind(await visitorHash(visitor))
      .run();
    const later = await postWebhook({ ...forVisitor(visitor), ...at(150) });
    const { received } = await consume([...flag.enqueued, ...later.enqueued]);
    for (const id of idsOf(later.enqueued[0] as RelayMessage)) expect(received).not.toContain(id);
    expect(await flagRow(visitor)).toEqual({ flagged: 1, eventTime: 1_790_000_100_000 });
  });

  it("ignores an update older than the one in force: a late retry of 'set' cannot undo a 'clear'", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const setOld = { ...doNotProcess(visitor, true), ...at(100) };
    await postWebhook(setOld);
    await postWebhook({ ...doNotProcess(visitor, false), ...at(200) });
    // Pendo retries the older "set" (say its first answer was lost): the newer "clear" stays.
    await postWebhook({ ...setOld, uniqueId: `${setOld.uniqueId.slice(0, 39)}b` });
    expect(await flagRow(visitor)).toEqual({ flagged: 0, eventTime: 1_790_000_200_000 });
    const later = await postWebhook({ ...forVisitor(visitor), ...at(300) });
    const { received } = await consume(later.enqueued);
    for (const id of idsOf(later.enqueued[0] as RelayMessage)) expect(received).toContain(id);
  });

  it("ends in the newest update when many arrive at once, in any order", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const times = [5, 3, 9, 1, 7, 2, 8, 4, 6, 10];
    await Promise.all(times.map((t) => postWebhook({ ...doNotProcess(visitor, t % 2 === 0), ...at(t) })));
    expect(await flagRow(visitor)).toEqual({ flagged: 1, eventTime: 1_790_000_010_000 });
  });

  it("ends in the newest update when two consumers apply the same updates at once", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const posted = await Promise.all(
      [3, 1, 2].map((t) =>
        postWebhook(
          { ...doNotProcess(visitor, t !== 2), ...at(t) },
          { env: { HONOR_DO_NOT_PROCESS: "false" } },
        ),
      ),
    );
    const messages = posted.flatMap((p) => p.enqueued);
    await Promise.all([consume(messages), consume([...messages].reverse())]);
    expect(await flagRow(visitor)).toEqual({ flagged: 1, eventTime: 1_790_000_003_000 });
  });

  it("applies a flag event too large to forward (it is dead-lettered, the flag is set)", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const webhook = { ...doNotProcess(visitor, true), ...at(100) };
    (webhook.properties as Record<string, unknown>).padding = "p".repeat(40_000);
    const { response, json } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect(json.status).toBe("dead-lettered");
    expect(await flagRow(visitor)).toMatchObject({ flagged: 1 });
  });

  it("applies a replayed flag event", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const webhook = { ...doNotProcess(visitor, true), ...at(100) };
    // Refused by Segment: dead-lettered. Then the flag row is lost (say, restored from a backup).
    const posted = await postWebhook(webhook);
    await consume(posted.enqueued, {}, 401);
    const letter = await deadLetterFor(webhook.uniqueId);
    expect(letter?.reason).toBe("segment-refused");
    const { visitorHash } = await import("../src/ledger/flags");
    await env.LEDGER.prepare("DELETE FROM flag_history WHERE visitor_hash = ?")
      .bind(await visitorHash(visitor))
      .run();
    const replay = await callWorker(
      new Request(`https://relay.test/admin/dead-letters/${letter?.id}/replay`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    );
    expect(replay.response.status).toBe(202);
    await consume(replay.sent.map(([body]) => decodedMessage(body)));
    expect(await flagRow(visitor)).toMatchObject({ flagged: 1, eventTime: 1_790_000_100_000 });
  });

  it("logs and counts each drop, never the visitor id", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const event = `dnpEvent${crypto.randomUUID().slice(0, 8)}`;
    await relay([{ ...doNotProcess(visitor, true), ...at(100) }]);
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => lines.push(line));
    await relay([{ ...forVisitor(visitor), event, ...at(200) }]);
    const drops = lines.map((line) => JSON.parse(line)).filter((line) => line.msg === "do-not-process-drop");
    expect(drops).toHaveLength(1);
    expect(JSON.stringify(drops)).not.toContain(visitor);
    const counted = await env.LEDGER.prepare(
      "SELECT sum(e.value ->> 2) AS dropped FROM counts, json_each(counts.events) AS e WHERE source = 'default' AND e.key = '(unknown)'",
    ).first<{ dropped: number }>();
    expect(counted?.dropped).toBeGreaterThanOrEqual(1);
  });

  it("is off with HONOR_DO_NOT_PROCESS=false", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const off = { HONOR_DO_NOT_PROCESS: "false" };
    await relay([{ ...doNotProcess(visitor, true), ...at(100) }], off);
    const later = await postWebhook({ ...forVisitor(visitor), ...at(200) }, { env: off });
    const { received } = await consume(later.enqueued, off);
    for (const id of idsOf(later.enqueued[0] as RelayMessage)) expect(received).toContain(id);
  });

  it("reads the flag written as a string", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    await postWebhook({ ...doNotProcess(visitor, true), properties: { doNotProcess: "true" }, ...at(100) });
    expect(await flagRow(visitor)).toMatchObject({ flagged: 1 });
    await postWebhook({ ...doNotProcess(visitor, false), properties: { doNotProcess: "false" }, ...at(200) });
    expect(await flagRow(visitor)).toMatchObject({ flagged: 0 });
  });

  it("forwards an unreadable flag, leaves the visitor as it was, and logs it", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const lines: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: string) => lines.push(line));
    const webhook = { ...doNotProcess(visitor, true), properties: { doNotProcess: "yes" } };
    const { response, json } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect(json.warnings).toEqual([
      {
        path: "properties.doNotProcess",
        message: "not true or false: forwarded, and the visitor's flag was left as it was",
      },
    ]);
    expect(lines.some((line) => JSON.parse(line).msg === "do-not-process-unreadable")).toBe(true);
    expect(await flagRow(visitor)).toBeNull();
  });

  it("answers 503, and forwards nothing, when the flag cannot be stored", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const broken = dbFailingOn(env.LEDGER, "INTO flag_history");
    const { response, enqueued } = await postWebhook(doNotProcess(visitor, true), {
      env: { LEDGER: broken },
    });
    expect(response.status).toBe(503);
    expect(enqueued).toEqual([]);
  });
});

describe("do-not-process is an interval, decided by the event's own time", () => {
  const hour = 3_600;
  it("drops an event from while the flag was set, even when it is processed after the clear", async () => {
    const visitor = `interval-${crypto.randomUUID()}`;
    // Set at T-3h, cleared at T-1h; T is at(10 h).
    await relay([{ ...doNotProcess(visitor, true), ...at(7 * hour) }]);
    await relay([{ ...doNotProcess(visitor, false), ...at(9 * hour) }]);
    // Events of the visitor that arrive only now (retried through an outage, parked, replayed).
    const during = await postWebhook({ ...forVisitor(visitor), ...at(8 * hour) });
    const before = await postWebhook({ ...forVisitor(visitor), ...at(6 * hour) });
    const after = await postWebhook({ ...forVisitor(visitor), ...at(9.5 * hour) });
    const { received } = await consume([...during.enqueued, ...before.enqueued, ...after.enqueued]);
    for (const id of idsOf(during.enqueued[0] as RelayMessage)) expect(received).not.toContain(id);
    for (const id of idsOf(before.enqueued[0] as RelayMessage)) expect(received).toContain(id);
    for (const id of idsOf(after.enqueued[0] as RelayMessage)) expect(received).toContain(id);
  });

  it("keeps the history bounded: the cron collapses what no sendable event can ask about", async () => {
    const { flagCutoff } = await import("../src/cron/scheduled");
    const { parseSettings } = await import("../src/config");
    const config = parseSettings(env as Env);
    if (!config.ok) throw new Error("settings");
    const cutoff = flagCutoff(config.settings, Date.now(), null);
    // The horizon is the longest a sendable event can wait: here the dead letters' 14 days.
    expect(Date.now() - cutoff).toBeGreaterThanOrEqual(config.settings.DEAD_LETTER_TTL_SECONDS * 1000);
    const { visitorHash } = await import("../src/ledger/flags");
    const visitor = `purge-${crypto.randomUUID()}`;
    const hash = await visitorHash(visitor);
    const old = cutoff - 10 * hour * 1000;
    const rows: [number, number][] = [
      [old, 1],
      [old + 1_000, 0],
      [old + 2_000, 1], // the state at the cutoff: set
      [cutoff + 1_000, 0],
    ];
    for (const [time, flagged] of rows)
      await env.LEDGER.prepare("INSERT INTO flag_history VALUES ('default', ?, ?, ?, 0)")
        .bind(hash, time, flagged)
        .run();
    await runCron();
    const left = await env.LEDGER.prepare(
      "SELECT event_time AS t, flagged FROM flag_history WHERE visitor_hash = ? ORDER BY event_time",
    )
      .bind(hash)
      .all();
    expect(left.results).toEqual([
      { t: old + 2_000, flagged: 1 },
      { t: cutoff + 1_000, flagged: 0 },
    ]);
    // Every decision from the cutoff on is what it was.
    expect(await flagRow(visitor, cutoff)).toMatchObject({ flagged: 1 });
    expect(await flagRow(visitor, cutoff + 2_000)).toMatchObject({ flagged: 0 });
  });
});

describe("do-not-process history and what is still held", () => {
  it("keeps the history as far back as a stored record's event, however old", async () => {
    const { flagCutoff } = await import("../src/cron/scheduled");
    const { parseSettings } = await import("../src/config");
    const { visitorHash } = await import("../src/ledger/flags");
    const config = parseSettings(env as Env);
    if (!config.ok) throw new Error("settings");
    const day = 86_400_000;
    const cutoff = flagCutoff(config.settings, Date.now(), null);
    // A dead letter made from a batch parked for weeks: its event is older than any retention.
    const { id } = await seedDeadLetter();
    const eventAt = cutoff - 30 * day;
    await env.LEDGER.prepare("UPDATE records SET received_at = ? WHERE id = ?").bind(eventAt, id).run();
    const visitor = `held-${crypto.randomUUID()}`;
    const hash = await visitorHash(visitor);
    for (const [time, flagged] of [
      [eventAt - 5 * day, 1],
      [eventAt - 4 * day, 0],
      [eventAt - 10_000, 1], // in force when the held event happened
      [eventAt + day, 0], // cleared since: the state at the usual cutoff
    ] as const)
      await env.LEDGER.prepare("INSERT INTO flag_history VALUES ('default', ?, ?, ?, 0)")
        .bind(hash, time, flagged)
        .run();
    await runCron();
    // A replay of that record must still find its visitor flagged at its event's time.
    expect(await flagRow(visitor, eventAt)).toMatchObject({ flagged: 1, eventTime: eventAt - 10_000 });
    expect(await flagRow(visitor)).toMatchObject({ flagged: 0 });
    await env.LEDGER.prepare("DELETE FROM records WHERE id = ?").bind(id).run();
  });
});

describe("do-not-process ties", () => {
  it("lets a set win over a clear of the same Pendo time, in either order", async () => {
    for (const order of [
      [false, true],
      [true, false],
    ]) {
      const visitor = `tie-${crypto.randomUUID()}`;
      for (const flag of order) await postWebhook({ ...doNotProcess(visitor, flag), ...at(500) });
      expect(await flagRow(visitor)).toMatchObject({ flagged: 1 });
    }
  });
});
