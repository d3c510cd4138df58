import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { base64Of, deadLetterOf } from "../src/ledger/records";
import { encodeRelayMessage } from "../src/queue/message";
import { faultyQueue } from "./faults";
import { ADMIN_TOKEN, decoded, runCron, TOKEN, WRITE_KEY } from "./helpers";
import { deadLetterFor, quarantined, relayMessage, seedDeadLetter, storeForTest } from "./messages";
import { useSegmentStandIn } from "./standin";

/**
 * The D1 ledger under the admin API: replay claims a row exactly once, gives it back when the
 * queue refuses, walks a fixed set in pages; bodies keep their bytes; counts are exact. The
 * database is shared by every test of the run: each test filters by names and ids it created.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

/** A queue binding that keeps what is sent (the real consumer never sees it), or fails: one spy call per message. */
function spyQueue(send: (body: unknown) => Promise<void> = async () => {}) {
  const spy = vi.fn(send);
  const sendBatch = async (messages: Iterable<{ body: unknown }>) => {
    for (const message of messages) await spy(message.body);
  };
  return { queue: { send: spy, sendBatch } as unknown as Queue<string>, spy };
}

/** The Worker's fetch handler with the test env and the given overrides, as admin. */
async function admin(path: string, method = "GET", overrides: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(`https://relay.test/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }),
    { ...env, ...overrides } as Env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
const failingQueue = () => faultyQueue(env.EVENTS, () => true);

async function stateOf(id: string) {
  return env.LEDGER.prepare("SELECT state FROM records WHERE id = ?").bind(id).first<{ state: string }>();
}

describe("replay claims a record exactly once", () => {
  it("of 10 concurrent replays of one dead letter, one is sent (202) and nine are refused (409)", async () => {
    const { id, message } = await seedDeadLetter({ event: unique("race") });
    // The winner's send waits until the nine others have answered (or 3 s), so every other replay
    // runs while the record is claimed and not yet removed.
    let answered = 0;
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
      setTimeout(resolve, 3_000);
    });
    const { queue, spy } = spyQueue(() => gate);
    const statuses = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const answer = await admin(`/dead-letters/${id}/replay`, "POST", { EVENTS: queue });
        if (++answered === 9) open();
        return answer;
      }),
    );
    expect(statuses.map((s) => s.status).sort()).toEqual([202, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    for (const refused of statuses.filter((s) => s.status === 409))
      expect(refused.json).toMatchObject({ ok: false, error: "already-replayed", id });
    expect(spy).toHaveBeenCalledTimes(1);
    const sent = decoded(spy.mock.calls[0]?.[0]);
    expect(sent).toMatchObject({ eventId: message.eventId, calls: message.calls });
    expect(sent.replayedAt).toEqual(expect.any(Number));
    // Kept as a tombstone: never claimable again, and a late copy of it can never come back.
    expect(await stateOf(id)).toEqual({ state: "sent" });
  });

  it("answers 503 when the queue refuses, and leaves the record stored, replayable at once", async () => {
    const { id, message } = await seedDeadLetter({ event: unique("refused-send") });
    const failed = await admin(`/dead-letters/${id}/replay`, "POST", { EVENTS: failingQueue() });
    expect(failed.status).toBe(503);
    expect(failed.json).toMatchObject({ ok: false, error: "queue-unavailable", id });
    expect(await stateOf(id)).toEqual({ state: "stored" });
    expect((await admin(`/dead-letters/${id}`)).json).toMatchObject({ id, state: "stored" });

    const { queue, spy } = spyQueue();
    const again = await admin(`/dead-letters/${id}/replay`, "POST", { EVENTS: queue });
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({
      ok: true,
      status: "replayed",
      eventId: message.eventId,
    });
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await stateOf(id)).toEqual({ state: "sent" });
  });
});

describe("replay all matching", () => {
  it("walks a fixed set in pages: each record once, none created after the run started", async () => {
    const event = unique("bulk");
    const seeded = new Set<string>();
    // More than two pages of 100, the documented page size.
    for (let i = 0; i < 230; i++) seeded.add((await seedDeadLetter({ event })).id);
    // Records created in the same millisecond as the run's start would belong to it.
    await new Promise((resolve) => setTimeout(resolve, 5));

    type Page = {
      replayed: number;
      failed: number;
      results: { id: string; ok: boolean; reason?: string }[];
      cursor: string | null;
    };
    const results: Page["results"] = [];
    const late = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `event=${event}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await admin(`/dead-letters/replay?${query}`, "POST", { EVENTS: failingQueue() });
      expect(page.status).toBe(200);
      const body = page.json as unknown as Page;
      expect(body.replayed).toBe(0);
      expect(body.failed).toBe(body.results.length);
      expect(body.results.length).toBeLessThanOrEqual(100);
      for (const result of body.results)
        expect(result).toMatchObject({ ok: false, reason: "queue-unavailable" });
      results.push(...body.results);
      cursor = body.cursor;
      if (cursor) expect(cursor).toMatch(/^\d+\.\d{13}-/);
      // New dead letters of the same event while the run goes on: not part of it.
      if (pages === 0) for (let i = 0; i < 3; i++) late.add((await seedDeadLetter({ event })).id);
      pages++;
    } while (cursor && pages < 10);

    expect(pages).toBe(3);
    const ids = results.map((result) => result.id);
    expect(ids).toHaveLength(230);
    expect(new Set(ids)).toEqual(seeded);
    for (const id of late) expect(ids).not.toContain(id);
    // Every failed send gave its record back.
    const { results: rows } = await env.LEDGER.prepare(
      "SELECT state, count(*) AS n FROM records WHERE kind = 'dead-letters' AND event = ? GROUP BY state",
    )
      .bind(event)
      .all<{ state: string; n: number }>();
    expect(rows).toEqual([{ state: "stored", n: 233 }]);

    // A new run takes everything stored now, and marks what it sent.
    const { queue, spy } = spyQueue();
    let next: string | null = null;
    const replayed: number[] = [];
    do {
      const query: string = `event=${event}${next ? `&cursor=${encodeURIComponent(next)}` : ""}`;
      const page = await admin(`/dead-letters/replay?${query}`, "POST", { EVENTS: queue });
      expect(page.json.failed).toBe(0);
      replayed.push(page.json.replayed as number);
      next = page.json.cursor as string | null;
    } while (next);
    expect(replayed).toEqual([100, 100, 33]);
    expect(spy).toHaveBeenCalledTimes(233);
    const left = await env.LEDGER.prepare(
      "SELECT state, count(*) AS n FROM records WHERE event = ? GROUP BY state",
    )
      .bind(event)
      .all();
    expect(left.results).toEqual([{ state: "sent", n: 233 }]);
  });

  it("refuses a cursor it did not hand out", async () => {
    const bad = await admin("/dead-letters/replay?event=x&cursor=not-a-cursor", "POST");
    expect(bad.status).toBe(400);
  });
});

