import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import type { RelayMessage } from "../src/queue/message";
import { RELAY_VERSION } from "../src/version";
import { SegmentStandIn } from "../standin/segment";
import { bucketFailing, kvFailing } from "./faults";
import { ADMIN_TOKEN, callWorker, PUBLISHED, postWebhook, TOKEN, WRITE_KEY, withUniqueId } from "./helpers";
import { queueMessages } from "./messages";
import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

const PROD = {
  writeKey: "prod-write-key-secret-1",
  tokens: ["prod-token-current-0123", "prod-token-previous-0123"],
};
const STAGING = {
  writeKey: "staging-write-key-secret-2",
  tokens: ["staging-token-0123456789"],
  eventNames: "segment",
};
const SOURCES = JSON.stringify({ prod: PROD, staging: STAGING });
const withSources = { SOURCES };

describe("multiple sources", () => {
  it("routes /pendo/:source with that source's tokens, options and messageIds", async () => {
    const prod = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: "/pendo/prod",
      token: PROD.tokens[0],
      env: withSources,
    });
    expect(prod.response.status).toBe(202);
    expect(prod.enqueued[0]?.source).toBe("prod");
    expect(prod.json.event).toBe("guideDisplayed");
    expect((prod.json.calls as { messageId: string }[])[0]?.messageId).toMatch(/^pendo:prod:/);

    const staging = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: "/pendo/staging",
      token: STAGING.tokens[0],
      env: withSources,
    });
    expect(staging.json.event).toBe("Guide Displayed");
  });

  it("accepts every token in a source's list (rotation)", async () => {
    const previous = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: "/pendo/prod",
      token: PROD.tokens[1],
      env: withSources,
    });
    expect(previous.response.status).toBe(202);
  });

  it("never lets one source's token open another", async () => {
    const cases = [
      { path: "/pendo/staging", token: PROD.tokens[0] },
      { path: "/pendo/prod", token: STAGING.tokens[0] },
      { path: "/pendo/prod", token: TOKEN },
      { path: "/pendo", token: PROD.tokens[0] },
    ];
    for (const { path, token } of cases) {
      const { response } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
        path,
        token,
        env: withSources,
      });
      expect(response.status, `${path} with another source's token`).toBe(401);
    }
  });

  it("delivers each source's events with its own write key", async () => {
    const standIn = new SegmentStandIn([WRITE_KEY, PROD.writeKey, STAGING.writeKey]);
    useSegmentStandIn(standIn);
    const bodies: RelayMessage[] = [];
    for (const [path, token] of [
      ["/pendo", TOKEN],
      ["/pendo/prod", PROD.tokens[0]],
      ["/pendo/staging", STAGING.tokens[0]],
    ] as const) {
      const { enqueued } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
        path,
        token,
        env: withSources,
      });
      bodies.push(...enqueued);
    }
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages(bodies));
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, SOURCES } as Env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(3);
    expect(standIn.requests).toHaveLength(3);
    const keyBySource = Object.fromEntries(
      standIn.received.map((event) => [
        (event.call.context as { pendo: { source: string } }).pendo.source,
        event.writeKey,
      ]),
    );
    expect(keyBySource).toEqual({ default: WRITE_KEY, prod: PROD.writeKey, staging: STAGING.writeKey });
  });

  it("names the bad key of a malformed SOURCES, never its values", async () => {
    const bad = JSON.stringify({
      prod: { writeKey: 42, tokens: ["short"] },
      "Bad Name": PROD,
      default: PROD,
    });
    const { response, json } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: { SOURCES: bad },
    });
    expect(response.status).toBe(503);
    const text = JSON.stringify(json);
    expect(text).toContain("SOURCES.prod.writeKey");
    expect(text).toContain("SOURCES.prod.tokens");
    expect(text).toContain("source names must be 1-24");
    expect(text).toContain("reserved");
    expect(text).not.toContain(PROD.writeKey);
    expect(text).not.toContain(PROD.tokens[0]);

    const notJson = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: { SOURCES: `{"prod": ${PROD.writeKey}` },
    });
    expect(notJson.json.issues).toEqual([{ path: "SOURCES", message: "SOURCES must be valid JSON" }]);
    expect(JSON.stringify(notJson.json)).not.toContain(PROD.writeKey);
  });
});

const get = (path: string, overrides: Partial<Env> = {}, headers: Record<string, string> = {}) =>
  callWorker(new Request(`https://relay.test${path}`, { headers }), overrides);
