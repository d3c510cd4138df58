import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { dedupKey } from "../src/kv/keys";
import { faultyKv } from "./faults";
import { callWorker, PUBLISHED, postWebhook, TOKEN, withUniqueId } from "./helpers";
import { deadLetters, quarantined } from "./messages";

afterEach(() => {
  vi.restoreAllMocks();
});

// The ledger is shared by the tests of a file, so counts are compared before and after.
async function quarantineCount(): Promise<number> {
  return (await quarantined()).length;
}

describe("authentication", () => {
  it("accepts the token in the query string", async () => {
    const { response, enqueued } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed));
    expect(response.status).toBe(202);
    expect(enqueued).toHaveLength(1);
  });

  it("accepts the token as a Bearer header", async () => {
    const { response } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      token: null,
      bearer: TOKEN,
    });
    expect(response.status).toBe(202);
  });

  it.each([
    ["missing", { token: null }],
    ["wrong", { token: "not-the-token-0123456789" }],
    ["a prefix of the right one", { token: TOKEN.slice(0, -1) }],
    ["wrong, as Bearer", { token: null, bearer: "not-the-token-0123456789" }],
  ])("answers 401 when the token is %s, storing and enqueueing nothing", async (_case, options) => {
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const before = await quarantineCount();
    const { response, json, enqueued } = await postWebhook(JSON.stringify({ ...webhook, event: 5 }), options);
    expect(response.status).toBe(401);
    expect(json.error).toBe("unauthorized");
    expect(enqueued).toHaveLength(0);
    expect(await env.DEDUP.get(dedupKey("default", webhook.uniqueId))).toBeNull();
    expect(await quarantineCount()).toBe(before);
  });

  it("does not read the body of an unauthenticated request", async () => {
    let pulled = false;
    // highWaterMark 0: the stream is pulled only when someone reads it.
    const body = new ReadableStream(
      {
        pull(controller) {
          pulled = true;
          controller.enqueue(new TextEncoder().encode("{}"));
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const request = new Request("https://relay.test/pendo?token=wrong-token-0123456789", {
      method: "POST",
      body,
      // @ts-expect-error duplex is required by the fetch spec for a streamed body
      duplex: "half",
    });
    const { response } = await callWorker(request);
    expect(response.status).toBe(401);
    expect(pulled).toBe(false);
  });

  it("accepts either token of a comma-separated WEBHOOK_TOKEN (rotation)", async () => {
    const rotated = { WEBHOOK_TOKEN: `new-token-0123456789abcdef, ${TOKEN}` };
    const old = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), { env: rotated });
    const current = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: rotated,
      token: "new-token-0123456789abcdef",
    });
    expect([old.response.status, current.response.status]).toEqual([202, 202]);
  });
});

