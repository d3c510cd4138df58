import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { UNKNOWN_EVENT } from "../src/ledger/counts";
import { DRIFT_CAP } from "../src/ledger/drift";
import { MAX_DRIFT_KEYS, type RelayMessage } from "../src/queue/message";
import { PUBLISHED, postWebhook, WRITE_KEY, withUniqueId } from "./helpers";
import { queueMessages } from "./messages";
import { useAlertReceiver } from "./standin";

/**
 * Hostile input that invents names (issue 17): whatever a sender holding the webhook token
 * invents, every structure keyed by its names stays within its cap, checked before anything is
 * created, and junk never hides a real new name.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

const ALERT_URL = "https://alerts.test/bounds";

async function consume(messages: RelayMessage[], bindings: Partial<Env>) {
  for (let i = 0; i < messages.length; i += 100) {
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages(messages.slice(i, i + 100)));
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(Math.min(100, messages.length - i));
  }
}

async function cron(bindings: Partial<Env>, at: number) {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ scheduledTime: at, cron: "*/5 * * * *" }),
    { ...env, ...bindings } as Env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
}

describe("names a sender invents", () => {
  it("2,000 property keys and 500 event names stay within every cap, and a real new name is still reported", async () => {
    const { alerts } = useAlertReceiver(ALERT_URL);
    const raw = () => alerts.map((a) => a.raw);
    const source = `bounds-${crypto.randomUUID().slice(0, 8)}`;
    const token = `token-${source}-0123456789`;
    const bindings: Partial<Env> = {
      SOURCES: JSON.stringify({
        [source]: { writeKey: WRITE_KEY, tokens: [token], alertWebhookUrl: ALERT_URL },
      }),
      ALERT_INTERVAL_SECONDS: "60",
    };
    const post = async (webhook: object) => {
      const { response, enqueued } = await postWebhook(webhook, {
        path: `/pendo/${source}`,
        token,
        env: bindings,
      });
      expect(response.status).toBe(202);
      return enqueued;
    };
    const t0 = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(t0);

    // 100 guide events with 20 new property keys each: 2,000 distinct keys.
    const messages: RelayMessage[] = [];
    for (let i = 0; i < 100; i++) {
      const properties: Record<string, unknown> = { ...PUBLISHED.guideDisplayed.properties };
      for (let k = 0; k < 20; k++) properties[`junk-${i}-${k}-${"x".repeat(150)}`] = k;
      messages.push(...(await post({ ...withUniqueId(PUBLISHED.guideDisplayed), properties })));
    }
    // 500 distinct invented event names, each far longer than any real one.
    for (let i = 0; i < 500; i++) {
      messages.push(
        ...(await post({ ...withUniqueId(PUBLISHED.guideDisplayed), event: `junk${i}${"y".repeat(300)}` })),
      );
    }
    // What one message may carry is bounded before it is enqueued.
    for (const message of messages) {
      expect((message.drift ?? []).length).toBeLessThanOrEqual(MAX_DRIFT_KEYS);
      for (const key of message.drift ?? []) expect(key.length).toBeLessThanOrEqual(100);
    }
    await consume(messages, bindings);

    const db = env.LEDGER;
    const drift = await db
      .prepare(
        "SELECT count(*) AS n, max(length(event)) AS event, max(length(key)) AS key FROM drift WHERE source = ?",
      )
      .bind(source)
      .first<{ n: number; event: number; key: number }>();
    expect(drift?.n).toBeLessThanOrEqual(DRIFT_CAP);
    expect(drift?.event).toBeLessThanOrEqual(100);
    expect(drift?.key).toBeLessThanOrEqual(100);
    const evicted = await db
      .prepare("SELECT count FROM drift_evictions WHERE source = ?")
      .bind(source)
      .first<{ count: number }>();
    expect(evicted?.count).toBeGreaterThan(0);
    // Counters: invented names share one row per hour, never one each.
    const counted = await db
      .prepare(
        "SELECT e.key AS event, sum(e.value ->> 0) AS delivered FROM counts, json_each(counts.events) AS e WHERE source = ? GROUP BY e.key",
      )
      .bind(source)
      .all<{ event: string; delivered: number }>();
    expect(counted.results).toHaveLength(2);
    expect(counted.results).toContainEqual({ event: UNKNOWN_EVENT, delivered: 500 });
    // Alerts: one unknown-event alert so far (the interval holds the rest), capped in size.
    expect(alerts.filter((a) => a.body.alert.kind === "unknown-event")).toHaveLength(1);
    for (const text of raw()) expect(new TextEncoder().encode(text).length).toBeLessThanOrEqual(16 * 1024);

    // A real new event, after all that junk: recorded, and named in the next alert.
    vi.spyOn(Date, "now").mockReturnValue(t0 + 30_000);
    await consume(await post({ ...withUniqueId(PUBLISHED.guideDisplayed), event: "guideSnoozed" }), bindings);
    const real = await db
      .prepare("SELECT count FROM drift WHERE source = ? AND kind = 'event' AND event = 'guideSnoozed'")
      .bind(source)
      .first<{ count: number }>();
    expect(real?.count).toBe(1);
    await cron(bindings, t0 + 61_000);
    const next = alerts.filter((a) => a.body.alert.kind === "unknown-event");
    expect(next).toHaveLength(2);
    expect(raw().at(-1)).toContain("guideSnoozed");
  });
});
