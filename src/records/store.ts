import { recordCountStatement } from "../ledger/counts";
import { insertRecordsStatements, type LedgerRecord, randomHex, recordRows } from "../ledger/records";
import { encodeFrames, type Frame } from "../r2/frames";
import { groupId, pendingKey, recordsKey } from "../r2/keys";

/**
 * Stores a group of records: bytes first, in one R2 object for the whole group (never one per
 * event), then their index rows in the ledger in one statement. Nothing is reported stored before
 * its bytes are: a caller acks a message or answers a sender only after `ok`.
 *
 * If the ledger refuses the rows and a second store is allowed, the rows go to R2 under
 * `pending/` in one more put; the cron moves them into the ledger. There is no partial commit to
 * repeat: the rows and their counters are one transaction, so either all of them are in the
 * ledger or none is, and a record is counted (dead-lettered, refused) exactly when its row lands.
 * A group stored again under the same ids (a retried drain step) changes nothing and counts
 * nothing: the rows are inserted OR IGNORE, and the count only if the first of them is new.
 */

export type StoreResult =
  | { ok: true; where: "ledger" | "pending"; objectKey: string | null; bytes: number }
  | { ok: false; store: "r2" | "ledger"; error: string };

export interface StoreOptions {
  now: number;
  /** Statements committed in the same transaction as the rows (a count, a flag). */
  with?: D1PreparedStatement[];
  /** Rows the ledger refuses may go to `pending/` in R2 (consumers; never the edge, which answers 503). */
  secondStore?: boolean;
}

const encoder = new TextEncoder();

export async function storeRecords(
  bucket: R2Bucket,
  db: D1Database,
  records: readonly LedgerRecord[],
  options: StoreOptions,
): Promise<StoreResult> {
  const group = groupId(options.now, randomHex(6));
  const withBytes = records.filter((record) => record.holds === "body" || record.holds === "message");
  let objectKey: string | null = null;
  let bytes = 0;
  if (withBytes.length > 0) {
    const frames: Frame[] = withBytes.map((record) => ({
      meta: { id: record.id, holds: record.holds },
      bytes:
        record.holds === "message" ? encoder.encode(record.message ?? "") : (record.body ?? new Uint8Array()),
    }));
    const { data, slices } = encodeFrames(frames);
    objectKey = recordsKey(options.now, group);
    try {
      await bucket.put(objectKey, data, { customMetadata: { records: String(withBytes.length) } });
    } catch (error) {
      return { ok: false, store: "r2", error: String(error) };
    }
    bytes = data.length;
    withBytes.forEach((record, i) => {
      const slice = slices[i];
      if (slice) record.object = { key: objectKey as string, ...slice };
    });
  }
  const rows = recordRows(records);
  try {
    // The count first, while it can still tell whether the group is new.
    const counted = recordCountStatement(db, rows, true);
    await db.batch([
      ...(counted ? [counted] : []),
      ...insertRecordsStatements(db, rows),
      ...(options.with ?? []),
    ]);
    return { ok: true, where: "ledger", objectKey, bytes };
  } catch (error) {
    if (!options.secondStore) return { ok: false, store: "ledger", error: String(error) };
    try {
      await bucket.put(pendingKey(group), JSON.stringify({ v: 1, rows }), {
        customMetadata: { rows: String(rows.length) },
      });
      return { ok: true, where: "pending", objectKey, bytes };
    } catch (pendingError) {
      return { ok: false, store: "ledger", error: `${String(error)}; pending: ${String(pendingError)}` };
    }
  }
}
