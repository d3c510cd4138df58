import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { evaluateAlert } from "../src/alerts/notify";
import { parseSettings } from "../src/config";
import type { Env } from "../src/env";
import worker from "../src/index";
import { deadLetterOf } from "../src/ledger/records";
import type { RelayMessage } from "../src/queue/message";
import { R2_PREFIX } from "../src/r2/keys";
import { faultyDb } from "./faults";
import { ADMIN_TOKEN, callWorker, runCron, TOKEN, WRITE_KEY } from "./helpers";
import { queueMessages, relayMessage, storeForTest } from "./messages";
import { useAlertReceiver, useSegmentStandIn } from "./standin";

/**
 * Issue 25's findings, each a test that failed against the code before the fix: nothing sent
 * twice, nothing misfiled, every count exact.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

/** A source of its own, so its counters hold only this test's events. */
const sourceBindings = (source: string): Partial<Env> => ({
  SOURCES: JSON.stringify({ [source]: { writeKey: WRITE_KEY, tokens: [TOKEN] } }),
});

async function consume(queue: string, bodies: RelayMessage[], bindings: Partial<Env> = {}) {
  const batch = createMessageBatch<unknown>(queue, queueMessages(bodies));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return getQueueResult(batch, ctx);
}

function admin(path: string, method = "POST", bindings: Partial<Env> = {}) {
  return callWorker(
    new Request(`https://relay.test/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }),
    bindings,
  );
}

/** Every row of an event, whatever its state, and every pending/ copy of it. */
async function whereIs(eventId: string) {
  const rows = await env.LEDGER.prepare("SELECT id, state FROM records WHERE event_id = ?")
    .bind(eventId)
    .all<{ id: string; state: string }>();
  let pending = 0;
  for (const object of (await env.ARCHIVE.list({ prefix: R2_PREFIX.pending })).objects) {
    const value = await (await env.ARCHIVE.get(object.key))?.json<{ rows: { eventId: string }[] }>();
    pending += value?.rows.filter((row) => row.eventId === eventId).length ?? 0;
  }
  return { rows: rows.results, pending };
}

/** What the counters hold for a source: dead-lettered per event name. */
async function deadLetteredCounts(source: string): Promise<number> {
  const { results } = await env.LEDGER.prepare("SELECT events FROM counts WHERE source = ?")
    .bind(source)
    .all<{ events: string }>();
  return results.reduce(
    (sum, row) =>
      sum +
      Object.values(JSON.parse(row.events) as Record<string, number[]>).reduce((n, c) => n + (c[1] ?? 0), 0),
    0,
  );
}

describe("1. a D1 error mid-store never duplicates, and nothing stored comes back after it is settled", () => {
  it("stores a batch of 60 dead letters in one store or the other, each once, counted once", async () => {
    const source = unique("mid");
    const messages = Array.from({ length: 60 }, () => ({ ...relayMessage(), source }));
    // Writes commit until the second write round trip, which fails: before, the first chunk of 20
    // was in D1 and all 60 also in KV.
    let batches = 0;
    const ledger = faultyDb(env.LEDGER, (sql) => sql.includes("INTO records") && ++batches >= 2);
    const { standIn } = useSegmentStandIn();
    standIn.failNext(413);
    const result = await consume("pendo-events", messages, { ...sourceBindings(source), LEDGER: ledger });
    expect(result.explicitAcks).toHaveLength(60);
    for (const message of messages) {
      const where = await whereIs(message.eventId);
      expect(where.rows.length + where.pending).toBe(1);
    }
    await runCron();
    for (const message of messages) {
      const where = await whereIs(message.eventId);
      expect(where).toEqual({ rows: [expect.objectContaining({ state: "stored" })], pending: 0 });
    }
    expect(await deadLetteredCounts(source)).toBe(60);
  });

  it("keeps a record replayed or deleted out when a copy of it is moved in again from pending/", async () => {
    const source = unique("tomb");
    const messages = [
      { ...relayMessage(), source },
      { ...relayMessage(), source },
    ];
    const { standIn } = useSegmentStandIn();
    standIn.failNext(413);
    // D1 refuses the rows: they wait in pending/.
    await consume("pendo-events", messages, {
      ...sourceBindings(source),
      LEDGER: faultyDb(env.LEDGER, (sql) => sql.includes("INTO records")),
    });
    let copy: { key: string; text: string } | undefined;
    for (const object of (await env.ARCHIVE.list({ prefix: R2_PREFIX.pending })).objects) {
      const text = (await (await env.ARCHIVE.get(object.key))?.text()) ?? "";
      if (text.includes(messages[0]?.eventId ?? "?")) copy = { key: object.key, text };
    }
    expect(copy?.text).toContain(messages[1]?.eventId);
    await runCron();
    const [first, second] = await Promise.all(messages.map((m) => whereIs(m.eventId)));
    const sent = await admin(`/dead-letters/${first?.rows[0]?.id}/replay`, "POST", sourceBindings(source));
    expect(sent.json).toMatchObject({ status: "replayed" });
    expect((await admin(`/dead-letters/${second?.rows[0]?.id}`, "DELETE")).response.status).toBe(200);
    // The first move's delete of the pending object "failed": it is there again.
    await env.ARCHIVE.put(copy?.key ?? "", copy?.text ?? "");
    await runCron();
    expect((await whereIs(messages[0]?.eventId ?? "")).rows).toEqual([
      expect.objectContaining({ state: "sent" }),
    ]);
    expect((await whereIs(messages[1]?.eventId ?? "")).rows).toEqual([
      expect.objectContaining({ state: "deleted" }),
    ]);
    expect(await deadLetteredCounts(source)).toBe(2);
    // Nothing to replay again, nothing alerted again.
    const bulk = await admin(`/dead-letters/replay?source=${source}`, "POST", sourceBindings(source));
    expect(bulk.json).toMatchObject({ replayed: 0, results: [] });
  });
});

describe("2. a sent record is never claimable again", () => {
  it("answers 409 after the old claim expiry, and bulk replay passes it by", async () => {
    const source = unique("sent");
    const message = { ...relayMessage(), source };
    const letter = deadLetterOf(
      {
        reason: "segment-refused",
        source,
        eventId: message.eventId,
        event: message.event,
        attempts: 1,
        lastStatus: 401,
        detail: "",
        receivedAt: Date.now(),
        message,
      },
      Date.now(),
    );
    await storeForTest(letter);
    // The step after the send fails (before: the DELETE; there is none now).
    const failing = faultyDb(env.LEDGER, (sql) => sql.startsWith("DELETE FROM records"));
    const first = await admin(`/dead-letters/${letter.id}/replay`, "POST", { LEDGER: failing });
    expect(first.response.status).toBe(202);
    expect(first.sent).toHaveLength(1);
    // Sixteen minutes on: past the 15-minute claim expiry.
    const later = Date.now() + 16 * 60_000;
    vi.spyOn(Date, "now").mockReturnValue(later);
    const again = await admin(`/dead-letters/${letter.id}/replay`, "POST");
    expect(again.response.status).toBe(409);
    expect(again.sent).toEqual([]);
    const bulk = await admin(`/dead-letters/replay?source=${source}`, "POST");
    expect(bulk.json).toMatchObject({ replayed: 0, results: [] });
    expect(bulk.sent).toEqual([]);
  });
});

describe("5. every dead letter is counted", () => {
  it("counts what arrives through the dead-letter queue (queue-exhausted)", async () => {
    const source = unique("dlq");
    const messages = [
      { ...relayMessage(), source },
      { ...relayMessage(), source },
    ];
    for (const message of messages) await consume("pendo-events-dlq", [message]);
    expect(await deadLetteredCounts(source)).toBe(2);
  });
});

describe("6. status per source", () => {
  it("marks every source of a refused batch failing, not only the first", async () => {
    const [a, b] = [unique("a"), unique("b")];
    const SOURCES = JSON.stringify({
      [a]: { writeKey: WRITE_KEY, tokens: [TOKEN] },
      [b]: { writeKey: WRITE_KEY, tokens: [TOKEN] },
    });
    const { standIn } = useSegmentStandIn();
    standIn.failNext(401);
    // One request carries both sources' events: they share a destination and a write key.
    await consume(
      "pendo-events",
      [
        { ...relayMessage(), source: a },
        { ...relayMessage(), source: b },
      ],
      { SOURCES },
    );
    expect(standIn.requests).toHaveLength(1);
    const { results } = await env.LEDGER.prepare(
      "SELECT source, last_status AS status, failing_since IS NOT NULL AS failing FROM delivery WHERE source IN (?, ?) ORDER BY source",
    )
      .bind(a, b)
      .all();
    expect(results).toEqual([
      { source: a, status: 401, failing: 1 },
      { source: b, status: 401, failing: 1 },
    ]);
  });
});

describe("7. alert windows are half-open and adjacent", () => {
  it("puts a dead letter stored in the very millisecond a window ended into the next alert", async () => {
    const source = unique("edge");
    const url = "https://alerts.test/windows";
    const { alerts } = useAlertReceiver(url);
    const config = parseSettings({
      ...env,
      SOURCES: JSON.stringify({ [source]: { writeKey: WRITE_KEY, tokens: [TOKEN], alertWebhookUrl: url } }),
    } as Env);
    if (!config.ok) throw new Error("settings");
    const letter = deadLetterOf(
      {
        reason: "segment-refused",
        source,
        eventId: unique("ms"),
        event: "guideSeen",
        attempts: 1,
        lastStatus: 401,
        detail: "",
        receivedAt: Date.now(),
      },
      Date.now(),
    );
    await storeForTest(letter);
    const { storedAt } = (await env.LEDGER.prepare("SELECT stored_at AS storedAt FROM records WHERE id = ?")
      .bind(letter.id)
      .first<{ storedAt: number }>()) as { storedAt: number };
    // The previous alert's window ended exactly when this row was stored.
    await env.LEDGER.prepare("INSERT INTO alerts (source, kind, covered_to) VALUES (?, 'dead-letters', ?)")
      .bind(source, storedAt)
      .run();
    const scope = { db: env.LEDGER, settings: config.settings, now: Date.now(), waitUntil: () => {} };
    expect(await evaluateAlert(scope, source, "dead-letters")).toBe("sent");
    expect(alerts[0]?.body.alert).toMatchObject({ kind: "dead-letters", source, count: 1 });
  });
});
