/**
 * What Cloudflare stores of each request. Pendo can only send its token in the URL (`?token=`),
 * and Workers Logs and traces keep each request's URL, query string included, unless told not
 * to. wrangler.toml is read here by the pinned wrangler itself (`unstable_readConfig`), so a key
 * it does not know fails this test instead of being ignored at deploy.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { unstable_readConfig } from "wrangler";

test("Workers Logs and traces keep no token: no invocation logs, no query strings, no traces", () => {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  let config: ReturnType<typeof unstable_readConfig>;
  try {
    config = unstable_readConfig({ config: "wrangler.toml" });
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, [], "wrangler read wrangler.toml without a warning");
  const observability = config.observability;
  // The relay's own lines stay stored (they are JSON, queryable by field, and never hold a token).
  assert.equal(observability?.enabled, true);
  // The invocation log is the record that holds the URL: off. It was also half the log events.
  assert.equal(observability?.logs?.invocation_logs, false);
  // And should anything still record a URL (traces, if someone turns them on), without its query.
  assert.equal(observability?.redact_query_string, true);
  assert.notEqual(observability?.traces?.enabled, true, "traces stay off: each span is a billed event");
});

test("the cost model counts invocation logs only where wrangler.toml keeps them", async () => {
  const { invocationLogsKept, priceLogs } = await import("../bench/cost");
  // One webhook: its request and one line; the consumer's batch of 100 and its one line.
  const parts = {
    level: "info",
    edgeInvocations: 1,
    edgeLines: 1,
    consumerInvocations: 0.01,
    consumerLines: 0.01,
  };
  const kept = priceLogs({ ...parts, level: "info" }, true);
  const off = priceLogs({ ...parts, level: "info" }, false);
  assert.equal(kept.total.toFixed(2), "2.02");
  assert.equal(off.total.toFixed(2), "1.01");
  assert.equal(off.freePlanDailyWebhooks, 198_019);
  assert.equal(
    priceLogs({ ...parts, level: "warn", edgeLines: 0, consumerLines: 0 }, false).freePlanDailyWebhooks,
    null,
  );
  assert.equal(invocationLogsKept(), false);
});
