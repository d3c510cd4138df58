/**
 * Black box, per destination profile: the real `wrangler dev` against the stand-in playing each
 * destination other than Segment (local-dev.test.ts covers Segment), sent every catalog event as
 * `npm run send -- --all` does. Nothing may be lost: every call arrives once, under the id the
 * edge answered with, and nothing is dropped, refused or merged by id rewriting.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { LOCAL_TOKEN, startLocalRelay, waitFor } from "../scripts/harness/local-relay";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { DESTINATIONS } from "../src/segment/profiles";

for (const destination of DESTINATIONS.filter((name) => name !== "segment")) {
  test(`every catalog event reaches a ${destination} stand-in, nothing lost`, async () => {
    const local = await startLocalRelay({}, { destination });
    try {
      const expected = new Set<string>();
      for (const event of SAMPLE_EVENTS) {
        const response = await fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(sampleWebhook(event)),
        });
        const text = await response.text();
        assert.equal(response.status, 202, `${event}: ${text}`);
        const body = JSON.parse(text) as { calls: { messageId: string }[] };
        for (const call of body.calls) expected.add(call.messageId);
      }
      const standIn = local.standIn.standIn;
      await waitFor(
        `every call to reach the ${destination} stand-in`,
        async () => (standIn.acceptedCount >= expected.size ? true : undefined),
        60_000,
      ).catch((error) => {
        throw new Error(
          `${error.message}: ${standIn.acceptedCount}/${expected.size}\n${local.output().slice(-3000)}`,
        );
      });
      assert.deepEqual(new Set(standIn.messageIds), expected);
      assert.equal(standIn.duplicates, 0);
      assert.equal(standIn.dropped.length, 0);
      assert.ok(standIn.requests.every((request) => request.status === 200));
    } finally {
      await local.stop();
    }
  });
}
