import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseSettings } from "../src/config";
import { roundsOf } from "../src/delivery/drain";
import { PROFILES } from "../src/destination/profiles";
import { targetOf } from "../src/destination/target";
import type { Env } from "../src/env";
import worker from "../src/index";
import { claimParkedStatement } from "../src/ledger/destinations";
import { visitorHash } from "../src/ledger/flags";
import type { RelayMessage } from "../src/queue/message";
import { SegmentStandIn } from "../standin/segment";
import { dbFailingOn } from "./faults";
import { ADMIN_TOKEN, callWorker, keptQueue, TOKEN, WRITE_KEY } from "./helpers";
import { queueMessages, relayMessage } from "./messages";
import { useAlertReceiver } from "./standin";

/**
 * Outage mode, driven as the platform would drive it: consumer batches fail, the destination
 * enters outage mode, batches are parked and acked, the chain's control messages (kept here, not
 * delivered) probe once per interval and drain in arrival order; an operator holds and resumes.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

const ALERTS = "https://alerts.test/outage";

/** A source with its own write key (so its own destination), alerts, and a stand-in that knows it. */
async function outageSource() {
  const name = `outage-${crypto.randomUUID().slice(0, 8)}`;
  const writeKey = `outage-key-${name}`;
  const target = await targetOf(PROFILES.segment, "https://api.segment.io", writeKey);
  const kept = keptQueue();
  const bindings = {
    SOURCES: JSON.stringify({ [name]: { writeKey, tokens: [TOKEN], alertWebhookUrl: ALERTS } }),
    EVENTS: kept.queue,
  } as Partial<Env>;
  const standIn = new SegmentStandIn([WRITE_KEY, writeKey]);
  const network = useAlertReceiver(ALERTS, 200, standIn);
  const consume = async (bodies: { raw: unknown }[] | RelayMessage[]) => {
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages(bodies));
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
    await waitOnExecutionContext(ctx);
    return getQueueResult(batch, ctx);
  };
  /** Runs the chain's pending control messages (those sent so far), as the queue would. */
  const runChain = async () => {
    const controls = kept.sent.splice(0).filter((m) => m.body.startsWith('{"v":"control"'));
    for (const control of controls) await consume([{ raw: control.body }]);
    return controls;
  };
  const state = () =>
    env.LEDGER.prepare("SELECT state, next_probe_at AS nextProbeAt FROM destinations WHERE id = ?")
      .bind(target.id)
      .first<{ state: string; nextProbeAt: number }>();
  const parked = () =>
    env.LEDGER.prepare("SELECT seq, messages FROM parked WHERE destination = ? ORDER BY seq")
      .bind(target.id)
      .all<{ seq: string; messages: number }>()
      .then((r) => r.results);
  const message = (): RelayMessage => ({ ...relayMessage(), source: name });
  const idsOf = (messages: RelayMessage[]) =>
    messages.flatMap((m) => m.calls.map((c) => JSON.parse(c).messageId));
  return { name, target, bindings, kept, standIn, network, consume, runChain, state, parked, message, idsOf };
}

function clock(start: number) {
  let now = start;
  vi.spyOn(Date, "now").mockImplementation(() => now);
  return (ms: number) => {
    now = ms;
  };
}

