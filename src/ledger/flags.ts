import { digestHex } from "../hash";

/**
 * Do-not-process as a history (migrations/0002_bytes_in_r2.sql, `flag_history`): every set and
 * clear of a visitor's flag, by Pendo's own event time. An event is dropped if and only if the
 * flag was set at that event's time: the latest entry at or before it is a set. So an event from
 * 14:00 that reaches the consumer late (retried through an outage, parked, replayed) is judged by
 * the flag as it stood at 14:00, not by whatever the latest entry says now. A set and a clear at
 * the same time (Pendo's times are often whole seconds) resolve to set, since forwarding is the
 * harm.
 */

export interface FlagUpdate {
  source: string;
  visitorHash: string;
  flagged: boolean;
  /** Pendo's time of the flag event (ms). */
  eventTime: number;
}

/** Records one set or clear; the same update twice (a redelivery) is one entry. */
export function flagStatement(db: D1Database, update: FlagUpdate, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO flag_history (source, visitor_hash, event_time, flagged, recorded_at)
       VALUES (?, ?, ?, ?, ?)`,
    )
    .bind(update.source, update.visitorHash, update.eventTime, update.flagged ? 1 : 0, now);
}

/** One question of `flaggedStatement`: was this visitor flagged at this time? */
export interface FlagQuestion {
  source: string;
  visitorHash: string;
  eventTime: number;
}

/**
 * One statement for a whole batch: of these (source, visitor, time) questions, the ones whose
 * visitor was flagged at that time, answered by index (the questions' positions). The list
 * travels as one JSON parameter (D1 binds at most 100); each answer is one seek of the primary key.
 */
export function flaggedStatement(db: D1Database, questions: readonly FlagQuestion[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT q.key AS i FROM json_each(?) AS q
       WHERE (SELECT f.flagged FROM flag_history AS f
              WHERE f.source = q.value ->> 0 AND f.visitor_hash = q.value ->> 1 AND f.event_time <= q.value ->> 2
              ORDER BY f.event_time DESC, f.flagged DESC LIMIT 1) = 1`,
    )
    .bind(JSON.stringify(questions.map((q) => [q.source, q.visitorHash, q.eventTime])));
}

/** The positions `flaggedStatement` answered with, as a set. */
export const flaggedPositions = (rows: readonly unknown[]): Set<number> =>
  new Set(rows.map((row) => Number((row as { i: unknown }).i)));

/**
 * Forgets what no event that can still be sent may ask: entries older than `cutoff` give way to
 * the latest of them per visitor (the state at the cutoff), and that one too when it is a clear
 * (no entry reads as not flagged). Bounded per run (WITHOUT ROWID tables are deleted by key); the
 * rest waits for the next.
 */
export function purgeFlagStatements(db: D1Database, cutoff: number, limit: number): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `DELETE FROM flag_history WHERE (source, visitor_hash, event_time, flagged) IN (
           SELECT f.source, f.visitor_hash, f.event_time, f.flagged FROM flag_history AS f WHERE f.event_time < ?1
           AND EXISTS (SELECT 1 FROM flag_history AS later WHERE later.source = f.source
             AND later.visitor_hash = f.visitor_hash AND later.event_time < ?1
             AND (later.event_time > f.event_time OR (later.event_time = f.event_time AND later.flagged > f.flagged)))
           LIMIT ?2)`,
      )
      .bind(cutoff, limit),
    db
      .prepare(
        `DELETE FROM flag_history WHERE (source, visitor_hash, event_time, flagged) IN (
           SELECT f.source, f.visitor_hash, f.event_time, f.flagged FROM flag_history AS f
           WHERE f.event_time < ?1 AND f.flagged = 0
             AND NOT EXISTS (SELECT 1 FROM flag_history AS earlier WHERE earlier.source = f.source
               AND earlier.visitor_hash = f.visitor_hash AND earlier.event_time < f.event_time)
           LIMIT ?2)`,
      )
      .bind(cutoff, limit),
  ];
}

/** Flags are keyed by a hash: no visitor id is stored in the clear. */
export const visitorHash = (visitorId: string) => digestHex("SHA-256", visitorId);
