import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { KEY_PREFIX } from "../src/kv/keys";
import { deadLetterOf, quarantineOf, ROW_LIMIT_BYTES } from "../src/ledger/records";
import type { RelayMessage } from "../src/queue/message";
import { decodeFrames } from "../src/r2/frames";
import { R2_PREFIX } from "../src/r2/keys";
import { storeRecords } from "../src/records/store";
import { faultyDb } from "./faults";
import { ADMIN_TOKEN, callWorker, postWebhook, runCron, TOKEN, WRITE_KEY } from "./helpers";
import { queueMessages, relayMessage, storeForTest } from "./messages";
import { useAlertReceiver, useSegmentStandIn } from "./standin";

/**
 * Bytes in R2, the index in D1: a row stays small whatever the input, a group of records is one
 * object, the bytes come back byte for byte, and a source's byte budget keeps the flood out
 * without deleting anything stored.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

/** The bytes a row takes, column by column, as SQLite stores them. */
async function rowBytes(where: string, ...params: unknown[]): Promise<number[]> {
  const columns = await env.LEDGER.prepare("SELECT name FROM pragma_table_info('records')").all<{
    name: string;
  }>();
  const sum = columns.results.map(({ name }) => `coalesce(length(CAST(${name} AS BLOB)), 0)`).join(" + ");
  const { results } = await env.LEDGER.prepare(`SELECT ${sum} AS bytes FROM records WHERE ${where}`)
    .bind(...params)
    .all<{ bytes: number }>();
  return results.map((row) => row.bytes);
}

function source(extra: Record<string, unknown> = {}) {
  const name = unique("rec");
  return {
    name,
    bindings: {
      SOURCES: JSON.stringify({ [name]: { writeKey: WRITE_KEY, tokens: [TOKEN], ...extra } }),
    } as Partial<Env>,
  };
}