describe("validation", () => {
  it("refuses only what cannot be mapped, naming every such field in one 400", async () => {
    const webhook = {
      ...withUniqueId(PUBLISHED.guideDisplayed),
      event: "",
      visitorId: { id: 42 },
      accountId: [1],
    };
    const { response, json, enqueued } = await postWebhook(webhook);
    expect(response.status).toBe(400);
    expect(enqueued).toHaveLength(0);
    expect(json.issues).toEqual([
      { path: "event", message: "event must be a non-empty string" },
      { path: "visitorId", message: "visitorId must be a string or a number" },
      { path: "accountId", message: "accountId must be a string or a number" },
    ]);
  });

  it("forwards fields of an unusable type, keeping them and saying so, instead of a 400", async () => {
    const webhook = {
      ...withUniqueId(PUBLISHED.guideDisplayed),
      timestamp: "yesterday",
      properties: [1, 2],
      userAgent: 42,
      visitorId: 12345,
    };
    const lines: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: string) => lines.push(line));
    const { response, json, enqueued } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect((json.warnings as { path: string }[]).map((w) => w.path)).toEqual(["properties", "userAgent"]);
    const track = JSON.parse(enqueued[0]?.calls[0] as string);
    expect(track.userId).toBe("12345");
    expect(track.context.pendo.invalid).toEqual({ properties: [1, 2], userAgent: 42 });
    expect(track.context.pendo.timestampFallback).toEqual({ reason: "unreadable", received: "yesterday" });
    const line = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "webhook");
    expect(line).toMatchObject({ level: "warn", outcome: "accepted", warnings: json.warnings });
  });

  it("LOG_LEVEL=warn: a healthy webhook writes no line, one with warnings still does", async () => {
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const)
      vi.spyOn(console, method).mockImplementation((line: string) => lines.push(line));
    const quiet = { LOG_LEVEL: "warn" };
    expect((await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), { env: quiet })).response.status).toBe(
      202,
    );
    expect(lines).toEqual([]);
    const doubtful = { ...withUniqueId(PUBLISHED.guideDisplayed), userAgent: 42 };
    const { json } = await postWebhook(doubtful, { env: quiet });
    const line = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "webhook");
    expect(line).toMatchObject({ level: "warn", outcome: "accepted", warnings: json.warnings });
    // info, the default, writes the accepted webhook's line again.
    lines.length = 0;
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed));
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { level: "info", msg: "webhook", outcome: "accepted" },
    ]);
  });

  it("uses a body hash as the event id when uniqueId is not of Pendo's shape", async () => {
    const webhook = { ...withUniqueId(PUBLISHED.guideDisplayed), uniqueId: "../../etc" };
    const { response, json, enqueued } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect(json.eventId).toMatch(/^[0-9a-f]{40}$/);
    expect(JSON.parse(enqueued[0]?.calls[0] as string).context.pendo.invalid).toEqual({
      uniqueId: "../../etc",
    });
  });

  it.each([
    ["not JSON", "{not json", ""],
    ["a JSON array", "[1,2]", ""],
    ["a JSON string", '"guideDisplayed"', ""],
    ["an object without event", '{"visitorId":"v"}', "event"],
  ])("rejects a body that is %s with a 400 naming the problem", async (_case, body, path) => {
    const { response, json } = await postWebhook(body);
    expect(response.status).toBe(400);
    const issues = json.issues as { path: string; message: string }[];
    expect(issues[0]?.path).toBe(path);
    expect(issues[0]?.message.length).toBeGreaterThan(5);
  });

  it("tells a body without event that event is required", async () => {
    const { json } = await postWebhook('{"visitorId":"v"}');
    expect(json.issues).toEqual([{ path: "event", message: "event is required" }]);
  });

  it("forwards a trackEventReceived without properties.name, which wrapped mode never reads", async () => {
    const webhook = withUniqueId(PUBLISHED.trackEventReceived);
    webhook.properties = { ...webhook.properties, name: "" };
    const { response, json } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect(json.warnings).toBeUndefined();
  });

  it.each([["9"], [11]])("forwards an NPS answer rated %j, which nothing reads", async (rating) => {
    const webhook = {
      ...withUniqueId(PUBLISHED.guideDisplayed),
      event: "npsSubmitted",
      properties: { nps: { rating } },
    };
    const { response, enqueued } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect(JSON.parse(enqueued[0]?.calls[0] as string).properties.nps.rating).toBe(rating);
  });

  it("rejects a body that is not UTF-8", async () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    const request = new Request(`https://relay.test/pendo?token=${TOKEN}`, { method: "POST", body: bytes });
    const { response, json } = await callWorker(request);
    expect(response.status).toBe(400);
    expect(JSON.stringify(json.issues)).toContain("UTF-8");
  });

  it("keeps unknown fields instead of rejecting them", async () => {
    const webhook = { ...withUniqueId(PUBLISHED.visitorCreated), region: "eu", flags: { beta: true } };
    const { response, enqueued } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    const track = JSON.parse(enqueued[0]?.calls[0] as string);
    expect(track.context.pendo.extra).toEqual({ region: "eu", flags: { beta: true } });
  });

  it("quarantines an authenticated invalid webhook with its issues", async () => {
    const body = JSON.stringify({ event: 7, visitorId: `v-${Date.now()}` });
    const before = await quarantineCount();
    const { response } = await postWebhook(body);
    expect(response.status).toBe(400);
    expect(await quarantineCount()).toBe(before + 1);
    const entry = (await quarantined()).find((candidate) => candidate.rawBody === body);
    expect(entry?.issues).toEqual([{ path: "event", message: "event must be a string" }]);
  });
});

