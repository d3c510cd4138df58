import { catalogEntry } from "../pendo/catalog";
import { hourOf } from "./text";

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
  /** Counted only if the first of the rows is not in the ledger yet (the group is new). */
  onlyIfNew = false,
): D1PreparedStatement | undefined {
  return countStatement(
    db,
    rows.map((row) => ({
      source: row.source,
      event: countedRecordEvent(row),
      outcome: row.kind === "quarantine" ? "refused" : "deadLettered",
      at: row.createdAt,
    })),
    onlyIfNew ? rows[0]?.id : undefined,
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

/** Per event: [delivered, deadLettered, dropped, refused, lastSeen ms], as a counts row holds it. */
export type EventCounts = [number, number, number, number, number];

export interface OverviewCounts {
  /** One entry per hour from `first` to `last`, every source and event summed, by outcome. */
  perHour: Record<Outcome, number[]>;
  /** Per source, each event's counts over the range (unknown names together, UNKNOWN_EVENT). */
  bySource: { source: string; events: Record<string, EventCounts> }[];
}

// Each stored row's events, one per row of json_each: what both sums read.
const EVENTS_IN_RANGE = `FROM counts, json_each(counts.events) AS e WHERE counts.hour BETWEEN ?1 AND ?2`;
const SUMS = `sum(e.value ->> 0) AS d, sum(e.value ->> 1) AS x, sum(e.value ->> 2) AS p, sum(e.value ->> 3) AS r`;

/**
 * The overview of hours `first` to `last` (counter hours, inclusive), summed inside SQLite: per
 * hour by outcome for the chart, per source and event for the table. Never a row per hour and
 * event: that was 81 MB for 90 days of six sources. Both sums in one round trip; each scans the
 * primary key's range once.
 */
export async function overview(db: D1Database, first: number, last: number): Promise<OverviewCounts> {
  type Sums = { d: number; x: number; p: number; r: number };
  const [hourly, totals] = (await db.batch([
    db
      .prepare(`SELECT counts.hour AS hour, ${SUMS} ${EVENTS_IN_RANGE} GROUP BY counts.hour`)
      .bind(first, last),
    db
      .prepare(
        `SELECT counts.source AS source, e.key AS event, ${SUMS}, max(e.value ->> 4) AS t ${EVENTS_IN_RANGE}
         GROUP BY counts.source, e.key ORDER BY counts.source, e.key`,
      )
      .bind(first, last),
  ])) as [D1Result<Sums & { hour: number }>, D1Result<Sums & { source: string; event: string; t: number }>];
  const zeros = () => Array.from({ length: last - first + 1 }, () => 0);
  const perHour = { delivered: zeros(), deadLettered: zeros(), dropped: zeros(), refused: zeros() };
  for (const row of hourly.results) {
    const at = row.hour - first;
    perHour.delivered[at] = row.d;
    perHour.deadLettered[at] = row.x;
    perHour.dropped[at] = row.p;
    perHour.refused[at] = row.r;
  }
  const bySource: OverviewCounts["bySource"] = [];
  for (const row of totals.results) {
    if (bySource.at(-1)?.source !== row.source) bySource.push({ source: row.source, events: {} });
    (bySource.at(-1) as OverviewCounts["bySource"][number]).events[row.event] = [
      row.d,
      row.x,
      row.p,
      row.r,
      row.t,
    ];
  }
  return { perHour, bySource };
}
