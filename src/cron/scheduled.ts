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

/**
 * The Cron Trigger (every five minutes, wrangler.toml): evaluates every alert, so a failing
 * delivery is reported even when nothing else runs; moves dead letters KV took for D1 back into
 * D1; purges records older than DEAD_LETTER_TTL_SECONDS, counters older than 90 days and drift
 * unseen for 30. Each step is independent: one failing does not stop the others.
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
  await step("moved", () => moveFallbacks(env.DEDUP, db));
  await step("purged", async () => {
    const results = await db.batch([
      db
        .prepare(
          "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE created_at < ? AND kind IN ('dead-letters', 'quarantine') LIMIT ?)",
        )
        .bind(now - settings.DEAD_LETTER_TTL_SECONDS * 1000, PURGE_BATCH),
      db.prepare("DELETE FROM counts WHERE hour < ?").bind(hourOf(now - COUNTS_KEPT_DAYS * DAY_MS)),
      db.prepare("DELETE FROM drift WHERE last_seen < ?").bind(now - DRIFT_KEPT_DAYS * DAY_MS),
    ]);
    return results.map((result) => result.meta.changes);
  });
  await step("alerts", () =>
    evaluateAllAlerts({ db, settings, now, waitUntil: (promise) => ctx.waitUntil(promise) }),
  );
  log("info", "cron", report);
  return report;
}
