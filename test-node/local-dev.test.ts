/**
 * Black box: the real `wrangler dev` (local KV and queues) with the Segment stand-in server.
 * Sends a sample of every catalog event over HTTP, as a newcomer does with `npm run send -- --all`,
 * and checks what the stand-in received. Timings are waited for, never asserted.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  LOCAL_TOKEN,
  LOCAL_WRITE_KEY,
  type LocalRelay,
  startLocalRelay,
  waitFor,
} from "../scripts/harness/local-relay";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { CATALOG } from "../src/pendo/catalog";

let local: LocalRelay;

before(async () => {
  local = await startLocalRelay();
});

after(async () => {
  await local?.stop();
});

test("every catalog event sent to wrangler dev reaches the Segment stand-in as the right calls", async () => {
  const expected = new Map<string, string>();
  for (const event of SAMPLE_EVENTS) {
    const webhook = sampleWebhook(event);
    const response = await fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
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
    async () => (local.standIn.standIn.distinctMessageIds >= expected.size ? true : undefined),
    60_000,
  ).catch((error) => {
    throw new Error(
      `${error.message}: ${local.standIn.standIn.distinctMessageIds}/${expected.size}\n${local.output().slice(-3000)}`,
    );
  });
  const received = local.standIn.standIn.received;
  assert.deepEqual(new Set(received.map((event) => event.call.messageId)), new Set(expected.keys()));
  assert.ok(received.every((event) => event.writeKey === LOCAL_WRITE_KEY));
  for (const { call } of received) {
    if (call.type === "track") assert.equal(call.event, expected.get(String(call.messageId)));
    assert.ok(call.userId || call.anonymousId, `${call.messageId} has an identity`);
  }
  assert.equal(local.standIn.standIn.dropped.length, 0);
  // The queue batched the webhooks: far fewer Segment requests than events.
  assert.ok(
    local.standIn.standIn.requests.length < SAMPLE_EVENTS.length / 4,
    `${local.standIn.standIn.requests.length} requests`,
  );
});

test("a wrong token is refused by the running relay and nothing reaches Segment", async () => {
  const before = local.standIn.standIn.requests.length;
  const response = await fetch(`${local.url}/pendo?token=wrong-token-0123456789`, {
    method: "POST",
    body: JSON.stringify(sampleWebhook("guideDisplayed")),
  });
  assert.equal(response.status, 401);
  assert.ok(!local.output().includes(LOCAL_TOKEN) && !local.output().includes(LOCAL_WRITE_KEY));
  assert.equal(local.standIn.standIn.requests.length, before);
});
