/**
 * The archive bucket's lifecycle rules, which wrangler's provisioning leaves to the API: exactly
 * `lifecycleRules(ARCHIVE_DAYS)` of src/r2/keys.ts, written only where the bucket differs, so a
 * rerun only reads. Rules under other ids are someone else's and stay.
 */
import { lifecycleRules } from "../../src/r2/keys";
import { isBucketMissing, type ListedRule, lifecyclePlan, listedLifecycleRules } from "./config";
import { runWrangler, WranglerCallFailed, wrangler } from "./wrangler";

/** The bucket's rules as wrangler lists them, or undefined when the bucket does not exist (yet). */
export async function readLifecycleRules(bucket: string): Promise<ListedRule[] | undefined> {
  const args = ["r2", "bucket", "lifecycle", "list", bucket];
  const result = await runWrangler(args);
  if (result.status === 0) return listedLifecycleRules(result.stdout);
  if (isBucketMissing(result.stderr + result.stdout)) return undefined;
  throw new WranglerCallFailed(`wrangler ${args.join(" ")}`, result);
}

/** Brings the bucket from `current` to this project's rules; one line per rule of what was done. */
export async function applyLifecycleRules(
  bucket: string,
  current: readonly ListedRule[],
  archiveDays: number,
): Promise<string[]> {
  const plan = lifecyclePlan(current, lifecycleRules(archiveDays));
  const notes = plan.kept.map((id) => `${id}: set`);
  // One at a time: `lifecycle add` reads the rules and writes them back with its own appended.
  for (const rule of plan.replace)
    await wrangler(["r2", "bucket", "lifecycle", "remove", bucket, "--name", rule.id]);
  for (const rule of [...plan.replace, ...plan.add]) {
    const expire = ["--expire-days", String(rule.expireDays), "--force"];
    await wrangler(["r2", "bucket", "lifecycle", "add", bucket, rule.id, rule.prefix, ...expire]);
    const verb = plan.replace.includes(rule) ? "replaced" : "added";
    notes.push(`${rule.id}: ${verb}, objects under ${rule.prefix} expire after ${rule.expireDays} days`);
  }
  for (const id of plan.foreign) notes.push(`${id}: not this project's rule, left as it is`);
  return notes;
}
