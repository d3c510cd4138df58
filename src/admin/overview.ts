import type { Env } from "../env";
import { overview } from "../ledger/counts";
import { log } from "../log";

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
export async function overviewOf(env: Env, hours: number, now: number) {
  const from = now - hours * 3_600_000;
  const counts = await overview(env.LEDGER, from, now);
  const { backlog, backlogNote } = await backlogOf(env.EVENTS);
  return {
    from: new Date(from).toISOString(),
    to: new Date(now).toISOString(),
    totals: counts.totals,
    hours: counts.hours,
    backlog,
    ...(backlogNote ? { backlogNote } : {}),
  };
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
