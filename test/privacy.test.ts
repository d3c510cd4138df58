import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { faultyKv, kvFailing } from "./faults";
import { PUBLISHED, postWebhook, withUniqueId } from "./helpers";

afterEach(() => {
  vi.restoreAllMocks();
});

function forVisitor(visitorId: string, webhook: object = PUBLISHED.guideDisplayed) {
  return { ...withUniqueId(webhook), visitorId };
}
const doNotProcess = (visitorId: string, flag: boolean) => ({
  ...forVisitor(visitorId, PUBLISHED.visitorCreated),
  event: "visitorDoNotProcessUpdated",
  properties: { doNotProcess: flag },
});

describe("do not process", () => {
  it("forwards the flag, then drops the visitor's later events until it is cleared", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const set = await postWebhook(doNotProcess(visitor, true));
    expect(set.response.status).toBe(202);
    const traits = JSON.parse(set.enqueued[0]?.calls[1] as string).traits;
    expect(traits).toEqual({ doNotProcess: true });

    const dropped = await postWebhook(forVisitor(visitor));
    expect(dropped.response.status).toBe(200);
    expect(dropped.json).toMatchObject({ status: "dropped", reason: "do-not-process" });
    expect(dropped.enqueued).toHaveLength(0);

    // Other visitors are untouched.
    expect((await postWebhook(forVisitor(`other-${visitor}`))).response.status).toBe(202);

    const cleared = await postWebhook(doNotProcess(visitor, false));
    expect(cleared.response.status).toBe(202);
    expect((await postWebhook(forVisitor(visitor))).response.status).toBe(202);
  });

  it("logs each drop", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    await postWebhook(doNotProcess(visitor, true));
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => lines.push(line));
    await postWebhook(forVisitor(visitor));
    const drops = lines.map((line) => JSON.parse(line)).filter((line) => line.msg === "do-not-process-drop");
    expect(drops).toHaveLength(1);
    expect(JSON.stringify(drops)).not.toContain(visitor);
  });

  it("is off with HONOR_DO_NOT_PROCESS=false", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const off = { env: { HONOR_DO_NOT_PROCESS: "false" } };
    await postWebhook(doNotProcess(visitor, true), off);
    expect((await postWebhook(forVisitor(visitor), off)).response.status).toBe(202);
  });

  it("reads the flag written as a string", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    await postWebhook({ ...doNotProcess(visitor, true), properties: { doNotProcess: "true" } });
    expect((await postWebhook(forVisitor(visitor))).json).toMatchObject({ status: "dropped" });
    await postWebhook({ ...doNotProcess(visitor, false), properties: { doNotProcess: "false" } });
    expect((await postWebhook(forVisitor(visitor))).response.status).toBe(202);
  });

  it("forwards an unreadable flag, leaves the visitor as it was, and logs it", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const lines: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: string) => lines.push(line));
    const webhook = { ...doNotProcess(visitor, true), properties: { doNotProcess: "yes" } };
    const { response, json } = await postWebhook(webhook);
    expect(response.status).toBe(202);
    expect(json.warnings).toEqual([
      {
        path: "properties.doNotProcess",
        message: "not true or false: forwarded, and the visitor's flag was left as it was",
      },
    ]);
    expect(lines.some((line) => JSON.parse(line).msg === "do-not-process-unreadable")).toBe(true);
    expect((await postWebhook(forVisitor(visitor))).response.status).toBe(202);
  });

  it("answers 503, and forwards nothing, when the flag cannot be stored", async () => {
    const visitor = `dnp-${crypto.randomUUID()}`;
    const broken = kvFailing(env.DEDUP, "put");
    const { response, enqueued } = await postWebhook(doNotProcess(visitor, true), { env: { DEDUP: broken } });
    expect(response.status).toBe(503);
    expect(enqueued).toEqual([]);
  });
});

describe("do-not-process flag set (per isolate)", () => {
  it("honours a flag written elsewhere once its set is refreshed, never sooner than KV allows", async () => {
    const { isDoNotProcess, REFRESH_MS, visitorHash } = await import("../src/privacy/doNotProcess");
    const { doNotProcessKey } = await import("../src/kv/keys");
    const source = `iso-${crypto.randomUUID().slice(0, 8)}`;
    const pending: Promise<unknown>[] = [];
    const waitUntil = (promise: Promise<unknown>) => void pending.push(promise);
    const t0 = Date.now();

    expect(await isDoNotProcess(env.DEDUP, source, "abc", t0, waitUntil)).toBe(false);
    await env.DEDUP.put(doNotProcessKey(source, (await visitorHash("abc")) as string), "{}"); // as another isolate would
    expect(await isDoNotProcess(env.DEDUP, source, "abc", t0 + 1_000, waitUntil)).toBe(false);
    expect(pending).toHaveLength(0);

    expect(await isDoNotProcess(env.DEDUP, source, "abc", t0 + REFRESH_MS + 1, waitUntil)).toBe(false);
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
    expect(await isDoNotProcess(env.DEDUP, source, "abc", t0 + REFRESH_MS + 2, waitUntil)).toBe(true);
  });

  it("keeps a flag this isolate set over a refresh whose list does not show it yet", async () => {
    const { isDoNotProcess, setDoNotProcess, REFRESH_MS } = await import("../src/privacy/doNotProcess");
    const source = `lag-${crypto.randomUUID().slice(0, 8)}`;
    // KV's list lags behind its writes: this one never shows the new key.
    const lagging = faultyKv(env.DEDUP, () => false);
    const listLagging = new Proxy(lagging, {
      get: (target, property) =>
        property === "list"
          ? async () => ({ keys: [], list_complete: true, cacheStatus: null })
          : Reflect.get(target, property, target),
    });
    const pending: Promise<unknown>[] = [];
    const waitUntil = (promise: Promise<unknown>) => void pending.push(promise);
    const t0 = Date.now();
    expect(await isDoNotProcess(listLagging, source, "h1", t0, waitUntil)).toBe(false);
    await setDoNotProcess(listLagging, source, "h1", true, t0);
    expect(await isDoNotProcess(listLagging, source, "h1", t0 + REFRESH_MS + 1, waitUntil)).toBe(true);
    await Promise.all(pending);
    expect(await isDoNotProcess(listLagging, source, "h1", t0 + REFRESH_MS + 2, waitUntil)).toBe(true);
  });

  it("refuses (throws) rather than guesses when the flags cannot be loaded", async () => {
    const { isDoNotProcess } = await import("../src/privacy/doNotProcess");
    const broken = { list: () => Promise.reject(new Error("kv down")) } as unknown as KVNamespace;
    await expect(isDoNotProcess(broken, "default", "abc", Date.now(), () => {})).rejects.toThrow("kv down");
  });
});
