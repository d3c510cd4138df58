import { catalogEntry } from "../pendo/catalog";
import { HOUR_MS, hourOf } from "./text";

/**
 * Delivery counters: events per hour and source, by event name and outcome. Added, never read
 * and written back: the merge happens in the upsert, so concurrent consumers never lose an
 * update. A whole queue batch is one statement writing one row per (hour, source): D1 bills per
 * row written, and per-event rows cost a row per distinct event name per batch (measured 0.47
 * rows per webhook with every catalog event in the traffic, against 0.01 this way).
 */

export const OUTCOMES = ["delivered", "deadLettered", "dropped", "refused"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Event names the catalog does not know are counted together, so a sender cannot grow the table. */
export const UNKNOWN_EVENT = "(unknown)";

/** The name an event is counted under: its own if the catalog knows it, else UNKNOWN_EVENT. */
export const countedEvent = (name: string | undefined): string =>
  name !== undefined && catalogEntry(name) ? name : UNKNOWN_EVENT;

export interface CountDelta {
  source: string;
  event: string;
  outcome: Outcome;
  at: number;
}

/** The name a record is counted under: a malformed queue message names no event at all. */
export const countedRecordEvent = (record: { reason: string; event: string }) =>
  record.reason === "malformed-message" ? MALFORMED_EVENT : countedEvent(record.event);
export const MALFORMED_EVENT = "(malformed)";

/**
 * The counters of records as they land: a dead letter counts as dead-lettered, a quarantined
 * webhook as refused, in the transaction that stores its row (and, for rows the second store
 * kept, in the one that moves them in), so no record is counted twice or not at all.
 */
export function recordCountStatement(
  db: D1Database,
  rows: readonly {
    id: string;
    kind: string;
    reason: string;
    source: string;
    event: string;
    createdAt: number;
  }[],
  /** Rows moved in from the second store: counted only if the first of them is not in yet. */
  moving = false,
): D1PreparedStatement | undefined {
  return countStatement(
    db,
    rows.map((row) => ({
      source: row.source,
      event: countedRecordEvent(row),
      outcome: row.kind === "quarantine" ? "refused" : "deadLettered",
      at: row.createdAt,
    })),
    moving ? rows[0]?.id : undefined,
  );
}

/** Per (hour, source): each event's [delivered, deadLettered, dropped, refused, lastSeen]. */
export function countRows(deltas: readonly CountDelta[]): [number, string, string][] {
  const rows = new Map<string, { hour: number; source: string; events: Record<string, number[]> }>();
  for (const delta of deltas) {
    const hour = hourOf(delta.at);
    const key = `${hour}\n${delta.source}`;
    let row = rows.get(key);
    if (!row) {
      row = { hour, source: delta.source, events: {} };
      rows.set(key, row);
    }
    const counts = Object.hasOwn(row.events, delta.event)
      ? (row.events[delta.event] as number[])
      : [0, 0, 0, 0, 0];
    row.events[delta.event] = counts;
    counts[OUTCOMES.indexOf(delta.outcome)] = (counts[OUTCOMES.indexOf(delta.outcome)] ?? 0) + 1;
    counts[4] = Math.max(counts[4] ?? 0, delta.at);
  }
  return [...rows.values()].map((row) => [row.hour, row.source, JSON.stringify(row.events)]);
}

/**
 * Adds a batch's counts: one upsert per (hour, source), the stored and the new event objects
 * merged key by key inside SQLite, so no count is read into the Worker and written back.
 */
export function countStatement(
  db: D1Database,
  deltas: readonly CountDelta[],
  /** Counts nothing if the ledger already has this record (the group was counted when it landed). */
  unlessRecord?: string,
): D1PreparedStatement | undefined {
  if (deltas.length === 0) return undefined;
  return db
    .prepare(
      `INSERT INTO counts (hour, source, events)
       SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1)
       WHERE ?2 IS NULL OR NOT EXISTS (SELECT 1 FROM records WHERE id = ?2)
       ON CONFLICT (hour, source) DO UPDATE SET events = (
         SELECT json_group_object(k, json_array(d, x, p, r, t)) FROM (
           SELECT k, sum(d) AS d, sum(x) AS x, sum(p) AS p, sum(r) AS r, max(t) AS t FROM (
             SELECT key AS k, value ->> 0 AS d, value ->> 1 AS x, value ->> 2 AS p, value ->> 3 AS r, value ->> 4 AS t
               FROM json_each(counts.events)
             UNION ALL
             SELECT key, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4
               FROM json_each(excluded.events)
           ) GROUP BY k
         )
       )`,
    )
    .bind(JSON.stringify(countRows(deltas)), unlessRecord ?? null);
}

export interface HourRow {
  hour: string;
  source: string;
  event: string;
  delivered: number;
  deadLettered: number;
  dropped: number;
  refused: number;
}

export interface TotalRow extends Omit<HourRow, "hour"> {
  lastSeen: string | null;
}

/** The overview: per hour and in total, over [from, to). One range scan of the primary key. */
export async function overview(db: D1Database, from: number, to: number) {
  const { results } = await db
    .prepare("SELECT hour, source, events FROM counts WHERE hour >= ? AND hour < ? ORDER BY hour, source")
    .bind(hourOf(from), hourOf(to) + 1)
    .all<{ hour: number; source: string; events: string }>();
  const totals = new Map<string, TotalRow & { last: number }>();
  const hours: HourRow[] = [];
  for (const row of results) {
    const events = JSON.parse(row.events) as Record<string, number[]>;
    for (const [
      event,
      [delivered = 0, deadLettered = 0, dropped = 0, refused = 0, last = 0] = [],
    ] of Object.entries(events)) {
      const counts = { delivered, deadLettered, dropped, refused };
      hours.push({ hour: new Date(row.hour * HOUR_MS).toISOString(), source: row.source, event, ...counts });
      const key = `${row.source}\n${event}`;
      const total = totals.get(key) ?? {
        source: row.source,
        event,
        delivered: 0,
        deadLettered: 0,
        dropped: 0,
        refused: 0,
        lastSeen: null,
        last: 0,
      };
      total.delivered += delivered;
      total.deadLettered += deadLettered;
      total.dropped += dropped;
      total.refused += refused;
      total.last = Math.max(total.last, last);
      totals.set(key, total);
    }
  }
  return {
    hours,
    totals: [...totals.values()].map(({ last, ...total }) => ({
      ...total,
      lastSeen: last > 0 ? new Date(last).toISOString() : null,
    })),
  };
}
