import { DB_NOW } from "./drift";

/**
 * How the destination has been answering, per source: the last success, the last failure and its
 * status, since when it has answered nothing but failures, and whether that was alerted. One
 * upsert per source per consumer batch, but at most one write a minute either way: the WHERE
 * skips a success while all is well, and a failure while failing already, unless a minute has
 * passed (what the alerts read, `failing_since`, is set by the first failure and cleared by the
 * first success). An outage at volume thus writes a row a minute here, not a row a batch.
 */
export interface DeliveryStatus {
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastStatus: number | null;
  failingSince: number | null;
  failingAlertedAt: number | null;
  recoveredAt: number | null;
}

/** What one consumer invocation saw of a source. */
export interface DeliveryRound {
  delivered: boolean;
  failed: boolean;
  lastStatus: number | null;
}

const WRITE_EVERY_MS = 60_000;

export function deliveryStatement(db: D1Database, source: string, round: DeliveryRound, now: number) {
  // A round with any success counts as delivered: the destination is answering.
  const success = round.delivered ? now : null;
  const failure = !round.delivered && round.failed ? now : null;
  return db
    .prepare(
      `INSERT INTO delivery (source, last_success_at, last_failure_at, last_status, failing_since)
       VALUES (?1, ?2, ?3, ?4, ?3)
       ON CONFLICT (source) DO UPDATE SET
         last_success_at = coalesce(excluded.last_success_at, last_success_at),
         last_failure_at = coalesce(excluded.last_failure_at, last_failure_at),
         last_status = CASE WHEN excluded.last_failure_at IS NOT NULL THEN excluded.last_status ELSE last_status END,
         failing_since = CASE WHEN excluded.last_success_at IS NOT NULL THEN NULL
                              ELSE coalesce(failing_since, excluded.failing_since) END,
         recovered_at = CASE WHEN excluded.last_success_at IS NOT NULL AND failing_alerted_at IS NOT NULL
                             THEN ${DB_NOW} ELSE recovered_at END,
         failing_alerted_at = CASE WHEN excluded.last_success_at IS NOT NULL THEN NULL ELSE failing_alerted_at END
       WHERE (excluded.last_success_at IS NOT NULL AND (delivery.failing_since IS NOT NULL
               OR delivery.last_success_at IS NULL OR delivery.last_success_at < ?5))
          OR (excluded.last_failure_at IS NOT NULL AND (delivery.failing_since IS NULL
               OR delivery.last_failure_at IS NULL OR delivery.last_failure_at < ?5))
       RETURNING recovered_at = ${DB_NOW} AS recovered, failing_since AS failingSince`,
    )
    .bind(source, success, failure, round.lastStatus, now - WRITE_EVERY_MS);
}

const EMPTY: DeliveryStatus = {
  lastSuccessAt: null,
  lastFailureAt: null,
  lastStatus: null,
  failingSince: null,
  failingAlertedAt: null,
  recoveredAt: null,
};

/** Every source's status, for /health and the console. */
export async function deliveryStatuses(db: D1Database): Promise<Map<string, DeliveryStatus>> {
  const { results } = await db
    .prepare(
      `SELECT source, last_success_at AS lastSuccessAt, last_failure_at AS lastFailureAt, last_status AS lastStatus,
              failing_since AS failingSince, failing_alerted_at AS failingAlertedAt, recovered_at AS recoveredAt
       FROM delivery`,
    )
    .all<DeliveryStatus & { source: string }>();
  return new Map(results.map(({ source, ...status }) => [source, { ...EMPTY, ...status }]));
}
