import assert from "node:assert/strict";
import { test } from "node:test";
import { experimental_readRawConfig } from "wrangler";
import {
  findD1DatabaseId,
  findKvNamespaceId,
  isBucketMissing,
  isWorkerNotFound,
  lifecyclePlan,
  listedLifecycleRules,
  listedSecrets,
  parseSetupArgs,
  pendingMigrations,
  queueFound,
  secretPlan,
} from "../scripts/setup/config";
import { projectOf, provisionedName } from "../scripts/setup/project";
import { lifecycleRules } from "../src/r2/keys";

const ID = "0123456789abcdef0123456789abcdef";
const UUID = "01234567-89ab-cdef-0123-456789abcdef";
const { rawConfig } = experimental_readRawConfig({ config: "wrangler.toml" });

test("wrangler.toml names every resource and commits no account's id", () => {
  const result = projectOf(rawConfig);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.project, {
    worker: "pendo-segment-relay",
    namespaces: [{ binding: "DEDUP", id: undefined, title: "pendo-segment-relay-dedup" }],
    databases: [
      {
        binding: "LEDGER",
        name: "pendo-segment-relay-ledger",
        id: undefined,
        jurisdiction: undefined,
        migrationsDir: "migrations",
      },
    ],
    buckets: [{ binding: "ARCHIVE", name: "pendo-segment-relay-archive" }],
    consumedOnly: ["pendo-events-dlq"],
    archive: { bucket: "pendo-segment-relay-archive", days: 7 },
  });
});

test("the deploy path refuses a config whose resources are not named, naming each", () => {
  const result = projectOf({
    ...rawConfig,
    d1_databases: [{ binding: "LEDGER", database_id: UUID }],
    r2_buckets: [{ binding: "ARCHIVE" }],
    vars: { ARCHIVE_DAYS: "0" },
  } as typeof rawConfig);
  assert.ok(!result.ok);
  assert.deepEqual(result.problems, [
    "D1 binding LEDGER has no database_name: name it, so a rerun finds it",
    "R2 binding ARCHIVE has no bucket_name: name it, so a rerun finds it",
    "ARCHIVE_DAYS in wrangler.toml [vars] must be at least 1",
  ]);
  const unset = projectOf({ ...rawConfig, vars: {} });
  assert.ok(unset.ok);
  assert.equal(unset.project.archive?.days, 7, "the schema's default");
});

test("a KV namespace is the one titled as wrangler titles what it provisions, under the Worker's name", () => {
  assert.equal(provisionedName("pendo-segment-relay", "DEDUP"), "pendo-segment-relay-dedup");
  assert.equal(provisionedName("my-relay", "DEDUP_MARKERS"), "my-relay-dedup-markers");
  const renamed = projectOf({ ...rawConfig, name: "my-relay" });
  assert.ok(renamed.ok);
  assert.equal(renamed.project.namespaces[0]?.title, "my-relay-dedup");
});

test("resources are found only under their exact name", () => {
  const namespaces = JSON.stringify([
    { id: "f".repeat(32), title: "DEDUP" },
    { id: "e".repeat(32), title: "pendo-segment-relay-dedup-old" },
    { id: ID, title: "pendo-segment-relay-dedup" },
  ]);
  assert.equal(findKvNamespaceId(namespaces, "pendo-segment-relay-dedup"), ID);
  assert.equal(findKvNamespaceId(namespaces, "pendo-segment-relay-DEDUP"), undefined);
  const databases = JSON.stringify([{ uuid: UUID, name: "pendo-segment-relay-ledger-old" }]);
  assert.equal(findD1DatabaseId(databases, "pendo-segment-relay-ledger"), undefined);
  assert.equal(queueFound("pendo-events-dlq", 0, "Queue Name: pendo-events-dlq\nQueue ID: 1"), true);
  assert.equal(queueFound("pendo-events-dlq", 0, "Queue Name: pendo-events-dlq-old\nQueue ID: 1"), false);
  const missing = 'Queue "pendo-events-dlq" does not exist. To create it, run: wrangler queues create';
  assert.equal(queueFound("pendo-events-dlq", 1, missing), false);
  assert.equal(queueFound("pendo-events-dlq", 1, "An unknown error has occurred [code: 10013]"), undefined);
});