describe("body limit", () => {
  const big = (bytes: number) => JSON.stringify({ ...PUBLISHED.guideDisplayed, padding: "x".repeat(bytes) });

  it("answers 413 from Content-Length alone, before reading", async () => {
    const { response, json } = await postWebhook(big(300 * 1024));
    expect(response.status).toBe(413);
    expect(json.message).toContain("262144");
  });

  it("answers 413 for a streamed body with no Content-Length", async () => {
    const payload = new TextEncoder().encode(big(300 * 1024));
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < payload.length; i += 16_384) controller.enqueue(payload.slice(i, i + 16_384));
        controller.close();
      },
    });
    const request = new Request(`https://relay.test/pendo?token=${TOKEN}`, {
      method: "POST",
      body: stream,
      // @ts-expect-error duplex is required by the fetch spec for a streamed body
      duplex: "half",
    });
    const { response } = await callWorker(request);
    expect(response.status).toBe(413);
  });

  it("honours MAX_BODY_BYTES", async () => {
    const { response } = await postWebhook(big(4_000), { env: { MAX_BODY_BYTES: "2048" } });
    expect(response.status).toBe(413);
  });
});

describe("dedup and enqueue", () => {
  it("answers 200 duplicate for an event id already accepted, enqueueing once", async () => {
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const first = await postWebhook(webhook);
    const second = await postWebhook(webhook);
    expect(first.response.status).toBe(202);
    expect(second.response.status).toBe(200);
    expect(second.json).toMatchObject({ status: "duplicate", eventId: webhook.uniqueId });
    expect(second.enqueued).toHaveLength(0);
  });

  it("gives a webhook without uniqueId a deterministic id from its body", async () => {
    const { uniqueId: _dropped, ...webhook } = { ...PUBLISHED.visitorCreated, visitorId: `v-${Date.now()}` };
    const first = await postWebhook(webhook);
    const second = await postWebhook(webhook);
    expect(first.response.status).toBe(202);
    expect(first.json.eventId).toMatch(/^[0-9a-f]{40}$/);
    expect(second.json).toMatchObject({ status: "duplicate", eventId: first.json.eventId });
  });

  it("answers 503 and writes no dedup marker when the queue refuses the event", async () => {
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const failing = { send: () => Promise.reject(new Error("queue unavailable")) } as unknown as Queue;
    const { response, json } = await postWebhook(webhook, { env: { EVENTS: failing } });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("30");
    expect(json.error).toBe("unavailable");
    expect(await env.DEDUP.get(dedupKey("default", webhook.uniqueId))).toBeNull();
    // The sender's retry then goes through.
    expect((await postWebhook(webhook)).response.status).toBe(202);
  });

  it("keeps an event too large for Segment once, answering a redelivery as a duplicate", async () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    (webhook.properties as Record<string, unknown>).bio = "b".repeat(40_000);
    const first = await postWebhook(webhook);
    const second = await postWebhook(webhook);
    expect(first.json).toMatchObject({ status: "dead-lettered", reason: "event-too-large" });
    expect(second.json).toMatchObject({ status: "duplicate" });
    expect((await deadLetters()).filter((letter) => letter.eventId === webhook.uniqueId)).toHaveLength(1);
  });

  it("logs which store failed, which the terse 503 leaves out", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => lines.push(line));
    const failing = { send: () => Promise.reject(new Error("queue unavailable")) } as unknown as Queue;
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), { env: { EVENTS: failing } });
    const webhookLine = lines.map((line) => JSON.parse(line)).find((line) => line.msg === "webhook");
    expect(webhookLine).toMatchObject({ outcome: "unavailable", store: "queue", status: 503 });
  });

  it("enqueues the serialized Segment calls with their byte count", async () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    const { json, enqueued } = await postWebhook(webhook);
    const message = enqueued[0];
    expect(message?.calls).toHaveLength(2);
    expect(message?.bytes).toBe(
      message?.calls.reduce((sum, call) => sum + new TextEncoder().encode(call).length, 0),
    );
    expect(json.calls).toEqual([
      { type: "track", messageId: `pendo:default:${webhook.uniqueId}:track` },
      { type: "identify", messageId: `pendo:default:${webhook.uniqueId}:identify` },
    ]);
  });
});