const asAdmin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe("health", () => {
  it("tells anyone the status and version only, and takes no deep probe from them", async () => {
    const { response, json, sent } = await get("/health?deep=1", withSources);
    expect(response.status).toBe(200);
    expect(json).toEqual({ status: "ok", name: "pendo-segment-relay", version: RELAY_VERSION });
    expect(sent).toEqual([]);
    // Until the relay is configured it says what is missing, as POST /pendo does: names, no values.
    const missing = await get("/health", { SEGMENT_WRITE_KEY: undefined });
    expect(missing.response.status).toBe(503);
    expect(missing.json).toEqual({
      status: "unhealthy",
      name: "pendo-segment-relay",
      version: RELAY_VERSION,
      issues: [{ path: "SEGMENT_WRITE_KEY", message: "is not set" }],
    });
  });

  it("reports what is configured to the admin, never a value, and answers 200 when all is well", async () => {
    const { response, json } = await get("/health?deep=1", withSources, asAdmin);
    expect(response.status).toBe(200);
    expect(json).toMatchObject({
      status: "ok",
      bindings: { DEDUP: true, LEDGER: true, ARCHIVE: true, EVENTS: true },
      secrets: { WEBHOOK_TOKEN: true, SEGMENT_WRITE_KEY: true, ADMIN_TOKEN: true, SOURCES: true },
      checks: { kv: "ok", ledger: "ok", r2: "ok", queue: "ok" },
    });
    expect((json.sources as { name: string }[]).map((s) => s.name)).toEqual(["default", "prod", "staging"]);
    const text = JSON.stringify(json);
    for (const secret of [TOKEN, WRITE_KEY, ADMIN_TOKEN, PROD.writeKey, PROD.tokens[0]])
      expect(text).not.toContain(secret);
  });

  it("answers 503 naming what is missing or broken", async () => {
    const missing = await get("/health", { SEGMENT_WRITE_KEY: undefined }, asAdmin);
    expect(missing.response.status).toBe(503);
    expect(missing.json.problems).toEqual(["source default: SEGMENT_WRITE_KEY is not set"]);
    const broken = kvFailing(env.DEDUP, "get");
    const kv = await get("/health", { DEDUP: broken }, asAdmin);
    expect(kv.response.status).toBe(503);
    expect(kv.json.checks).toMatchObject({ kv: "failed" });
    // A ledger that does not answer: every statement throws.
    const deadDb = {
      prepare() {
        throw new Error("injected D1 failure");
      },
      batch: () => Promise.reject(new Error("injected D1 failure")),
    } as unknown as D1Database;
    const ledger = await get("/health", { LEDGER: deadDb }, asAdmin);
    expect(ledger.response.status).toBe(503);
    expect(ledger.json.checks).toMatchObject({ kv: "ok", ledger: "failed" });
    expect(ledger.json.problems).toContain("D1 database LEDGER did not answer");
    const r2 = await get("/health", { ARCHIVE: bucketFailing(env.ARCHIVE, "", "head") }, asAdmin);
    expect(r2.response.status).toBe(503);
    expect(r2.json.checks).toMatchObject({ kv: "ok", ledger: "ok", r2: "failed" });
    expect(r2.json.problems).toContain("R2 bucket ARCHIVE did not answer");
    // Anyone else learns only that the relay is unhealthy.
    const anyone = await get("/health", { LEDGER: deadDb });
    expect(anyone.response.status).toBe(503);
    expect(anyone.json).toEqual({ status: "unhealthy", name: "pendo-segment-relay", version: RELAY_VERSION });
  });

  it("acks a queue probe without sending it to Segment", async () => {
    const spy = vi.spyOn(globalThis, "fetch");
    const probe: RelayMessage = {
      source: "health",
      eventId: "probe",
      event: "probe",
      receivedAt: 0,
      calls: [],
      bytes: 0,
      probe: true,
    };
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages([probe]));
    const ctx = createExecutionContext();
    await worker.queue(batch, env as Env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    expect(spy).not.toHaveBeenCalled();
  });
});

