import { DB_NOW } from "./drift";

/**
 * Outage mode's state, per destination (migrations/0002_bytes_in_r2.sql): `destinations` holds
 * where each one stands, `parked` the batches waiting for it in arrival order. Every change of
 * state is one conditional statement, so of two isolates (or a consumer and a drain) exactly one
 * makes it: the one whose statement returns the row.
 */

export const DESTINATION_STATES = ["open", "outage", "draining", "held"] as const;
export type DestinationState = (typeof DESTINATION_STATES)[number];

export interface DestinationRow {
  id: string;
  state: DestinationState;
  nextProbeAt: number;
  chain: string | null;
}

/** The state of these destinations, in one statement; a destination with no row is open. */
export function statesStatement(db: D1Database, ids: readonly string[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT id, state, next_probe_at AS nextProbeAt, chain FROM destinations
       WHERE id IN (SELECT value FROM json_each(?))`,
    )
    .bind(JSON.stringify(ids));
}

export interface FailureInput {
  id: string;
  host: string;
  status: number | null;
  now: number;
  /** A destination failing since at or before this enters outage mode. */
  outageIfFailingSince: number;
  nextProbeAt: number;
  /** The chain token, taken only by the statement that starts the outage. */
  chain: string;
}

/**
 * Every batch of an invocation to this destination failed: it is failing since its first such
 * failure, and once that is OUTAGE_AFTER_SECONDS ago an open (or draining) destination enters
 * outage mode. Returns the state after, and `started` only for the one statement that began it;
 * no row when nothing needed writing (failing already, not yet long enough, written this minute).
 */
export function failureStatement(db: D1Database, input: FailureInput): D1PreparedStatement {
  // At most a write a minute while it fails: the first failure, the one that starts the outage,
  // and a refresh of last_status; no row back means still failing, not yet an outage. A batch
  // that was sent just before another isolate started the outage learns of it here (and is
  // parked): rare, since batches read the state before they send.
  const entering = "state IN ('open', 'draining') AND coalesce(failing_since, ?3) <= ?5";
  return db
    .prepare(
      `INSERT INTO destinations (id, host, state, failing_since, last_status, updated_at)
       VALUES (?1, ?2, 'open', ?3, ?4, ?3)
       ON CONFLICT (id) DO UPDATE SET
         failing_since = coalesce(failing_since, excluded.failing_since),
         last_status = excluded.last_status,
         updated_at = excluded.updated_at,
         state = CASE WHEN ${entering} THEN 'outage' ELSE state END,
         outage_at = CASE WHEN ${entering} AND state = 'open' THEN ${DB_NOW} ELSE outage_at END,
         next_probe_at = CASE WHEN ${entering} THEN ?6 ELSE next_probe_at END,
         chain = CASE WHEN ${entering} AND state = 'open' THEN ?7 ELSE chain END,
         chain_beat = CASE WHEN ${entering} AND state = 'open' THEN ?3 ELSE chain_beat END
       WHERE destinations.failing_since IS NULL OR destinations.updated_at < ?3 - 60000
          OR (destinations.state IN ('open', 'draining') AND destinations.failing_since <= ?5)
          OR destinations.state IN ('outage', 'held')
       RETURNING state, chain = ?7 AS started`,
    )
    .bind(
      input.id,
      input.host,
      input.now,
      input.status,
      input.outageIfFailingSince,
      input.nextProbeAt,
      input.chain,
    );
}

/** A delivery to this destination succeeded: no longer failing. Writes only when it was. */
export function successStatement(db: D1Database, id: string, now: number): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE destinations SET failing_since = NULL, updated_at = ? WHERE id = ? AND failing_since IS NOT NULL",
    )
    .bind(now, id);
}

export type ParkedInput = ParkedRow & { now: number };

/**
 * Parks a batch, only while its destination is not open: if a drain has just finished (open),
 * the batch is not parked behind nothing and goes the ordinary way instead. D1 runs one statement
 * at a time, so a park either lands before the drain's last check or sees it finished.
 */
export function parkStatement(db: D1Database, input: ParkedInput): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO parked (destination, seq, object_key, messages, events, bytes, oldest_at, created_at)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
       WHERE (SELECT state FROM destinations WHERE id = ?1) IN ('outage', 'held', 'draining')`,
    )
    .bind(
      input.destination,
      input.seq,
      input.objectKey,
      input.messages,
      input.events,
      input.bytes,
      input.oldestAt,
      input.now,
    );
}

