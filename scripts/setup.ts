/**
 * `npm run setup`: create what the relay needs in your Cloudflare account. Safe to rerun: it
 * creates only what is missing and never replaces a secret unless asked to.
 *   npm run setup                               interactive: asks for the secrets it lacks
 *   npm run setup -- --non-interactive          (or CI set) secret values from the environment
 *   npm run setup -- --rotate WEBHOOK_TOKEN     replace a secret that is already set
 *
 * 1. reads the account first (KV namespaces, D1 databases, queues, the Worker's secrets), all of
 *    it, and stops before changing anything if any read fails;
 * 2. the KV namespace pendo-segment-relay-dedup and the D1 database pendo-segment-relay-ledger,
 *    adopted only under exactly those names; their ids are written into wrangler.toml;
 * 3. the D1 migrations, applied remotely;
 * 4. the queues pendo-events and pendo-events-dlq;
 * 5. the secrets WEBHOOK_TOKEN (generated), SEGMENT_WRITE_KEY, and the optional ADMIN_TOKEN and
 *    ALERT_WEBHOOK_URL. An empty value is never stored.
 * Needs `npx wrangler login` (or CLOUDFLARE_API_TOKEN) first. Then `npm run deploy`.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import {
  createdD1DatabaseId,
  createdKvNamespaceId,
  currentD1DatabaseId,
  currentKvNamespaceId,
  D1_BINDING,
  D1_NAME,
  findD1DatabaseId,
  findKvNamespaceId,
  isWorkerNotFound,
  KV_TITLE,
  listedQueues,
  listedSecrets,
  OPTIONAL_SECRETS,
  PLACEHOLDER_D1_ID,
  PLACEHOLDER_KV_ID,
  parseSetupArgs,
  QUEUES,
  type SecretName,
  secretPlan,
  WORKER,
  withD1DatabaseId,
  withKvNamespaceId,
} from "./setup/config";
import { promptSecret } from "./setup/prompt";
import { runWrangler, WranglerCallFailed, wrangler } from "./setup/wrangler";

const TOML = "wrangler.toml";
/** Far more pages than any account has; a list that never ends is an error, not an endless loop. */
const MAX_QUEUE_PAGES = 100;

function step(text: string) {
  console.log(`\n▸ ${text}`);
}

async function allQueues(): Promise<Set<string>> {
  const names = new Set<string>();
  for (let page = 1; page <= MAX_QUEUE_PAGES; page++) {
    const onPage = listedQueues(await wrangler(["queues", "list", "--page", String(page)]));
    if (onPage.length === 0) return names;
    for (const name of onPage) names.add(name);
  }
  throw new Error(`\`wrangler queues list\` did not end after ${MAX_QUEUE_PAGES} pages`);
}