describe("outage mode", () => {
  it("parks batches after OUTAGE_AFTER_SECONDS of failures, probes once per interval, drains in order", async () => {
    const o = await outageSource();
    const t0 = Date.now();
    const at = clock(t0);
    o.standIn.setFailureShare(1); // 503 for every request
    const first = o.message();
    const retried = await o.consume([first]);
    expect(retried.retryMessages).toHaveLength(1);
    expect((await o.state())?.state).toBe("open");

    // 301 s of nothing but failures: this batch's failure starts outage mode, and it is parked.
    at(t0 + 301_000);
    const second = [o.message(), o.message()];
    const parkedNow = await o.consume(second);
    expect(parkedNow.explicitAcks).toHaveLength(2);
    expect(parkedNow.retryMessages).toEqual([]);
    expect((await o.state())?.state).toBe("outage");
    await vi.waitUntil(() => o.network.alerts.some((a) => a.body.alert.kind === "outage-started"), {
      timeout: 5_000,
    });

    // Arriving batches are parked without a request: no retry is spent on them.
    const requests = o.standIn.requests.length;
    at(t0 + 310_000);
    const third = [o.message()];
    expect((await o.consume(third)).explicitAcks).toHaveLength(1);
    expect(o.standIn.requests).toHaveLength(requests);
    expect(await o.parked()).toHaveLength(2);

    // The chain's first step comes before the probe is due: nothing is sent.
    at(t0 + 320_000);
    await o.runChain();
    expect(o.standIn.requests).toHaveLength(requests);
    expect(o.kept.sent.at(-1)?.delaySeconds).toBeGreaterThan(0);

    // Due, and the destination is back: the probe (oldest batch) goes, then the rest, in order.
    at(t0 + 362_000);
    o.standIn.setFailureShare(0);
    await o.runChain();
    expect(o.standIn.messageIds).toEqual(o.idsOf([...second, ...third]));
    expect(await o.parked()).toEqual([]);
    expect((await o.state())?.state).toBe("open");
    await vi.waitUntil(() => o.network.alerts.some((a) => a.body.alert.kind === "outage-drained"), {
      timeout: 5_000,
    });
    expect(o.network.alerts.filter((a) => a.body.alert.kind === "outage-started")).toHaveLength(1);
    // The first message is still the queue's: it went back with a backoff and is sent on its own.
    expect(o.standIn.messageIds).not.toContain(o.idsOf([first])[0]);
  });

  it("pauses a drain for a 429's Retry-After without leaving draining", async () => {
    const o = await outageSource();
    await env.LEDGER.prepare(
      "INSERT INTO destinations (id, host, state, chain, updated_at) VALUES (?, 'api.segment.io', 'outage', NULL, ?)",
    )
      .bind(o.target.id, Date.now())
      .run();
    await o.consume([o.message()]);
    await o.consume([o.message()]);
    expect(await o.parked()).toHaveLength(2);
    // Resume by hand: draining, a new chain.
    await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings);
    o.standIn.failNext({ status: 429, retryAfter: "7" });
    await o.runChain();
    expect((await o.state())?.state).toBe("draining");
    expect(await o.parked()).toHaveLength(2);
    expect(o.kept.sent.at(-1)?.delaySeconds).toBe(7);
    await o.runChain();
    expect(await o.parked()).toEqual([]);
    expect((await o.state())?.state).toBe("open");
  });

  it("holds and resumes by hand, from the admin API", async () => {
    const o = await outageSource();
    const held = await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    expect(held.json).toMatchObject({ destination: o.target.id, state: "held" });
    const messages = [o.message(), o.message()];
    await o.consume([messages[0] as RelayMessage]);
    await o.consume([messages[1] as RelayMessage]);
    // A healthy destination, held: nothing goes out, everything is parked.
    expect(o.standIn.requests).toEqual([]);
    const listed = await callAdmin("/destinations", "GET", o.bindings);
    const mine = (
      listed.json.entries as { name: string; state: string; parked: { batches: number; events: number } }[]
    ).find((d) => d.name === o.target.id);
    expect(mine).toMatchObject({ state: "held", parked: { batches: 2, events: 2 } });
    const overview = await callAdmin("/overview?hours=1", "GET", o.bindings);
    expect(overview.json.parked).toContainEqual(
      expect.objectContaining({ destination: o.target.id, state: "held", events: 2, batches: 2 }),
    );
    expect((await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings)).json).toMatchObject({
      state: "draining",
    });
    await o.runChain();
    expect(o.standIn.messageIds).toEqual(o.idsOf(messages));
    expect((await o.state())?.state).toBe("open");
    expect((await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings)).response.status).toBe(
      409,
    );
    expect(
      (await callAdmin("/destinations/segment-000000000000/hold", "POST", o.bindings)).response.status,
    ).toBe(404);
  });
});

describe("the cost of failing", () => {
  it("writes a failing destination's and source's status at most once a minute, not once a batch", async () => {
    const o = await outageSource();
    const t0 = Date.now();
    const at = clock(t0);
    o.standIn.setFailureShare(1);
    const written = async () => ({
      destination: await env.LEDGER.prepare("SELECT updated_at AS t FROM destinations WHERE id = ?")
        .bind(o.target.id)
        .first<{ t: number }>(),
      source: await env.LEDGER.prepare("SELECT last_failure_at AS t FROM delivery WHERE source = ?")
        .bind(o.name)
        .first<{ t: number }>(),
    });
    await o.consume([o.message()]);
    expect(await written()).toEqual({ destination: { t: t0 }, source: { t: t0 } });
    at(t0 + 10_000);
    await o.consume([o.message()]);
    expect(await written()).toEqual({ destination: { t: t0 }, source: { t: t0 } });
    at(t0 + 61_000);
    await o.consume([o.message()]);
    expect(await written()).toEqual({ destination: { t: t0 + 61_000 }, source: { t: t0 + 61_000 } });
  });
});

