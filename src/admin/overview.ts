import type { Settings } from "../config";
import type { Env } from "../env";
import { overview } from "../ledger/counts";
import { HOUR_MS, hourOf } from "../ledger/text";
import { log } from "../log";
import { destinationList } from "./destinations";

export interface Backlog {
  messages: number;
  bytes?: number;
  oldestAt?: string;
}

/**
 * GET /admin/overview?hours=N: delivery counters of the last N hours, the hour now the last of
 * them: `perHour`, N entries by outcome from `start`, and `bySource`, each event's counts over
 * the range; with the queue's backlog where the platform offers queue metrics
 * (`Queue.metrics()`). Where it does not (the local simulator, an older runtime), `backlog` is
 * null and `backlogNote` says why. Its size grows with N by four numbers an hour and with the
 * sources by one entry per event name, never with their product.
 */
export async function overviewOf(env: Env, settings: Settings, hours: number, now: number) {
  const last = hourOf(now);
  const first = last - hours + 1;
  const [counts, destinations, stored] = await Promise.all([
    overview(env.LEDGER, first, last),
    destinationList(env, settings),
    recordBytes(env.LEDGER),
  ]);
  const { backlog, backlogNote } = await backlogOf(env.EVENTS);
  const start = new Date(first * HOUR_MS).toISOString();
  return {
    from: start,
    to: new Date(now).toISOString(),
    perHour: { start, ...counts.perHour },
    bySource: counts.bySource,
    backlog,
    ...(backlogNote ? { backlogNote } : {}),
    // Outage mode: per destination, its state and what is parked for it (not dead letters).
    parked: destinations.map(({ name, host, sources, state, outageSince, parked }) => ({
      destination: name,
      host,
      sources,
      state,
      outageSince,
      events: parked.events,
      batches: parked.batches,
      bytes: parked.bytes,
      oldest: parked.oldest,
    })),
    // Per source: bytes kept in R2 for records against RECORD_BUDGET_BYTES, and the records kept
    // past it as a row only (their bytes were not stored).
    records: stored.map((row) => ({ ...row, budget: settings.RECORD_BUDGET_BYTES })),
  };
}

async function recordBytes(db: D1Database) {
  const { results } = await db
    .prepare("SELECT source, bytes, rows_only AS rowsOnly FROM record_bytes ORDER BY source")
    .all<{ source: string; bytes: number; rowsOnly: number }>();
  return results;
}

async function backlogOf(queue: Queue<string>): Promise<{ backlog: Backlog | null; backlogNote?: string }> {
  const metrics = (queue as { metrics?: () => Promise<QueueMetrics> }).metrics;
  if (typeof metrics !== "function") {
    return {
      backlog: null,
      backlogNote: "this runtime offers no queue metrics (the local simulator does not)",
    };
  }
  try {
    const answer = await metrics.call(queue);
    const backlog: Backlog = { messages: answer.backlogCount, bytes: answer.backlogBytes };
    if (answer.oldestMessageTimestamp)
      backlog.oldestAt = new Date(answer.oldestMessageTimestamp).toISOString();
    return { backlog };
  } catch (error) {
    log("warn", "queue-metrics-failed", { error: String(error) });
    return {
      backlog: null,
      backlogNote: `the platform did not give queue metrics: ${String(error).slice(0, 200)}`,
    };
  }
}