/** The Worker's secrets; none when the Worker does not exist yet, an error for any other failure. */
async function presentSecrets(): Promise<{ deployed: boolean; names: Set<string> }> {
  const args = ["secret", "list", "--format", "json"];
  const result = await runWrangler(args);
  if (result.status === 0) return { deployed: true, names: listedSecrets(result.stdout) };
  if (isWorkerNotFound(result.stderr + result.stdout)) return { deployed: false, names: new Set() };
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

interface ResourceState {
  what: string;
  /** The id wrangler.toml holds. */
  inToml: string | undefined;
  placeholder: string;
  /** Every id of this kind the account has. */
  inAccount: string[];
  /** The id of the one under this project's exact name, if the account has it. */
  byName: string | undefined;
  create: () => Promise<string | undefined>;
}

/** The id to bind: wrangler.toml's if the account has it, else the one named as ours, else a new one. */
async function ensureResource(state: ResourceState): Promise<{ id: string; note: string }> {
  if (state.inToml && state.inToml !== state.placeholder) {
    if (!state.inAccount.includes(state.inToml))
      throw new Error(`${TOML} binds ${state.what} to ${state.inToml}, which this account does not have`);
    return { id: state.inToml, note: `${state.what}: in ${TOML} and in the account, ${state.inToml}` };
  }
  if (state.byName) return { id: state.byName, note: `${state.what}: found in the account, ${state.byName}` };
  const id = await state.create();
  if (!id) throw new Error(`created ${state.what} but could not read its id`);
  return { id, note: `${state.what}: created, ${id}` };
}

async function main() {
  const options = parseSetupArgs(process.argv.slice(2), process.env);
  // Without a terminal there is nobody to ask: reading stdin would take whatever is piped in.
  const nonInteractive = options.nonInteractive || !process.stdin.isTTY;

  step("Reading the account (changes nothing until every read succeeds)");
  const [kvList, d1List, queues, secrets] = await Promise.all([
    wrangler(["kv", "namespace", "list"]),
    wrangler(["d1", "list", "--json"]),
    allQueues(),
    presentSecrets(),
  ]);

  // Every value is known (asked for, generated or read from the environment) before anything changes.
  const toStore = [];
  for (const entry of secretPlan(secrets.names, options.rotate))
    toStore.push({
      ...entry,
      value: entry.action === "keep" ? undefined : await secretValue(entry.name, nonInteractive),
    });

  // Creations do not depend on each other: run together, they take one wrangler start-up, not four.
  let toml = readFileSync(TOML, "utf8");
  const [kv, d1, ...queueNotes] = await Promise.all([
    ensureResource({
      what: `KV namespace ${KV_TITLE} (binding DEDUP)`,
      inToml: currentKvNamespaceId(toml),
      placeholder: PLACEHOLDER_KV_ID,
      inAccount: (JSON.parse(kvList) as { id: string }[]).map((ns) => ns.id),
      byName: findKvNamespaceId(kvList, KV_TITLE),
      create: async () =>
        createdKvNamespaceId(await wrangler(["kv", "namespace", "create", KV_TITLE])) ??
        findKvNamespaceId(await wrangler(["kv", "namespace", "list"]), KV_TITLE),
    }),
    ensureResource({
      what: `D1 database ${D1_NAME} (binding ${D1_BINDING})`,
      inToml: currentD1DatabaseId(toml),
      placeholder: PLACEHOLDER_D1_ID,
      inAccount: (JSON.parse(d1List) as { uuid: string }[]).map((db) => db.uuid),
      byName: findD1DatabaseId(d1List, D1_NAME),
      create: async () =>
        createdD1DatabaseId(await wrangler(["d1", "create", D1_NAME])) ??
        findD1DatabaseId(await wrangler(["d1", "list", "--json"]), D1_NAME),
    }),
    ...QUEUES.map(async (queue) => {
      if (queues.has(queue)) return `queue ${queue}: exists`;
      await wrangler(["queues", "create", queue]);
      return `queue ${queue}: created`;
    }),
  ]);
  step("Resources");
  for (const note of [kv.note, d1.note, ...queueNotes]) console.log(`  ${note}`);
  const updated = withD1DatabaseId(withKvNamespaceId(toml, kv.id), d1.id);
  if (updated !== toml) {
    writeFileSync(TOML, updated);
    toml = updated;
    console.log(`  wrote the ids into ${TOML} (commit it)`);
  }

  step("D1 migrations (remote)");
  await wrangler(["d1", "migrations", "apply", D1_BINDING, "--remote"], { inherit: !nonInteractive });
  console.log("  applied");

  step("Secrets");
  if (!secrets.deployed) console.log(`  (the Worker ${WORKER} does not exist yet: every secret is new)`);
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
  const token = upload.WEBHOOK_TOKEN;

  step("Next");
  console.log("  npm run deploy");
  console.log("  then in Pendo: Settings > Integrations > Webhooks > Create webhook, type URL:");
  console.log(`  https://${WORKER}.<your-subdomain>.workers.dev/pendo?token=${token ?? "<WEBHOOK_TOKEN>"}`);
}

main().catch((error: unknown) => {
  console.error(`\nsetup stopped: ${error instanceof Error ? error.message : String(error)}`);
  console.error("Nothing after the failed step was changed; fix the cause and rerun npm run setup.");
  // Exit now rather than wait for the wrangler calls still running beside the one that failed:
  // they finish on their own, and their answers are moot.
  process.exit(1);
});
