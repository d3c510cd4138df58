import * as v from "valibot";
import { KEY_PREFIX } from "../kv/keys";
import { recordCountStatement } from "../ledger/counts";
import { bytesOfBase64, insertRecordsStatements, RECORD_KINDS, type RecordRow } from "../ledger/records";
import { log } from "../log";
import { R2_PREFIX } from "../r2/keys";

/**
 * The second store's way back: rows the ledger refused when they were written wait in R2 under
 * `pending/` (one object per stored group), and the cron moves them in. Every object is moved,
 * page after page, within the run's budget; what is left waits for the next run, and nothing
 * there expires. A move inserts with OR IGNORE: a row the ledger has (a tombstone of a record
 * already replayed or deleted included) stays as it is, so nothing comes back twice, and rows
 * older than the retention are not brought back at all.
 *
 * Deploys before the R2 move kept that second store in KV (`fallback:` keys): drained the same
 * way, into the same rows, until none is left.
 */

const PendingSchema = v.object({
  v: v.literal(1),
  rows: v.array(
    v.looseObject({
      id: v.string(),
      kind: v.picklist(RECORD_KINDS),
      reason: v.string(),
      source: v.string(),
      event: v.string(),
      createdAt: v.number(),
    }),
  ),
});

export interface MoveBudget {
  /** Objects or keys one run may move: each is a get, a D1 statement and a delete. */
  moves: number;
  /** List calls one run may make. */
  pages: number;
}

export const MOVE_BUDGET: MoveBudget = { moves: 100, pages: 10 };

export interface MoveReport {
  moved: number;
  rows: number;
  unreadable: number;
  /** Entries the ledger refused this run (D1 down): left for the next. */
  failed: number;
  /** More may be waiting: the run stopped at its budget. */
  more: boolean;
}

/**
 * Walks a store's list, page after page, moving each entry, within the run's budget: the one loop
 * both second stores drain by. An entry `move` cannot read is counted and left where it is.
 */
async function movePaged(
  list: (cursor: string | undefined) => Promise<{ names: string[]; cursor: string | undefined }>,
  move: (name: string) => Promise<{ rows: number } | "unreadable">,
  budget: MoveBudget,
): Promise<MoveReport> {
  const report: MoveReport = { moved: 0, rows: 0, unreadable: 0, failed: 0, more: false };
  let cursor: string | undefined;
  let failedInARow = 0;
  for (let page = 0; page < budget.pages; page++) {
    const listed = await list(cursor);
    for (const name of listed.names) {
      if (report.moved >= budget.moves) {
        report.more = true;
        return report;
      }
      let moved: { rows: number } | "unreadable" | "failed";
      try {
        moved = await move(name);
      } catch (error) {
        // One entry the ledger refuses never holds up the others: it stays for the next run.
        log("error", "pending-move-failed", { key: name, error: String(error) });
        moved = "failed";
      }
      if (moved === "failed") {
        report.failed++;
        // Three in a row: the ledger is down, not one entry bad; the next run tries again.
        if (++failedInARow >= 3) {
          report.more = true;
          return report;
        }
        continue;
      }
      failedInARow = 0;
      if (moved === "unreadable") report.unreadable++;
      else {
        report.moved++;
        report.rows += moved.rows;
      }
    }
    if (listed.cursor === undefined) return report;
    cursor = listed.cursor;
  }
  report.more = true;
  return report;
}

export function movePending(
  bucket: R2Bucket,
  db: D1Database,
  notBefore: number,
  budget: MoveBudget = MOVE_BUDGET,
): Promise<MoveReport> {
  return movePaged(
    async (cursor) => {
      const listed = await bucket.list({ prefix: R2_PREFIX.pending, cursor, limit: 100 });
      return {
        names: listed.objects.map((o) => o.key),
        cursor: listed.truncated ? listed.cursor : undefined,
      };
    },
    async (key) => {
      const body = await bucket.get(key);
      const checked = body ? v.safeParse(PendingSchema, await body.json().catch(() => undefined)) : undefined;
      if (!checked?.success) {
        // Left where it is for an operator: it never blocks the others, and never expires.
        log("error", "pending-unreadable", { key });
        return "unreadable";
      }
      const rows = (checked.output.rows as unknown as RecordRow[]).filter(
        (row) => row.createdAt >= notBefore,
      );
      // Counted before the insert, in its transaction, and only if the group is not in yet: a copy
      // moved twice (its first delete failed) is neither inserted nor counted again.
      const counted = recordCountStatement(db, rows, true);
      if (rows.length > 0)
        await db.batch([...(counted ? [counted] : []), ...insertRecordsStatements(db, rows, notBefore)]);
      await bucket.delete(key);
      return { rows: rows.length };
    },
    budget,
  );
}

/** What a deploy before the R2 move wrote to KV for a dead letter D1 refused. */
const FallbackSchema = v.object({
  id: v.string(),
  kind: v.picklist(RECORD_KINDS),
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

/**
 * Drains the KV fallback of earlier deploys: each record's bytes go to the legacy columns of its
 * row (they are at most one queue message or one body), following the list cursor within the
 * budget. A key is deleted only after its row is in.
 */
export function moveKvFallbacks(
  kv: KVNamespace,
  db: D1Database,
  notBefore: number,
  budget: MoveBudget = MOVE_BUDGET,
): Promise<MoveReport> {
  return movePaged(
    async (cursor) => {
      const listed = await kv.list({ prefix: KEY_PREFIX.fallback, cursor, limit: 1_000 });
      return {
        names: listed.keys.map((k) => k.name),
        cursor: listed.list_complete ? undefined : listed.cursor,
      };
    },
    async (key) => {
      const checked = v.safeParse(FallbackSchema, await kv.get(key, "json"));
      if (!checked.success) {
        log("error", "fallback-unreadable", { key });
        return "unreadable";
      }
      const { bodyBase64, message, ...rest } = checked.output;
      if (rest.createdAt >= notBefore) {
        await db
          .prepare(
            `INSERT OR IGNORE INTO records (id, kind, state, reason, source, event, event_id, attempts, last_status,
               detail, received_at, created_at, body, message, holds)
             VALUES (?, ?, 'stored', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'legacy')`,
          )
          .bind(
            rest.id,
            rest.kind,
            rest.reason,
            rest.source,
            rest.event,
            rest.eventId,
            rest.attempts,
            rest.lastStatus,
            rest.detail,
            rest.receivedAt,
            rest.createdAt,
            bodyBase64 === undefined ? null : bytesOfBase64(bodyBase64),
            message ?? null,
          )
          .run();
      }
      await kv.delete(key);
      return { rows: 1 };
    },
    budget,
  );
}
