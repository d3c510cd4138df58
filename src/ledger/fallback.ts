import * as v from "valibot";
import { KEY_PREFIX } from "../kv/keys";
import { log } from "../log";
import { base64Of, bytesOfBase64, insertRecord, type LedgerRecord } from "./records";

/**
 * The second store for a dead letter D1 could not take: the record as JSON under
 * `fallback:<id>` in the KV namespace (docs/operations.md#kv-layout). The cron moves each one
 * into D1 (src/cron/scheduled.ts) and only then deletes the key, so a record is always in one of
 * the two stores, and an insert that already happened is not repeated (same id, ignored).
 */

const FallbackSchema = v.object({
  id: v.string(),
  kind: v.picklist(["dead-letters", "quarantine"]),
  reason: v.string(),
  source: v.string(),
  event: v.string(),
  eventId: v.string(),
  attempts: v.number(),
  lastStatus: v.nullable(v.number()),
  detail: v.string(),
  receivedAt: v.number(),
  createdAt: v.number(),
  bodyBase64: v.optional(v.string()),
  message: v.optional(v.string()),
});

// KV values may hold 25 MiB; a record is at most a queue message (128 KB) or a body (1 MB).
export async function putFallback(kv: KVNamespace, record: LedgerRecord, ttlSeconds: number): Promise<void> {
  const { body, issues: _issues, state: _state, claimedAt: _claimed, ...rest } = record;
  const value = { ...rest, ...(body ? { bodyBase64: base64Of(body) } : {}) };
  await kv.put(`${KEY_PREFIX.fallback}${record.id}`, JSON.stringify(value), { expirationTtl: ttlSeconds });
}

// A run reads at most one page of keys and moves at most MOVE_MAX of them: with one D1 batch, one
// KV get and one KV delete each, it stays well inside an invocation's limits after a long outage.
const LIST_LIMIT = 1_000;
const MOVE_MAX = 20;

/**
 * Moves up to MOVE_MAX readable fallback records into D1, in one transaction, then deletes their
 * keys. A key that cannot be read is left for an operator (logged; it expires with its TTL) and
 * never blocks the others. Returns how many moved.
 */
export async function moveFallbacks(kv: KVNamespace, db: D1Database): Promise<number> {
  const page = await kv.list({ prefix: KEY_PREFIX.fallback, limit: LIST_LIMIT });
  const moving: { key: string; record: LedgerRecord }[] = [];
  for (const key of page.keys) {
    if (moving.length >= MOVE_MAX) break;
    const checked = v.safeParse(FallbackSchema, await kv.get(key.name, "json"));
    if (!checked.success) {
      log("error", "fallback-unreadable", { key: key.name });
      continue;
    }
    const { bodyBase64, ...rest } = checked.output;
    const record: LedgerRecord = { ...rest, state: "stored" };
    if (bodyBase64 !== undefined) record.body = bytesOfBase64(bodyBase64);
    moving.push({ key: key.name, record });
  }
  if (moving.length === 0) return 0;
  // OR IGNORE: a run that stopped after its insert must not fail when it runs again.
  await db.batch(moving.map(({ record }) => insertRecord(db, record, "OR IGNORE")));
  await Promise.all(moving.map(({ key }) => kv.delete(key)));
  return moving.length;
}