describe("no ledger row exceeds 8 KB, whatever the input", () => {
  it("keeps a 900 KB body nested under one long key in R2, and an 8 KB row", async () => {
    const { name, bindings } = source();
    // One 60 KB key three levels down, and 900 KB under it: before, the path went uncut into the
    // row three times (body, issues, detail): 2.7 MB, which D1 refuses.
    const key = "k".repeat(60_000);
    const body = JSON.stringify({ event: 7, deep: { [key]: { [key]: "v".repeat(780_000) } } });
    const posted = await postWebhook(body, {
      path: `/pendo/${name}`,
      env: { ...bindings, MAX_BODY_BYTES: "1048576" },
    });
    expect(posted.response.status).toBe(400);
    const sizes = await rowBytes("source = ?", name);
    expect(sizes).toHaveLength(1);
    expect(sizes[0]).toBeLessThanOrEqual(ROW_LIMIT_BYTES);
    const { id } = (await env.LEDGER.prepare("SELECT id FROM records WHERE source = ?").bind(name).first<{
      id: string;
    }>()) as { id: string };
    const detail = await callWorker(
      new Request(`https://relay.test/admin/quarantine/${id}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    );
    expect(detail.json.rawBody).toBe(body);
  });

  it("reads back an empty body without asking R2 for a zero-length range", async () => {
    const { name, bindings } = source();
    const posted = await postWebhook("", { path: `/pendo/${name}`, env: bindings });
    expect(posted.response.status).toBe(400);
    const { id } = (await env.LEDGER.prepare("SELECT id FROM records WHERE source = ?").bind(name).first<{
      id: string;
    }>()) as { id: string };
    const get = vi.spyOn(env.ARCHIVE, "get");
    const detail = await callWorker(
      new Request(`https://relay.test/admin/quarantine/${id}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    );
    expect(detail.response.status).toBe(200);
    expect(detail.json.rawBody).toBe("");
    expect(get).not.toHaveBeenCalled();
  });

  it("cuts hostile names, many issues and a long answer of the destination", async () => {
    const { name, bindings } = source();
    // 500 issues under 2,000-character paths, and a 20,000-character event name.
    const issues = Array.from({ length: 500 }, (_, i) => ({
      path: `${i}.${"p".repeat(2_000)}`,
      message: "m".repeat(900),
    }));
    await storeForTest(
      quarantineOf(
        {
          source: name,
          issues,
          body: new Uint8Array([1]),
          event: "e".repeat(20_000),
          eventId: "i".repeat(5_000),
        },
        Date.now(),
      ),
    );
    // A dead letter whose event name is 20,000 characters, refused with a 60 KB answer of emoji.
    vi.spyOn(globalThis, "fetch").mockResolvedValue(
      new Response("\u{1F4A5}".repeat(15_000), { status: 413 }),
    );
    const message: RelayMessage = { ...relayMessage(), source: name, event: "\u202E".repeat(20_000) };
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages([message]));
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    const sizes = await rowBytes("source = ?", name);
    expect(sizes).toHaveLength(2);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(ROW_LIMIT_BYTES);
    const kept = await env.LEDGER.prepare(
      "SELECT issues FROM records WHERE source = ? AND kind = 'quarantine'",
    )
      .bind(name)
      .first<{ issues: string }>();
    expect(JSON.parse(kept?.issues ?? "[]").at(-1).message).toMatch(/^and \d+ more issues$/);
  });
});

describe("dead letters are written per group", () => {
  it("stores a batch's three refused events in one R2 object, each row pointing at its slice", async () => {
    const { name, bindings } = source();
    const { standIn } = useSegmentStandIn();
    standIn.failNext(401);
    const messages = [1, 2, 3].map(() => ({ ...relayMessage(), source: name }));
    const batch = createMessageBatch<unknown>("pendo-events", queueMessages(messages));
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, ...bindings } as Env, ctx);
    await waitOnExecutionContext(ctx);
    const { results } = await env.LEDGER.prepare(
      "SELECT object_key AS key, object_offset AS offset, object_length AS length FROM records WHERE source = ? ORDER BY object_offset",
    )
      .bind(name)
      .all<{ key: string; offset: number; length: number }>();
    expect(results).toHaveLength(3);
    expect(new Set(results.map((row) => row.key)).size).toBe(1);
    const object = await env.ARCHIVE.get(results[0]?.key ?? "");
    const frames = decodeFrames(new Uint8Array(await (object as R2ObjectBody).arrayBuffer()));
    expect(frames.ok).toBe(true);
    expect(frames.frames).toHaveLength(3);
    const text = new TextDecoder();
    for (const [i, row] of results.entries()) {
      const ranged = await env.ARCHIVE.get(row.key, { range: { offset: row.offset, length: row.length } });
      expect(text.decode(await (ranged as R2ObjectBody).arrayBuffer())).toBe(
        text.decode(frames.frames[i]?.bytes),
      );
    }
  });
});