describe("DEDUP_MODE and the KV calls a webhook makes", () => {
  /** The real namespace, with every call counted by method. */
  function countingKv() {
    const calls: string[] = [];
    const kv = faultyKv(env.DEDUP, (method) => {
      calls.push(method);
      return false;
    });
    return { kv, calls };
  }

  it("kv: one dedup read (started before intake, used once) and one marker write per new webhook", async () => {
    const { kv, calls } = countingKv();
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    expect((await postWebhook(webhook, { env: { DEDUP: kv } })).response.status).toBe(202);
    // Nothing else: the edge lists nothing (do-not-process is the consumer's, in the ledger).
    expect(calls.sort()).toEqual(["get", "put"]);
    expect((await postWebhook(webhook, { env: { DEDUP: kv } })).json.status).toBe("duplicate");
  });

  it("off: no KV call at all for a webhook, and a redelivery is enqueued again under the same messageIds", async () => {
    const { kv, calls } = countingKv();
    const off = { DEDUP: kv, DEDUP_MODE: "off", HONOR_DO_NOT_PROCESS: "false" };
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const first = await postWebhook(webhook, { env: off });
    const second = await postWebhook(webhook, { env: off });
    expect([first.response.status, second.response.status]).toEqual([202, 202]);
    expect(calls).toEqual([]);
    expect(second.json.calls).toEqual(first.json.calls);
  });

  it("hashes no visitor id while a source has no do-not-process flag", async () => {
    const digest = vi.spyOn(crypto.subtle, "digest");
    const source = `nohash-${crypto.randomUUID().slice(0, 8)}`;
    const sources = JSON.stringify({ [source]: { writeKey: "k", tokens: ["token-nohash-0123456789"] } });
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: `/pendo/${source}`,
      token: "token-nohash-0123456789",
      env: { SOURCES: sources },
    });
    // Only the presented token is digested (for the constant-time compare), never a visitor id.
    const hashed = digest.mock.calls.map(([, data]) => new TextDecoder().decode(data as Uint8Array));
    expect(hashed).not.toContain(PUBLISHED.guideDisplayed.visitorId);
  });
});

describe("configuration and routes", () => {
  it("answers 503 naming the setting when configuration is invalid, without echoing values", async () => {
    const { response, json } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: { SEGMENT_ENDPOINT: "not a url", EVENT_NAMES: "shouting" },
    });
    expect(response.status).toBe(503);
    const issues = json.issues as { path: string }[];
    expect(issues.map((issue) => issue.path).sort()).toEqual(["EVENT_NAMES", "SEGMENT_ENDPOINT"]);
    expect(JSON.stringify(json)).not.toContain("shouting");
  });

  it("answers 503 when no WEBHOOK_TOKEN is configured", async () => {
    const { response, json } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: { WEBHOOK_TOKEN: undefined },
    });
    expect(response.status).toBe(503);
    expect(json.issues).toEqual([{ path: "WEBHOOK_TOKEN", message: "is not set" }]);
  });

  // Nothing is accepted that cannot be delivered: Pendo retries a 503 until the secrets exist.
  it("answers 503 naming every missing secret before any is set, and queues nothing", async () => {
    const { response, json, enqueued } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      env: { WEBHOOK_TOKEN: undefined, SEGMENT_WRITE_KEY: undefined },
    });
    expect(response.status).toBe(503);
    expect(json).toMatchObject({ error: "misconfigured" });
    expect(json.issues).toEqual([
      { path: "WEBHOOK_TOKEN", message: "is not set" },
      { path: "SEGMENT_WRITE_KEY", message: "is not set" },
    ]);
    expect(enqueued).toEqual([]);
  });

  it("answers 503 naming SEGMENT_WRITE_KEY while it is unset, but only to a sender with the token", async () => {
    const unset = { SEGMENT_WRITE_KEY: undefined };
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const { response, json, enqueued } = await postWebhook(webhook, { env: unset });
    expect(response.status).toBe(503);
    expect(json.issues).toEqual([{ path: "SEGMENT_WRITE_KEY", message: "is not set" }]);
    expect(enqueued).toEqual([]);
    const stranger = await postWebhook(webhook, { env: unset, token: "wrong-token-0123456789" });
    expect(stranger.response.status).toBe(401);
    // Once the key is set the same webhook is accepted: nothing marked it as seen before.
    const later = await postWebhook(webhook);
    expect(later.response.status).toBe(202);
  });

  it("answers 503 naming a named source's endpoint when its destination has no default", async () => {
    const token = "r".repeat(16);
    const SOURCES = JSON.stringify({
      rudder: { writeKey: "k", tokens: [token], destination: "rudderstack" },
    });
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const { response, json, enqueued } = await postWebhook(webhook, {
      path: "/pendo/rudder",
      token,
      env: { SOURCES },
    });
    expect(response.status).toBe(503);
    expect(json.issues).toEqual([
      { path: "SOURCES.rudder.endpoint", message: "is not set, and rudderstack has no default endpoint" },
    ]);
    expect(enqueued).toEqual([]);
    expect(JSON.stringify(json)).not.toContain(token);
  });

  it("answers 401 for an unknown source (as for a wrong token) and 404 for unknown routes", async () => {
    // test/hostile-edge.test.ts checks the two answers are byte-identical.
    const source = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), { path: "/pendo/nope" });
    expect(source.response.status).toBe(401);
    const route = await callWorker(new Request("https://relay.test/elsewhere"));
    expect(route.response.status).toBe(404);
  });

  it("never logs the token or the write key", async () => {
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const) {
      vi.spyOn(console, method).mockImplementation((...args) => lines.push(args.join(" ")));
    }
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed));
    await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), { token: "wrong-token-0123456789" });
    await postWebhook("{bad");
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const text = lines.join("\n");
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(env.SEGMENT_WRITE_KEY as string);
  });
});

