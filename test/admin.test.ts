import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { putDeadLetter, putQuarantine } from "../src/delivery/records";
import { recordId } from "../src/kv/keys";
import { ADMIN_TOKEN, PUBLISHED, postWebhook, TOKEN, WRITE_KEY, withUniqueId } from "./helpers";
import { relayMessage } from "./messages";
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

async function seedDeadLetter(reason: "segment-refused" | "segment-rejected", event = "guideDisplayed") {
  const message = relayMessage({ ...withUniqueId(PUBLISHED.guideDisplayed), event });
  const id = recordId(Date.now(), message.eventId);
  await putDeadLetter(
    env.DEDUP,
    {
      id,
      reason,
      source: "default",
      eventId: message.eventId,
      event,
      attempts: 1,
      lastStatus: reason === "segment-refused" ? 401 : 400,
      detail: "seeded",
      receivedAt: Date.now(),
      lastFailureAt: Date.now(),
      message,
    },
    3_600,
  );
  return { id, message };
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
    const refused = await seedDeadLetter("segment-refused", "pollDisplayed");
    const rejected = await seedDeadLetter("segment-rejected", "npsDisplayed");

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
    expect((await admin("/dead-letters/0000000000000-nope")).status).toBe(404);
    expect((await admin("/dead-letters/not-an-id")).status).toBe(404);
  });

  it("replays one through the real queue to Segment, past the dedup marker, and removes it", async () => {
    const { standIn } = useSegmentStandIn();
    const { id, message } = await seedDeadLetter("segment-refused");
    const replay = await admin(`/dead-letters/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    // The queue is shared by this file's tests: wait for this event, not for any event.
    const messageId = JSON.parse(message.calls[0] as string).messageId;
    await vi.waitUntil(() => standIn.messageIds.includes(messageId), { timeout: 20_000, interval: 50 });
    expect((await admin(`/dead-letters/${id}`)).status).toBe(404);
  });

  it("replays every entry matching a filter, and refuses a bulk replay with no filter", async () => {
    useSegmentStandIn();
    const a = await seedDeadLetter("segment-rejected", "pollSubmitted");
    const b = await seedDeadLetter("segment-rejected", "pollSubmitted");
    const other = await seedDeadLetter("segment-refused", "pollSubmitted");
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

  it("deletes one", async () => {
    const { id } = await seedDeadLetter("segment-refused");
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
    const id = recordId(Date.now(), crypto.randomUUID());
    // As an older relay would have stored it: authenticated, refused, kept.
    await putQuarantine(
      env.DEDUP,
      {
        id,
        source: "default",
        receivedAt: Date.now(),
        issues: [{ path: "x", message: "old rule" }],
        rawBody: JSON.stringify(webhook),
      },
      3_600,
    );
    const replay = await admin(`/quarantine/${id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    const messageId = `pendo:default:${webhook.uniqueId}:track`;
    await vi.waitUntil(() => standIn.messageIds.includes(messageId), { timeout: 20_000, interval: 50 });
    expect((await admin(`/quarantine/${id}`)).status).toBe(404);
  });
});
