import type { Settings } from "../config";
import { DB_NOW } from "../ledger/drift";
import { cutText } from "../ledger/text";
import { log } from "../log";
import { BUDGET_ALERT_SHARE } from "../records/budget";
import { DEFAULT_SOURCE, resolveSource, sourceNames } from "../sources";
import { destinationsOf } from "../targets";
import {
  ALERT_KINDS,
  type AlertKind,
  type AlertTally,
  alertBody,
  DESTINATION_ALERT_KINDS,
  signatureHeaders,
} from "./alert";

/**
 * Alerts from the ledger. Nothing is tallied in memory: an alert says what the ledger holds since
 * the last one of its kind and source (dead letters, quarantined webhooks, new event names,
 * delivery status), so every isolate, and the cron, sees the same picture. At most one alert per
 * kind and source per ALERT_INTERVAL_SECONDS, across all isolates: the sender first claims the
 * `alerts` row with one conditional statement. A failed send backs off (one minute, doubling, up
 * to the interval) and what it would have said is simply said by the next one.
 */

export interface AlertScope {
  db: D1Database;
  settings: Settings;
  waitUntil: (promise: Promise<unknown>) => void;
  now: number;
}

const SEND_TIMEOUT_MS = 5_000;
// A claim outlives the send's timeout; a sender that died is replaced after this.
const CLAIM_MS = 30_000;
const FIRST_BACKOFF_MS = 60_000;
const EXAMPLES = 5;
const BREAKDOWN_ROWS = 50;
const NAMES = 20;
const SENT_TEXT_LIMIT = 600;

export type AlertOutcome = "sent" | "nothing" | "not-yet" | "failed" | "no-url";

/**
 * When this isolate may next bother the ledger for a (database, source, kind): a hint only, never
 * the decision, and bounded by the configured sources times the five kinds.
 */
const notBefore = new WeakMap<D1Database, Map<string, number>>();
function hintsOf(db: D1Database) {
  let hints = notBefore.get(db);
  if (!hints) {
    hints = new Map();
    notBefore.set(db, hints);
  }
  return hints;
}

/** After an occurrence is stored: evaluates the alert in the background, never on the answer's path. */
export function alertSoon(scope: AlertScope, source: string, kind: AlertKind): void {
  const hints = hintsOf(scope.db);
  if ((hints.get(`${source}\n${kind}`) ?? 0) > scope.now) return;
  scope.waitUntil(
    evaluateAlert(scope, source, kind).catch((error) =>
      log("error", "alert-failed", { kind, source, error: String(error) }),
    ),
  );
}

/**
 * Every configured source and kind, and every destination outage mode knows: what the cron runs,
 * so an alert goes out with no traffic.
 */
export async function evaluateAllAlerts(scope: AlertScope): Promise<Record<string, AlertOutcome>> {
  const outcomes: Record<string, AlertOutcome> = {};
  const { results: destinations } = await scope.db
    .prepare("SELECT id FROM destinations")
    .all<{ id: string }>();
  const subjects: [string, AlertKind][] = [
    ...sourceNames(scope.settings).flatMap((source) =>
      ALERT_KINDS.map((kind): [string, AlertKind] => [source, kind]),
    ),
    ...destinations.flatMap(({ id }) =>
      DESTINATION_ALERT_KINDS.map((kind): [string, AlertKind] => [id, kind]),
    ),
  ];
  // Every state and the database's clock in one read: a subject not yet due costs nothing more.
  const [states, clock] = await scope.db.batch([
    scope.db.prepare("SELECT source, kind, covered_to, next_at, claimed_until, failures FROM alerts"),
    scope.db.prepare(`SELECT ${DB_NOW} AS asOf`),
  ]);
  const known = new Map(
    ((states?.results ?? []) as (AlertRow & { source: string; kind: string })[]).map((row) => [
      `${row.source}\n${row.kind}`,
      row,
    ]),
  );
  const asOf = (clock?.results[0] as { asOf: number } | undefined)?.asOf;
  for (const [subject, kind] of subjects) {
    try {
      const prefetched =
        asOf === undefined ? undefined : { state: known.get(`${subject}\n${kind}`) ?? NO_STATE, asOf };
      outcomes[`${subject}:${kind}`] = await evaluateAlert(scope, subject, kind, prefetched);
    } catch (error) {
      outcomes[`${subject}:${kind}`] = "failed";
      log("error", "alert-failed", { kind, source: subject, error: String(error) });
    }
  }
  return outcomes;
}

