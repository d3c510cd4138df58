/**
 * What `npm run deploy` and `npm run setup` need to know of wrangler.toml, read by wrangler's own
 * reader, so a config that `npm create cloudflare` rewrote (other layout, another Worker name, no
 * comments) reads the same. `projectOf` is pure; `readProject` reads the file.
 */

import * as v from "valibot";
import { experimental_readRawConfig, type Unstable_RawConfig } from "wrangler";
import { SettingsSchema } from "../../src/config";
import { issuesOf } from "../../src/issues";

/** The binding src/ reads the archive through (env.ARCHIVE); its bucket carries the lifecycle rules. */
export const ARCHIVE_BINDING = "ARCHIVE";

export interface Project {
  worker: string;
  /** A KV binding has no name field: its namespace is the one titled `title`, unless `id` is set. */
  namespaces: { binding: string; id: string | undefined; title: string }[];
  databases: {
    binding: string;
    name: string;
    id: string | undefined;
    jurisdiction: string | undefined;
    migrationsDir: string;
  }[];
  buckets: { binding: string; name: string }[];
  /** Queues only consumed (a dead-letter queue): wrangler provisions only those a producer names. */
  consumedOnly: string[];
  /** The archive's bucket and ARCHIVE_DAYS (wrangler.toml [vars], else the schema's default). */
  archive: { bucket: string; days: number } | undefined;
}

/**
 * The name wrangler gives a resource it provisions for a binding without one: the Worker's name
 * and the binding's, lower case, `_` as `-` (workers-sdk deploy-helpers, provision-bindings.ts,
 * autoProvisionedResourceName). A namespace titled so is the one wrangler made for this Worker.
 */
export function provisionedName(worker: string, binding: string): string {
  return `${worker}-${binding.toLowerCase().replaceAll("_", "-")}`;
}

/** The project, or every way the config fails the deploy path's rule: each resource named. */
export function projectOf(
  raw: Unstable_RawConfig,
): { ok: true; project: Project } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const worker = raw.name ?? "";
  if (!worker) problems.push("wrangler.toml has no name: the Worker and its resources are named after it");
  const namespaces = (raw.kv_namespaces ?? []).map((kv) => ({
    binding: kv.binding,
    id: kv.id || undefined,
    title: provisionedName(worker, kv.binding),
  }));
  const databases = (raw.d1_databases ?? []).map((db) => {
    if (!db.database_name)
      problems.push(`D1 binding ${db.binding} has no database_name: name it, so a rerun finds it`);
    return {
      binding: db.binding,
      name: db.database_name ?? "",
      id: db.database_id || undefined,
      jurisdiction: db.jurisdiction,
      migrationsDir: db.migrations_dir ?? "migrations",
    };
  });
  const buckets = (raw.r2_buckets ?? []).map((r2) => {
    if (!r2.bucket_name)
      problems.push(`R2 binding ${r2.binding} has no bucket_name: name it, so a rerun finds it`);
    return { binding: r2.binding, name: r2.bucket_name ?? "" };
  });
  const produced = new Set<string>();
  for (const producer of raw.queues?.producers ?? []) {
    if (!producer.queue) problems.push(`queue producer ${producer.binding} has no queue name`);
    else produced.add(producer.queue);
  }
  const consumed = new Set<string>();
  for (const consumer of raw.queues?.consumers ?? []) {
    if (!consumer.queue) problems.push("a queue consumer has no queue name");
    else consumed.add(consumer.queue);
    if (consumer.dead_letter_queue) consumed.add(consumer.dead_letter_queue);
  }
  const archiveBucket = buckets.find((bucket) => bucket.binding === ARCHIVE_BINDING)?.name;
  const days = v.safeParse(SettingsSchema.entries.ARCHIVE_DAYS, raw.vars?.ARCHIVE_DAYS);
  if (!days.success)
    problems.push(
      `ARCHIVE_DAYS in wrangler.toml [vars] ${issuesOf(days.issues)
        .map((issue) => issue.message)
        .join("; ")}`,
    );
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    project: {
      worker,
      namespaces,
      databases,
      buckets,
      consumedOnly: [...consumed].filter((queue) => !produced.has(queue)),
      archive: archiveBucket && days.success ? { bucket: archiveBucket, days: days.output } : undefined,
    },
  };
}

/** wrangler.toml as wrangler reads it, and the project it describes; throws naming each problem. */
export function readProject(path = "wrangler.toml"): { raw: Unstable_RawConfig; project: Project } {
  const { rawConfig } = experimental_readRawConfig({ config: path });
  const result = projectOf(rawConfig);
  if (!result.ok) throw new Error(`${path} does not fit the deploy path:\n  ${result.problems.join("\n  ")}`);
  return { raw: rawConfig, project: result.project };
}