describe("outage mode under concurrency", () => {
  it("two isolates failing at once start one outage: one chain, one alert, both batches parked", async () => {
    const o = await outageSource();
    await env.LEDGER.prepare(
      "INSERT INTO destinations (id, host, state, failing_since, updated_at) VALUES (?, 'api.segment.io', 'open', ?, ?)",
    )
      .bind(o.target.id, Date.now() - 400_000, Date.now())
      .run();
    o.standIn.setFailureShare(1);
    const results = await Promise.all([o.consume([o.message()]), o.consume([o.message()])]);
    for (const result of results) expect(result.explicitAcks).toHaveLength(1);
    expect(await o.parked()).toHaveLength(2);
    expect(o.kept.sent.filter((m) => m.body.startsWith('{"v":"control"'))).toHaveLength(1);
    await vi.waitUntil(() => o.network.alerts.length > 0, { timeout: 5_000 });
    expect(o.network.alerts.filter((a) => a.body.alert.kind === "outage-started")).toHaveLength(1);
  });

  it("two drain steps at once send each parked batch once", async () => {
    const o = await outageSource();
    await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    const messages = Array.from({ length: 6 }, () => o.message());
    for (const message of messages) await o.consume([message]);
    await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings);
    const [control] = o.kept.sent.splice(0);
    // The same chain message delivered twice (the queue is at-least-once), run at once.
    await Promise.all([o.consume([{ raw: control?.body }]), o.consume([{ raw: control?.body }])]);
    // The chain did not fork: the copy that lost the token's compare-and-set ended.
    expect(o.kept.sent.filter((m) => m.body.startsWith('{"v":"control"')).length).toBeLessThanOrEqual(1);
    await o.runChain();
    // Each sent once: the stand-in counts a messageId it has seen before as a duplicate.
    expect(o.standIn.duplicates).toBe(0);
    expect([...o.standIn.messageIds].sort()).toEqual(o.idsOf(messages).sort());
    expect(await o.parked()).toEqual([]);
  });
});

const settingsOf = (bindings: Partial<Env>) => {
  const config = parseSettings({ ...env, ...bindings } as Env);
  if (!config.ok) throw new Error("settings");
  return config.settings;
};

