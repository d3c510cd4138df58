/**
 * `npm run setup` and `npm run deploy`, driven through the project's own wrangler against the
 * Cloudflare API stand-in (standin/cloudflare.ts), in a temporary copy of the project:
 *   1. deploy on a fresh account: refused before any API call, with "run npm run setup first";
 *   2. setup: creates what is missing under this project's names, applies the migrations;
 *   3. deploy: the upload carries the real ids, the D1 binding, the queue producer, both
 *      consumers with wrangler.toml's settings, the cron schedule and source maps;
 *   4. setup again: changes nothing, rotates nothing;
 *   5. setup while `secret list` answers 500: stops with an error naming the call, overwrites nothing.
 * WRANGLER_BIN=<path to a wrangler executable> runs it with another wrangler than the pinned one.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { currentD1DatabaseId, currentKvNamespaceId } from "../scripts/setup/config";
import type { CloudflareStandIn } from "../standin/cloudflare";
import { startCloudflareStandIn } from "../standin/cloudflareServer";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const ROOT = resolve(import.meta.dirname, "..");
const COPIED = ["src", "migrations", "scripts", "wrangler.toml", "package.json", "tsconfig.json"];
const SECRET_VALUES = { SEGMENT_WRITE_KEY: "standin-write-key", ADMIN_TOKEN: "standin-admin-token" };

interface Run {
  status: number;
  output: string;
}

const timings: string[] = [];
/** npm runs still going, stopped if the test ends early. */
const running = new Set<ChildProcess>();

function npmRun(cwd: string, env: NodeJS.ProcessEnv, script: string): Promise<Run> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn("npm", ["run", "--silent", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk;
      if (process.env.SEQUENCE_VERBOSE) process.stderr.write(chunk);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", fail);
    child.on("close", (status) => {
      running.delete(child);
      timings.push(`${script} ${((Date.now() - started) / 1000).toFixed(1)} s`);
      done({ status: status ?? 1, output });
    });
  });
}

/** Everything a rerun must leave alone: resources, ids, secret values, consumers, wrangler.toml. */
function snapshot(cf: CloudflareStandIn, dir: string) {
  return JSON.stringify({
    kv: [...cf.kvNamespaces.values()],
    d1: [...cf.databases.values()].map(({ uuid, name, migrations }) => ({ uuid, name, migrations })),
    queues: [...cf.queues.values()],
    scripts: [...cf.scripts.entries()].map(([name, s]) => [name, [...s.secrets], s.deployments, s.schedules]),
    toml: readFileSync(join(dir, "wrangler.toml"), "utf8"),
  });
}

/** Requests that change something (a D1 query may only be the migrations bookkeeping). */
function changesSince(cf: CloudflareStandIn, from: number): string[] {
  return cf.requests
    .slice(from)
    .filter((r) => r.method !== "GET" && !r.path.endsWith("/query"))
    .map((r) => `${r.method} ${r.path}`);
}

/** The [[queues.consumers]] blocks of wrangler.toml, as wrangler sends them to the API. */
function consumersInToml(toml: string) {
  return toml
    .split("[[queues.consumers]]")
    .slice(1)
    .map((block) => {
      const lines = block.split("\n[")[0]?.split("\n") ?? [];
      const pairs = lines.map((line) => /^(\w+) = "?([^"]*)"?$/.exec(line.trim())).filter((m) => m !== null);
      const value = (key: string) => pairs.find((m) => m[1] === key)?.[2];
      return {
        queue: value("queue"),
        dead_letter_queue: value("dead_letter_queue"),
        settings: {
          batch_size: Number(value("max_batch_size")),
          max_retries: Number(value("max_retries")),
          max_wait_time_ms: Number(value("max_batch_timeout")) * 1000,
        },
      };
    });
}

