import type { Settings } from "../config";
import type { Env } from "../env";
import { overview } from "../ledger/counts";
import { log } from "../log";
import { destinationList } from "./destinations";

export interface Backlog {
  messages: number;
  bytes?: number;
  oldestAt?: string;
}

/**
 * GET /admin/overview?hours=N: delivery counters per hour and in total, and the queue's backlog
 * where the platform offers queue metrics (`Queue.metrics()`); where it does not (the local
 * simulator, an older runtime), `backlog` is null and `backlogNote` says why.
 */
export async function overviewOf(env: Env, settings: Settings, hours: number, now: number) {
  const from = now - hours * 3_600_000;
  const [counts, destinations, stored] = await Promise.all([
    overview(env.LEDGER, from, now),
    destinationList(env, settings),
    recordBytes(env.LEDGER),
  ]);
  const { backlog, backlogNote } = await backlogOf(env.EVENTS);
  return {
    from: new Date(from).toISOString(),
    to: new Date(now).toISOString(),
    totals: counts.totals,
    hours: counts.hours,
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
