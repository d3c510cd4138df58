/**
 * Black box, per destination profile: one real `wrangler dev` with a named source per destination
 * other than Segment (local-dev.test.ts covers Segment), each pointed at its own stand-in playing
 * that destination, and sent every catalog event as `npm run send -- --all` does. Nothing may be
 * lost: every call arrives once, under the id the edge answered with, and nothing is dropped,
 * refused or merged by id rewriting (the Jitsu source has the longest name a source may have).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as harness from "../scripts/harness/local-relay";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { DESTINATIONS } from "../src/destination/profiles";
import { type RunningStandIn, startStandInServer } from "../standin/server";

const PLAYED = DESTINATIONS.filter((name) => name !== "segment");
const sourceName = (destination: string) => `${destination}-source-name-x`.padEnd(24, "x").slice(0, 24);

let local: harness.LocalRelay;
const standIns = new Map<string, RunningStandIn>();

before(async () => {
  const sources: Record<string, object> = {};
  for (const destination of PLAYED) {
    const standIn = await startStandInServer({
      writeKeys: [harness.LOCAL_WRITE_KEY],
      print: false,
      destination,
    });
    standIns.set(destination, standIn);
    sources[sourceName(destination)] = {
      writeKey: harness.LOCAL_WRITE_KEY,
      tokens: [harness.LOCAL_TOKEN],
      destination,
      endpoint: standIn.url,
    };
  }
  local = await harness.startLocalRelay({ SOURCES: JSON.stringify(sources) });
});

after(async () => {
  await local?.stop();
  await Promise.all([...standIns.values()].map((standIn) => standIn.close()));
});

for (const destination of PLAYED) {
  test(`every catalog event reaches a ${destination} stand-in, nothing lost`, async () => {
    const expected = new Set<string>();
    for (const event of SAMPLE_EVENTS) {
      const response = await fetch(
        `${local.url}/pendo/${sourceName(destination)}?token=${harness.LOCAL_TOKEN}`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(sampleWebhook(event)),
        },
      );
      const text = await response.text();
      assert.equal(response.status, 202, `${event}: ${text}`);
      const body = JSON.parse(text) as { calls: { messageId: string }[] };
      for (const call of body.calls) expected.add(call.messageId);
    }
    const standIn = (standIns.get(destination) as RunningStandIn).standIn;
    await harness
      .waitFor(
        `every call to reach the ${destination} stand-in`,
        async () => (standIn.acceptedCount >= expected.size ? true : undefined),
        60_000,
      )
      .catch((error) => {
        throw new Error(
          `${error.message}: ${standIn.acceptedCount}/${expected.size}\n${local.output().slice(-3000)}`,
        );
      });
    assert.deepEqual(new Set(standIn.messageIds), expected);
    assert.equal(standIn.duplicates, 0);
    assert.equal(standIn.dropped.length, 0);
    assert.ok(standIn.requests.every((request) => request.status === 200));
  });
}
