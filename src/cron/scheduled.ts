import { evaluateAllAlerts } from "../alerts/notify";
import { restartStaleJobs } from "../archive/jobs";
import { loadSettings, type Settings } from "../config";
import { startChain, startJob } from "../delivery/control";
import type { Env } from "../env";
import { restartChainStatement, staleChainsStatement } from "../ledger/destinations";
import { purgeFlagStatements } from "../ledger/flags";
import { randomHex } from "../ledger/records";
import { DAY_MS, hourOf } from "../ledger/text";
import { log } from "../log";
import { dayOfRecordsPrefix, R2_PREFIX, recordsDayPrefix } from "../r2/keys";
import { moveKvFallbacks, movePending } from "../records/pending";

// Counters are kept 90 days: the overview's longest window.
export const COUNTS_KEPT_DAYS = 90;
// Drift entries unseen this long are forgotten.
const DRIFT_KEPT_DAYS = 30;
// Finished archive replay jobs are listed this long.
const JOBS_KEPT_DAYS = 30;
// Rows one purge statement may delete: bounded work per run, the rest waits for the next.
const PURGE_BATCH = 5_000;
// A chain (outage probe or drain, archive replay) that has not stepped for this long is restarted.
export const STALE_CHAIN_MS = 10 * 60_000;
// R2 day folders of records one run may empty (each: a ledger check, a list, a delete per 1,000).
const DAYS_PER_RUN = 3;

/**
 * The Cron Trigger (every five minutes, wrangler.toml). Each step is independent: one failing
 * does not stop the others.
 * - alerts: every kind for every source and destination, so a failure is reported with no traffic;
 * - purge: records (and their tombstones) older than DEAD_LETTER_TTL_SECONDS, then the R2 day
 *   folders none of them points at any more; counters after 90 days, drift unseen for 30, finished
 *   replay jobs after 30; do-not-process history no sendable event can ask about;
 * - moves: rows the ledger refused (R2 `pending/`, and KV fallbacks of earlier deploys), all of
 *   them, page after page, within the run's budget;
 * - chains: a destination in outage mode or draining, or a replay job, whose chain went quiet.
 * Nothing is deleted before its retention: there is no count cap on quarantine; the byte budget
 * (RECORD_BUDGET_BYTES) is kept at the edge, by not storing new bytes past it.
 */
export async function runScheduled(env: Env, ctx: ExecutionContext, now: number) {
  const config = loadSettings(env);
  if (!config.ok) {
    log("error", "cron-misconfigured", { issues: config.issues });
    return;
  }
  const settings = config.settings;
  const db = env.LEDGER;
  const report: Record<string, unknown> = {};
  const step = async (name: string, work: () => Promise<unknown>) => {
    try {
      report[name] = await work();
    } catch (error) {
      report[name] = "failed";
      log("error", "cron-step-failed", { step: name, error: String(error) });
    }
  };
  // Alerts first: after an incident the other steps have the most to do, and an operator most
  // needs to hear of it.
  await step("alerts", () =>
    evaluateAllAlerts({ db, settings, now, waitUntil: (promise) => ctx.waitUntil(promise) }),
  );
  const recordsCutoff = now - settings.DEAD_LETTER_TTL_SECONDS * 1000;
  await step("purged", async () => {
    // The oldest event anything may still send: a parked batch, or a record (one sent can be
    // sent again, on an operator's word).
    const oldestHeld = await db
      .prepare(
        `SELECT min(at) AS at FROM (SELECT min(oldest_at) AS at FROM parked
           UNION ALL SELECT min(received_at) FROM records WHERE state = 'stored'
           UNION ALL SELECT min(received_at) FROM records WHERE state = 'replaying'
           UNION ALL SELECT min(received_at) FROM records WHERE state = 'sent')`,
      )
      .first<{ at: number | null }>();
    const results = await db.batch([
      db
        .prepare(
          "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE created_at < ? LIMIT ?)",
        )
        .bind(recordsCutoff, PURGE_BATCH),
      db.prepare("DELETE FROM counts WHERE hour < ?").bind(hourOf(now - COUNTS_KEPT_DAYS * DAY_MS)),
      db.prepare("DELETE FROM drift WHERE last_seen < ?").bind(now - DRIFT_KEPT_DAYS * DAY_MS),
      db
        .prepare("DELETE FROM replay_jobs WHERE state != 'running' AND updated_at < ?")
        .bind(now - JOBS_KEPT_DAYS * DAY_MS),
      ...purgeFlagStatements(db, flagCutoff(settings, now, oldestHeld?.at ?? null), PURGE_BATCH),
    ]);
    return results.map((result) => result.meta.changes);
  });
  await step("recordObjects", () => purgeRecordObjects(env, recordsCutoff));
  await step("moved", () => movePending(env.ARCHIVE, db, recordsCutoff));
  await step("movedFromKv", () => moveKvFallbacks(env.DEDUP, db, recordsCutoff));
  await step("chains", () => restartChains(env, settings, now));
  log("info", "cron", report);
  return report;
}

