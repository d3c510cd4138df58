import type { SettingName } from "./config";

/**
 * The Worker's bindings, as declared in wrangler.toml. Every setting arrives as a string (or not
 * at all), and its name comes from the settings schema, so a new setting cannot be forgotten
 * here; `config.ts` is the one place that turns them into typed settings.
 */
export type Env = {
  /** Dedup markers, and dead letters the ledger could not take (docs/operations.md#kv-layout). */
  DEDUP: KVNamespace;
  /** The ledger: records, flags, drift, alerts, counters (migrations/). */
  LEDGER: D1Database;
  /** Bytes: records, parked batches, the archive (src/archive/keys.ts). */
  ARCHIVE: R2Bucket;
  /** Queue messages are text (see queue/message.ts). */
  EVENTS: Queue<string>;
} & Partial<Record<SettingName, string>>;