const isDestinationKind = (kind: AlertKind) => (DESTINATION_ALERT_KINDS as readonly string[]).includes(kind);

async function alertUrl(settings: Settings, subject: string, kind: AlertKind): Promise<string | undefined> {
  // A destination's alerts go where its first source's go.
  const source = isDestinationKind(kind)
    ? (await destinationsOf(settings)).find(({ target }) => target.id === subject)?.sources[0]
    : subject;
  // A source no longer configured (or "unknown", for a malformed message) alerts the default URL.
  return (resolveSource(settings, source ?? DEFAULT_SOURCE) ?? resolveSource(settings, DEFAULT_SOURCE))
    ?.alertWebhookUrl;
}

const intervalMs = (settings: Settings) => settings.ALERT_INTERVAL_SECONDS * 1000;

const NO_STATE: AlertRow = { covered_to: 0, next_at: 0, claimed_until: 0, failures: 0 };

/** The alert's state and the database's clock, where this alert's window ends. */
async function readState(db: D1Database, source: string, kind: AlertKind) {
  const [stateResult, clock] = await db.batch([
    db
      .prepare(
        "SELECT covered_to, next_at, claimed_until, failures FROM alerts WHERE source = ? AND kind = ?",
      )
      .bind(source, kind),
    db.prepare(`SELECT ${DB_NOW} AS asOf`),
  ]);
  return {
    state: (stateResult?.results[0] as AlertRow | undefined) ?? NO_STATE,
    asOf: (clock?.results[0] as { asOf: number } | undefined)?.asOf ?? Date.now(),
  };
}

export async function evaluateAlert(
  scope: AlertScope,
  source: string,
  kind: AlertKind,
  prefetched?: { state: AlertRow; asOf: number },
): Promise<AlertOutcome> {
  const url = await alertUrl(scope.settings, source, kind);
  if (!url) return "no-url";
  const { db } = scope;
  // The time of this decision, not of the batch that asked for it (which may have run long).
  const now = Math.max(scope.now, Date.now());
  const hints = hintsOf(db);
  const hintKey = `${source}\n${kind}`;
  const { state, asOf } = prefetched ?? (await readState(db, source, kind));
  if (state.next_at > now || state.claimed_until > now) {
    hints.set(hintKey, Math.max(state.next_at, state.claimed_until));
    return "not-yet";
  }
  // Windows are half-open and adjacent, [covered_to, asOf) by the database's clock: a row stored
  // in the very millisecond a window ends is in the next one, never in neither. The clock is read
  // in an earlier transaction than the gather, so every row stored before it is visible here.
  const window = { from: state.covered_to, to: asOf };
  const gathered = await db.batch(GATHER[kind](db, source, now, scope.settings, window));
  const tally = TALLY[kind](gathered.map((result) => result.results as Record<string, unknown>[]));
  if (!tally) return "nothing";

  const claimed = await db
    .prepare(
      `INSERT INTO alerts (source, kind, claimed_until) VALUES (?1, ?2, ?3)
       ON CONFLICT (source, kind) DO UPDATE SET claimed_until = excluded.claimed_until
         WHERE alerts.covered_to = ?4 AND alerts.next_at <= ?5 AND alerts.claimed_until <= ?5
       RETURNING failures`,
    )
    .bind(source, kind, now + CLAIM_MS, state.covered_to, now)
    .first<{ failures: number }>();
  if (!claimed) return "not-yet";

  const body = alertBody(kind, source, tally, scope.settings.PUBLIC_URL);
  const status = await send(scope, url, JSON.stringify(body));
  if (status === null || status < 200 || status >= 300) {
    // Backs off: a minute, doubling, never past the interval. Nothing is held in memory: the
    // next try reads the ledger again, so it says everything since the last alert sent.
    const backoff = Math.min(intervalMs(scope.settings), FIRST_BACKOFF_MS * 2 ** claimed.failures);
    log("error", "alert-failed", {
      kind,
      source,
      count: tally.count,
      status,
      retryInSeconds: backoff / 1000,
    });
    await db
      .prepare(
        "UPDATE alerts SET claimed_until = 0, failures = failures + 1, next_at = ?, held = ? WHERE source = ? AND kind = ?",
      )
      .bind(now + backoff, tally.count, source, kind)
      .run();
    hints.set(hintKey, now + backoff);
    return "failed";
  }
  const next = now + intervalMs(scope.settings);
  await db.batch([
    db
      .prepare(
        `UPDATE alerts SET covered_to = ?1, next_at = ?2, claimed_until = 0, failures = 0, held = 0,
           sent_at = ?7, sent_count = ?3, sent_text = ?4 WHERE source = ?5 AND kind = ?6`,
      )
      .bind(asOf, next, tally.count, cutText(body.text, SENT_TEXT_LIMIT), source, kind, now),
    ...(kind === "delivery-failing"
      ? [db.prepare("UPDATE delivery SET failing_alerted_at = ? WHERE source = ?").bind(now, source)]
      : []),
  ]);
  hints.set(hintKey, next);
  log("info", "alert", { kind, source, count: tally.count });
  return "sent";
}

