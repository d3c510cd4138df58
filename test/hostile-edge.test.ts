import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { ADMIN_TOKEN, PUBLISHED, TOKEN, withUniqueId } from "./helpers";

/** The Worker's answer as it leaves: status, every header, the body as bytes. */
async function answer(request: Request, overrides: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...overrides } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return {
    status: response.status,
    headers: [...response.headers.entries()],
    header: (name: string) => response.headers.get(name),
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

const asAdmin = { authorization: `Bearer ${ADMIN_TOKEN}` };
// Every method of the store throws: KV today, and the D1 ledger where admin reads move to it.
const failing = new Proxy(
  {},
  {
    get: () => () => {
      throw new Error("the store is down");
    },
  },
);
const storesDown = { DEDUP: failing, LEDGER: failing } as unknown as Partial<Env>;

const webhook = (path: string, body: string, token = TOKEN) =>
  new Request(`https://relay.test${path}?token=${token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
// Takes what the edge enqueues, so no consumer runs after the test.
const keptQueue = { send: async () => undefined } as unknown as Queue<string>;
const published = () => JSON.stringify(withUniqueId(PUBLISHED.guideDisplayed));

describe("Cache-Control: no-store and nosniff on every answer", () => {
  // A webhook's answer names the event it took, a 404 the path it was asked: neither is for a
  // cache to keep, and no answer is for a browser to sniff into HTML.
  it.each([
    ["a webhook accepted", () => webhook("/pendo", published()), 202],
    ["a webhook with a wrong token", () => webhook("/pendo", published(), "wrong-token-0123456789"), 401],
    ["a webhook to an unknown source", () => webhook("/pendo/nope", published()), 401],
    ["a webhook that is not JSON", () => webhook("/pendo", "{bad"), 400],
    ["a webhook over the size limit", () => webhook("/pendo", "x".repeat(300_000)), 413],
    ["an unknown route", () => new Request("https://relay.test/elsewhere"), 404],
    ["the root", () => new Request("https://relay.test/"), 200],
    [
      "the debug transform",
      () =>
        new Request("https://relay.test/debug/transform", {
          method: "POST",
          headers: asAdmin,
          body: published(),
        }),
      200,
    ],
    ["the console", () => new Request("https://relay.test/console"), 200],
  ] as const)("%s", async (_, request, status) => {
    const got = await answer(request(), { EVENTS: keptQueue });
    expect(got.status).toBe(status);
    expect(got.header("cache-control")).toBe("no-store");
    expect(got.header("x-content-type-options")).toBe("nosniff");
  });

  it.each([
    ["an admin listing", "/admin/alerts", asAdmin, {}, 200],
    ["/admin without a token", "/admin/alerts", {}, {}, 401],
    [
      "/admin with a wrong token",
      "/admin/drift",
      { authorization: "Bearer wrong-token-0123456789" },
      {},
      401,
    ],
    ["an unknown admin route", "/admin/no-such-thing", asAdmin, {}, 404],
    ["/admin itself", "/admin", asAdmin, {}, 404],
    ["/admin while ADMIN_TOKEN is unset", "/admin/alerts", asAdmin, { ADMIN_TOKEN: undefined }, 404],
    ["an admin route whose store fails", "/admin/alerts", asAdmin, storesDown, "5xx"],
    ["/health", "/health", {}, {}, 200],
    ["/health with the admin token", "/health", asAdmin, {}, 200],
    ["/health while misconfigured", "/health", {}, { SEGMENT_WRITE_KEY: undefined }, 503],
  ] as const)("%s", async (_, path, headers, overrides, status) => {
    const got = await answer(
      new Request(`https://relay.test${path}`, { headers }),
      overrides as Partial<Env>,
    );
    if (status === "5xx") expect(got.status).toBeGreaterThanOrEqual(500);
    else expect(got.status).toBe(status);
    expect(got.header("cache-control")).toBe("no-store");
    expect(got.header("x-content-type-options")).toBe("nosniff");
  });
});

describe("an unknown source answers as a wrong token does", () => {
  const post = (path: string, token: string) =>
    answer(
      new Request(`https://relay.test${path}?token=${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(withUniqueId(PUBLISHED.guideDisplayed)),
      }),
    );

  it.each(["no-such-source", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "%E2%80%AEevil"])(
    "POST /pendo/%s is byte-identical to a wrong token on a known source",
    async (name) => {
      const unknown = await post(`/pendo/${name}`, TOKEN);
      const wrongToken = await post("/pendo/default", "wrong-token-0123456789");
      expect(unknown.status).toBe(401);
      expect(unknown.status).toBe(wrongToken.status);
      expect(unknown.headers).toEqual(wrongToken.headers);
      expect(unknown.body).toEqual(wrongToken.body);
      const text = new TextDecoder().decode(unknown.body);
      expect(text).not.toContain(decodeURIComponent(name));
      expect(text).not.toContain("source");
    },
  );
});
