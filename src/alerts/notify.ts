import type { Settings } from "../config";
import { DB_NOW } from "../ledger/drift";
import { cutText } from "../ledger/text";
import { log } from "../log";
import { DEFAULT_SOURCE, resolveSource, sourceNames } from "../sources";
import { ALERT_KINDS, type AlertKind, type AlertTally, alertBody, signatureHeaders } from "./alert";

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

/** Every configured source and kind: what the cron runs, so an alert goes out with no traffic. */
export async function evaluateAllAlerts(scope: AlertScope): Promise<Record<string, AlertOutcome>> {
  const outcomes: Record<string, AlertOutcome> = {};
  for (const source of sourceNames(scope.settings)) {
    for (const kind of ALERT_KINDS) {
      try {
        outcomes[`${source}:${kind}`] = await evaluateAlert(scope, source, kind);
      } catch (error) {
        outcomes[`${source}:${kind}`] = "failed";
        log("error", "alert-failed", { kind, source, error: String(error) });
      }
    }
  }
  return outcomes;
}

function alertUrl(settings: Settings, source: string): string | undefined {
  // A source no longer configured (or "unknown", for a malformed message) alerts the default URL.
  return (resolveSource(settings, source) ?? resolveSource(settings, DEFAULT_SOURCE))?.alertWebhookUrl;
}

const intervalMs = (settings: Settings) => settings.ALERT_INTERVAL_SECONDS * 1000;

export async function evaluateAlert(
  scope: AlertScope,
  source: string,
  kind: AlertKind,
): Promise<AlertOutcome> {
  const url = alertUrl(scope.settings, source);
  if (!url) return "no-url";
  const { db } = scope;
  // The time of this decision, not of the batch that asked for it (which may have run long).
  const now = Math.max(scope.now, Date.now());
  const hints = hintsOf(db);
  const hintKey = `${source}\n${kind}`;
  // One transaction: the state, what was stored since the last alert, and the database's clock
  // at that moment, where the window ends (a row stored later is in the next alert).
  const [stateResult, clock, ...gathered] = await db.batch([
    db
      .prepare(
        "SELECT covered_to, next_at, claimed_until, failures FROM alerts WHERE source = ? AND kind = ?",
      )
      .bind(source, kind),
    db.prepare(`SELECT ${DB_NOW} AS asOf`),
    ...GATHER[kind](db, source, now, scope.settings),
  ]);
  const asOf = (clock?.results[0] as { asOf: number } | undefined)?.asOf ?? now;
  const state = (stateResult?.results[0] as AlertRow | undefined) ?? {
    covered_to: 0,
    next_at: 0,
    claimed_until: 0,
    failures: 0,
  };
  if (state.next_at > now || state.claimed_until > now) {
    hints.set(hintKey, Math.max(state.next_at, state.claimed_until));
    return "not-yet";
  }
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

// What each kind reads from the ledger since its last alert: `covered` is that time, read in the
// same statement, so the gather needs no round trip of its own.
const COVERED = "coalesce((SELECT covered_to FROM alerts WHERE source = ?1 AND kind = ?2), 0)";

type Gather = (db: D1Database, source: string, now: number, settings: Settings) => D1PreparedStatement[];
type Rows = Record<string, unknown>[];

function recordGather(kind: "dead-letters" | "invalid-webhooks", recordKind: string, breakdown: string) {
  return (db: D1Database, source: string) => [
    db
      .prepare(
        `SELECT count(*) AS n, min(created_at) AS since FROM records
         WHERE kind = ?3 AND source = ?1 AND stored_at > ${COVERED}`,
      )
      .bind(source, kind, recordKind),
    db
      .prepare(
        `SELECT event, event_id AS uniqueId FROM records
         WHERE kind = ?3 AND source = ?1 AND stored_at > ${COVERED} ORDER BY stored_at LIMIT ${EXAMPLES}`,
      )
      .bind(source, kind, recordKind),
    db.prepare(breakdown).bind(source, kind, recordKind),
  ];
}

const GATHER: Record<AlertKind, Gather> = {
  "dead-letters": recordGather(
    "dead-letters",
    "dead-letters",
    `SELECT reason AS k, count(*) AS n FROM records WHERE kind = ?3 AND source = ?1 AND stored_at > ${COVERED}
     GROUP BY reason ORDER BY n DESC LIMIT ${BREAKDOWN_ROWS}`,
  ),
  "invalid-webhooks": recordGather(
    "invalid-webhooks",
    "quarantine",
    `SELECT coalesce(nullif(j.value ->> 'path', ''), '(body)') AS k, count(*) AS n
     FROM records AS r, json_each(r.issues) AS j
     WHERE r.kind = ?3 AND r.source = ?1 AND r.stored_at > ${COVERED}
     GROUP BY k ORDER BY n DESC LIMIT ${BREAKDOWN_ROWS}`,
  ),
  "unknown-event": (db, source) => [
    db
      .prepare(
        `SELECT count(*) AS n, coalesce(sum(count), 0) AS seen, min(first_seen) AS since FROM drift
         WHERE source = ?1 AND kind = 'event' AND first_seen > ${COVERED}`,
      )
      .bind(source, "unknown-event"),
    db
      .prepare(
        `SELECT event FROM drift WHERE source = ?1 AND kind = 'event' AND first_seen > ${COVERED}
         ORDER BY first_seen DESC LIMIT ${NAMES}`,
      )
      .bind(source, "unknown-event"),
    db
      .prepare(`SELECT count FROM drift_evictions WHERE source = ?1 AND last_at > ${COVERED}`)
      .bind(source, "unknown-event"),
  ],
  "delivery-failing": (db, source, now, settings) => [
    db
      .prepare(
        `SELECT failing_since AS since, last_status AS lastStatus FROM delivery
         WHERE source = ?1 AND failing_since IS NOT NULL AND failing_since <= ?2 AND failing_alerted_at IS NULL`,
      )
      .bind(source, now - settings.ALERT_FAILING_SECONDS * 1000),
  ],
  "delivery-recovered": (db, source) => [
    db
      .prepare(
        `SELECT recovered_at AS since FROM delivery WHERE source = ?1 AND recovered_at IS NOT NULL
           AND recovered_at > ${COVERED}`,
      )
      .bind(source, "delivery-recovered"),
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
