/**
 * The README's deploy path, `npm run deploy` then `npm run setup`, driven through the project's
 * own wrangler against the Cloudflare API stand-in (standin/cloudflare.ts), in a temporary copy
 * of the project, on an account that already holds look-alikes of every resource:
 *   1. deploy while D1 answers the migration with `success: false` (wrangler exits 0 having
 *      applied nothing, as when its prompt is declined): stopped before any upload;
 *   2. deploy while the Worker upload answers 500: stopped; what was created stays, nothing else;
 *   3. deploy again: completes, reusing the namespace run 2 created (wrangler alone would fail
 *      with 10014), every binding, consumer, cron and lifecycle rule in place, and the Worker's
 *      URL where `npm create cloudflare` reads it;
 *   4. setup: the secrets, nothing else;
 *   5. deploy and setup again: nothing created, nothing rotated;
 *   6. setup while `secret list` answers 500: stops naming the call, overwrites nothing.
 * No look-alike is ever bound or changed, and wrangler.toml never gains an id.
 * WRANGLER_BIN=<path to a wrangler executable> runs it with another wrangler than the pinned one.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { markedEnv } from "../scripts/check-leftovers";
import { spawnGroup, stopGroup } from "../scripts/harness/process-group";
import { lifecycleRules } from "../src/r2/keys";
import type { CloudflareStandIn } from "../standin/cloudflare";
import { startCloudflareStandIn } from "../standin/cloudflareServer";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const ROOT = resolve(import.meta.dirname, "..");
const COPIED = ["src", "migrations", "scripts", "wrangler.toml", "package.json", "tsconfig.json"];
const SECRET_VALUES = { SEGMENT_WRITE_KEY: "standin-write-key", ADMIN_TOKEN: "standin-admin-token" };
const WORKER = "pendo-segment-relay";
const MIGRATIONS = readdirSync(join(ROOT, "migrations")).sort();

interface Run {
  status: number;
  output: string;
}

const timings: string[] = [];
/**
 * npm runs still going, stopped if the test ends early (a failed assertion, the timeout). Each is
 * a process group: npm, its shell, tsx, the script, the wrangler it runs and wrangler's own child.
 * Ending npm alone left `wrangler kv namespace list` and the like waiting for hours (issue 27).
 */
const running = new Set<ChildProcess>();

function npmRun(cwd: string, env: NodeJS.ProcessEnv, script: string): Promise<Run> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawnGroup("npm", ["run", "--silent", script], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk;
      if (process.env.SEQUENCE_VERBOSE) process.stderr.write(chunk);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.on("error", fail);
    child.on("close", async (status) => {
      // npm has exited: whatever it left in its group goes too, before the next step.
      await stopGroup(child, 1_000);
      running.delete(child);
      timings.push(`${script} ${((Date.now() - started) / 1000).toFixed(1)} s`);
      done({ status: status ?? 1, output });
    });
  });
}