describe("a drain step that stops half-way", () => {
  it("is done again without storing its dead letters twice, its claims given back at once", async () => {
    const o = await outageSource();
    await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    const message = o.message();
    await o.consume([message]);
    await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings);
    const [control] = o.kept.sent.splice(0);
    // Segment refuses the event (a dead letter), and the step's last write, after the letter is
    // stored, fails: the step throws.
    o.standIn.failNext({ status: 400 }, { status: 400 });
    const broken = { ...env, ...o.bindings, LEDGER: dbFailingOn(env.LEDGER, "DELETE FROM parked") } as Env;
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages([{ raw: control?.body }]));
    const ctx = createExecutionContext();
    await worker.queue(batch, broken, ctx);
    await waitOnExecutionContext(ctx);
    const letters = () =>
      env.LEDGER.prepare("SELECT id FROM records WHERE event_id = ?")
        .bind(message.eventId)
        .all()
        .then((r) => r.results);
    expect(await letters()).toHaveLength(1);
    // Still parked, no longer claimed, and the chain handed on (after a pause) despite the throw.
    expect(
      await env.LEDGER.prepare("SELECT claimed_until AS c FROM parked WHERE destination = ?")
        .bind(o.target.id)
        .all()
        .then((r) => r.results),
    ).toEqual([{ c: 0 }]);
    // The step had taken the chain: of its two successors (one per token) only one goes on.
    expect(o.kept.sent.map((m) => m.delaySeconds)).toEqual([30, 30]);
    // Done again: the same letter (the same id), not a second one, and counted once.
    await o.runChain();
    expect(await o.parked()).toEqual([]);
    expect(await letters()).toHaveLength(1);
    // counts: {"<event>": [delivered, deadLettered, dropped, refused, lastSeen]} per hour.
    const counted = await env.LEDGER.prepare(
      "SELECT sum(value ->> '$[1]') AS n FROM counts, json_each(counts.events) WHERE source = ?",
    )
      .bind(o.name)
      .first<{ n: number }>();
    expect(counted?.n).toBe(1);
  });

  it("ends a step after its rounds even when no round spends a request (every event dropped)", async () => {
    const o = await outageSource();
    await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    // A flagged visitor: every parked event is dropped, none is sent.
    const visitor = `flagged-${crypto.randomUUID()}`;
    const flagged = (): RelayMessage => ({ ...o.message(), visitor, eventTime: Date.now() + 1_000 });
    const batches = roundsOf(settingsOf(o.bindings)) * 4 + 3;
    const from = Date.now();
    for (let i = 0; i < batches; i++) await o.consume([flagged()]);
    // Flagged (from before the events' time) after they were parked.
    await env.LEDGER.prepare("INSERT INTO flag_history VALUES (?, ?, ?, 1, 0)")
      .bind(o.name, await visitorHash(visitor), from)
      .run();
    const parkedBefore = (await o.parked()).length;
    await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings);
    const [control] = o.kept.sent.splice(0);
    await o.consume([{ raw: control?.body }]);
    expect(o.standIn.requests).toEqual([]);
    // Six rounds of four, then the next step, at once, in a fresh invocation.
    expect(parkedBefore - (await o.parked()).length).toBe(roundsOf(settingsOf(o.bindings)) * 4);
    expect(o.kept.sent.map((m) => m.delaySeconds)).toEqual([0]);
    await o.runChain();
    expect(await o.parked()).toEqual([]);
  });
});

describe("a chain step that throws before it takes the chain", () => {
  it("goes on under the token the ledger still holds: exactly one successor continues", async () => {
    const o = await outageSource();
    await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    const messages = [o.message(), o.message()];
    for (const message of messages) await o.consume([message]);
    await callAdmin(`/destinations/${o.target.id}/resume`, "POST", o.bindings);
    const [control] = o.kept.sent.splice(0);
    // D1 refuses the step's first statement (its beat): the ledger keeps the old token.
    const broken = { ...env, ...o.bindings, LEDGER: dbFailingOn(env.LEDGER, "SET chain_beat") } as Env;
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages([{ raw: control?.body }]));
    const ctx = createExecutionContext();
    await worker.queue(batch, broken, ctx);
    await waitOnExecutionContext(ctx);
    expect(o.kept.sent.map((m) => m.delaySeconds)).toEqual([30, 30]);
    // Both successors run: one drains, the other finds its token stale and sends nothing more.
    await o.runChain();
    expect([...o.standIn.messageIds].sort()).toEqual(o.idsOf(messages).sort());
    expect(o.standIn.duplicates).toBe(0);
    expect((await o.state())?.state).toBe("open");
    expect(o.kept.sent).toEqual([]);
  });
});

describe("claims belong to the chain that owns the destination", () => {
  it("takes no parked batch for a stale chain, a held destination or an open one", async () => {
    const o = await outageSource();
    await callAdmin(`/destinations/${o.target.id}/hold`, "POST", o.bindings);
    await o.consume([o.message()]);
    const claim = (chain: string) =>
      claimParkedStatement(env.LEDGER, o.target.id, chain, 4, Date.now(), Date.now() + 60_000)
        .all()
        .then((r) => r.results.length);
    const setChain = (state: string, chain: string) =>
      env.LEDGER.prepare("UPDATE destinations SET state = ?, chain = ? WHERE id = ?")
        .bind(state, chain, o.target.id)
        .run();
    await setChain("held", "c1");
    expect(await claim("c1")).toBe(0);
    await setChain("open", "c1");
    expect(await claim("c1")).toBe(0);
    await setChain("draining", "c1");
    expect(await claim("c2")).toBe(0);
    expect(await claim("c1")).toBe(1);
  });
});

function callAdmin(path: string, method: string, bindings: Partial<Env>) {
  return callWorker(
    new Request(`https://relay.test/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }),
    bindings,
  );
}
