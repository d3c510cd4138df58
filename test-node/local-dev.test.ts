/**
 * Black box: the real `wrangler dev` (local KV and queues) with the Segment stand-in server.
 * Sends a sample of every catalog event over HTTP, as a newcomer does with `npm run send -- --all`,
 * and checks what the stand-in received. Timings are waited for, never asserted.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { CATALOG } from "../src/pendo/catalog";
import { type RunningStandIn, startStandInServer } from "../standin/server";

const TOKEN = "black-box-token-0123456789";
const WRITE_KEY = "black-box-write-key";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

let standIn: RunningStandIn;
let wrangler: ChildProcess;
let relay: string;
let output = "";
const state = mkdtempSync(join(tmpdir(), "relay-black-box-"));

before(async () => {
  standIn = await startStandInServer({ writeKeys: [WRITE_KEY], print: false });
  const port = await freePort();
  relay = `http://127.0.0.1:${port}`;
  wrangler = spawn(
    "npx",
    [
      "wrangler",
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--persist-to",
      state,
      "--show-interactive-dev-session=false",
      "--var",
      `WEBHOOK_TOKEN:${TOKEN}`,
      "--var",
      `SEGMENT_WRITE_KEY:${WRITE_KEY}`,
      "--var",
      `SEGMENT_ENDPOINT:${standIn.url}`,
      "--var",
      "ENVIRONMENT:black-box",
    ],
    { stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  wrangler.stdout?.on("data", (chunk) => (output += chunk));
  wrangler.stderr?.on("data", (chunk) => (output += chunk));
  await waitFor(
    "wrangler dev to answer /health",
    async () => ((await fetch(`${relay}/health`)).ok ? true : undefined),
    90_000,
  ).catch((error) => {
    throw new Error(`${error.message}\n${output.slice(-3000)}`);
  });
});

after(async () => {
  if (wrangler?.pid) process.kill(-wrangler.pid, "SIGTERM");
  await standIn?.close();
  rmSync(state, { recursive: true, force: true });
});

test("every catalog event sent to wrangler dev reaches the Segment stand-in as the right calls", async () => {
  const expected = new Map<string, string>();
  for (const event of SAMPLE_EVENTS) {
    const webhook = sampleWebhook(event);
    const response = await fetch(`${relay}/pendo?token=${TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(webhook),
    });
    assert.equal(response.status, 202, `${event}: ${await response.text()}`);
    const entry = CATALOG.find((candidate) => candidate.name === event);
    for (const type of ["track", ...(entry?.fanOut ?? [])])
      expected.set(`pendo:default:${webhook.uniqueId}:${type}`, event);
  }

  await waitFor(
    "every call to reach the stand-in",
    async () => (standIn.standIn.distinctMessageIds >= expected.size ? true : undefined),
    60_000,
  ).catch((error) => {
    throw new Error(
      `${error.message}: ${standIn.standIn.distinctMessageIds}/${expected.size}\n${output.slice(-3000)}`,
    );
  });
  const received = standIn.standIn.received;
  assert.deepEqual(new Set(received.map((event) => event.call.messageId)), new Set(expected.keys()));
  assert.ok(received.every((event) => event.writeKey === WRITE_KEY));
  for (const { call } of received) {
    if (call.type === "track") assert.equal(call.event, expected.get(String(call.messageId)));
    assert.ok(call.userId || call.anonymousId, `${call.messageId} has an identity`);
  }
  assert.equal(standIn.standIn.dropped.length, 0);
  // The queue batched the webhooks: far fewer Segment requests than events.
  assert.ok(
    standIn.standIn.requests.length < SAMPLE_EVENTS.length / 4,
    `${standIn.standIn.requests.length} requests`,
  );
});

test("a wrong token is refused by the running relay and nothing reaches Segment", async () => {
  const before = standIn.standIn.requests.length;
  const response = await fetch(`${relay}/pendo?token=wrong-token-0123456789`, {
    method: "POST",
    body: JSON.stringify(sampleWebhook("guideDisplayed")),
  });
  assert.equal(response.status, 401);
  assert.doesNotMatch(output, /black-box-token-0123456789|black-box-write-key/);
  assert.equal(standIn.standIn.requests.length, before);
});