describe("a byte budget per source, not a count cap", () => {
  it("alerts at 80%, keeps rows only past the budget, and deletes nothing stored", async () => {
    const url = "https://alerts.test/budget";
    const { name, bindings } = source({ alertWebhookUrl: url });
    const { alerts } = useAlertReceiver(url);
    const settings = { ...bindings, RECORD_BUDGET_BYTES: "1048576", MAX_BODY_BYTES: "1048576" };
    const junk = (size: number) => JSON.stringify({ visitorId: unique("j"), pad: "x".repeat(size) });
    // 0.5 MB, then 0.35 MB: past 80% of 1 MiB.
    for (const size of [500_000, 350_000]) {
      expect((await postWebhook(junk(size), { path: `/pendo/${name}`, env: settings })).response.status).toBe(
        400,
      );
    }
    await vi.waitUntil(() => alerts.some((a) => a.body.alert.kind === "record-budget"), { timeout: 5_000 });
    const budgetAlert = alerts.find((a) => a.body.alert.kind === "record-budget");
    expect(budgetAlert?.body.text).toContain("budget");
    // 0.3 MB more does not fit: its row is kept, its bytes are not; the two before stay whole.
    expect(
      (await postWebhook(junk(300_000), { path: `/pendo/${name}`, env: settings })).response.status,
    ).toBe(400);
    const rows = await env.LEDGER.prepare(
      "SELECT holds, object_length AS length FROM records WHERE source = ? ORDER BY id",
    )
      .bind(name)
      .all<{ holds: string; length: number | null }>();
    expect(rows.results.map((r) => r.holds)).toEqual(["body", "body", "none"]);
    const overview = await callWorker(
      new Request("https://relay.test/admin/overview?hours=1", {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
      settings,
    );
    const mine = (
      overview.json.records as { source: string; bytes: number; rowsOnly: number; budget: number }[]
    ).find((r) => r.source === name);
    expect(mine).toMatchObject({ rowsOnly: 1, budget: 1_048_576 });
    expect(mine?.bytes).toBeGreaterThan(800_000);
    // Nothing under records/ was removed by any of it.
    const listed = await env.ARCHIVE.list({ prefix: R2_PREFIX.records });
    expect(listed.objects.length).toBeGreaterThanOrEqual(2);
  });
});

describe("the cron keeps R2 and the ledger in step", () => {
  it("moves every pending group, page after page, and a KV fallback of an earlier deploy past the old 20", async () => {
    const { name } = source();
    const letters = Array.from({ length: 130 }, (_, i) =>
      deadLetterOf(
        {
          reason: "segment-refused",
          source: name,
          eventId: `pending-${i}`,
          event: "guideSeen",
          attempts: 1,
          lastStatus: 401,
          detail: "",
          receivedAt: Date.now(),
          message: { ...relayMessage(), source: name },
        },
        Date.now(),
      ),
    );
    const refusing = faultyDb(env.LEDGER, (sql) => sql.includes("INTO records"));
    for (const letter of letters)
      expect(
        await storeRecords(env.ARCHIVE, refusing, [letter], { now: letter.createdAt, secondStore: true }),
      ).toMatchObject({
        where: "pending",
      });
    const legacy = Array.from(
      { length: 30 },
      (_, i) => `${KEY_PREFIX.fallback}${Date.now()}-${name}.legacy${i}`,
    );
    for (const [i, key] of legacy.entries()) {
      const id = key.slice(KEY_PREFIX.fallback.length);
      await env.DEDUP.put(
        key,
        JSON.stringify({
          ...letters[0],
          id,
          eventId: `legacy-${i}`,
          message: "x",
          holds: undefined,
          object: undefined,
        }),
      );
    }
    const count = () =>
      env.LEDGER.prepare("SELECT count(*) AS n FROM records WHERE source = ?")
        .bind(name)
        .first<{ n: number }>();
    await runCron();
    // One run moves what its budget allows (100 groups, 100 keys), following the list cursor.
    expect((await count())?.n).toBe(100 + 30);
    await runCron();
    expect((await count())?.n).toBe(130 + 30);
    expect((await env.ARCHIVE.list({ prefix: R2_PREFIX.pending })).objects).toEqual([]);
    for (const key of legacy) expect(await env.DEDUP.get(key)).toBeNull();
  });

  it("removes a day's objects once every record of that day is past its retention, and not before", async () => {
    const { name } = source();
    const old = Date.now() - 20 * 86_400_000; // past the 14-day default
    const recent = Date.now() - 3_600_000;
    const letterAt = (at: number) =>
      deadLetterOf(
        {
          reason: "segment-refused",
          source: name,
          eventId: `day-${at}`,
          event: "guideSeen",
          attempts: 1,
          lastStatus: 401,
          detail: "",
          receivedAt: at,
          message: { ...relayMessage(), source: name },
        },
        at,
      );
    const [gone, kept] = [letterAt(old), letterAt(recent)];
    for (const letter of [gone, kept])
      await storeRecords(env.ARCHIVE, env.LEDGER, [letter], { now: letter.createdAt });
    const keyOf = async (id: string) =>
      (
        await env.LEDGER.prepare("SELECT object_key AS key FROM records WHERE id = ?")
          .bind(id)
          .first<{ key: string }>()
      )?.key;
    const [goneKey, keptKey] = [await keyOf(gone.id), await keyOf(kept.id)];
    await runCron();
    await runCron(); // the first purges the rows, the second (or the same run) the emptied day
    expect(await keyOf(gone.id)).toBeUndefined();
    expect(await env.ARCHIVE.head(goneKey ?? "")).toBeNull();
    expect(await env.ARCHIVE.head(keptKey ?? "")).not.toBeNull();
    expect(await keyOf(kept.id)).toBe(keptKey);
  });
});
