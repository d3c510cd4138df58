/**
 * `npm run deploy`: what wrangler's own provisioning leaves undone, around `wrangler deploy`.
 * Safe to rerun; every step creates only what the account lacks, under the names in wrangler.toml.
 *   1. reads wrangler.toml (every D1 database, R2 bucket and queue must be named in it) and then
 *      the account; a failed read stops it before anything changes;
 *   2. creates the D1 databases the account lacks (the migrations need them before the first
 *      upload) and the queues that are only consumed, the dead-letter queue (wrangler provisions
 *      only the queues a producer names);
 *   3. applies the D1 migrations by binding name, then lists them: if any is still pending (a
 *      declined prompt exits 0 having applied nothing) it stops, and nothing is uploaded;
 *   4. `wrangler deploy`, which finds or creates the bucket and the producer's queue by name and
 *      uploads. wrangler never looks a KV namespace up by title, so a namespace left by an
 *      interrupted deploy would make every rerun fail (code 10014): the namespace titled as
 *      wrangler titles its own (`<name>-dedup`) is passed by id, else wrangler creates it;
 *   5. the archive bucket's lifecycle rules (src/r2/keys.ts), which only the API sets.
 * Arguments after `--` go to `wrangler deploy`.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { findD1DatabaseId, findKvNamespaceId, pendingMigrations, queueFound } from "./setup/config";
import { applyLifecycleRules, readLifecycleRules } from "./setup/lifecycle";
import { readProject } from "./setup/project";
import { runWrangler, WranglerCallFailed, wrangler } from "./setup/wrangler";

/** The config wrangler deploys from when a namespace id must be added; removed afterwards. */
const DEPLOY_CONFIG = ".wrangler-deploy.json";

function step(text: string) {
  console.log(`\n▸ ${text}`);
}

/** The migration files wrangler applies, in its order (file name), or none when there is no folder. */
function migrationFiles(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((name) => name.endsWith(".sql"))
        .sort()
    : [];
}

async function queueExists(name: string): Promise<boolean> {
  const args = ["queues", "info", name];
  const result = await runWrangler(args);
  const found = queueFound(name, result.status, result.stdout + result.stderr);
  if (found === undefined) throw new WranglerCallFailed(`wrangler ${args.join(" ")}`, result);
  return found;
}

async function main() {
  const { raw, project } = readProject();
  // A person at a terminal sees wrangler's migration prompt; anywhere else wrangler asks nothing.
  const interactive = Boolean(process.stdin.isTTY) && !process.env.CI;

  step("Reading the account (changes nothing until every read succeeds)");
  const [kvList, d1List, queues] = await Promise.all([
    project.namespaces.some((ns) => !ns.id) ? wrangler(["kv", "namespace", "list"]) : "[]",
    project.databases.some((db) => !db.id) ? wrangler(["d1", "list", "--json"]) : "[]",
    Promise.all(project.consumedOnly.map(async (name) => ({ name, exists: await queueExists(name) }))),
  ]);

  // Independent of each other: created together, they cost one wrangler start-up, not several.
  const notes = await Promise.all([
    ...project.databases.map(async (db) => {
      if (db.id || findD1DatabaseId(d1List, db.name)) return `D1 database ${db.name} (${db.binding}): exists`;
      const where = db.jurisdiction ? ["--jurisdiction", db.jurisdiction] : [];
      await wrangler(["d1", "create", db.name, ...where]);
      return `D1 database ${db.name} (${db.binding}): created`;
    }),
    ...queues.map(async ({ name, exists }) => {
      if (exists) return `queue ${name}: exists`;
      await wrangler(["queues", "create", name]);
      return `queue ${name}: created (only consumed, so wrangler would not create it)`;
    }),
  ]);
  for (const note of notes) console.log(`  ${note}`);

  for (const db of project.databases) {
    const files = migrationFiles(db.migrationsDir);
    if (files.length === 0) continue;
    step(`D1 migrations (${db.binding}, remote)`);
    await wrangler(["d1", "migrations", "apply", db.binding, "--remote"], { inherit: interactive });
    const listed = await wrangler(["d1", "migrations", "list", db.binding, "--remote"]);
    const pending = pendingMigrations(listed, files);
    if (pending.length > 0)
      throw new Error(
        `${pending.length} migration(s) of ${db.binding} are not applied: ${pending.join(", ")}. ` +
          "Nothing was uploaded: the new code would meet the old schema. Rerun npm run deploy and apply them.",
      );
    console.log(`  all ${files.length} applied`);
  }

  step("wrangler deploy");
  const adopted = project.namespaces.flatMap((ns) => {
    const id = ns.id ? undefined : findKvNamespaceId(kvList, ns.title);
    return id ? [{ ...ns, id }] : [];
  });
  for (const ns of adopted) console.log(`  KV namespace ${ns.title} (${ns.binding}): exists, ${ns.id}`);
  const args = ["deploy", ...process.argv.slice(2)];
  if (adopted.length > 0) {
    // wrangler.toml stays as committed; the copy differs only by the ids found above.
    const kv_namespaces = (raw.kv_namespaces ?? []).map((ns) => {
      const found = adopted.find((candidate) => candidate.binding === ns.binding);
      return found ? { ...ns, id: found.id } : ns;
    });
    writeFileSync(DEPLOY_CONFIG, JSON.stringify({ ...raw, kv_namespaces }, null, 2));
    args.push("--config", DEPLOY_CONFIG);
  }
  try {
    await wrangler(args, { inherit: true });
  } finally {
    rmSync(DEPLOY_CONFIG, { force: true });
  }

  if (project.archive) {
    const { bucket, days } = project.archive;
    step(`R2 lifecycle rules (${bucket})`);
    const current = await readLifecycleRules(bucket);
    if (!current) throw new Error(`the bucket ${bucket} does not exist after wrangler deploy`);
    for (const note of await applyLifecycleRules(bucket, current, days)) console.log(`  ${note}`);
  }

  step("Next");
  console.log("  npm run setup    stores the secrets (the relay answers 503 naming each one missing)");
}

main().catch((error: unknown) => {
  console.error(`\ndeploy stopped: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
