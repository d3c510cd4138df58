import { hourOf } from "./text";

/**
 * Delivery counters: events per (hour, source, event name) by outcome. Added, never read and
 * written back: `count = count + excluded.count`, so concurrent consumers never lose an update.
 * A whole queue batch is one statement (its deltas as one JSON parameter).
 */

export const OUTCOMES = ["delivered", "deadLettered", "dropped", "refused"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Event names the catalog does not know are counted together, so a sender cannot grow the table. */
export const UNKNOWN_EVENT = "(unknown)";

export interface CountDelta {
  source: string;
  event: string;
  outcome: Outcome;
  at: number;
}

/** Sums deltas per row in memory first: one row written per (hour, source, event), not per event. */
export function countRows(deltas: readonly CountDelta[]) {
  const rows = new Map<string, { hour: number; source: string; event: string; counts: number[]; last: number }>();
  for (const delta of deltas) {
    const hour = hourOf(delta.at);
    const key = `${hour}\n${delta.source}\n${delta.event}`;
    let row = rows.get(key);
    if (!row) {
      row = { hour, source: delta.source, event: delta.event, counts: [0, 0, 0, 0], last: delta.at };
      rows.set(key, row);
    }
    row.counts[OUTCOMES.indexOf(delta.outcome)] = (row.counts[OUTCOMES.indexOf(delta.outcome)] ?? 0) + 1;
    row.last = Math.max(row.last, delta.at);
  }
  return [...rows.values()].map((row) => [row.hour, row.source, row.event, ...row.counts, row.last]);
}

export function countStatement(db: D1Database, deltas: readonly CountDelta[]): D1PreparedStatement | undefined {
  if (deltas.length === 0) return undefined;
  return db
    .prepare(
      `INSERT INTO counts (hour, source, event, delivered, dead_lettered, dropped, refused, last_seen)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
       FROM json_each(?) WHERE true
       ON CONFLICT (hour, source, event) DO UPDATE SET
         delivered = delivered + excluded.delivered,
         dead_lettered = dead_lettered + excluded.dead_lettered,
         dropped = dropped + excluded.dropped,
         refused = refused + excluded.refused,
         last_seen = max(last_seen, excluded.last_seen)`,
    )
    .bind(JSON.stringify(countRows(deltas)));
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
    .prepare(
      `SELECT hour, source, event, delivered, dead_lettered AS deadLettered, dropped, refused, last_seen AS lastSeen
       FROM counts WHERE hour >= ? AND hour < ? ORDER BY hour, source, event`,
    )
    .bind(hourOf(from), hourOf(to) + 1)
    .all<Omit<HourRow, "hour"> & { hour: number; lastSeen: number }>();
  const totals = new Map<string, TotalRow & { last: number }>();
  const hours: HourRow[] = [];
  for (const row of results) {
    const { hour, lastSeen, ...counts } = row;
    hours.push({ hour: new Date(hour * 3_600_000).toISOString(), ...counts });
    const key = `${row.source}\n${row.event}`;
    const total = totals.get(key) ?? {
      source: row.source,
      event: row.event,
      delivered: 0,
      deadLettered: 0,
      dropped: 0,
      refused: 0,
      lastSeen: null,
      last: 0,
    };
    total.delivered += row.delivered;
    total.deadLettered += row.deadLettered;
    total.dropped += row.dropped;
    total.refused += row.refused;
    total.last = Math.max(total.last, lastSeen);
    totals.set(key, total);
  }
  return {
    hours,
    totals: [...totals.values()].map(({ last, ...total }) => ({
      ...total,
      lastSeen: last > 0 ? new Date(last).toISOString() : null,
    })),
  };
}
