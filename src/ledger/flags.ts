import { digestHex } from "../hash";

/**
 * Do-not-process flags, one row per (source, visitor hash), ordered by Pendo's event time: an
 * update whose flag event is older than the one that decided the row is ignored, so a late retry
 * of an old "set" can never undo a newer "clear". A cleared flag is kept as a row (flagged = 0)
 * for exactly that reason.
 */

export interface FlagUpdate {
  source: string;
  visitorHash: string;
  flagged: boolean;
  /** Pendo's time of the flag event (ms). */
  eventTime: number;
}

export function flagStatement(db: D1Database, update: FlagUpdate, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO flags (source, visitor_hash, flagged, event_time, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (source, visitor_hash) DO UPDATE
         SET flagged = excluded.flagged, event_time = excluded.event_time, updated_at = excluded.updated_at
         WHERE excluded.event_time > flags.event_time
            -- A set and a clear with the same time (Pendo's times are often whole seconds): the
            -- set wins, whatever order they commit in, since forwarding is the harm.
            OR (excluded.event_time = flags.event_time AND excluded.flagged > flags.flagged)`,
    )
    .bind(update.source, update.visitorHash, update.flagged ? 1 : 0, update.eventTime, now);
}

/**
 * One statement for a whole batch: which of these (source, visitor hash) pairs are flagged, and
 * since which event time. The pairs travel as one JSON parameter (D1 binds at most 100).
 */
export function flaggedStatement(
  db: D1Database,
  pairs: readonly { source: string; visitorHash: string }[],
): D1PreparedStatement {
  return db
    .prepare(
      `SELECT f.source AS source, f.visitor_hash AS visitorHash, f.event_time AS eventTime
       FROM json_each(?) AS p
       JOIN flags AS f ON f.source = json_extract(p.value, '$[0]') AND f.visitor_hash = json_extract(p.value, '$[1]')
       WHERE f.flagged = 1`,
    )
    .bind(JSON.stringify(pairs.map((pair) => [pair.source, pair.visitorHash])));
}

export const flagKey = (source: string, visitorHash: string) => `${source}\n${visitorHash}`;

/** Flags are keyed by a hash: no visitor id is stored in the clear. */
export const visitorHash = (visitorId: string) => digestHex("SHA-256", visitorId);
