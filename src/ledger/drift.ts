import { cutText } from "./text";

/**
 * Drift: what Pendo sends that the catalog does not know (an unknown event name, a property key
 * new to a watched family), kept per source in the ledger with first and last sighting and an
 * exact count. Bounded whatever a sender invents: names are cut to NAME_LIMIT characters, a
 * batch records at most BATCH_LIMIT items per source, and a source keeps at most DRIFT_CAP
 * entries. When it is full the least recently seen entries give way, so junk can never hide a
 * real new name: the newest are always kept, and the evictions are counted for the alert.
 */

export const DRIFT_CAP = 500;
// The database's clock, in ms: what alert windows are read by (see migrations/0001_ledger.sql).
export const DB_NOW = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
export const BATCH_LIMIT = 100;
export const NAME_LIMIT = 100;

export interface DriftItem {
  source: string;
  kind: "event" | "property";
  event: string;
  key?: string;
}

export interface DriftRecord extends Required<DriftItem> {
  firstSeen: number;
  lastSeen: number;
  count: number;
}

/** Items of one batch, counted, capped per source: [source, kind, event, key, count]. */
export function driftRows(items: readonly DriftItem[]): [string, string, string, string, number][] {
  const rows = new Map<string, [string, string, string, string, number]>();
  const perSource = new Map<string, number>();
  // Newest last in a batch; walking backwards keeps the newest when a source is over its limit.
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as DriftItem;
    const event = cutText(item.event, NAME_LIMIT);
    const key = cutText(item.key ?? "", NAME_LIMIT);
    const id = JSON.stringify([item.source, item.kind, event, key]);
    const row = rows.get(id);
    if (row) {
      row[4]++;
      continue;
    }
    const seen = perSource.get(item.source) ?? 0;
    if (seen >= BATCH_LIMIT) continue;
    perSource.set(item.source, seen + 1);
    rows.set(id, [item.source, item.kind, event, key, 1]);
  }
  return [...rows.values()];
}

/**
 * One upsert for the whole batch, stamped with the database's clock; RETURNING tells which
 * entries are new (inserted by this statement: first seen when last seen, counted once here).
 */
export function driftStatement(db: D1Database, rows: ReturnType<typeof driftRows>) {
  return db
    .prepare(
      `INSERT INTO drift (source, kind, event, key, first_seen, last_seen, count)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ${DB_NOW}, ${DB_NOW}, value ->> 4
       FROM json_each(?1) WHERE true
       ON CONFLICT (source, kind, event, key) DO UPDATE SET
         last_seen = excluded.last_seen, count = count + excluded.count
       RETURNING source, kind, event, key, first_seen = last_seen AS fresh`,
    )
    .bind(JSON.stringify(rows));
}

/**
 * Back to the cap after new entries: counts what gives way, then removes the least recently
 * seen. Run only when an insert added entries, so a steady stream of known drift reads nothing.
 */
export function evictionStatements(db: D1Database, source: string): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `INSERT INTO drift_evictions (source, count, last_at)
         SELECT ?1, count(*) - ?2, ${DB_NOW} FROM drift WHERE source = ?1 HAVING count(*) > ?2
         ON CONFLICT (source) DO UPDATE SET count = count + excluded.count, last_at = excluded.last_at`,
      )
      .bind(source, DRIFT_CAP),
    db
      .prepare(
        // Property keys give way before event names: junk keys must not push out a real new event.
        `DELETE FROM drift WHERE source = ?1 AND (kind, event, key) IN (
           SELECT kind, event, key FROM drift WHERE source = ?1
           ORDER BY kind = 'event' DESC, last_seen DESC, first_seen DESC LIMIT -1 OFFSET ?2)`,
      )
      .bind(source, DRIFT_CAP),
  ];
}

/** Every entry, most recently seen first (the console, /admin/drift). */
export async function listDrift(db: D1Database, limit = 1_000): Promise<DriftRecord[]> {
  const { results } = await db
    .prepare(
      `SELECT source, kind, event, key, first_seen AS firstSeen, last_seen AS lastSeen, count
       FROM drift ORDER BY last_seen DESC LIMIT ?`,
    )
    .bind(limit)
    .all<DriftRecord>();
  return results;
}