describe("debug transform", () => {
  const development = { ENVIRONMENT: "development" };
  const debug = (
    body: unknown,
    overrides: Partial<Env> = development,
    headers: Record<string, string> = {},
    query = "",
  ) =>
    callWorker(
      new Request(`https://relay.test/debug/transform${query}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      }),
      overrides,
    );

  it("returns the Segment calls a payload would become, enqueueing and marking nothing", async () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    const { response, json, enqueued } = await debug(webhook);
    expect(response.status).toBe(200);
    expect(enqueued).toEqual([]);
    expect(json).toMatchObject({
      source: "default",
      eventId: webhook.uniqueId,
      mapped: true,
      family: "visitor",
      enqueued: false,
    });
    expect((json.calls as { type: string }[]).map((call) => call.type)).toEqual(["track", "identify"]);
    // Nothing was marked: the same event is still accepted.
    expect((await postWebhook(webhook)).response.status).toBe(202);
  });

  it("uses a named source's options", async () => {
    const { json } = await debug(
      withUniqueId(PUBLISHED.guideDisplayed),
      { ...withSources, ...development },
      {},
      "?source=staging",
    );
    expect((json.calls as { event: string }[])[0]?.event).toBe("Guide Displayed");
  });

  it("answers 400 with the issues for an invalid payload", async () => {
    const { response, json } = await debug({ event: "" });
    expect(response.status).toBe(400);
    expect(json.issues).toEqual([{ path: "event", message: "event must be a non-empty string" }]);
  });

  it.each(["production", "Production", "staging", "test"])(
    "does not exist where ENVIRONMENT is %s without the admin token, and works with it",
    async (environment) => {
      const closed = { ENVIRONMENT: environment };
      expect((await debug(PUBLISHED.guideDisplayed, closed)).response.status).toBe(404);
      expect(
        (await debug(PUBLISHED.guideDisplayed, closed, { authorization: `Bearer ${TOKEN}` })).response.status,
      ).toBe(404);
      expect((await debug(PUBLISHED.guideDisplayed, closed, asAdmin)).response.status).toBe(200);
    },
  );
});

describe("redaction", () => {
  it("keeps tokens and write keys of every source out of logs", async () => {
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const) {
      vi.spyOn(console, method).mockImplementation((...args) => lines.push(args.join(" ")));
    }
    useSegmentStandIn(new SegmentStandIn([WRITE_KEY, PROD.writeKey]));
    const accepted = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: "/pendo/prod",
      token: PROD.tokens[0],
      env: withSources,
    });
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: "/pendo/prod",
      token: "prod-token-guess-0123456",
      env: withSources,
    });
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: { SOURCES: JSON.stringify({ prod: { ...PROD, tokens: [1] } }) },
    });
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages(accepted.enqueued));
    await worker.queue(batch, { ...env, SOURCES } as Env, createExecutionContext());
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const text = lines.join("\n");
    for (const secret of [PROD.writeKey, ...PROD.tokens, "prod-token-guess-0123456", WRITE_KEY, TOKEN]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain(btoa(`${PROD.writeKey}:`));
  });
});

describe("no token in any log line", () => {
  it("keeps every token out of a run's lines, whether it came in the URL or a header", async () => {
    const lines: string[] = [];
    for (const method of ["debug", "log", "info", "warn", "error"] as const)
      vi.spyOn(console, method).mockImplementation((...args) => lines.push(args.join(" ")));
    const secrets = [
      TOKEN,
      ADMIN_TOKEN,
      WRITE_KEY,
      ...PROD.tokens,
      PROD.writeKey,
      "guessed-token-0123456789",
    ];
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const webhook = () => withUniqueId(PUBLISHED.guideDisplayed);
    const accepted: RelayMessage[] = [];
    const keep = async (sent: Promise<{ enqueued: RelayMessage[] }>) =>
      accepted.push(...(await sent).enqueued);

    // Webhooks: the token in the query and as Bearer; right, wrong, for another source, or for
    // one that does not exist; bodies accepted, refused, too large.
    await keep(postWebhook(webhook()));
    await keep(postWebhook(webhook(), { token: null, bearer: TOKEN }));
    await keep(postWebhook(webhook(), { path: "/pendo/prod", token: PROD.tokens[1], env: withSources }));
    await postWebhook(webhook(), { token: "guessed-token-0123456789" });
    await postWebhook(webhook(), { token: null, bearer: "guessed-token-0123456789" });
    await postWebhook(webhook(), { path: "/pendo/prod", token: TOKEN, env: withSources });
    await postWebhook(webhook(), { path: "/pendo/nope", token: PROD.tokens[0], env: withSources });
    await postWebhook("{bad", { token: TOKEN });
    await postWebhook({ ...webhook(), properties: { blob: "x".repeat(300_000) } });
    await postWebhook(webhook(), { path: `/pendo/${TOKEN}` });
    // The admin surface: Bearer, a token in the query (refused), bad parameters, a broken store.
    for (const path of [
      "/admin/dead-letters?limit=1.5",
      "/admin/overview?hours=24",
      `/admin/quarantine?token=${ADMIN_TOKEN}`,
      "/health?deep=1",
      "/no-such-route",
    ]) {
      await callWorker(new Request(`https://relay.test${path}`, { headers: bearer(ADMIN_TOKEN) }));
    }
    await callWorker(new Request(`https://relay.test/admin/alerts?token=${ADMIN_TOKEN}`));
    await callWorker(new Request("https://relay.test/health", { headers: bearer(ADMIN_TOKEN) }), {
      DEDUP: kvFailing(env.DEDUP, "get"),
    });
    await callWorker(
      new Request(`https://relay.test/debug/transform?token=${TOKEN}`, {
        method: "POST",
        headers: bearer(ADMIN_TOKEN),
        body: JSON.stringify(webhook()),
      }),
    );
    // The consumer: one batch delivered, one refused by Segment (a dead letter, logged).
    expect(accepted.length).toBe(3);
    useSegmentStandIn(new SegmentStandIn([WRITE_KEY, PROD.writeKey]));
    await worker.queue(
      createMessageBatch<unknown>("pendo-events", queueMessages(accepted)),
      { ...env, SOURCES } as Env,
      createExecutionContext(),
    );
    const { standIn } = useSegmentStandIn();
    standIn.failNext(401);
    await worker.queue(
      createMessageBatch<unknown>("pendo-events", queueMessages(accepted.slice(0, 1))),
      { ...env, SOURCES } as Env,
      createExecutionContext(),
    );

    expect(lines.length).toBeGreaterThanOrEqual(15);
    for (const line of lines) for (const secret of secrets) expect(line).not.toContain(secret);
    expect(lines.join("\n")).not.toContain(btoa(`${WRITE_KEY}:`));
  });
});
