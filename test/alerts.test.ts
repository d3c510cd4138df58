import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { evaluateAlert } from "../src/alerts/notify";
import { parseSettings } from "../src/config";
import type { Env } from "../src/env";
import worker from "../src/index";
import type { RelayMessage } from "../src/queue/message";
import { PUBLISHED, postWebhook, WRITE_KEY, withUniqueId } from "./helpers";
import { deadLetterFor, queueMessages, relayMessage } from "./messages";
import { useAlertReceiver } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

const ALERT_URL = "https://alerts.test/hook";
const SECRET_KEY = "c2VjcmV0LWFsZXJ0LWtleS0xMjM0NQ=="; // base64 of "secret-alert-key-12345"

const network = (receiverStatus: number | "down" = 200) => useAlertReceiver(ALERT_URL, receiverStatus);

let counter = 0;
/** A source of its own: its alerts are rate-limited apart from other tests'. */
function alertingSource(extra: Partial<Env> = {}) {
  counter++;
  const name = `alerts-${counter}-${crypto.randomUUID().slice(0, 6)}`;
  const token = `token-${name}-0123456789`;
  const bindings: Partial<Env> = {
    SOURCES: JSON.stringify({ [name]: { writeKey: WRITE_KEY, tokens: [token], alertWebhookUrl: ALERT_URL } }),
    ...extra,
  };
  return {
    name,
    token,
    bindings,
    post: (body: unknown) => postWebhook(body, { path: `/pendo/${name}`, token, env: bindings }),
  };
}

async function consume(bodies: RelayMessage[], bindings: Partial<Env>, attempts = 1) {
  const batch = createMessageBatch<unknown>("pendo-events", queueMessages(bodies, attempts));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
  return getQueueResult(batch, ctx);
}

const messageFor = (source: string, webhook: object = withUniqueId(PUBLISHED.guideDisplayed)) => ({
  ...relayMessage(webhook),
  source,
});

/** As the edge marks a message whose event name the catalog does not know. */
const unmapped = (message: RelayMessage): RelayMessage => ({ ...message, unmapped: true });

function clockAt(ms: number) {
  return vi.spyOn(Date, "now").mockReturnValue(ms);
}

