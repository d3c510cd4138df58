/**
 * `npm run setup`: what neither wrangler.toml nor `npm run deploy` holds: the secrets, the
 * archive's lifecycle rules (as deploy sets them), and a check of what is still missing. Safe to
 * rerun: it never replaces a secret unless asked to, and writes nothing already in place.
 *   npm run setup                               interactive: asks for the secrets it lacks
 *   npm run setup -- --non-interactive          (or CI set) secret values from the environment
 *   npm run setup -- --rotate WEBHOOK_TOKEN     replace a secret that is already set
 *
 * 1. reads wrangler.toml and the account (the Worker's secrets, the bucket's lifecycle rules),
 *    and stops before changing anything if any read fails;
 * 2. the secrets WEBHOOK_TOKEN (generated), SEGMENT_WRITE_KEY, and the optional ADMIN_TOKEN and
 *    ALERT_WEBHOOK_URL, in one `wrangler secret bulk`. An empty value is never stored;
 * 3. the lifecycle rules of src/r2/keys.ts on the archive bucket, where they differ;
 * 4. what is still missing, by name.
 * Needs `npx wrangler login` (or CLOUDFLARE_API_TOKEN) first.
 */
import { randomBytes } from "node:crypto";
import {
  isWorkerNotFound,
  listedSecrets,
  OPTIONAL_SECRETS,
  parseSetupArgs,
  type SecretName,
  secretPlan,
} from "./setup/config";
import { applyLifecycleRules, readLifecycleRules } from "./setup/lifecycle";
import { readProject } from "./setup/project";
import { promptSecret } from "./setup/prompt";
import { runWrangler, WranglerCallFailed, wrangler } from "./setup/wrangler";

function step(text: string) {
  console.log(`\n▸ ${text}`);
}

/** The Worker's secrets; none when the Worker does not exist yet, an error for any other failure. */
async function presentSecrets(worker: string): Promise<{ deployed: boolean; names: Set<string> }> {
  const args = ["secret", "list", "--format", "json"];
  const result = await runWrangler(args);
  if (result.status === 0) return { deployed: true, names: listedSecrets(result.stdout) };
  if (isWorkerNotFound(result.stderr + result.stdout, worker)) return { deployed: false, names: new Set() };
  throw new WranglerCallFailed(`wrangler ${args.join(" ")}`, result);
}

/** The value to store for a secret, or undefined to leave it unset (optional secrets only). */
async function secretValue(name: SecretName, nonInteractive: boolean): Promise<string | undefined> {
  const optional = (OPTIONAL_SECRETS as readonly string[]).includes(name);
  const fromEnv = process.env[name]?.trim();
  if (fromEnv) return fromEnv;
  if (name === "WEBHOOK_TOKEN") return randomBytes(24).toString("hex");
  if (nonInteractive) {
    if (optional) return undefined;
    throw new Error(`${name} is required: set the environment variable ${name} (non-interactive mode)`);
  }
  for (;;) {
    const value = await promptSecret(`  ${name}${optional ? " (optional, Enter to skip)" : ""}: `);
    if (value || optional) return value || undefined;
    console.log(`  ${name} is required.`);
  }
}

async function main() {
  const options = parseSetupArgs(process.argv.slice(2), process.env);
  // Without a terminal there is nobody to ask: reading stdin would take whatever is piped in.
  const nonInteractive = options.nonInteractive || !process.stdin.isTTY;
  const { project } = readProject();
  const { worker, archive } = project;

  step("Reading the account (changes nothing until every read succeeds)");
  const [secrets, rules] = await Promise.all([
    presentSecrets(worker),
    archive ? readLifecycleRules(archive.bucket) : undefined,
  ]);

  // Every value is known (asked for, generated or read from the environment) before anything changes.
  const toStore = [];
  for (const entry of secretPlan(secrets.names, options.rotate))
    toStore.push({
      ...entry,
      value: entry.action === "keep" ? undefined : await secretValue(entry.name, nonInteractive),
    });

  step("Secrets");
  if (!secrets.deployed) console.log(`  (the Worker ${worker} does not exist yet: every secret is new)`);
  const upload: Record<string, string> = {};
  for (const { name, action, value } of toStore) {
    if (action === "keep") console.log(`  ${name}: set, kept (replace it with --rotate ${name})`);
    else if (value === undefined) console.log(`  ${name}: not set (optional)`);
    else upload[name] = value;
  }
  // One `secret bulk` call stores them all: one start-up, and on a Worker that does not exist yet
  // one draft Worker, where separate `secret put`s run together would each create one.
  if (Object.keys(upload).length > 0) {
    await wrangler(["secret", "bulk"], { input: JSON.stringify(upload) });
    for (const { name, action } of toStore)
      if (upload[name] !== undefined)
        console.log(`  ${name}: ${action === "rotate" ? "replaced" : "stored"}`);
  }

  const missing: string[] = [];
  if (!secrets.deployed) missing.push(`the Worker ${worker}: run npm run deploy`);
  if (archive) {
    step(`R2 lifecycle rules (${archive.bucket})`);
    if (rules)
      for (const note of await applyLifecycleRules(archive.bucket, rules, archive.days))
        console.log(`  ${note}`);
    else missing.push(`the bucket ${archive.bucket}: npm run deploy creates it and sets its rules`);
  }

  step(missing.length > 0 ? "Still missing" : "Next");
  for (const line of missing) console.log(`  ${line}`);
  const token = upload.WEBHOOK_TOKEN;
  console.log("  In Pendo: Settings > Integrations > Webhooks > Create webhook, type URL:");
  console.log(`  https://${worker}.<your-subdomain>.workers.dev/pendo?token=${token ?? "<WEBHOOK_TOKEN>"}`);
}

main().catch((error: unknown) => {
  console.error(`\nsetup stopped: ${error instanceof Error ? error.message : String(error)}`);
  console.error("Nothing after the failed step was changed; fix the cause and rerun npm run setup.");
  // Exit now rather than wait for the wrangler calls still running beside the one that failed:
  // they finish on their own, and their answers are moot.
  process.exit(1);
});
