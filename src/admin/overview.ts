import type { Env } from "../env";
import { overview } from "../ledger/counts";
import { HOUR_MS, hourOf } from "../ledger/text";
import { log } from "../log";

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
export async function overviewOf(env: Env, hours: number, now: number) {
  const last = hourOf(now);
  const first = last - hours + 1;
  const counts = await overview(env.LEDGER, first, last);
  const { backlog, backlogNote } = await backlogOf(env.EVENTS);
  const start = new Date(first * HOUR_MS).toISOString();
  return {
    from: start,
    to: new Date(now).toISOString(),
    perHour: { start, ...counts.perHour },
    bySource: counts.bySource,
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
