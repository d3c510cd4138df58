/**
 * Pure helpers of `npm run setup` and `npm run deploy`: the names of what the relay owns in a
 * Cloudflare account, reading wrangler's answers, editing wrangler.toml, reading the command line.
 */

export const WORKER = "pendo-segment-relay";
/** Titled after the project, so a namespace some other Worker calls DEDUP is never taken for ours. */
export const KV_TITLE = `${WORKER}-dedup`;
export const D1_NAME = `${WORKER}-ledger`;
export const D1_BINDING = "LEDGER";
export const QUEUES = ["pendo-events", "pendo-events-dlq"] as const;
export const REQUIRED_SECRETS = ["WEBHOOK_TOKEN", "SEGMENT_WRITE_KEY"] as const;
export const OPTIONAL_SECRETS = ["ADMIN_TOKEN", "ALERT_WEBHOOK_URL"] as const;
export const SECRETS = [...REQUIRED_SECRETS, ...OPTIONAL_SECRETS] as const;
export type SecretName = (typeof SECRETS)[number];
export const PLACEHOLDER_KV_ID = "00000000000000000000000000000000";
export const PLACEHOLDER_D1_ID = "00000000-0000-0000-0000-000000000000";

const KV_ID_LINE = /(\[\[kv_namespaces\]\]\s*\nbinding = "DEDUP"\s*\nid = ")([^"]*)(")/;
const D1_ID_LINE =
  /(\[\[d1_databases\]\]\s*\nbinding = "LEDGER"\s*\n(?:[a-z_]+ = "[^"]*"\s*\n)*?database_id = ")([^"]*)(")/;
const KV_ID = /^[0-9a-f]{32}$/;
const D1_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The id of the namespace titled exactly `title` in `wrangler kv namespace list` JSON. */
export function findKvNamespaceId(listJson: string, title: string = KV_TITLE): string | undefined {
  const namespaces = JSON.parse(listJson) as { id: string; title: string }[];
  return namespaces.find((namespace) => namespace.title === title)?.id;
}

/** The id of the database named exactly `name` in `wrangler d1 list --json`. */
export function findD1DatabaseId(listJson: string, name: string = D1_NAME): string | undefined {
  const databases = JSON.parse(listJson) as { uuid: string; name: string }[];
  return databases.find((database) => database.name === name)?.uuid;
}

/** The id printed by `wrangler kv namespace create`, in either its TOML or JSON form. */
export function createdKvNamespaceId(output: string): string | undefined {
  return /"?id"?\s*[=:]\s*"([0-9a-f]{32})"/.exec(output)?.[1];
}

/** The id printed by `wrangler d1 create`, in either its TOML or JSON form. */
export function createdD1DatabaseId(output: string): string | undefined {
  return /"?database_id"?\s*[=:]\s*"([0-9a-f-]{36})"/.exec(output)?.[1];
}

export function currentKvNamespaceId(toml: string): string | undefined {
  return KV_ID_LINE.exec(toml)?.[2];
}

export function currentD1DatabaseId(toml: string): string | undefined {
  return D1_ID_LINE.exec(toml)?.[2];
}

/** wrangler.toml with the DEDUP namespace's id set, everything else untouched. */
export function withKvNamespaceId(toml: string, id: string): string {
  if (!KV_ID.test(id)) throw new Error(`not a KV namespace id: ${id}`);
  if (!KV_ID_LINE.test(toml))
    throw new Error('wrangler.toml has no [[kv_namespaces]] block with binding = "DEDUP" then id');
  return toml.replace(KV_ID_LINE, `$1${id}$3`);
}

/** wrangler.toml with the LEDGER database's id set, everything else untouched. */
export function withD1DatabaseId(toml: string, id: string): string {
  if (!D1_ID.test(id)) throw new Error(`not a D1 database id: ${id}`);
  if (!D1_ID_LINE.test(toml))
    throw new Error('wrangler.toml has no [[d1_databases]] block with binding = "LEDGER" and a database_id');
  return toml.replace(D1_ID_LINE, `$1${id}$3`);
}

/** The bindings whose id in wrangler.toml is still missing or the placeholder: deploy refuses them. */
export function placeholderBindings(toml: string): string[] {
  const kv = currentKvNamespaceId(toml);
  const d1 = currentD1DatabaseId(toml);
  return [
    ...(!kv || kv === PLACEHOLDER_KV_ID ? ["KV namespace DEDUP"] : []),
    ...(!d1 || d1 === PLACEHOLDER_D1_ID ? [`D1 database ${D1_BINDING}`] : []),
  ];
}

/**
 * Queue names in one page of `wrangler queues list` (a table: id, name, ...). An empty list
 * means the page is past the last one.
 */
export function listedQueues(output: string): string[] {
  const names: string[] = [];
  for (const line of output.split("\n")) {
    const cells = line.split("│").map((cell) => cell.trim());
    // A data row is "│ id │ name │ ... │": cells[0] is before the first bar.
    if (cells.length < 4 || cells[0] !== "") continue;
    const name = cells[2] as string;
    if (name && name !== "name") names.push(name);
  }
  return names;
}

/** Secret names in `wrangler secret list --format json`. */
export function listedSecrets(listJson: string): Set<string> {
  return new Set((JSON.parse(listJson) as { name: string }[]).map((secret) => secret.name));
}

/**
 * Whether a failed wrangler call failed because the Worker does not exist (API code 10007, which
 * `wrangler secret list` words as `Worker "…" not found`), the one failure that means "not
 * deployed yet". Any other failure, a 500 included, is an error.
 */
export function isWorkerNotFound(stderr: string): boolean {
  return /\[code: 10007\]/.test(stderr) || new RegExp(`Worker "${WORKER}" not found`).test(stderr);
}

export interface SetupOptions {
  /** Secrets to replace even though they are set. */
  rotate: SecretName[];
  /** Read secret values from the environment; never prompt. */
  nonInteractive: boolean;
}

/** `npm run setup -- [--rotate NAME]... [--non-interactive]`; CI set also means non-interactive. */
export function parseSetupArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): SetupOptions {
  const options: SetupOptions = { rotate: [], nonInteractive: Boolean(env.CI) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--non-interactive") options.nonInteractive = true;
    else if (arg === "--rotate" || arg.startsWith("--rotate=")) {
      const name = arg === "--rotate" ? argv[++i] : arg.slice("--rotate=".length);
      if (!(SECRETS as readonly string[]).includes(name ?? ""))
        throw new Error(`--rotate takes one of ${SECRETS.join(", ")}; got ${name ?? "nothing"}`);
      options.rotate.push(name as SecretName);
    } else throw new Error(`unknown option ${arg} (known: --rotate NAME, --non-interactive)`);
  }
  return options;
}

/** What setup does with each secret, given the ones the Worker has. */
export function secretPlan(
  present: ReadonlySet<string>,
  rotate: readonly SecretName[],
): { name: SecretName; action: "keep" | "set" | "rotate" }[] {
  return SECRETS.map((name) => ({
    name,
    action: rotate.includes(name) ? "rotate" : present.has(name) ? "keep" : "set",
  }));
}