interface AlertRow {
  covered_to: number;
  next_at: number;
  claimed_until: number;
  failures: number;
}

async function send(scope: AlertScope, url: string, text: string): Promise<number | null> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "pendo-segment-relay",
  };
  if (scope.settings.ALERT_SECRET) {
    const id = `alert_${crypto.randomUUID()}`;
    Object.assign(
      headers,
      await signatureHeaders(scope.settings.ALERT_SECRET, id, Math.floor(scope.now / 1000), text),
    );
  }
  try {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: text,
      redirect: "manual",
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.status;
  } catch (error) {
    log("error", "alert-failed", { error: String(error) });
    return null;
  }
}

// What each kind reads from the ledger in its window: ?2 and ?3 are the window's [from, to).
const IN_WINDOW = (column: string) => `${column} >= ?2 AND ${column} < ?3`;

type Gather = (
  db: D1Database,
  source: string,
  now: number,
  settings: Settings,
  window: { from: number; to: number },
) => D1PreparedStatement[];
type Rows = Record<string, unknown>[];

function recordGather(recordKind: string, breakdown: string): Gather {
  return (db, source, _now, _settings, { from, to }) => [
    db
      .prepare(
        `SELECT count(*) AS n, min(created_at) AS since FROM records
         WHERE kind = ?4 AND source = ?1 AND ${IN_WINDOW("stored_at")}`,
      )
      .bind(source, from, to, recordKind),
    db
      .prepare(
        `SELECT event, event_id AS uniqueId FROM records
         WHERE kind = ?4 AND source = ?1 AND ${IN_WINDOW("stored_at")} ORDER BY stored_at LIMIT ${EXAMPLES}`,
      )
      .bind(source, from, to, recordKind),
    db.prepare(breakdown).bind(source, from, to, recordKind),
  ];
}

const GATHER: Record<AlertKind, Gather> = {
  "dead-letters": recordGather(
    "dead-letters",
    `SELECT reason AS k, count(*) AS n FROM records WHERE kind = ?4 AND source = ?1 AND ${IN_WINDOW("stored_at")}
     GROUP BY reason ORDER BY n DESC LIMIT ${BREAKDOWN_ROWS}`,
  ),
  "invalid-webhooks": recordGather(
    "quarantine",
    `SELECT coalesce(nullif(j.value ->> 'path', ''), '(body)') AS k, count(*) AS n
     FROM records AS r, json_each(r.issues) AS j
     WHERE r.kind = ?4 AND r.source = ?1 AND ${IN_WINDOW("r.stored_at")}
     GROUP BY k ORDER BY n DESC LIMIT ${BREAKDOWN_ROWS}`,
  ),
  "unknown-event": (db, source, _now, _settings, { from, to }) => [
    db
      .prepare(
        `SELECT count(*) AS n, coalesce(sum(count), 0) AS seen, min(first_seen) AS since FROM drift
         WHERE source = ?1 AND kind = 'event' AND ${IN_WINDOW("first_seen")}`,
      )
      .bind(source, from, to),
    db
      .prepare(
        `SELECT event FROM drift WHERE source = ?1 AND kind = 'event' AND ${IN_WINDOW("first_seen")}
         ORDER BY first_seen DESC LIMIT ${NAMES}`,
      )
      .bind(source, from, to),
    db
      .prepare(`SELECT count FROM drift_evictions WHERE source = ?1 AND ${IN_WINDOW("last_at")}`)
      .bind(source, from, to),
  ],
  "delivery-failing": (db, source, now, settings) => [
    db
      .prepare(
        `SELECT failing_since AS since, last_status AS lastStatus FROM delivery
         WHERE source = ?1 AND failing_since IS NOT NULL AND failing_since <= ?2 AND failing_alerted_at IS NULL`,
      )
      .bind(source, now - settings.ALERT_FAILING_SECONDS * 1000),
  ],
  "delivery-recovered": (db, source, _now, _settings, { from, to }) => [
    db
      .prepare(
        `SELECT recovered_at AS since FROM delivery WHERE source = ?1 AND ${IN_WINDOW("recovered_at")}`,
      )
      .bind(source, from, to),
  ],
  // A condition, not an occurrence: while the source is past the share, once per interval.
  "record-budget": (db, source, _now, settings) => [
    db
      .prepare("SELECT bytes, ?2 AS budget FROM record_bytes WHERE source = ?1 AND bytes >= ?3")
      .bind(
        source,
        settings.RECORD_BUDGET_BYTES,
        Math.floor(settings.RECORD_BUDGET_BYTES * BUDGET_ALERT_SHARE),
      ),
  ],
  "outage-started": (db, id, _now, _settings, { from, to }) => [
    db
      .prepare(
        `SELECT outage_at AS since, last_status AS lastStatus,
           (SELECT count(*) FROM parked WHERE destination = ?1) AS batches,
           (SELECT coalesce(sum(events), 0) FROM parked WHERE destination = ?1) AS events
         FROM destinations WHERE id = ?1 AND ${IN_WINDOW("outage_at")}`,
      )
      .bind(id, from, to),
  ],
  "outage-drained": (db, id, _now, _settings, { from, to }) => [
    db
      .prepare(
        `SELECT coalesce(outage_at, drained_at) AS since FROM destinations WHERE id = ?1 AND ${IN_WINDOW("drained_at")}`,
      )
      .bind(id, from, to),
  ],
};

