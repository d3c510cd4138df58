import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { newRecordId, quarantineOf } from "../src/ledger/records";
import {
  ADMIN_TOKEN,
  callWorker,
  keptQueue,
  PUBLISHED,
  postWebhook,
  TOKEN,
  WRITE_KEY,
  withUniqueId,
} from "./helpers";
import {
  quarantined,
  refusedLetter,
  relayMessage,
  seedDeadLetter,
  seedQuarantine,
  storeForTest,
} from "./messages";
import { useSegmentStandIn } from "./standin";

const seed = (reason: "segment-refused" | "segment-rejected", event = "guideDisplayed") =>
  seedDeadLetter({ reason, event });

/** A row this relay never wrote: its attempts column holds text, so it fails the row schema. */
async function insertMalformedRow(event: string): Promise<string> {
  const id = newRecordId(Date.now(), "default", "broken");
  await env.LEDGER.prepare(
    `INSERT INTO records (id, kind, state, reason, source, event, event_id, attempts, detail, received_at, created_at)
     VALUES (?, 'dead-letters', 'stored', 'segment-refused', 'default', ?, 'broken', 'several', '', ?, ?)`,
  )
    .bind(id, event, Date.now(), Date.now())
    .run();
  return id;
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** A record's state as the admin API shows it. */
async function stateOf(kind: "dead-letters" | "quarantine", id: string) {
  const response = await admin(`/${kind}/${id}`);
  return ((await response.json()) as { state?: string }).state;
}

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
    const view = (await one.json()) as Record<string, unknown>;
    expect(view).toMatchObject({
      id: refused.id,
      kind: "dead-letters",
      state: "stored",
      reason: "segment-refused",
      eventId: refused.message.eventId,
      message: refused.message,
      messageIds: refused.message.calls.map((call) => JSON.parse(call).messageId),
    });
    expect(view.lastFailureAt).toEqual(expect.any(Number));
    // The message is shown decoded, never in its queue encoding; no body, no body fields.
    for (const gone of ["rawMessage", "replayedAt", "rawBody", "rawBodyBase64", "body", "createdAt"])
      expect(view).not.toHaveProperty(gone);
    expect((await admin("/dead-letters/0000000000000-default.nope.0000")).status).toBe(404);
    expect((await admin("/dead-letters/not-an-id")).status).toBe(404);
  });

  it("replays one through the real queue to Segment, past the dedup marker, and keeps it as sent", async () => {
    const { standIn } = useSegmentStandIn();
    const { id, message } = await seed("segment-refused");
    const replay = await admin(`/dead-letters/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    // The queue is shared by this file's tests: wait for this event, not for any event.
    const messageId = JSON.parse(message.calls[0] as string).messageId;
    await vi.waitUntil(() => standIn.messageIds.includes(messageId), { timeout: 20_000, interval: 50 });
    expect(await stateOf("dead-letters", id)).toBe("sent");
    // Gone from the list of what waits; listed under state=sent.
    const waiting = (await (await admin("/dead-letters?limit=500")).json()) as { entries: { id: string }[] };
    expect(waiting.entries.map((e) => e.id)).not.toContain(id);
    const sent = (await (await admin("/dead-letters?state=sent&limit=500")).json()) as {
      entries: { id: string }[];
    };
    expect(sent.entries.map((e) => e.id)).toContain(id);
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
    for (const id of [a.id, b.id]) expect(await stateOf("dead-letters", id)).toBe("sent");
    expect(await stateOf("dead-letters", other.id)).toBe("stored");
  });

  it("reports a result per record, never a 500, when some records cannot be replayed", async () => {
    useSegmentStandIn();
    const event = `bulk-${crypto.randomUUID().slice(0, 8)}`;
    const good = await seed("segment-refused", event);
    // A record this relay never wrote, listed under the same filter.
    const broken = { id: await insertMalformedRow(event) };
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

  it("answers 422 for a stored row that does not match the schema, to read or to replay", async () => {
    const id = await insertMalformedRow(`broken-${crypto.randomUUID().slice(0, 8)}`);
    const read = await admin(`/dead-letters/${id}`);
    expect(read.status).toBe(422);
    expect(await read.json()).toMatchObject({ error: "malformed-record" });
    const replay = await admin(`/dead-letters/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(422);
    expect(await replay.json()).toMatchObject({ error: "malformed-record", ok: false });
    expect((await admin(`/dead-letters/${id}/preview`)).status).toBe(422);
    // The refused replay gave its claim back: once repaired, the row is replayable.
    const row = await env.LEDGER.prepare("SELECT state, settled_at FROM records WHERE id = ?")
      .bind(id)
      .first();
    expect(row).toEqual({ state: "stored", settled_at: null });
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
    expect(await stateOf("dead-letters", wanted.id)).toBe("sent");
  });

  it("answers dropped for an event of a visitor flagged before its time, and sends nothing", async () => {
    // The answer says what happens to the event: the replay decides by the event's own time.
    const { standIn } = useSegmentStandIn();
    const visitor = `dnp-replay-${crypto.randomUUID()}`;
    const message = {
      ...relayMessage({ ...withUniqueId(PUBLISHED.guideDisplayed), visitorId: visitor }),
      visitor,
      // After the flag event's time (the published example's, in 2021): the flag applies to it.
      eventTime: Date.now(),
    };
    const letter = refusedLetter(message);
    await storeForTest(letter);
    // Neither message reaches the real queue: this test hands them to the consumer itself.
    const kept = keptQueue();
    const flag = {
      ...withUniqueId(PUBLISHED.visitorCreated),
      visitorId: visitor,
      event: "visitorDoNotProcessUpdated",
      properties: { doNotProcess: true },
    };
    expect((await postWebhook(flag, { env: { EVENTS: kept.queue } })).response.status).toBe(202);
    const replay = await callWorker(
      new Request(`https://relay.test/admin/dead-letters/${letter.id}/replay`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
      { EVENTS: kept.queue },
    );
    expect(replay.response.status).toBe(200);
    expect(replay.json).toMatchObject({ ok: true, status: "dropped", eventId: message.eventId });
    expect(replay.sent).toEqual([]);
    expect(await stateOf("dead-letters", letter.id)).toBe("dropped");
    // Only the flag event itself was enqueued; it is delivered, the dropped event never is.
    expect(kept.bodies()).toHaveLength(1);

    const batch = createMessageBatch<unknown>(
      "pendo-events",
      kept.bodies().map((body, i) => ({ id: `dnp-${i}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch, env as Env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    const replayedId = JSON.parse(message.calls[0] as string).messageId;
    expect(standIn.messageIds).not.toContain(replayedId);
    expect(standIn.messageIds).toContain(`pendo:default:${flag.uniqueId}:track`);
  });

  it("deletes one: a tombstone that no replay takes and no second delete finds", async () => {
    const { id } = await seed("segment-refused");
    expect((await admin(`/dead-letters/${id}`, { method: "DELETE" })).status).toBe(200);
    expect(await stateOf("dead-letters", id)).toBe("deleted");
    expect((await admin(`/dead-letters/${id}`, { method: "DELETE" })).status).toBe(404);
    expect((await admin(`/dead-letters/${id}/replay`, { method: "POST" })).status).toBe(409);
  });
});

describe("quarantine", () => {
  it("lists without bodies: each entry with its first issues, cut, and how many it has", async () => {
    const issues = [
      { path: "event", message: "event is required" },
      { path: "p".repeat(5_000), message: "m".repeat(5_000) },
      { path: "visitorId", message: "must be a string" },
      { path: "accountId", message: "must be a string" },
    ];
    const entry = quarantineOf(
      { source: "default", issues, body: new TextEncoder().encode(`{"big":"${"x".repeat(500_000)}"}`) },
      Date.now(),
    );
    await storeForTest(entry);
    const response = await admin(`/quarantine?limit=500&from=${entry.createdAt}`);
    const text = await response.text();
    const listed = (JSON.parse(text) as { entries: Record<string, unknown>[] }).entries.find(
      (e) => e.id === entry.id,
    );
    expect(listed).toMatchObject({ issueCount: 4 });
    expect(listed?.issues).toEqual([
      issues[0],
      // The row keeps a path of 200 characters (the last an ellipsis); the list shows 200 of each.
      { path: `${"p".repeat(199)}…`, message: "m".repeat(200) },
      issues[2],
    ]);
    for (const field of ["body", "rawBody", "rawBodyBase64", "detail"])
      expect(listed).not.toHaveProperty(field);
    expect(text.length).toBeLessThan(50_000);
  });

  it("replay re-runs validation: still invalid stays, with its issues", async () => {
    const body = JSON.stringify({ event: "", visitorId: `v-${crypto.randomUUID()}` });
    await postWebhook(body);
    const stored = (await quarantined()).find((record) => record.rawBody === body);
    expect(stored).toBeDefined();
    const detail = await admin(`/quarantine/${stored?.id}`);
    expect(await detail.json()).toMatchObject({
      id: stored?.id,
      kind: "quarantine",
      reason: "invalid",
      state: "stored",
      rawBody: body,
      rawBodyBase64: btoa(body),
      issues: [{ path: "event" }],
    });
    const entry = stored;
    const replay = await admin(`/quarantine/${entry?.id}/replay`, { method: "POST" });
    expect(replay.status).toBe(422);
    expect(await replay.json()).toMatchObject({ error: "invalid", issues: [{ path: "event" }] });
    expect((await admin(`/quarantine/${entry?.id}`)).status).toBe(200);
  });

  it("replay ingests a webhook an earlier relay refused, and keeps it as sent", async () => {
    const { standIn } = useSegmentStandIn();
    const webhook = withUniqueId(PUBLISHED.trackEventReceived);
    const id = await seedQuarantine(webhook);
    const replay = await admin(`/quarantine/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    const messageId = `pendo:default:${webhook.uniqueId}:track`;
    await vi.waitUntil(() => standIn.messageIds.includes(messageId), { timeout: 20_000, interval: 50 });
    expect(await stateOf("quarantine", id)).toBe("sent");
  });
});

describe("numeric query parameters", () => {
  // Every number an admin route reads from its query, each with values that are not a whole
  // number in its range. The filter keeps a bulk replay from touching any record if one passed.
  const NOT_WHOLE = ["1.5", "-1", "x", "1e3", "0x10", "99999999999999999999", " 2"];
  const routes: [string, string, string, string[]][] = [
    ["GET", "/admin/overview", "hours", [...NOT_WHOLE, "0", "2161"]],
    ["GET", "/admin/dead-letters", "limit", [...NOT_WHOLE, "0", "501"]],
    ["GET", "/admin/quarantine", "limit", [...NOT_WHOLE, "0", "501"]],
    ["GET", "/admin/dead-letters", "from", ["1.5", "-1", "1e3", "99999999999999999999", "yesterday"]],
    ["GET", "/admin/quarantine", "to", ["1.5", "-1", "99999999999999999999", "2026-13-45"]],
    ["GET", "/admin/dead-letters/summary", "from", ["1.5", "-1", "99999999999999999999"]],
    ["GET", "/admin/dead-letters", "cursor", ["1.5", "1700000000000", "x'; DROP TABLE records"]],
    ["POST", "/admin/dead-letters/replay", "to", ["1.5", "-1", "99999999999999999999"]],
    [
      "POST",
      "/admin/dead-letters/replay",
      "cursor",
      ["1.5.1700000000000-x", "9999999999999999.1700000000000-x", "1700000000000.nope"],
    ],
    ["GET", "/health", "deep", ["2", "1.0", "true", "-1"]],
  ];
  const cases = routes.flatMap(([method, path, name, values]) =>
    values.map((value) => [method, path, name, value] as const),
  );

  it.each(cases)("%s %s?%s=%s answers 400 naming the parameter", async (method, path, name, value) => {
    const query = new URLSearchParams({ event: "no-such-event-anywhere", [name]: value });
    const response = await exports.default.fetch(
      new Request(`https://relay.test${path}?${query}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    );
    const json = (await response.json()) as { error: string; message: string; issues: { path: string }[] };
    expect(response.status).toBe(400);
    expect(json.error).toBe("invalid");
    expect(json.message).toContain(name);
    expect(json.issues.map((issue) => issue.path)).toEqual([name]);
  });

  it("takes whole numbers in range, times as milliseconds or ISO, and an empty value as absent", async () => {
    const ok = async (path: string) => {
      const response = await admin(path);
      expect(response.status, path).toBe(200);
    };
    await ok("/overview?hours=1");
    await ok("/overview?hours=2160");
    await ok("/dead-letters?limit=1&from=0");
    await ok("/quarantine?limit=500&to=2026-11-30T00:00:00Z");
    await ok(`/dead-letters/summary?from=${Date.now()}&to=`);
    await ok("/dead-letters?cursor=1700000000000-default.x.0000&limit=");
  });
});