describe("alerts", () => {
  it("dead-letters: names the reasons, counts and examples, and carries no payload", async () => {
    const { alerts, standIn } = network();
    const source = alertingSource();
    standIn.failNext(413);
    const message = messageFor(source.name, {
      ...withUniqueId(PUBLISHED.guideDisplayed),
      properties: { secretNote: "do-not-leak" },
    });
    await consume([message], source.bindings);
    expect(await deadLetterFor(message.eventId)).toMatchObject({ reason: "segment-refused" });
    expect(alerts).toHaveLength(1);
    const [alert] = alerts;
    expect(alert?.body.alert).toMatchObject({
      kind: "dead-letters",
      source: source.name,
      count: 1,
      examples: [{ event: "guideDisplayed", uniqueId: message.eventId }],
      breakdown: { "segment-refused": 1 },
    });
    expect(alert?.body.text).toContain("dead letters");
    expect(alert?.raw).not.toContain("do-not-leak");
    expect(alert?.raw).not.toContain(WRITE_KEY);
  });

  it("invalid-webhooks: counts the refused webhooks by issue path", async () => {
    const { alerts } = network();
    const source = alertingSource();
    expect((await source.post({ visitorId: "v" })).response.status).toBe(400);
    expect(alerts.map((a) => a.body.alert)).toEqual([
      expect.objectContaining({ kind: "invalid-webhooks", count: 1, breakdown: { event: 1 } }),
    ]);
  });

  it("unknown-event: one alert per source per interval, listing the new names", async () => {
    const { alerts } = network();
    const source = alertingSource({ ALERT_INTERVAL_SECONDS: "60" });
    const t0 = Date.now();
    clockAt(t0);
    const unknown = (event: string) =>
      messageFor(source.name, { ...withUniqueId(PUBLISHED.guideDisplayed), event });
    await consume(
      [unknown("guideSnoozed"), unknown("guideSnoozed"), unknown("pollSkipped")].map(unmapped),
      source.bindings,
    );
    clockAt(t0 + 1_000);
    await consume([unmapped(unknown("guideTeleported"))], source.bindings);
    expect(alerts.map((a) => a.body.alert.kind)).toEqual(["unknown-event"]);
    expect(alerts[0]?.raw).toContain("guideSnoozed");
    expect(alerts[0]?.raw).toContain("pollSkipped");
    // What was held back goes out with the next run of the cron, and says only what is new.
    const ctx = createExecutionContext();
    clockAt(t0 + 61_000);
    await worker.scheduled(
      createScheduledController({ scheduledTime: t0 + 61_000, cron: "*/5 * * * *" }),
      { ...env, ...source.bindings } as Env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(alerts).toHaveLength(2);
    expect(alerts[1]?.raw).toContain("guideTeleported");
    expect(alerts[1]?.raw).not.toContain("pollSkipped");
  });

  it("two isolates deciding at once send one alert", async () => {
    const { alerts, standIn } = network();
    const source = alertingSource();
    standIn.failNext(413);
    await consume([messageFor(source.name)], source.bindings);
    alerts.length = 0;
    // A new dead letter, then two evaluations racing (as two isolates would).
    standIn.failNext(413);
    const config = parseSettings({ ...env, ...source.bindings, ALERT_INTERVAL_SECONDS: "60" } as Env);
    if (!config.ok) throw new Error("settings");
    const later = Date.now() + 61_000;
    clockAt(later);
    await consume([messageFor(source.name)], { ...source.bindings, ALERT_INTERVAL_SECONDS: "60" });
    alerts.length = 0;
    await env.LEDGER.prepare("UPDATE alerts SET next_at = 0, covered_to = 0 WHERE source = ?")
      .bind(source.name)
      .run();
    const scope = { db: env.LEDGER, settings: config.settings, now: later + 1, waitUntil: () => {} };
    const outcomes = await Promise.all([
      evaluateAlert(scope, source.name, "dead-letters"),
      evaluateAlert(scope, source.name, "dead-letters"),
      evaluateAlert(scope, source.name, "dead-letters"),
    ]);
    expect(outcomes.filter((o) => o === "sent")).toHaveLength(1);
    expect(alerts).toHaveLength(1);
  });

  it("the cron reports a failing delivery when nothing else runs", async () => {
    const { alerts, standIn } = network();
    const source = alertingSource({ ALERT_FAILING_SECONDS: "60" });
    const t0 = Date.now();
    clockAt(t0);
    standIn.failNext(503);
    await consume([messageFor(source.name)], source.bindings);
    expect(alerts).toHaveLength(0);
    const ctx = createExecutionContext();
    await worker.scheduled(
      createScheduledController({ scheduledTime: t0 + 61_000, cron: "*/5 * * * *" }),
      { ...env, ...source.bindings } as Env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(alerts.map((a) => a.body.alert.kind)).toEqual(["delivery-failing"]);
    expect(alerts[0]?.body.alert).toMatchObject({ lastStatus: 503 });
  });

  it("sends at most one alert per kind and source per interval, and counts what it held back", async () => {
    const { alerts, standIn } = network();
    const source = alertingSource({ ALERT_INTERVAL_SECONDS: "60" });
    const t0 = Date.now();
    clockAt(t0);
    standIn.failNext(413);
    await consume([messageFor(source.name)], source.bindings);
    clockAt(t0 + 10_000);
    standIn.failNext(413, 413);
    await consume([messageFor(source.name)], source.bindings);
    await consume([messageFor(source.name)], source.bindings);
    expect(alerts).toHaveLength(1);
    clockAt(t0 + 61_000);
    standIn.failNext(413);
    await consume([messageFor(source.name)], source.bindings);
    expect(alerts.map((a) => a.body.alert.count)).toEqual([1, 3]);
    expect(alerts[1]?.body.alert.since).toBe(new Date(t0 + 10_000).toISOString());
  });

  it("delivery-failing after ALERT_FAILING_SECONDS of nothing but failures, then delivery-recovered", async () => {
    const { alerts, standIn } = network();
    const source = alertingSource({ ALERT_FAILING_SECONDS: "60" });
    const t0 = Date.now();
    clockAt(t0);
    standIn.failNext(503);
    await consume([messageFor(source.name)], source.bindings);
    expect(alerts).toHaveLength(0);
    clockAt(t0 + 61_000);
    standIn.failNext(401);
    await consume([messageFor(source.name)], source.bindings);
    const failing = alerts.find((a) => a.body.alert.kind === "delivery-failing");
    expect(failing?.body.alert).toMatchObject({ lastStatus: 401, since: new Date(t0).toISOString() });
    clockAt(t0 + 70_000);
    await consume([messageFor(source.name)], source.bindings);
    expect(alerts.map((a) => a.body.alert.kind)).toContain("delivery-recovered");
    // A second success is nothing new.
    clockAt(t0 + 80_000);
    await consume([messageFor(source.name)], source.bindings);
    expect(alerts.filter((a) => a.body.alert.kind === "delivery-recovered")).toHaveLength(1);
  });

  it("signs like Standard Webhooks when ALERT_SECRET is set (checked with an independent HMAC)", async () => {
    const { alerts } = network();
    const source = alertingSource({ ALERT_SECRET: `whsec_${SECRET_KEY}` });
    await source.post({ visitorId: "v" });
    const [alert] = alerts;
    const id = alert?.headers.get("webhook-id") as string;
    const timestamp = alert?.headers.get("webhook-timestamp") as string;
    const signature = alert?.headers.get("webhook-signature") as string;
    expect(id).toMatch(/^alert_/);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
    expect(signature).toMatch(/^v1,/);
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode("secret-alert-key-12345"),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const mac = Uint8Array.from(atob(signature.slice(3)), (c) => c.charCodeAt(0));
    const signed = new TextEncoder().encode(`${id}.${timestamp}.${alert?.raw}`);
    expect(await crypto.subtle.verify("HMAC", key, mac, signed)).toBe(true);
  });

  it.each([
    ["answers 500", 500 as const],
    ["is unreachable", "down" as const],
  ])(
    "a receiver that %s changes nothing for events, and its tally rides on the next alert",
    async (_case, status) => {
      const { alerts, receiver, standIn } = network(status);
      const errors: string[] = [];
      vi.spyOn(console, "error").mockImplementation((line: string) => errors.push(line));
      const source = alertingSource();
      standIn.failNext(413);
      const refused = messageFor(source.name);
      const delivered = messageFor(source.name);
      const result = await consume([refused, delivered], source.bindings);
      expect(result.explicitAcks).toHaveLength(2);
      expect(standIn.messageIds).toEqual([]); // 413 for the batch: both refused, both kept
      expect(await deadLetterFor(refused.eventId)).toBeDefined();
      expect(errors.some((line) => JSON.parse(line).msg === "alert-failed")).toBe(true);
      receiver.status = 200;
      alerts.length = 0;
      // Backed off: nothing is sent within the first minute, whatever happens.
      standIn.failNext(413);
      await consume([messageFor(source.name)], source.bindings);
      expect(alerts).toEqual([]);
      clockAt(Date.now() + 61_000);
      standIn.failNext(413);
      await consume([messageFor(source.name)], source.bindings);
      // Nothing was held in memory: the ledger still holds all four, and the alert says so.
      expect(alerts.map((a) => a.body.alert.count)).toEqual([4]);
    },
  );
});