const num = (value: unknown) => (typeof value === "number" ? value : 0);

function recordTally([summary, examples, breakdown]: Rows[]): AlertTally | null {
  const head = summary?.[0];
  const count = num(head?.n);
  if (count === 0) return null;
  return {
    count,
    since: num(head?.since),
    examples: (examples ?? []).map((row) => ({ event: String(row.event), uniqueId: String(row.uniqueId) })),
    breakdown: Object.fromEntries((breakdown ?? []).map((row) => [String(row.k), num(row.n)])),
  };
}

const TALLY: Record<AlertKind, (rows: Rows[]) => AlertTally | null> = {
  "dead-letters": recordTally,
  "invalid-webhooks": recordTally,
  "unknown-event": ([summary, names, evicted]) => {
    const head = summary?.[0];
    const count = num(head?.n);
    if (count === 0) return null;
    const listed = (names ?? []).map((row) => String(row.event));
    const tally: AlertTally = {
      count,
      since: num(head?.since),
      examples: [],
      breakdown: {},
      names: listed,
      moreNames: count - listed.length,
    };
    const dropped = num(evicted?.[0]?.count);
    if (dropped > 0) tally.evicted = dropped;
    return tally;
  },
  "delivery-failing": ([rows]) => {
    const row = rows?.[0];
    if (!row) return null;
    const lastStatus = typeof row.lastStatus === "number" ? row.lastStatus : null;
    return {
      count: 1,
      since: num(row.since),
      examples: [],
      breakdown: { [String(lastStatus ?? "no answer")]: 1 },
      lastStatus,
    };
  },
  "delivery-recovered": ([rows]) => {
    const row = rows?.[0];
    return row ? { count: 1, since: num(row.since), examples: [], breakdown: {} } : null;
  },
  "record-budget": ([rows]) => {
    const row = rows?.[0];
    if (!row) return null;
    const used = num(row.bytes);
    return { count: 1, since: 0, examples: [], breakdown: {}, bytes: { used, budget: num(row.budget) } };
  },
  "outage-started": ([rows]) => {
    const row = rows?.[0];
    if (!row) return null;
    return {
      count: 1,
      since: num(row.since),
      examples: [],
      breakdown: {},
      lastStatus: typeof row.lastStatus === "number" ? row.lastStatus : null,
      parked: { batches: num(row.batches), events: num(row.events) },
    };
  },
  "outage-drained": ([rows]) => {
    const row = rows?.[0];
    return row ? { count: 1, since: num(row.since), examples: [], breakdown: {} } : null;
  },
};

/** The alerts sent within their interval, newest first (the console). */
export async function recentAlerts(db: D1Database) {
  const { results } = await db
    .prepare(
      `SELECT kind, source, sent_count AS count, sent_at AS sentAt, sent_text AS text, failures, next_at AS nextAt
       FROM alerts WHERE sent_at IS NOT NULL OR failures > 0 ORDER BY sent_at DESC LIMIT 200`,
    )
    .all();
  return results;
}