describe("hostile input", () => {
  it.each([40, 20_000])(
    "answers 400, not 500, for properties nested %i deep, naming where, and quarantines it",
    async (depth) => {
      const webhook = JSON.stringify({ ...withUniqueId(PUBLISHED.guideDisplayed), properties: { x: 1 } });
      const deep = webhook.replace('{"x":1}', `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`);
      const before = await quarantineCount();
      const { response, json } = await postWebhook(deep);
      expect(response.status).toBe(400);
      expect(json.issues).toEqual([
        { path: `properties${".a".repeat(31)}`, message: "nested deeper than 32 levels" },
      ]);
      expect(await quarantineCount()).toBe(before + 1);
    },
  );

  it("accepts nesting up to the limit", async () => {
    const webhook = JSON.stringify({ ...withUniqueId(PUBLISHED.guideDisplayed), properties: { x: 1 } });
    const { response } = await postWebhook(
      webhook.replace('{"x":1}', `${'{"a":'.repeat(31)}1${"}".repeat(31)}`),
    );
    expect(response.status).toBe(202);
  });

  it("keeps a __proto__ field as data, in the envelope and in metadata, polluting nothing", async () => {
    const uniqueId = withUniqueId({}).uniqueId;
    const body = `{"__proto__":{"polluted":true},"event":"visitorMetadataUpdated","visitorId":"v","uniqueId":"${uniqueId}",
      "app":{"id":1,"__proto__":{"x":2}},"properties":{"metadata":{"agent":{"__proto__":{"y":3},"plan":"pro"}}}}`;
    const { response, enqueued } = await postWebhook(body);
    expect(response.status).toBe(202);
    const [track, identify] = (enqueued[0]?.calls ?? []).map((call) => call);
    expect(track).toContain('"extra":{"__proto__":{"polluted":true}}');
    expect(track).toContain('"app":{"id":1,"__proto__":{"x":2}}');
    expect(identify).toContain('"traits":{"__proto__":{"y":3},"plan":"pro"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("sender-chosen names in log lines", () => {
  it("cuts an event name of 100,000 characters in the webhook line", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => lines.push(line));
    vi.spyOn(console, "warn").mockImplementation((line: string) => lines.push(line));
    const event = `huge${"n".repeat(100_000)}`;
    const { response } = await postWebhook({ ...withUniqueId(PUBLISHED.guideDisplayed), event });
    expect(response.status).toBe(202);
    const line = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "webhook");
    expect(line?.event.startsWith("huge")).toBe(true);
    expect(line?.event.length).toBeLessThanOrEqual(200);
  });

  it("cuts an unknown source name of 15,000 characters, unauthenticated, in the webhook line", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => lines.push(line));
    const name = `nope${"s".repeat(15_000)}`;
    const { response } = await postWebhook(withUniqueId(PUBLISHED.guideDisplayed), {
      path: `/pendo/${name}`,
      token: "wrong-token-0123456789",
    });
    expect(response.status).toBe(401);
    const line = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "webhook");
    expect(line).toMatchObject({ outcome: "unknown-source", status: 401 });
    expect(line?.source.startsWith("nope")).toBe(true);
    expect(line?.source.length).toBeLessThanOrEqual(25);
  });
});