// Each wrangler start costs ~1.5 s of CPU and the sequence starts about 30; on two shared, busy
// cores it has taken two minutes, so the limit leaves room for a loaded CI machine.
test("setup then deploy on a fresh account; reruns change nothing; an API error stops setup", {
  timeout: 240_000,
}, async (t) => {
  const started = Date.now();
  const { apiBaseUrl, standIn: cf, close } = await startCloudflareStandIn(ACCOUNT);
  const dir = mkdtempSync(join(tmpdir(), "relay-setup-"));
  t.after(async () => {
    for (const child of running) child.kill();
    await close();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const entry of COPIED) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CI: "true",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    CLOUDFLARE_API_BASE_URL: apiBaseUrl,
    CLOUDFLARE_API_TOKEN: "standin-token",
    CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    // wrangler's update check asks the npm registry it reads from npm_config_registry: a closed
    // local port answers at once, and nothing leaves the machine. npm's own notifier is off.
    npm_config_registry: "http://127.0.0.1:9/",
    npm_config_update_notifier: "false",
    WRANGLER_LOG_PATH: join(dir, "wrangler-logs"),
    ...(process.env.WRANGLER_BIN && { WRANGLER_BIN: process.env.WRANGLER_BIN }),
    ...SECRET_VALUES,
  };
  // What another project left in the account: a namespace titled DEDUP is not ours, and 25 other
  // queues push pendo-events onto the second page of `queues list`.
  const foreignKv = cf.addKvNamespace("DEDUP");
  for (let i = 0; i < 25; i++) cf.addQueue(`another-queue-${String(i).padStart(2, "0")}`);
  cf.addQueue("pendo-events");

  // 1. Deploy before setup: refused here, before any API call.
  const refused = await npmRun(dir, env, "deploy");
  assert.notEqual(refused.status, 0, refused.output);
  assert.match(refused.output, /placeholder id .*run npm run setup first/);
  assert.equal(cf.requests.length, 0, "no API call before the refusal");

  // 2. Setup on a fresh account.
  const setup = await npmRun(dir, env, "setup");
  assert.equal(setup.status, 0, setup.output);
  const toml = readFileSync(join(dir, "wrangler.toml"), "utf8");
  const kvId = currentKvNamespaceId(toml) as string;
  const d1Id = currentD1DatabaseId(toml) as string;
  assert.notEqual(kvId, foreignKv, "a namespace titled DEDUP is not adopted");
  assert.equal(cf.kvNamespaces.get(kvId)?.title, "pendo-segment-relay-dedup");
  assert.equal(cf.databases.get(d1Id)?.name, "pendo-segment-relay-ledger");
  assert.deepEqual(cf.databases.get(d1Id)?.migrations, readdirSync(join(ROOT, "migrations")).sort());
  const queueNames = [...cf.queues.values()].map((q) => q.queue_name);
  assert.equal(queueNames.filter((name) => name === "pendo-events").length, 1, "adopted from page 2");
  assert.ok(queueNames.includes("pendo-events-dlq"));
  const secrets = cf.scripts.get("pendo-segment-relay")?.secrets;
  assert.match(secrets?.get("WEBHOOK_TOKEN") ?? "", /^[0-9a-f]{48}$/);
  assert.equal(secrets?.get("SEGMENT_WRITE_KEY"), SECRET_VALUES.SEGMENT_WRITE_KEY);
  assert.equal(secrets?.get("ADMIN_TOKEN"), SECRET_VALUES.ADMIN_TOKEN);
  assert.ok(!secrets?.has("ALERT_WEBHOOK_URL"), "an optional secret without a value is not stored");

  // 3. Deploy: real ids, every binding, both consumers as configured, the cron, source maps.
  const deploy = await npmRun(dir, env, "deploy");
  assert.equal(deploy.status, 0, deploy.output);
  const script = cf.scripts.get("pendo-segment-relay");
  assert.ok(script);
  const live = script.uploads.find((u) => u.id === script.deployments.at(-1));
  assert.ok(live, "a version is deployed");
  const bindings = live.metadata.bindings ?? [];
  const binding = (name: string) => bindings.find((b) => b.name === name);
  assert.equal(binding("DEDUP")?.namespace_id, kvId);
  assert.deepEqual([binding("LEDGER")?.type, binding("LEDGER")?.id], ["d1", d1Id]);
  assert.deepEqual([binding("EVENTS")?.type, binding("EVENTS")?.queue_name], ["queue", "pendo-events"]);
  assert.ok(
    live.modules.some((name) => name.endsWith(".map")),
    `source maps uploaded: ${live.modules.join(", ")}`,
  );
  for (const expected of consumersInToml(toml)) {
    const queue = [...cf.queues.values()].find((q) => q.queue_name === expected.queue);
    assert.equal(queue?.consumers.length, 1, `one consumer on ${expected.queue}`);
    const consumer = queue?.consumers[0];
    assert.equal(consumer?.script, "pendo-segment-relay");
    assert.equal(consumer?.dead_letter_queue, expected.dead_letter_queue);
    assert.deepEqual(
      { ...consumer?.settings, max_concurrency: undefined, retry_delay: undefined },
      { ...expected.settings, max_concurrency: undefined, retry_delay: undefined },
    );
  }
  assert.deepEqual(script.schedules, [{ cron: "*/5 * * * *" }]);
  assert.deepEqual(script.subdomain, { enabled: true, previews_enabled: false });
  assert.doesNotMatch(deploy.output, /workers_dev' is not in your Wrangler file/);

  // 4. Setup again: nothing changes, nothing is rotated.
  const before = snapshot(cf, dir);
  const fromRequest = cf.requests.length;
  const rerun = await npmRun(dir, env, "setup");
  assert.equal(rerun.status, 0, rerun.output);
  assert.equal(snapshot(cf, dir), before);
  assert.deepEqual(changesSince(cf, fromRequest), []);

  // 5. Setup while `secret list` fails with a 500: an error naming the call, nothing overwritten.
  cf.injectFailure({ method: "GET", path: /\/workers\/scripts\/pendo-segment-relay\/secrets$/, status: 500 });
  const fromOutage = cf.requests.length;
  const outage = await npmRun(dir, env, "setup");
  assert.notEqual(outage.status, 0, outage.output);
  assert.match(outage.output, /setup stopped: `wrangler secret list --format json` failed/);
  assert.ok(cf.requests.slice(fromOutage).some((r) => r.injected));
  assert.equal(snapshot(cf, dir), before);
  assert.deepEqual(changesSince(cf, fromOutage), []);

  t.diagnostic(`sequence took ${((Date.now() - started) / 1000).toFixed(1)} s: ${timings.join(", ")}`);
});