/**
 * The chain still owns the destination: its beat, where the destination stands, and the token
 * passed on to the next step (compare-and-set, so a duplicate of this step's message, delivered
 * twice by the queue, finds the token moved on and ends instead of forking the chain).
 */
export function beatStatement(
  db: D1Database,
  id: string,
  chain: string,
  next: string,
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE destinations SET chain_beat = ?, chain = ? WHERE id = ? AND chain = ? RETURNING state, next_probe_at AS nextProbeAt",
    )
    .bind(now, next, id, chain);
}

/** Takes this interval's probe: one per OUTAGE_PROBE_SECONDS, whichever chain message asks. */
export function claimProbeStatement(
  db: D1Database,
  id: string,
  chain: string,
  now: number,
  next: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE destinations SET next_probe_at = ?4 WHERE id = ?1 AND chain = ?2 AND state = 'outage'
         AND next_probe_at <= ?3 RETURNING id`,
    )
    .bind(id, chain, now, next);
}

/** A probe (or a resumed destination's first batch) got through: parked batches go out. */
export function drainingStatement(db: D1Database, id: string, chain: string): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE destinations SET state = 'draining', failing_since = NULL WHERE id = ? AND chain = ? AND state = 'outage'",
    )
    .bind(id, chain);
}

/** A drain met a failure: back to probing, from the next interval. */
export function backToOutageStatement(
  db: D1Database,
  id: string,
  chain: string,
  status: number | null,
  nextProbeAt: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE destinations SET state = 'outage', last_status = ?3, next_probe_at = ?4
       WHERE id = ?1 AND chain = ?2 AND state = 'draining'`,
    )
    .bind(id, chain, status, nextProbeAt);
}

/** Nothing is parked any more: open again, the chain ends, and the drained alert may go. */
export function drainedStatement(db: D1Database, id: string, chain: string): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE destinations SET state = 'open', chain = NULL, drained_at = ${DB_NOW}
       WHERE id = ?1 AND chain = ?2 AND state = 'draining'
         AND NOT EXISTS (SELECT 1 FROM parked WHERE destination = ?1) RETURNING id`,
    )
    .bind(id, chain);
}

export interface ParkedRow {
  destination: string;
  seq: string;
  objectKey: string;
  messages: number;
  events: number;
  bytes: number;
  oldestAt: number;
}

/**
 * The next `limit` parked batches in arrival order, taken until `leaseUntil` by this drain, only
 * while its chain owns the destination in outage or draining (an operator's hold stops a drain
 * between two claims, not after the next).
 */
export function claimParkedStatement(
  db: D1Database,
  destination: string,
  chain: string,
  limit: number,
  now: number,
  leaseUntil: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE parked SET claimed_until = ?4
       WHERE destination = ?1 AND seq IN (
         SELECT seq FROM parked WHERE destination = ?1 AND claimed_until < ?3 ORDER BY seq LIMIT ?2)
         AND EXISTS (SELECT 1 FROM destinations WHERE id = ?1 AND chain = ?5 AND state IN ('outage', 'draining'))
       RETURNING destination, seq, object_key AS objectKey, messages, events, bytes, oldest_at AS oldestAt`,
    )
    .bind(destination, limit, now, leaseUntil, chain);
}

/** Why a claim took nothing: the chain lost the destination, or every parked batch is claimed, or none is left. */
export function nothingClaimedStatement(
  db: D1Database,
  destination: string,
  chain: string,
): D1PreparedStatement {
  return db
    .prepare(
      `SELECT EXISTS (SELECT 1 FROM destinations WHERE id = ?1 AND chain = ?2 AND state IN ('outage', 'draining')) AS owned,
              EXISTS (SELECT 1 FROM parked WHERE destination = ?1) AS parked`,
    )
    .bind(destination, chain);
}

/** When the next probe may go (a paused or unspent one). */
export function probeAtStatement(db: D1Database, id: string, chain: string, at: number): D1PreparedStatement {
  return db
    .prepare("UPDATE destinations SET next_probe_at = ? WHERE id = ? AND chain = ?")
    .bind(at, id, chain);
}