/** Everything a rerun must leave alone: resources, ids, migrations, rules, secret values, wrangler.toml. */
function snapshot(cf: CloudflareStandIn, dir: string) {
  return JSON.stringify({
    kv: [...cf.kvNamespaces.values()],
    d1: [...cf.databases.values()].map(({ uuid, name, migrations }) => ({ uuid, name, migrations })),
    r2: [...cf.buckets.values()],
    queues: [...cf.queues.values()].map(({ queue_id, queue_name, consumers }) => ({
      queue_id,
      queue_name,
      consumers: consumers.map(({ consumer_id, script, dead_letter_queue }) => [
        consumer_id,
        script,
        dead_letter_queue,
      ]),
    })),
    secrets: [...cf.scripts.entries()].map(([name, s]) => [name, [...s.secrets]]),
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

/** Requests that would create a resource or change a lifecycle rule. */
const creations = (changes: string[]) =>
  changes.filter((c) =>
    /^POST \S+\/(storage\/kv\/namespaces|d1\/database|r2\/buckets|queues)$|\/lifecycle$/.test(c),
  );

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

// Each wrangler start costs ~1.5 s of CPU and the sequence starts about 35; on two shared, busy
// cores that has taken two minutes, so the limit leaves room for a loaded CI machine.
test("deploy and setup on an account with look-alikes: migrations first, a 500 survived, reruns change nothing", {
  timeout: 300_000,
}, async (t) => {
  const started = Date.now();
  const { apiBaseUrl, standIn: cf, close } = await startCloudflareStandIn(ACCOUNT);
  const dir = mkdtempSync(join(tmpdir(), "relay-setup-"));
  t.after(async () => {
    await Promise.all([...running].map((child) => stopGroup(child)));
    await close();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const entry of COPIED) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const toml = readFileSync(join(dir, "wrangler.toml"), "utf8");
  const env = {
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
    // So that scripts/check-leftovers.ts knows these processes for the run's, should one outlive it.
    ...markedEnv(),
    ...SECRET_VALUES,
  };
  // What other projects left in the account: names close to this project's, and a namespace
  // titled as the binding. None may be bound or touched. 25 other queues push pendo-events,
  // made by hand under its exact name (so it is ours), onto the second page of the list.
  const lookAlikes = {
    kv: [cf.addKvNamespace("DEDUP"), cf.addKvNamespace(`${WORKER}-dedup-old`)],
    d1: cf.addDatabase(`${WORKER}-ledger-old`),
  };
  cf.addBucket(`${WORKER}-archive-old`);
  for (let i = 0; i < 25; i++) cf.addQueue(`another-queue-${String(i).padStart(2, "0")}`);
  cf.addQueue("pendo-events-dlq-old");
  cf.addQueue("pendo-events");
  const foreign = () =>
    JSON.stringify([
      lookAlikes.kv.map((id) => cf.kvNamespaces.get(id)),
      cf.databases.get(lookAlikes.d1)?.migrations,
      cf.buckets.get(`${WORKER}-archive-old`),
      [...cf.queues.values()].filter(
        (q) => q.queue_name !== "pendo-events" && q.queue_name !== "pendo-events-dlq",
      ),
    ]);
  const foreignBefore = foreign();
  const named = <T extends { name?: string; title?: string; queue_name?: string }>(
    items: Iterable<T>,
    name: string,
  ) => [...items].filter((item) => (item.name ?? item.title ?? item.queue_name) === name);

  // 1. D1 reports the migration as not run, and wrangler exits 0: the deploy stops before uploading.
  cf.injectUnsuccessfulQuery(/INSERT INTO "?d1_migrations"?/i);
  const declined = await npmRun(dir, env, "deploy");
  assert.notEqual(declined.status, 0, declined.output);
  assert.match(
    declined.output,
    /1 migration\(s\) of LEDGER are not applied: 0001_ledger\.sql\. Nothing was uploaded/,
  );
  assert.ok(!cf.scripts.has(WORKER), "no code uploaded before its schema");
  const [ledger] = named(cf.databases.values(), `${WORKER}-ledger`);
  assert.ok(ledger, "the database is created before the migrations, which need it");
  // The first migration was reported not run (what wrangler went on with after it does not matter:
  // a schema missing its first migration is not applied, and nothing was uploaded).
  assert.ok(!ledger.migrations.includes("0001_ledger.sql"), String(ledger.migrations));
  assert.equal(named(cf.queues.values(), "pendo-events-dlq").length, 1, "the dead-letter queue is created");

  // 2. The upload fails (wrangler retries a 500; every try fails): stopped, nothing uploaded.
  cf.injectFailure({
    method: "PUT",
    path: new RegExp(`/workers/scripts/${WORKER}$`),
    status: 500,
    times: 10,
  });
  const outage = await npmRun(dir, env, "deploy");
  cf.failures.splice(0);
  assert.notEqual(outage.status, 0, outage.output);
  assert.match(outage.output, /deploy stopped: `wrangler deploy` failed/);
  assert.ok(!cf.scripts.has(WORKER));
  assert.deepEqual(
    [...ledger.migrations].sort(),
    MIGRATIONS,
    "applied this time, before the upload was tried",
  );
  const [namespace] = named(cf.kvNamespaces.values(), `${WORKER}-dedup`);
  assert.ok(namespace, "wrangler created the namespace under the title it gives one");

  // 3. The next run completes: the namespace of run 2 is bound, not created a second time. As
  // `npm create cloudflare` runs it: C3 finds the Worker's URL in wrangler's output file.
  const outputFile = join(dir, "wrangler-output.ndjson");
  const deploy = await npmRun(dir, { ...env, WRANGLER_OUTPUT_FILE_PATH: outputFile }, "deploy");
  assert.equal(deploy.status, 0, deploy.output);
  const entries = readFileSync(outputFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { type: string; targets?: string[] });
  // C3 takes the first target of the "deploy" entry (create-cloudflare deploy.ts, runDeploy).
  assert.equal(
    entries.find((entry) => entry.type === "deploy")?.targets?.[0],
    `https://${WORKER}.${cf.subdomain}.workers.dev`,
  );
  assert.equal(named(cf.kvNamespaces.values(), `${WORKER}-dedup`).length, 1);
  assert.equal(named(cf.databases.values(), `${WORKER}-ledger`).length, 1);
  assert.equal(named(cf.queues.values(), "pendo-events").length, 1, "the queue made by hand is used");
  const script = cf.scripts.get(WORKER);
  assert.ok(script);
  const live = script.uploads.find((u) => u.id === script.deployments.at(-1));
  assert.ok(live, "a version is deployed");
  const bindings = live.metadata.bindings ?? [];
  const binding = (name: string) => bindings.find((b) => b.name === name);
  assert.equal(binding("DEDUP")?.namespace_id, namespace.id);
  assert.deepEqual([binding("LEDGER")?.type, binding("LEDGER")?.id], ["d1", ledger.uuid]);
  assert.deepEqual(
    [binding("ARCHIVE")?.type, binding("ARCHIVE")?.bucket_name],
    ["r2_bucket", `${WORKER}-archive`],
  );
  assert.deepEqual([binding("EVENTS")?.type, binding("EVENTS")?.queue_name], ["queue", "pendo-events"]);
  assert.ok(
    live.modules.some((name) => name.endsWith(".map")),
    `source maps uploaded: ${live.modules.join(", ")}`,
  );
  for (const expected of consumersInToml(toml)) {
    const queue = named(cf.queues.values(), expected.queue ?? "")[0];
    assert.equal(queue?.consumers.length, 1, `one consumer on ${expected.queue}`);
    const consumer = queue?.consumers[0];
    assert.equal(consumer?.script, WORKER);
    assert.equal(consumer?.dead_letter_queue, expected.dead_letter_queue);
    assert.deepEqual(
      { ...consumer?.settings, max_concurrency: undefined, retry_delay: undefined },
      { ...expected.settings, max_concurrency: undefined, retry_delay: undefined },
    );
  }
  assert.deepEqual(script.schedules, [{ cron: "*/5 * * * *" }]);
  assert.deepEqual(script.subdomain, { enabled: true, previews_enabled: false });
  assert.doesNotMatch(deploy.output, /workers_dev' is not in your Wrangler file/);
  assert.deepEqual(
    cf.buckets
      .get(`${WORKER}-archive`)
      ?.lifecycle.map((rule) => [
        rule.id,
        rule.enabled,
        rule.conditions.prefix,
        rule.deleteObjectsTransition?.condition,
      ]),
    lifecycleRules(7).map((rule) => [
      rule.id,
      true,
      rule.prefix,
      { type: "Age", maxAge: rule.expireDays * 86_400 },
    ]),
  );
  assert.ok(!existsSync(join(dir, ".wrangler-deploy.json")), "the deploy's config copy is removed");
  assert.deepEqual([...script.secrets.keys()], [], "no secret yet");

  // 4. Setup stores the secrets, and finds nothing else missing.
  const setup = await npmRun(dir, env, "setup");
  assert.equal(setup.status, 0, setup.output);
  assert.doesNotMatch(setup.output, /Still missing/);
  assert.match(script.secrets.get("WEBHOOK_TOKEN") ?? "", /^[0-9a-f]{48}$/);
  assert.equal(script.secrets.get("SEGMENT_WRITE_KEY"), SECRET_VALUES.SEGMENT_WRITE_KEY);
  assert.equal(script.secrets.get("ADMIN_TOKEN"), SECRET_VALUES.ADMIN_TOKEN);
  assert.ok(!script.secrets.has("ALERT_WEBHOOK_URL"), "an optional secret without a value is not stored");

  // 5. Deploy and setup again: a new version, but no resource, rule, secret or id changes.
  const before = snapshot(cf, dir);
  const fromRerun = cf.requests.length;
  const redeploy = await npmRun(dir, env, "deploy");
  assert.equal(redeploy.status, 0, redeploy.output);
  assert.deepEqual(creations(changesSince(cf, fromRerun)), []);
  assert.equal(snapshot(cf, dir), before);
  const fromSetup = cf.requests.length;
  const rerun = await npmRun(dir, env, "setup");
  assert.equal(rerun.status, 0, rerun.output);
  assert.equal(snapshot(cf, dir), before);
  assert.deepEqual(changesSince(cf, fromSetup), []);

  // 6. Setup while `secret list` fails with a 500: an error naming the call, nothing overwritten.
  cf.injectFailure({ method: "GET", path: new RegExp(`/workers/scripts/${WORKER}/secrets$`), status: 500 });
  const fromOutage = cf.requests.length;
  const failed = await npmRun(dir, env, "setup");
  assert.notEqual(failed.status, 0, failed.output);
  assert.match(failed.output, /setup stopped: `wrangler secret list --format json` failed/);
  assert.ok(cf.requests.slice(fromOutage).some((r) => r.injected));
  assert.equal(snapshot(cf, dir), before);
  assert.deepEqual(changesSince(cf, fromOutage), []);

  assert.equal(foreign(), foreignBefore, "no look-alike was bound or changed");
  for (const upload of script.uploads)
    for (const b of upload.metadata.bindings ?? [])
      assert.ok(
        ![...lookAlikes.kv, lookAlikes.d1].includes(String(b.namespace_id ?? b.id)),
        JSON.stringify(b),
      );
  assert.equal(readFileSync(join(dir, "wrangler.toml"), "utf8"), toml, "no id is written into wrangler.toml");
  t.diagnostic(`sequence took ${((Date.now() - started) / 1000).toFixed(1)} s: ${timings.join(", ")}`);
});