test("pending migrations are read from wrangler's list, and an unreadable answer is not 'none'", () => {
  const files = ["0001_ledger.sql", "0002_archive.sql"];
  assert.deepEqual(pendingMigrations("✅ No migrations to apply!", files), []);
  const table = "Migrations to be applied:\n│ Name            │\n│ 0002_archive.sql │";
  assert.deepEqual(pendingMigrations(table, files), ["0002_archive.sql"]);
  assert.throws(() => pendingMigrations("something else", files), /could not read/);
});

test("lifecycle rules: wrangler's listing read back, and only what differs is changed", () => {
  const output = [
    "Listing lifecycle rules for bucket 'b'...",
    "name:     archive-expiry",
    "enabled:  Yes",
    "prefix:   archive/",
    "action:   Expire objects after 14 days",
    "",
    "name:     someone-elses",
    "enabled:  No",
    "prefix:   (all prefixes)",
    "action:   Abort incomplete multipart uploads after 1 days",
  ].join("\n");
  const current = listedLifecycleRules(output);
  assert.equal(current.length, 2);
  const plan = lifecyclePlan(current, lifecycleRules(7));
  assert.deepEqual(
    plan.replace.map((rule) => rule.id),
    ["archive-expiry"],
  );
  assert.deepEqual(
    plan.add.map((rule) => rule.id),
    ["orphan-records"],
  );
  assert.deepEqual(plan.foreign, ["someone-elses"]);
  const settled = lifecyclePlan(listedLifecycleRules(output.replace("14 days", "7 days")), lifecycleRules(7));
  assert.deepEqual(settled.kept, ["archive-expiry"]);
  assert.deepEqual(listedLifecycleRules("There are no lifecycle rules for bucket 'b'."), []);
  assert.throws(() => listedLifecycleRules("✘ [ERROR] fetch failed"), /could not read/);
  assert.ok(isBucketMissing("The specified bucket does not exist. [code: 10006]"));
  assert.ok(!isBucketMissing("An unknown error has occurred [code: 10013]"));
});

test("setup replaces a set secret only when asked to, and counts only code 10007 as not deployed", () => {
  const present = listedSecrets('[{"name":"WEBHOOK_TOKEN","type":"secret_text"}]');
  assert.deepEqual(
    secretPlan(present, []).map(({ name, action }) => `${name}:${action}`),
    ["WEBHOOK_TOKEN:keep", "SEGMENT_WRITE_KEY:set", "ADMIN_TOKEN:set", "ALERT_WEBHOOK_URL:set"],
  );
  assert.equal(secretPlan(present, ["WEBHOOK_TOKEN"])[0]?.action, "rotate");
  assert.ok(isWorkerNotFound('✘ [ERROR] Worker "my-relay" not found.', "my-relay"));
  assert.ok(isWorkerNotFound("This Worker does not exist on your account. [code: 10007]", "my-relay"));
  assert.ok(!isWorkerNotFound("An unknown error has occurred [code: 10013]", "my-relay"));
});

test("setup's command line: --rotate NAME, --non-interactive, and CI", () => {
  assert.deepEqual(parseSetupArgs([], {}), { rotate: [], nonInteractive: false });
  assert.deepEqual(parseSetupArgs([], { CI: "true" }), { rotate: [], nonInteractive: true });
  assert.deepEqual(
    parseSetupArgs(["--rotate", "WEBHOOK_TOKEN", "--rotate=ADMIN_TOKEN", "--non-interactive"], {}),
    {
      rotate: ["WEBHOOK_TOKEN", "ADMIN_TOKEN"],
      nonInteractive: true,
    },
  );
  assert.throws(() => parseSetupArgs(["--rotate", "NOPE"], {}), /--rotate takes one of/);
  assert.throws(() => parseSetupArgs(["--force"], {}), /unknown option/);
});
