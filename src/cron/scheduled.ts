import { evaluateAllAlerts } from "../alerts/notify";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { moveFallbacks } from "../ledger/fallback";
import { DAY_MS, hourOf } from "../ledger/text";
import { log } from "../log";

// Counters are kept 90 days: the overview's longest window.
export const COUNTS_KEPT_DAYS = 90;
// Drift entries unseen this long are forgotten.
const DRIFT_KEPT_DAYS = 30;
// Rows one purge statement may delete: bounded work per run, the rest waits for the next.
const PURGE_BATCH = 5_000;
// Quarantined webhooks kept per source, newest first: anyone holding the webhook token can send
// invalid bodies of up to MAX_BODY_BYTES, and 1,000 of 256 KB is half the Free plan's 500 MB.
export const QUARANTINE_KEPT_PER_SOURCE = 1_000;

/**
 * The Cron Trigger (every five minutes, wrangler.toml): evaluates every alert, so a failing
 * delivery is reported even when nothing else runs; purges records older than
 * DEAD_LETTER_TTL_SECONDS, counters older than 90 days, drift unseen for 30 days, and quarantined
 * webhooks past the newest QUARANTINE_KEPT_PER_SOURCE of a source; moves dead letters KV took
 * for D1 back into D1. Each step is independent: one failing does not stop the others.
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
  // Alerts first: after a D1 incident the other steps have the most to do, and an operator most
  // needs to hear of it.
  await step("alerts", () =>
    evaluateAllAlerts({ db, settings, now, waitUntil: (promise) => ctx.waitUntil(promise) }),
  );
  await step("purged", async () => {
    const results = await db.batch([
      db
        .prepare(
          "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE created_at < ? AND kind IN ('dead-letters', 'quarantine') LIMIT ?)",
        )
        .bind(now - settings.DEAD_LETTER_TTL_SECONDS * 1000, PURGE_BATCH),
      db.prepare("DELETE FROM counts WHERE hour < ?").bind(hourOf(now - COUNTS_KEPT_DAYS * DAY_MS)),
      db.prepare("DELETE FROM drift WHERE last_seen < ?").bind(now - DRIFT_KEPT_DAYS * DAY_MS),
      db
        .prepare(
          `DELETE FROM records WHERE kind = 'quarantine' AND rowid IN (
             SELECT rowid FROM (
               SELECT rowid, row_number() OVER (PARTITION BY source ORDER BY created_at DESC) AS n
               FROM records WHERE kind = 'quarantine'
             ) WHERE n > ?)`,
        )
        .bind(QUARANTINE_KEPT_PER_SOURCE),
    ]);
    return results.map((result) => result.meta.changes);
  });
  await step("moved", () => moveFallbacks(env.DEDUP, db));
  log("info", "cron", report);
  return report;
}
