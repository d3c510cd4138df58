import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KEY_PREFIX } from "../src/kv/keys";
import { deadLetterOf, putDeadLetter } from "../src/kv/records";
import { ADMIN_TOKEN, PUBLISHED, postWebhook, TOKEN, WRITE_KEY, withUniqueId } from "./helpers";
import { seedDeadLetter, seedQuarantine } from "./messages";

const seed = (reason: "segment-refused" | "segment-rejected", event = "guideDisplayed") =>
  seedDeadLetter({ reason, event });

import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

function admin(path: string, init: RequestInit & { token?: string | null } = {}) {
  const token = init.token === undefined ? ADMIN_TOKEN : init.token;
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  return exports.default.fetch(new Request(`https://relay.test/admin${path}`, { ...init, headers }));
}

describe("admin auth", () => {
  it("answers 401 without the token or with a wrong one, and never accepts it in the query", async () => {
    expect((await admin("/dead-letters", { token: null })).status).toBe(401);
    expect((await admin("/dead-letters", { token: "wrong-admin-token-0123456789" })).status).toBe(401);
    expect((await admin(`/dead-letters?token=${ADMIN_TOKEN}`, { token: null })).status).toBe(401);
  });

  it("hides every admin route (404) while ADMIN_TOKEN is unset", async () => {
    const { response } = await postWebhook("", {
      path: "/admin/dead-letters",
      env: { ADMIN_TOKEN: undefined },
    });
    expect(response.status).toBe(404);
  });
});

