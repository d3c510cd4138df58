import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { compactSource } from "../scripts/console/render";
import type { Env } from "../src/env";
import worker from "../src/index";
import { deadLetterOf } from "../src/ledger/records";
import { ADMIN_TOKEN, callWorker, PUBLISHED, postWebhook, TOKEN, WRITE_KEY, withUniqueId } from "./helpers";
import { relayMessage, seedDeadLetter, seedQuarantine, storeForTest } from "./messages";
import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

const get = (path: string, overrides = {}) =>
  callWorker(
    new Request(`https://relay.test${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
    overrides,
  );
/** The Worker's own answer, body unread: the console's files are not JSON. */
const raw = async (path: string, overrides: Partial<Env> = {}) =>
  worker.fetch(
    new Request(`https://relay.test${path}`),
    { ...env, ...overrides } as Env,
    createExecutionContext(),
  );

describe("console", () => {
  it("serves one page, its script and style, with a strict CSP and no secret in them", async () => {
    for (const path of ["/console", "/console/app.js", "/console/app.css"]) {
      const response = await raw(path);
      expect(response.status, path).toBe(200);
      const csp = response.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
      const text = await response.text();
      for (const secret of [TOKEN, ADMIN_TOKEN, WRITE_KEY]) expect(text).not.toContain(secret);
      if (path === "/console") {
        expect(text).toContain('<label for="token">Admin token</label>');
        // No inline script but the non-executable examples, no other origin.
        expect(text.match(/<script(?![^>]*application\/json)[^>]*>/g)).toEqual([
          '<script src="/console/app.js" defer>',
        ]);
        expect(text).not.toMatch(/(src|href)="https?:/);
      }
    }
  });

  it("opens with the Overview, and its script draws without inline style (the CSP forbids it)", async () => {
    const html = await (await raw("/console")).text();
    const sections = [...html.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]);
    expect(sections.slice(0, 3)).toEqual(["signin", "overview", "status"]);
    expect(html).toMatch(/<nav aria-label="Sections"><a href="#overview">Overview<\/a>/);
    const script = await (await raw("/console/app.js")).text();
    // One question for both charts: the last 24 of the week's hours are the day's.
    expect(script).toContain('"/admin/overview?hours=168"');
    expect(script).not.toMatch(
      /\.style\b|["']style["']|innerHTML|insertAdjacentHTML|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
    );
  });

  it("serves its script and style without indentation and comment-only lines", async () => {
    expect(compactSource("a {\n  b: c;\n}\n\n  // why\n  x(); // kept\n")).toBe(
      "a {\nb: c;\n}\nx(); // kept",
    );
    for (const path of ["/console/app.js", "/console/app.css"]) {
      const text = await (await raw(path)).text();
      expect(
        text.split("\n").filter((line) => /^\s|^\/\/|^$/.test(line)),
        path,
      ).toEqual([]);
    }
  });

  it("does not exist while ADMIN_TOKEN is unset", async () => {
    for (const path of ["/console", "/console/app.js"]) {
      const response = await raw(path, { ADMIN_TOKEN: undefined });
      expect(response.status).toBe(404);
    }
  });
});

describe("admin API for the console", () => {
  it("previews a replay: the stored calls, and a warning past Segment's 24 h dedup window", async () => {
    const fresh = await seedDeadLetter();
    const { json } = await get(`/admin/dead-letters/${fresh.id}/preview`);
    expect(json).toMatchObject({ ok: true, replayable: true, outsideDedupWindow: false, from: "stored" });
    expect(json.willSend).toEqual(fresh.message.calls.map((call) => JSON.parse(call)));

    const message = relayMessage();
    const old = deadLetterOf(
      {
        reason: "segment-refused",
        source: "default",
        eventId: message.eventId,
        event: message.event,
        attempts: 1,
        lastStatus: 401,
        detail: "",
        receivedAt: Date.now() - 30 * 3_600_000,
        message,
      },
      Date.now(),
    );
    await storeForTest(old);
    expect((await get(`/admin/dead-letters/${old.id}/preview`)).json).toMatchObject({
      outsideDedupWindow: true,
      ageHours: 30,
    });
  });

  it("previews a quarantined webhook as today's code maps it", async () => {
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const id = await seedQuarantine(webhook);
    const { json } = await get(`/admin/quarantine/${id}/preview`);
    expect((json.willSend as { messageId: string }[])[0]?.messageId).toBe(
      `pendo:default:${webhook.uniqueId}:track`,
    );
    expect(json.from).toBe("mapped");
  });

  it("counts dead letters by reason under a filter", async () => {
    const event = `count-${crypto.randomUUID().slice(0, 8)}`;
    await seedDeadLetter({ reason: "segment-refused", event });
    await seedDeadLetter({ reason: "segment-refused", event });
    await seedDeadLetter({ reason: "segment-rejected", event });
    const { json } = await get(`/admin/dead-letters/summary?event=${event}`);
    expect(json).toEqual({
      total: 3,
      byReason: { "segment-refused": 2, "segment-rejected": 1 },
      complete: true,
    });
  });

  it("lists drift: an unknown event name and a property key new to a documented family", async () => {
    // The edge notes drift on the message; the consumer records it. This test hands the two
    // messages to the consumer itself (not the real queue), so each is counted exactly once.
    useSegmentStandIn();
    const bodies: unknown[] = [];
    const kept = { send: async (body: unknown) => void bodies.push(body) } as unknown as Queue<string>;
    const name = `guideSnoozed${crypto.randomUUID().slice(0, 6)}`;
    const key = `snooze${crypto.randomUUID().slice(0, 6)}`;
    await postWebhook({ ...withUniqueId(PUBLISHED.guideDisplayed), event: name }, { env: { EVENTS: kept } });
    const guide = withUniqueId(PUBLISHED.guideDisplayed);
    await postWebhook(
      { ...guide, properties: { ...guide.properties, [key]: 10 } },
      { env: { EVENTS: kept } },
    );
    expect(bodies).toHaveLength(2);
    const batch = createMessageBatch<unknown>(
      "pendo-events",
      bodies.map((body, i) => ({ id: `drift-${i}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch, env as Env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(2);
    const { json } = await get("/admin/drift");
    const entries = json.entries as {
      kind: string;
      event: string;
      key?: string;
      count: number;
      firstSeen: number;
    }[];
    expect(entries).toContainEqual(expect.objectContaining({ kind: "event", event: name, count: 1 }));
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: "property", event: "guideDisplayed", key, count: 1 }),
    );
  });

  it("needs the admin token for every route the console reads", async () => {
    for (const path of ["/admin/drift", "/admin/alerts", "/admin/dead-letters/summary", "/admin/overview"]) {
      const { response } = await callWorker(new Request(`https://relay.test${path}`));
      expect(response.status, path).toBe(401);
    }
  });
});
