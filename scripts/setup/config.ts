/** Pure helpers of `npm run setup`: reading wrangler's answers and editing wrangler.toml. */

export const KV_BINDING = "DEDUP";
export const QUEUES = ["pendo-events", "pendo-events-dlq"] as const;
export const REQUIRED_SECRETS = ["WEBHOOK_TOKEN", "SEGMENT_WRITE_KEY"] as const;
export const OPTIONAL_SECRETS = ["ADMIN_TOKEN", "ALERT_WEBHOOK_URL"] as const;
export const PLACEHOLDER_KV_ID = "00000000000000000000000000000000";

/**
 * The id of the relay's KV namespace in `wrangler kv namespace list` JSON. wrangler 3 titled a
 * namespace "<worker>-<BINDING>", wrangler 4 just "<BINDING>"; either is recognised.
 */
export function findKvNamespaceId(listJson: string, worker: string): string | undefined {
  const namespaces = JSON.parse(listJson) as { id: string; title: string }[];
  const titles = new Set([KV_BINDING, `${worker}-${KV_BINDING}`]);
  return namespaces.find((namespace) => titles.has(namespace.title))?.id;
}

/** The id printed by `wrangler kv namespace create`, in either its TOML or JSON form. */
export function createdKvNamespaceId(output: string): string | undefined {
  return /"?id"?\s*[=:]\s*"([0-9a-f]{32})"/.exec(output)?.[1];
}

/** wrangler.toml with the DEDUP namespace's id set, everything else untouched. */
export function withKvNamespaceId(toml: string, id: string): string {
  if (!/^[0-9a-f]{32}$/.test(id)) throw new Error(`not a KV namespace id: ${id}`);
  const block = /(\[\[kv_namespaces\]\]\s*\nbinding = "DEDUP"\s*\nid = ")[^"]*(")/;
  if (!block.test(toml))
    throw new Error('wrangler.toml has no [[kv_namespaces]] block with binding = "DEDUP" then id');
  return toml.replace(block, `$1${id}$2`);
}

export function currentKvNamespaceId(toml: string): string | undefined {
  return /\[\[kv_namespaces\]\]\s*\nbinding = "DEDUP"\s*\nid = "([^"]*)"/.exec(toml)?.[1];
}

/** Queue names in `wrangler queues list` output (a table). */
export function listedQueues(output: string): Set<string> {
  return new Set(
    [...output.matchAll(/(?:^|[\s│|])(pendo-events(?:-dlq)?)(?=[\s│|]|$)/gm)].map((m) => m[1] as string),
  );
}

/** Secret names in `wrangler secret list` JSON. */
export function listedSecrets(listJson: string): Set<string> {
  return new Set((JSON.parse(listJson) as { name: string }[]).map((secret) => secret.name));
}

export function missingSecrets(present: Set<string>): string[] {
  return [...REQUIRED_SECRETS, ...OPTIONAL_SECRETS].filter((name) => !present.has(name));
}