describe("dead letters", () => {
  it("lists with filters on reason, event and time, and shows one entry", async () => {
    const refused = await seed("segment-refused", "pollDisplayed");
    const rejected = await seed("segment-rejected", "npsDisplayed");

    const byReason = (await (await admin("/dead-letters?reason=segment-refused")).json()) as {
      entries: { id: string }[];
    };
    expect(byReason.entries.map((e) => e.id)).toContain(refused.id);
    expect(byReason.entries.map((e) => e.id)).not.toContain(rejected.id);

    const byEvent = (await (await admin("/dead-letters?event=npsDisplayed")).json()) as {
      entries: { id: string }[];
    };
    expect(byEvent.entries.map((e) => e.id)).toEqual([rejected.id]);

    const future = (await (await admin(`/dead-letters?from=${Date.now() + 60_000}`)).json()) as {
      entries: unknown[];
    };
    expect(future.entries).toEqual([]);
    expect((await admin("/dead-letters?from=yesterday")).status).toBe(400);

    const one = await admin(`/dead-letters/${refused.id}`);
    expect(one.status).toBe(200);
    const shown = await one.clone().text();
    for (const secret of [WRITE_KEY, TOKEN, ADMIN_TOKEN, btoa(`${WRITE_KEY}:`)])
      expect(shown).not.toContain(secret);
    expect(await one.json()).toMatchObject({
      id: refused.id,
      reason: "segment-refused",
      message: refused.message,
    });
    expect((await admin("/dead-letters/0000000000000-default.nope.0000")).status).toBe(404);
    expect((await admin("/dead-letters/not-an-id")).status).toBe(404);
  });

  it("replays one through the real queue to Segment, past the dedup marker, and removes it", async () => {
    const { standIn } = useSegmentStandIn();
    const { id, message } = await seed("segment-refused");
    const replay = await admin(`/dead-letters/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    // The queue is shared by this file's tests: wait for this event, not for any event.
    const messageId = JSON.parse(message.calls[0] as string).messageId;
    await vi.waitUntil(() => standIn.messageIds.includes(messageId), { timeout: 20_000, interval: 50 });
    expect((await admin(`/dead-letters/${id}`)).status).toBe(404);
  });

  it("replays every entry matching a filter, and refuses a bulk replay with no filter", async () => {
    useSegmentStandIn();
    const a = await seed("segment-rejected", "pollSubmitted");
    const b = await seed("segment-rejected", "pollSubmitted");
    const other = await seed("segment-refused", "pollSubmitted");
    expect((await admin("/dead-letters/replay", { method: "POST" })).status).toBe(400);
    const result = (await (
      await admin("/dead-letters/replay?reason=segment-rejected&event=pollSubmitted", {
        method: "POST",
      })
    ).json()) as { replayed: number };
    expect(result.replayed).toBe(2);
    for (const id of [a.id, b.id]) expect((await admin(`/dead-letters/${id}`)).status).toBe(404);
    expect((await admin(`/dead-letters/${other.id}`)).status).toBe(200);
  });

  it("reports a result per record, never a 500, when some records cannot be replayed", async () => {
    useSegmentStandIn();
    const event = `bulk-${crypto.randomUUID().slice(0, 8)}`;
    const good = await seed("segment-refused", event);
    // A record this relay never wrote, listed under the same filter.
    const broken = deadLetterOf(
      {
        reason: "segment-refused",
        source: "default",
        eventId: "x",
        event,
        attempts: 1,
        lastStatus: 401,
        detail: "",
        receivedAt: Date.now(),
      },
      Date.now(),
    );
    await putDeadLetter(env.DEDUP, broken, 3_600);
    await env.DEDUP.put(`${KEY_PREFIX.deadLetter}${broken.id}`, '{"not":"a dead letter"}', {
      metadata: { at: Date.now(), source: "default", event, reason: "segment-refused" },
    });
    const response = await admin(`/dead-letters/replay?event=${event}`, { method: "POST" });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      replayed: number;
      failed: number;
      results: { id: string; ok: boolean; reason?: string }[];
    };
    expect(body).toMatchObject({ replayed: 1, failed: 1 });
    expect(body.results).toContainEqual(
      expect.objectContaining({ id: good.id, ok: true, status: "replayed" }),
    );
    expect(body.results).toContainEqual(
      expect.objectContaining({ id: broken.id, ok: false, reason: "malformed-record" }),
    );
  });

  it("scans past pages of records that do not match, up to its limit", async () => {
    useSegmentStandIn();
    const event = `paged-${crypto.randomUUID().slice(0, 8)}`;
    const noise = Array.from({ length: 120 }, () => seed("segment-rejected", `noise-${event}`));
    await Promise.all(noise);
    const wanted = await seed("segment-rejected", event);
    const body = (await (await admin(`/dead-letters/replay?event=${event}`, { method: "POST" })).json()) as {
      replayed: number;
      cursor: string | null;
    };
    expect(body.replayed).toBe(1);
    expect((await admin(`/dead-letters/${wanted.id}`)).status).toBe(404);
  });

  it("does not send a stored event of a visitor flagged do-not-process since, and removes it", async () => {
    const { spy } = useSegmentStandIn();
    const visitor = `dnp-replay-${crypto.randomUUID()}`;
    const letter = await seedDeadLetter({
      webhook: { ...withUniqueId(PUBLISHED.guideDisplayed), visitorId: visitor },
    });
    const flag = {
      ...withUniqueId(PUBLISHED.visitorCreated),
      visitorId: visitor,
      event: "visitorDoNotProcessUpdated",
      properties: { doNotProcess: true },
    };
    expect((await postWebhook(flag)).response.status).toBe(202);
    const replay = await admin(`/dead-letters/${letter.id}/replay`, { method: "POST" });
    expect(await replay.json()).toMatchObject({ ok: true, status: "dropped", reason: "do-not-process" });
    expect((await admin(`/dead-letters/${letter.id}`)).status).toBe(404);
    expect(spy).not.toHaveBeenCalled();
  });

  it("deletes one", async () => {
    const { id } = await seed("segment-refused");
    expect((await admin(`/dead-letters/${id}`, { method: "DELETE" })).status).toBe(200);
    expect((await admin(`/dead-letters/${id}`)).status).toBe(404);
    expect((await admin(`/dead-letters/${id}`, { method: "DELETE" })).status).toBe(404);
  });
});

describe("quarantine", () => {
  it("replay re-runs validation: still invalid stays, with its issues", async () => {
    const body = JSON.stringify({ event: "", visitorId: "v" });
    await postWebhook(body);
    const list = (await (await admin("/quarantine?limit=500")).json()) as { entries: { id: string }[] };
    const ids = list.entries.map((entry) => entry.id);
    const details = await Promise.all(
      ids.map(
        async (id) => (await (await admin(`/quarantine/${id}`)).json()) as { rawBody: string; id: string },
      ),
    );
    const entry = details.find((d) => d.rawBody === body);
    expect(entry).toBeDefined();
    const replay = await admin(`/quarantine/${entry?.id}/replay`, { method: "POST" });
    expect(replay.status).toBe(422);
    expect(await replay.json()).toMatchObject({ error: "invalid", issues: [{ path: "event" }] });
    expect((await admin(`/quarantine/${entry?.id}`)).status).toBe(200);
  });

  it("replay ingests a webhook an earlier relay refused, and removes it", async () => {
    const { standIn } = useSegmentStandIn();
    const webhook = withUniqueId(PUBLISHED.trackEventReceived);
    const id = await seedQuarantine(webhook);
    const replay = await admin(`/quarantine/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    const messageId = `pendo:default:${webhook.uniqueId}:track`;
    await vi.waitUntil(() => standIn.messageIds.includes(messageId), { timeout: 20_000, interval: 50 });
    expect((await admin(`/quarantine/${id}`)).status).toBe(404);
  });
});