/** Parked batches sent (or their events stored as dead letters): gone from the index. */
export function unparkStatement(
  db: D1Database,
  destination: string,
  seqs: readonly string[],
): D1PreparedStatement {
  return db
    .prepare("DELETE FROM parked WHERE destination = ? AND seq IN (SELECT value FROM json_each(?))")
    .bind(destination, JSON.stringify(seqs));
}

/** A parked batch part of which went out: what is left, given back for the next drain. */
export function shrinkParkedStatement(
  db: D1Database,
  row: Pick<ParkedRow, "destination" | "seq" | "messages" | "events" | "bytes" | "oldestAt">,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE parked SET messages = ?3, events = ?4, bytes = ?5, oldest_at = ?6, claimed_until = 0
       WHERE destination = ?1 AND seq = ?2`,
    )
    .bind(row.destination, row.seq, row.messages, row.events, row.bytes, row.oldestAt);
}

/** Gives claimed batches back at once (the drain stopped before sending them). */
export function releaseParkedStatement(
  db: D1Database,
  destination: string,
  seqs: readonly string[],
): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE parked SET claimed_until = 0 WHERE destination = ? AND seq IN (SELECT value FROM json_each(?))",
    )
    .bind(destination, JSON.stringify(seqs));
}

/** An operator's hold: everything for it is parked until resumed; any live chain stops. */
export function holdStatement(db: D1Database, id: string, host: string, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO destinations (id, host, state, updated_at) VALUES (?1, ?2, 'held', ?3)
       ON CONFLICT (id) DO UPDATE SET state = 'held', chain = NULL, updated_at = ?3
       RETURNING state`,
    )
    .bind(id, host, now);
}

/**
 * An operator's resume of a held destination: draining if anything is parked (a new chain sends
 * it; the first failure brings probing back), else open.
 */
export function resumeStatement(db: D1Database, id: string, chain: string, now: number): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE destinations SET
         state = CASE WHEN EXISTS (SELECT 1 FROM parked WHERE destination = ?1) THEN 'draining' ELSE 'open' END,
         chain = CASE WHEN EXISTS (SELECT 1 FROM parked WHERE destination = ?1) THEN ?2 ELSE NULL END,
         chain_beat = ?3, failing_since = NULL, updated_at = ?3
       WHERE id = ?1 AND state = 'held' RETURNING state`,
    )
    .bind(id, chain, now);
}

export interface ParkedSummary {
  id: string;
  host: string;
  state: DestinationState;
  failingSince: number | null;
  lastStatus: number | null;
  outageAt: number | null;
  nextProbeAt: number;
  batches: number;
  events: number;
  bytes: number;
  oldestAt: number | null;
}

/** Every destination with a row: its state and what is parked for it (the overview, the console). */
export async function parkedSummary(db: D1Database): Promise<ParkedSummary[]> {
  const { results } = await db
    .prepare(
      `SELECT d.id, d.host, d.state, d.failing_since AS failingSince, d.last_status AS lastStatus,
              d.outage_at AS outageAt, d.next_probe_at AS nextProbeAt,
              count(p.seq) AS batches, coalesce(sum(p.events), 0) AS events, coalesce(sum(p.bytes), 0) AS bytes,
              min(p.oldest_at) AS oldestAt
       FROM destinations AS d LEFT JOIN parked AS p ON p.destination = d.id
       GROUP BY d.id ORDER BY d.id`,
    )
    .all<ParkedSummary>();
  return results;
}

/** Chains the cron must restart: a destination with work whose chain has not beaten for `staleMs`. */
export function staleChainsStatement(db: D1Database, now: number, staleMs: number): D1PreparedStatement {
  return db
    .prepare(
      `SELECT id, state FROM destinations
       WHERE (state IN ('outage', 'draining') AND (chain IS NULL OR chain_beat < ?1))
          OR (state = 'open' AND EXISTS (SELECT 1 FROM parked WHERE destination = destinations.id))`,
    )
    .bind(now - staleMs);
}

/** A new chain for a destination the cron found stranded (an open one with parked batches drains). */
export function restartChainStatement(
  db: D1Database,
  id: string,
  chain: string,
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE destinations SET chain = ?2, chain_beat = ?3,
         state = CASE WHEN state = 'open' THEN 'draining' ELSE state END
       WHERE id = ?1 AND state != 'held' RETURNING state`,
    )
    .bind(id, chain, now);
}
