/**
 * Pure helpers of `npm run setup` and `npm run deploy`: the secrets setup stores, reading
 * wrangler's answers (each parser fails closed: an answer it cannot read is an error, never
 * "nothing there"), and reading the command line.
 */
import type { lifecycleRules } from "../../src/r2/keys";

export const REQUIRED_SECRETS = ["WEBHOOK_TOKEN", "SEGMENT_WRITE_KEY"] as const;
export const OPTIONAL_SECRETS = ["ADMIN_TOKEN", "ALERT_WEBHOOK_URL"] as const;
export const SECRETS = [...REQUIRED_SECRETS, ...OPTIONAL_SECRETS] as const;
export type SecretName = (typeof SECRETS)[number];

/** The id of the namespace titled exactly `title` in `wrangler kv namespace list` JSON. */
export function findKvNamespaceId(listJson: string, title: string): string | undefined {
  const namespaces = JSON.parse(listJson) as { id: string; title: string }[];
  return namespaces.find((namespace) => namespace.title === title)?.id;
}

/** The id of the database named exactly `name` in `wrangler d1 list --json`. */
export function findD1DatabaseId(listJson: string, name: string): string | undefined {
  const databases = JSON.parse(listJson) as { uuid: string; name: string }[];
  return databases.find((database) => database.name === name)?.uuid;
}

/**
 * Whether `wrangler queues info <name>` found the queue: true when it names exactly that queue,
 * false when it says the queue does not exist, undefined for any other answer (a failure).
 */
export function queueFound(name: string, status: number, output: string): boolean | undefined {
  if (status === 0) return output.split("\n").some((line) => line.trim() === `Queue Name: ${name}`);
  return output.includes(`Queue "${name}" does not exist`) ? false : undefined;
}

/**
 * The migrations `wrangler d1 migrations list <DB> --remote` still lists as unapplied, among the
 * files in the migrations folder. An answer that neither says "No migrations to apply" nor names
 * a file is not read as "none pending".
 */
export function pendingMigrations(output: string, files: readonly string[]): string[] {
  if (/No migrations to apply/.test(output)) return [];
  const pending = files.filter((file) => output.includes(file));
  if (pending.length === 0)
    throw new Error(`could not read which migrations are pending from:\n    ${output.trim()}`);
  return pending;
}

/** One rule as `wrangler r2 bucket lifecycle list` prints it. */
export interface ListedRule {
  name: string;
  enabled: string;
  prefix: string;
  action: string;
}

/**
 * The rules in `wrangler r2 bucket lifecycle list <bucket>`: blocks of `name:`, `enabled:`,
 * `prefix:` and `action:` lines. "There are no lifecycle rules" is the empty list; an answer with
 * neither is an error.
 */
export function listedLifecycleRules(output: string): ListedRule[] {
  if (/There are no lifecycle rules/.test(output)) return [];
  const rules: ListedRule[] = [];
  let rule: Partial<ListedRule> = {};
  for (const line of output.split("\n")) {
    const match = /^(name|enabled|prefix|action):\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, label, value] = match as unknown as [string, keyof ListedRule, string];
    if (label === "name") rule = {};
    rule[label] = value.trim();
    if (label === "action") rules.push(rule as ListedRule);
  }
  if (rules.length === 0) throw new Error(`could not read the lifecycle rules from:\n    ${output.trim()}`);
  return rules;
}

export type DesiredRule = ReturnType<typeof lifecycleRules>[number];

/** How wrangler lists a rule this project sets (wrangler's r2 helpers, formatCondition). */
const listed = (rule: DesiredRule): ListedRule => ({
  name: rule.id,
  enabled: "Yes",
  prefix: rule.prefix,
  action: `Expire objects after ${rule.expireDays} days`,
});

/**
 * What to change so the bucket holds `desired`: a rule missing is added, one of the same id that
 * differs is replaced. Rules of other ids are someone else's and are left alone.
 */
export function lifecyclePlan(
  current: readonly ListedRule[],
  desired: readonly DesiredRule[],
): { add: DesiredRule[]; replace: DesiredRule[]; kept: string[]; foreign: string[] } {
  const plan = { add: [] as DesiredRule[], replace: [] as DesiredRule[], kept: [] as string[] };
  for (const rule of desired) {
    const found = current.find((existing) => existing.name === rule.id);
    if (!found) plan.add.push(rule);
    else if (JSON.stringify(found) !== JSON.stringify(listed(rule))) plan.replace.push(rule);
    else plan.kept.push(rule.id);
  }
  const ours = new Set<string>(desired.map((rule) => rule.id));
  return { ...plan, foreign: current.filter((rule) => !ours.has(rule.name)).map((rule) => rule.name) };
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
export function isWorkerNotFound(output: string, worker: string): boolean {
  return /\[code: 10007\]/.test(output) || output.includes(`Worker "${worker}" not found`);
}

/** Whether a failed call failed because the bucket does not exist (R2 code 10006). */
export function isBucketMissing(output: string): boolean {
  return /\[code: 10006\]/.test(output);
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
