import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { recordView } from "../src/admin/view";
import { parseSettings } from "../src/config";
import { DESTINATIONS, type DestinationName, PROFILES, SHORT_ID } from "../src/destination/profiles";
import type { Env } from "../src/env";
import worker from "../src/index";
import { prepareEvent } from "../src/intake/prepare";
import { CATALOG } from "../src/pendo/catalog";
import type { RelayMessage } from "../src/queue/message";
import { resolveSource, type Source } from "../src/sources";
import { jitsuMessageId, SegmentStandIn } from "../standin/segment";
import { ADMIN_TOKEN, callWorker, PUBLISHED, WRITE_KEY, withUniqueId } from "./helpers";
import { deadLetterFor, queueMessages, recordsOf } from "./messages";

/**
 * Contract tests, one block per destination profile: the relay against a stand-in playing that
 * destination (standin/segment.ts), with that destination's documented rules.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

const URL_BASE = "https://destination.example";

/** Routes the Worker's fetch to a stand-in playing `destination`. */
function useDestination(destination: DestinationName) {
  const standIn = new SegmentStandIn([WRITE_KEY]);
  standIn.profile = PROFILES[destination];
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init);
    if (new URL(request.url).origin !== URL_BASE) throw new TypeError(`unexpected fetch to ${request.url}`);
    return standIn.handle(request);
  });
  return { standIn, spy };
}

const settingsFor = (destination: DestinationName) => ({
  DESTINATION: destination,
  DESTINATION_URL: URL_BASE,
});

function sourceFor(destination: DestinationName, name: string): Source {
  const config = parseSettings({
    ...settingsFor(destination),
    SEGMENT_WRITE_KEY: WRITE_KEY,
  } as unknown as Env);
  if (!config.ok) throw new Error(JSON.stringify(config.issues));
  return { ...(resolveSource(config.settings, "default") as Source), name };
}

/** The queue message the edge would enqueue for this webhook and destination. */
async function messageFor(
  destination: DestinationName,
  webhook: object,
  source = "default",
): Promise<RelayMessage> {
  const prepared = await prepareEvent(JSON.stringify(webhook), sourceFor(destination, source), Date.now());
  if (!prepared.ok) throw new Error(prepared.reason);
  return prepared.message;
}

async function consume(destination: DestinationName, bodies: RelayMessage[]) {
  const batch = createMessageBatch<unknown>("pendo-events", queueMessages(bodies));
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...settingsFor(destination) } as Env, ctx);
  return getQueueResult(batch, ctx);
}

const visitor = () => withUniqueId(PUBLISHED.visitorCreated);
const REJECT = "reject-me";
const rejectMarked = (call: Record<string, unknown>) =>
  (call.properties as Record<string, unknown> | undefined)?.marker === REJECT;