describe("bytes as received", () => {
  it("stores a quarantined body that is not UTF-8 byte for byte, shown as base64 only", async () => {
    const marker = new TextEncoder().encode(crypto.randomUUID());
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, ...marker, 0x7d]);
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(`https://relay.test/pendo?token=${TOKEN}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: bytes,
      }),
      env as Env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(400);
    const expected = base64Of(bytes);
    expect(expected).toBe(btoa(String.fromCharCode(...bytes)));
    const stored = (await quarantined()).filter(
      (record) => record.body && base64Of(record.body) === expected,
    );
    expect(stored).toHaveLength(1);
    const detail = await admin(`/quarantine/${stored[0]?.id}`);
    expect(detail.status).toBe(200);
    expect(detail.json.rawBodyBase64).toBe(expected);
    expect(detail.json).not.toHaveProperty("rawBody");
    expect(detail.json).toMatchObject({ kind: "quarantine", reason: "invalid", state: "stored" });
  });

  it("replays a malformed-message dead letter whose bytes now decode, and refuses one whose do not", async () => {
    const message = relayMessage();
    const letterOf = (body: Uint8Array) =>
      deadLetterOf(
        {
          reason: "malformed-message",
          source: "default",
          eventId: unique("malformed"),
          event: "",
          attempts: 1,
          lastStatus: null,
          detail: "unreadable",
          receivedAt: Date.now(),
          body,
        },
        Date.now(),
      );
    const readable = letterOf(new TextEncoder().encode(encodeRelayMessage(message)));
    const unreadable = letterOf(new Uint8Array([0x7b, 0x22, 0x76, 0xff, 0x00]));
    await storeForTest(readable, unreadable);

    const { queue, spy } = spyQueue();
    const ok = await admin(`/dead-letters/${readable.id}/replay`, "POST", { EVENTS: queue });
    expect(ok.status).toBe(202);
    expect(ok.json).toMatchObject({ ok: true, status: "replayed", eventId: message.eventId });
    expect(spy).toHaveBeenCalledTimes(1);
    expect(decoded(spy.mock.calls[0]?.[0])).toMatchObject({ eventId: message.eventId, calls: message.calls });
    expect(await stateOf(readable.id)).toEqual({ state: "sent" });

    const refused = await admin(`/dead-letters/${unreadable.id}/replay`, "POST", { EVENTS: queue });
    expect(refused.status).toBe(422);
    expect(refused.json).toMatchObject({ ok: false, error: "not-replayable", id: unreadable.id });
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await stateOf(unreadable.id)).toEqual({ state: "stored" });
    expect((await deadLetterFor(unreadable.eventId))?.body).toEqual(unreadable.body);
  });
});

describe("overview", () => {
  it("counts a delivered event per hour and in total, and says what it knows of the backlog", async () => {
    const { standIn } = useSegmentStandIn();
    // A source of its own, so no other test's deliveries are in these counts.
    const source = unique("ov").toLowerCase();
    const SOURCES = JSON.stringify({
      [source]: { writeKey: WRITE_KEY, tokens: ["overview-token-0123456789"] },
    });
    const message = { ...relayMessage(), source };
    const batch = createMessageBatch<unknown>("pendo-events", [
      { id: "overview-0", timestamp: new Date(), attempts: 1, body: encodeRelayMessage(message) },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, SOURCES } as Env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["overview-0"]);
    expect(standIn.received).toHaveLength(message.calls.length);

    const { status, json } = await admin("/overview?hours=24");
    expect(status).toBe(200);
    const bySource = json.bySource as { source: string; events: Record<string, number[]> }[];
    const mine = bySource.find((row) => row.source === source);
    expect(Object.keys(mine?.events ?? {})).toEqual([message.event]);
    expect(mine?.events[message.event]?.slice(0, 4)).toEqual([1, 0, 0, 0]);
    // 24 hours, the hour now the last: this delivery is counted there.
    const perHour = json.perHour as { start: string; delivered: number[] };
    expect(perHour.delivered).toHaveLength(24);
    // The last two hours, in case the hour turned between the delivery and the question.
    expect(perHour.delivered.slice(-2).reduce((a, b) => a + b)).toBeGreaterThanOrEqual(1);
    const hourOfAnswer = Math.floor(Date.parse(json.to as string) / 3_600_000);
    expect(Date.parse(perHour.start)).toBe((hourOfAnswer - 23) * 3_600_000);
    if (json.backlog === null) expect(json.backlogNote).toEqual(expect.any(String));
    else expect(json.backlog).toMatchObject({ messages: expect.any(Number) });

    for (const hours of ["0", "x", "3000", "1.5"]) {
      const bad = await admin(`/overview?hours=${hours}`);
      expect(bad.status, hours).toBe(400);
      expect(String(bad.json.message)).toContain("hours");
    }
  });
});

describe("summary", () => {
  it("counts 1,200 records exactly, by reason, under a filter", async () => {
    const event = unique("summary");
    const now = Date.now();
    const records = Array.from({ length: 1_200 }, (_, i) =>
      deadLetterOf(
        {
          reason: i % 3 === 0 ? "segment-rejected" : "segment-refused",
          source: "default",
          eventId: `${event}-${i}`,
          event,
          attempts: 1,
          lastStatus: 400,
          detail: "",
          receivedAt: now,
        },
        now,
      ),
    );
    await storeForTest(...records);

    const all = await admin(`/dead-letters/summary?event=${event}`);
    expect(all.json).toEqual({
      total: 1_200,
      byReason: { "segment-refused": 800, "segment-rejected": 400 },
      complete: true,
    });
    const rejected = await admin(`/dead-letters/summary?event=${event}&reason=segment-rejected`);
    expect(rejected.json).toEqual({ total: 400, byReason: { "segment-rejected": 400 }, complete: true });
    const none = await admin(`/quarantine/summary?event=${event}`);
    expect(none.json).toEqual({ total: 0, byReason: {}, complete: true });

    // The listing pages through the same set, each record once.
    const listed = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = await admin(`/dead-letters?event=${event}&limit=500${cursor ? `&cursor=${cursor}` : ""}`);
      for (const entry of page.json.entries as { id: string }[]) listed.add(entry.id);
      cursor = page.json.cursor as string | null;
    } while (cursor);
    expect(listed.size).toBe(1_200);
  });
});

describe("delivery counters", () => {
  it("add concurrent batches' counts exactly, one row per hour and source", async () => {
    const { countStatement } = await import("../src/ledger/counts");
    const source = `counts-${crypto.randomUUID().slice(0, 8)}`;
    const at = Date.UTC(2026, 10, 30, 5, 30);
    const batch = (event: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ source, event, outcome: "delivered" as const, at: at + i }));
    // Ten consumers at once, each adding its batch: no update is lost.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        countStatement(env.LEDGER, [...batch("guideSeen", 7), ...batch(`e${i % 3}`, 2)])?.run(),
      ),
    );
    const rows = await env.LEDGER.prepare("SELECT events FROM counts WHERE source = ?")
      .bind(source)
      .all<{ events: string }>();
    expect(rows.results).toHaveLength(1);
    const events = JSON.parse(rows.results[0]?.events ?? "{}") as Record<string, number[]>;
    expect(events.guideSeen?.[0]).toBe(70);
    expect((events.e0?.[0] ?? 0) + (events.e1?.[0] ?? 0) + (events.e2?.[0] ?? 0)).toBe(20);
  });
});

describe("claims, ties and windows (review findings)", () => {
  it("lets a replay take over a claim older than CLAIM_TTL_MS (its invocation died), never a fresh one", async () => {
    const { CLAIM_TTL_MS } = await import("../src/ledger/records");
    const { id } = await seedDeadLetter();
    await env.LEDGER.prepare("UPDATE records SET state = 'replaying', claimed_at = ? WHERE id = ?")
      .bind(Date.now() - 60_000, id)
      .run();
    const { queue, spy } = spyQueue();
    expect((await admin(`/dead-letters/${id}/replay`, "POST", { EVENTS: queue })).status).toBe(409);
    await env.LEDGER.prepare("UPDATE records SET claimed_at = ? WHERE id = ?")
      .bind(Date.now() - CLAIM_TTL_MS - 1_000, id)
      .run();
    expect((await admin(`/dead-letters/${id}/replay`, "POST", { EVENTS: queue })).status).toBe(202);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it("reports a dead letter stored after an alert even when its batch began before it", async () => {
    const { evaluateAlert } = await import("../src/alerts/notify");
    const { parseSettings } = await import("../src/config");
    const source = `late-${crypto.randomUUID().slice(0, 8)}`;
    const url = "https://alerts.test/late";
    const sent: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      sent.push(await new Request(input as RequestInfo, init).text());
      return new Response("ok");
    });
    const config = parseSettings({
      ...env,
      SOURCES: JSON.stringify({ [source]: { writeKey: WRITE_KEY, tokens: [TOKEN], alertWebhookUrl: url } }),
      ALERT_INTERVAL_SECONDS: "60",
    } as Env);
    if (!config.ok) throw new Error("settings");
    const t0 = Date.now();
    const letter = (event: string, at: number) =>
      deadLetterOf(
        {
          reason: "segment-refused",
          source,
          eventId: event,
          event,
          attempts: 1,
          lastStatus: 401,
          detail: "",
          receivedAt: at,
        },
        at,
      );
    const scope = (now: number) => ({ db: env.LEDGER, settings: config.settings, now, waitUntil: () => {} });
    await storeForTest(letter("first", t0));
    expect(await evaluateAlert(scope(t0), source, "dead-letters")).toBe("sent");
    // A slow batch that began before that alert stores its dead letter only now.
    await storeForTest(letter("slow", t0 - 30_000));
    vi.spyOn(Date, "now").mockReturnValue(t0 + 61_000);
    expect(await evaluateAlert(scope(t0 + 61_000), source, "dead-letters")).toBe("sent");
    expect(sent).toHaveLength(2);
    expect(sent[1]).toContain("slow");
  });
});

describe("nothing stored is deleted before its retention", () => {
  it("keeps every quarantined webhook of a flooded source until DEAD_LETTER_TTL_SECONDS, the real one too", async () => {
    const { quarantineOf } = await import("../src/ledger/records");
    const source = `flood-${crypto.randomUUID().slice(0, 8)}`;
    const t0 = Date.now() - 3_600_000;
    // One real webhook answered 400, then 1,005 junk bodies: the old count cap deleted the real one.
    const real = quarantineOf(
      { source, issues: [{ path: "event", message: "real" }], body: new Uint8Array([1]) },
      t0,
    );
    const junk = Array.from({ length: 1_005 }, (_, i) =>
      quarantineOf(
        { source, issues: [{ path: "event", message: "x" }], body: new Uint8Array([i % 256]) },
        t0 + 1 + i,
      ),
    );
    await storeForTest(real);
    for (let i = 0; i < junk.length; i += 200) await storeForTest(...junk.slice(i, i + 200));
    await runCron();
    const left = await env.LEDGER.prepare(
      "SELECT count(*) AS n, min(created_at) AS oldest FROM records WHERE kind = 'quarantine' AND source = ?",
    )
      .bind(source)
      .first<{ n: number; oldest: number }>();
    expect(left).toEqual({ n: 1_006, oldest: t0 });
    expect((await admin(`/quarantine/${real.id}`)).json).toMatchObject({
      id: real.id,
      rawBodyBase64: "AQ==",
    });
  });
});