/**
 * The oldest event time a do-not-process decision may still be asked about: an event can still
 * be sent from the queue (its retention), from the dead letters (their TTL), from the archive
 * (ARCHIVE_DAYS), and from what is held with no bound on its event's age (`oldestHeld`: a parked
 * batch, or a dead letter made from one long after its event came), each with a day's margin for
 * Pendo's own clock. Older history collapses to the state it left.
 */
export function flagCutoff(settings: Settings, now: number, oldestHeld: number | null): number {
  const horizonMs =
    Math.max(
      settings.QUEUE_RETENTION_SECONDS,
      settings.DEAD_LETTER_TTL_SECONDS,
      settings.ARCHIVE_DAYS * 86_400,
    ) * 1000;
  const byRetention = now - horizonMs - DAY_MS;
  const byHeld =
    oldestHeld === null ? byRetention : oldestHeld - settings.QUEUE_RETENTION_SECONDS * 1000 - DAY_MS;
  return Math.min(byRetention, byHeld);
}

/**
 * Removes `records/<day>/` folders whose day is past the retention and that no row points into
 * any more (all its records purged): one group object holds many records, so objects go by day,
 * once the whole day has gone.
 */
async function purgeRecordObjects(env: Env, cutoff: number): Promise<number> {
  const listed = await env.ARCHIVE.list({ prefix: R2_PREFIX.records, delimiter: "/", limit: 100 });
  let deleted = 0;
  let days = 0;
  for (const prefix of listed.delimitedPrefixes) {
    const day = dayOfRecordsPrefix(prefix);
    if (day === undefined || day + DAY_MS > cutoff || days >= DAYS_PER_RUN) break;
    days++;
    const row = await env.LEDGER.prepare(
      "SELECT 1 FROM records WHERE kind IN ('dead-letters', 'quarantine') AND created_at >= ? AND created_at < ? LIMIT 1",
    )
      .bind(day, day + DAY_MS)
      .first();
    if (row) continue; // the purge has not reached every record of that day yet
    const objects = await env.ARCHIVE.list({ prefix: recordsDayPrefix(day), limit: 1_000 });
    if (objects.objects.length > 0) await env.ARCHIVE.delete(objects.objects.map((object) => object.key));
    deleted += objects.objects.length;
  }
  return deleted;
}

/** New chains for destinations and replay jobs whose chain went quiet. */
async function restartChains(env: Env, settings: Settings, now: number) {
  const db = env.LEDGER;
  // An outage chain beats once per probe: quiet for two probes, not merely ten minutes, is stale.
  const staleMs = Math.max(STALE_CHAIN_MS, 2 * settings.OUTAGE_PROBE_SECONDS * 1000);
  const { results } = await staleChainsStatement(db, now, staleMs).all<{ id: string; state: string }>();
  for (const { id } of results) {
    const chain = randomHex(8);
    const restarted = await restartChainStatement(db, id, chain, now).first();
    if (restarted) await startChain(env, id, chain, 0);
  }
  const jobs = await restartStaleJobs(db, now, STALE_CHAIN_MS);
  for (const { job, chain } of jobs) await startJob(env, job, chain);
  return { destinations: results.length, jobs: jobs.length };
}