describe.each(DESTINATIONS)("destination profile %s", (destination) => {
  const profile = PROFILES[destination];

  it("sends to its path with its auth form and headers, and every event arrives", async () => {
    const { standIn, spy } = useDestination(destination);
    const bodies = await Promise.all([visitor(), visitor()].map((w) => messageFor(destination, w)));
    const result = await consume(destination, bodies);
    expect(result.explicitAcks).toHaveLength(2);
    expect(spy).toHaveBeenCalledTimes(1);
    const [url, init] = spy.mock.calls[0] as [string, RequestInit];
    expect(url).toBe(`${URL_BASE}/v1/batch`);
    const headers = new Headers(init.headers);
    if (destination === "jitsu") {
      expect(headers.get("x-write-key")).toBe(WRITE_KEY);
      expect(headers.get("authorization")).toBeNull();
    } else expect(headers.get("authorization")).toBe(`Basic ${btoa(`${WRITE_KEY}:`)}`);
    expect(headers.get("x-strict-mode")).toBe(destination === "customerio" ? "1" : null);
    // visitorCreated: a track and an identify each.
    expect(standIn.received).toHaveLength(4);
    expect(standIn.duplicates).toBe(0);
  });

  it("is refused with 401 when its auth form is wrong, and the stand-in keeps nothing", async () => {
    const standIn = new SegmentStandIn([WRITE_KEY]);
    standIn.profile = profile;
    const body = JSON.stringify({ batch: [], sentAt: new Date().toISOString() });
    const wrongForm: Record<string, string> =
      destination === "jitsu"
        ? { authorization: `Basic ${btoa(`${WRITE_KEY}:`)}` }
        : { "x-write-key": WRITE_KEY };
    const response = await standIn.handle(
      new Request(`${URL_BASE}/v1/batch`, { method: "POST", headers: wrongForm, body }),
    );
    expect(response.status).toBe(401);
  });

  it("packs requests under its own request cap", async () => {
    const { standIn } = useDestination(destination);
    // 40 messages of about 60 KB (track and identify both carry the padding): 2.4 MB, over every
    // 500 KB cap, under RudderStack's 4,000 KB.
    const bodies = await Promise.all(
      Array.from({ length: 40 }, () =>
        messageFor(destination, { ...visitor(), properties: { padding: "x".repeat(30_000) } }),
      ),
    );
    const result = await consume(destination, bodies);
    expect(result.explicitAcks).toHaveLength(40);
    expect(standIn.requests.every((request) => request.status === 200)).toBe(true);
    expect(Math.max(...standIn.requests.map((request) => request.bytes))).toBeLessThanOrEqual(
      profile.maxRequestBytes,
    );
    if (destination === "rudderstack") expect(standIn.requests).toHaveLength(1);
    else expect(standIn.requests.length).toBeGreaterThanOrEqual(5);
    expect(standIn.received).toHaveLength(80);
  });

  it("never counts a refused event as delivered: it alone becomes a dead letter with the destination's reason", async () => {
    const { standIn } = useDestination(destination);
    standIn.rejectEvent = rejectMarked;
    const bad = withUniqueId(PUBLISHED.guideDisplayed);
    bad.properties = { ...bad.properties, marker: REJECT } as typeof bad.properties;
    const bodies = await Promise.all(
      [visitor(), bad, visitor(), visitor()].map((w) => messageFor(destination, w)),
    );
    const result = await consume(destination, bodies);
    expect(result.explicitAcks).toHaveLength(4);
    const letter = await deadLetterFor(bad.uniqueId);
    expect(letter?.reason).toBe("segment-rejected");
    expect(letter?.detail).toContain("invalid event");
    expect(standIn.received).toHaveLength(6);
    // Jitsu names the refused event inside its 200: one request, no bisection.
    if (destination === "jitsu") expect(standIn.requests).toHaveLength(1);
    else expect(standIn.requests.length).toBeGreaterThan(1);
  });

  it("isolates a whole-batch refusal to the one event that caused it", async () => {
    const { standIn } = useDestination(destination);
    const bodies = await Promise.all(
      [visitor(), visitor(), visitor()].map((w) => messageFor(destination, w)),
    );
    // An event with neither userId nor anonymousId: the transform never makes one (tested below),
    // so it is forged here to play the batch RudderStack refuses whole.
    const forged = bodies[1] as RelayMessage;
    const calls = forged.calls.map((json) => {
      const { userId: _, anonymousId: __, ...call } = JSON.parse(json);
      return JSON.stringify(call);
    });
    bodies[1] = { ...forged, calls, bytes: calls.reduce((sum, call) => sum + call.length, 0) };
    const result = await consume(destination, bodies);
    expect(result.explicitAcks).toHaveLength(3);
    if (profile.refusesWholeBatch) {
      const letter = await deadLetterFor(forged.eventId);
      expect(letter?.reason).toBe("segment-rejected");
      expect(letter?.lastStatus).toBe(400);
      expect(standIn.received).toHaveLength(4);
    }
  });

  it("sends messageIds the destination keeps as they are, distinct per call and the same on redelivery", async () => {
    const { standIn } = useDestination(destination);
    const source = "a-long-source-name-24chr";
    const webhook = visitor();
    const first = await messageFor(destination, webhook, source);
    const again = await messageFor(destination, webhook, source);
    expect(again.calls).toEqual(first.calls);
    const ids = first.calls.map((call) => JSON.parse(call).messageId as string);
    expect(new Set(ids).size).toBe(ids.length);
    if (profile.messageIds === "short") {
      for (const id of ids) {
        expect(id).toMatch(SHORT_ID);
        expect(jitsuMessageId(id)).toBe(id);
      }
    }
    const result = await consume(destination, [{ ...first, source: "default" }]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(standIn.messageIds).toEqual(ids);
    expect(standIn.duplicates).toBe(0);
  });
});

describe("what the transform guarantees", () => {
  it("gives every call of every known event a userId or an anonymousId, so no batch is refused whole for it", async () => {
    for (const { name: event } of CATALOG) {
      const known = { ...withUniqueId(PUBLISHED.visitorCreated), event };
      // Admin events name no visitor; some name no subscription or app either.
      const bare = { event, uniqueId: known.uniqueId, timestamp: known.timestamp, properties: {} };
      for (const webhook of [known, { ...known, visitorId: "_PENDO_T_anon" }, bare]) {
        const message = await messageFor("rudderstack", webhook);
        for (const json of message.calls) {
          const call = JSON.parse(json);
          expect(Boolean(call.userId || call.anonymousId), `${event} ${call.type}`).toBe(true);
        }
      }
    }
  });
});

describe("findable from the Pendo uniqueId", () => {
  it("keeps the uniqueId in context.pendo and shows it beside the ids sent in the dead-letter detail", async () => {
    const webhook = visitor();
    const message = await messageFor("jitsu", webhook);
    for (const json of message.calls) expect(JSON.parse(json).context.pendo.eventId).toBe(webhook.uniqueId);
    const { standIn } = useDestination("jitsu");
    standIn.rejectEvent = () => true;
    await consume("jitsu", [message]);
    const [record] = await recordsOf("SELECT * FROM records WHERE event_id = ?", webhook.uniqueId);
    if (!record) throw new Error("no dead letter");
    const view = recordView(record);
    expect(view.eventId).toBe(webhook.uniqueId);
    expect(view.messageIds).toEqual(message.calls.map((call) => JSON.parse(call).messageId));
  });
});

describe("the admin's /health names each source's destination", () => {
  it("lists destination and endpoint per source, and a missing URL as a problem", async () => {
    const sources = JSON.stringify({
      events: { writeKey: "k-events", tokens: ["e".repeat(16)], destination: "jitsu", endpoint: URL_BASE },
      rudder: { writeKey: "k-rudder", tokens: ["r".repeat(16)], destination: "rudderstack" },
    });
    const request = new Request("https://relay.test/health", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const { response, json } = await callWorker(request, { SOURCES: sources });
    expect(response.status).toBe(503);
    expect(json.sources).toMatchObject([
      { name: "default", destination: "segment", endpoint: "https://api.segment.io" },
      { name: "events", destination: "jitsu", endpoint: URL_BASE },
      { name: "rudder", destination: "rudderstack" },
    ]);
    expect(json.problems).toEqual([
      "source rudder: SOURCES.rudder.endpoint is not set, and rudderstack has no default endpoint",
    ]);
  });
});

describe("refusals the relay must not miss", () => {
  it("Customer.io without X-Strict-Mode answers 200 and drops the event: why the relay always sends the header", async () => {
    const standIn = new SegmentStandIn([WRITE_KEY]);
    standIn.profile = PROFILES.customerio;
    standIn.rejectEvent = () => true;
    const message = await messageFor("customerio", visitor());
    const body = `{"batch":[${message.calls.join(",")}],"sentAt":"${new Date().toISOString()}"}`;
    const headers = { authorization: `Basic ${btoa(`${WRITE_KEY}:`)}` };
    const lax = await standIn.handle(new Request(`${URL_BASE}/v1/batch`, { method: "POST", headers, body }));
    expect(lax.status).toBe(200);
    expect(standIn.received).toHaveLength(0);
    const strict = await standIn.handle(
      new Request(`${URL_BASE}/v1/batch`, {
        method: "POST",
        headers: { ...headers, ...PROFILES.customerio.headers },
        body,
      }),
    );
    expect(strict.status).toBe(400);
  });

  it("a 2xx naming ids the relay did not send (Jitsu rewrote them) is split until the refused event stands alone", async () => {
    const { standIn } = useDestination("jitsu");
    standIn.rejectEvent = rejectMarked;
    const bad = withUniqueId(PUBLISHED.guideDisplayed);
    bad.properties = { ...bad.properties, marker: REJECT } as typeof bad.properties;
    // Long ids, as queued before the source moved to Jitsu: Jitsu reports them rewritten.
    const bodies = await Promise.all([visitor(), bad, visitor()].map((w) => messageFor("segment", w)));
    const result = await consume("jitsu", bodies);
    expect(result.explicitAcks).toHaveLength(3);
    expect((await deadLetterFor(bad.uniqueId))?.reason).toBe("segment-rejected");
    expect(standIn.requests.length).toBeGreaterThan(1);
    expect(standIn.received).toHaveLength(4);
  });

  it("a 2xx with success: false is not a delivery: the request is split like a 400", async () => {
    const bodies = await Promise.all([visitor(), visitor()].map((w) => messageFor("hightouch", w)));
    let calls = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => {
      calls++;
      return Response.json(calls === 1 ? { success: false, message: "bad batch" } : { success: true });
    });
    const result = await consume("hightouch", bodies);
    expect(result.explicitAcks).toHaveLength(2);
    expect(calls).toBe(3);
  });
});

describe("the edge answers with the ids the destination will keep", () => {
  it("a Jitsu source's webhook is answered with short ids, a Segment source's with the long form", async () => {
    const token = "j".repeat(16);
    const sources = JSON.stringify({
      "a-long-source-name-24chr": {
        writeKey: "k",
        tokens: [token],
        destination: "jitsu",
        endpoint: URL_BASE,
      },
    });
    const webhook = visitor();
    const request = new Request(`https://relay.test/pendo/a-long-source-name-24chr?token=${token}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(webhook),
    });
    const { response, json } = await callWorker(request, { SOURCES: sources });
    expect(response.status).toBe(202);
    const ids = (json.calls as { messageId: string }[]).map((call) => call.messageId);
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(SHORT_ID);
    expect(json.eventId).toBe(webhook.uniqueId);
  });
});
