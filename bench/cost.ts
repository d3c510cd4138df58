/**
 * The cost model: platform operations per webhook, counted in a real run (bench/counting-worker.ts
 * wraps the real bindings under `wrangler dev`), turned into dollars per million webhooks at
 * Cloudflare's published prices and into the largest daily volume the Free plan carries.
 */
import { unstable_readConfig } from "wrangler";
import type { LocalRelay } from "../scripts/harness/local-relay";
import { LOCAL_TOKEN, startLocalRelay, waitFor } from "../scripts/harness/local-relay";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { CATALOG } from "../src/pendo/catalog";

/** Prices as published on the pages below, checked on the date given (Workers Paid plan). */
export const PRICES = {
  checked: "2026-11-28",
  pages: [
    "https://developers.cloudflare.com/workers/platform/pricing/",
    "https://developers.cloudflare.com/kv/platform/pricing/",
    "https://developers.cloudflare.com/queues/platform/pricing/",
    "https://developers.cloudflare.com/d1/platform/pricing/",
    "https://developers.cloudflare.com/r2/pricing/",
  ],
  perMillion: {
    workerRequests: 0.3,
    kvReads: 0.5,
    kvWrites: 5,
    kvDeletes: 5,
    kvLists: 5,
    queueOps: 0.4,
    d1RowsRead: 0.001,
    d1RowsWritten: 1,
    // R2: Class A (put, list) and Class B (get, head); deletes are free.
    r2ClassA: 4.5,
    r2ClassB: 0.36,
  },
} as const;

/** R2 storage: $0.015 per GB-month, the first 10 GB a month free (r2/pricing, as above). */
export const R2_STORAGE = { perGbMonth: 0.015, freeGb: 10 } as const;

/** The Free plan's daily limits, from the same pages (they reset at 00:00 UTC). */
export const FREE_PLAN_DAILY = {
  workerRequests: 100_000,
  kvReads: 100_000,
  kvWrites: 1_000,
  kvDeletes: 1_000,
  kvLists: 1_000,
  queueOps: 10_000,
  // D1 Free plan: 5 million rows read and 100,000 rows written a day (d1/platform/pricing).
  d1RowsRead: 5_000_000,
  d1RowsWritten: 100_000,
  // R2's free tier is monthly: 1 million Class A and 10 million Class B operations (a 30th a day).
  r2ClassA: 33_333,
  r2ClassB: 333_333,
} as const;

type Resource = keyof typeof FREE_PLAN_DAILY;

/**
 * Workers Logs (the `[observability]` store): every invocation writes one invocation log unless
 * `[observability.logs] invocation_logs = false` (wrangler.toml turns them off: they keep the
 * URL, token included), and every line the Worker writes is one more event. Workers Paid includes 20 million events a month,
 * then $0.60 per million; Workers Free keeps 200,000 a day (past that, logs are dropped, not
 * requests). Found 2026-11-30 in the docs corpus, in Cloudflare's tracing pricing page, which
 * bills trace spans "sharing the same monthly quota and pricing as Workers logs" and links
 * https://developers.cloudflare.com/workers/platform/pricing/#workers-logs.
 */
export const LOG_PRICES = {
  checked: "2026-11-30",
  page: "https://developers.cloudflare.com/workers/platform/pricing/#workers-logs",
  perMillion: 0.6,
  paidIncludedPerMonth: 20_000_000,
  freePerDay: 200_000,
} as const;

/** The relay's own lines that the edge (the fetch handler) writes; any other msg is the consumer's. */
const EDGE_MESSAGES: ReadonlySet<string> = new Set([
  "webhook",
  "config-invalid",
  "kv-read-failed",
  "kv-write-failed",
  "enqueue-failed",
  "quarantine-write-failed",
  "dead-letter-write-failed",
  "flag-write-failed",
  "do-not-process-unreadable",
  "unhandled",
]);

const LEVEL_RANK: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Whether wrangler.toml keeps invocation logs, as the pinned wrangler reads it (default: kept). */
export function invocationLogsKept(): boolean {
  return unstable_readConfig({ config: "wrangler.toml" }).observability?.logs?.invocation_logs !== false;
}

/** Workers Logs events per webhook at one LOG_LEVEL, where they come from, and what they cost. */
export interface LogFigures {
  level: "info" | "warn";
  /** Invocations per webhook, each an invocation log when those are kept. */
  edgeInvocations: number;
  edgeLines: number;
  consumerInvocations: number;
  consumerLines: number;
  /** Whether the total counts invocation logs (wrangler.toml's setting when it was priced). */
  invocationLogs: boolean;
  total: number;
  /** Dollars per million webhooks past the Paid plan's 20 million included events a month. */
  costPerMillion: number;
  /** Webhooks a day whose logs the Free plan's 200,000 events keep; null when a webhook writes none. */
  freePlanDailyWebhooks: number | null;
}

type LogParts = Pick<
  LogFigures,
  "level" | "edgeInvocations" | "edgeLines" | "consumerInvocations" | "consumerLines"
>;

/** Pure: the events, dollars and Free plan ceiling of counted parts, with invocation logs or without. */
export function priceLogs(parts: LogParts, invocationLogs: boolean): LogFigures {
  const invocations = invocationLogs ? parts.edgeInvocations + parts.consumerInvocations : 0;
  const total = invocations + parts.edgeLines + parts.consumerLines;
  return {
    ...parts,
    invocationLogs,
    total,
    costPerMillion: total * LOG_PRICES.perMillion,
    freePlanDailyWebhooks: total > 0 ? Math.floor(LOG_PRICES.freePerDay / total) : null,
  };
}

/**
 * Pure: a run's log figures priced again with `invocationLogs`, from the parts it counted, when
 * they were priced otherwise (a run from before wrangler.toml turned invocation logs off).
 */
export function repriceLogs(figures: CostFigures, invocationLogs: boolean): CostFigures {
  if (!figures.logs || figures.logs.every((l) => l.invocationLogs === invocationLogs)) return figures;
  return { ...figures, logs: figures.logs.map((l) => priceLogs(l, invocationLogs)), logsRepriced: true };
}

/**
 * Pure: log events per webhook at `info` and at `warn` from one run's lines counted at `info`.
 * LOG_LEVEL only filters by level, so the lines at warn are the warn and error lines of that run.
 */
export function logFigures(
  lines: Record<string, number>,
  perWebhook: { edgeInvocations: number; consumerInvocations: number },
  webhooks: number,
  invocationLogs: boolean,
): LogFigures[] {
  return (["info", "warn"] as const).map((level) => {
    let edgeLines = 0;
    let consumerLines = 0;
    for (const [key, count] of Object.entries(lines)) {
      const [lineLevel = "", msg = ""] = key.split(" ");
      if ((LEVEL_RANK[lineLevel] ?? 3) < (LEVEL_RANK[level] as number)) continue;
      if (EDGE_MESSAGES.has(msg)) edgeLines += count / webhooks;
      else consumerLines += count / webhooks;
    }
    return priceLogs({ level, ...perWebhook, edgeLines, consumerLines }, invocationLogs);
  });
}

/**
 * Operations a deployment makes per day whatever its volume: the cron, 288 runs a day (every five
 * minutes), each measured in the same run (one source, nothing to alert, nothing to purge).
 * Nothing else runs on a timer: the edge lists nothing and keeps no refreshed state.
 */
export const CRON_RUNS_PER_DAY = 288;

export interface CostFigures {
  mode: "kv" | "off";
  /** ARCHIVE_MODE of the run (runs before R2 have none: they ran with nothing archived). */
  archiveMode?: "off" | "failures" | "all";
  /** R2 bytes written per webhook, and what keeping them ARCHIVE_DAYS costs per million webhooks. */
  r2?: { bytesPerWebhook: number; storagePerMillion: number; keptDays: number };
  webhooks: number;
  calls: number;
  perWebhook: Record<Resource, number> & {
    queueInvocations: number;
    segmentRequests: number;
    queueWrites: number;
    queueReads: number;
    queueDeletes: number;
  };
  costPerMillion: Record<Resource, number> & { total: number };
  freePlanDaily: { webhooks: number; limitedBy: Resource };
  /** What the cron costs a day, whatever the volume. */
  dailyOverhead: Partial<Record<Resource, number>>;
  /** D1 round trips (batches and single statements) per webhook, edge and consumer together. */
  d1RoundTripsPerWebhook: number;
  /** Workers Logs events per webhook at LOG_LEVEL=info and warn (counted at info). */
  logs: LogFigures[];
  /** The logs were priced again from the counted parts, with today's invocation log setting. */
  logsRepriced?: boolean;
}

interface Counts {
  workerRequests: number;
  queueInvocations: number;
  kv: Record<string, number>;
  queue: { writes: number; reads: number; deletes: number; retries: number; messages: number };
  fetches: { segment: number; other: number };
  d1: { rowsRead: number; rowsWritten: number; queries: number; roundTrips: number };
  r2?: { classA: number; classB: number; bytesPut: number };
  cronRuns: number;
  logs: Record<string, number>;
}

const readCounts = async (local: LocalRelay) =>
  (await (await fetch(`${local.url}/__bench/counts`)).json()) as Counts;

export async function benchCost(
  mode: "kv" | "off",
  archiveMode: "off" | "failures" | "all" = "all",
  webhooks = 2_000,
): Promise<CostFigures> {
  const local = await startLocalRelay(
    { DEDUP_MODE: mode, LOG_LEVEL: "info", ARCHIVE_MODE: archiveMode },
    { main: "bench/counting-worker.ts" },
  );
  try {
    const before = await readCounts(local);
    const standIn = local.standIn.standIn;
    const expected = new Set<string>();
    let next = 0;
    const sender = async () => {
      while (next < webhooks) {
        const event = SAMPLE_EVENTS[next++ % SAMPLE_EVENTS.length] as string;
        const webhook = sampleWebhook(event);
        const entry = CATALOG.find((candidate) => candidate.name === event);
        for (const type of ["track", ...(entry?.fanOut ?? [])])
          expected.add(`pendo:default:${webhook.uniqueId}:${type}`);
        const response = await fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(webhook),
        });
        if (response.status !== 202) throw new Error(`webhook answered ${response.status}`);
        await response.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 8 }, sender));
    await waitFor(
      "every call to arrive",
      async () => (standIn.distinctMessageIds >= expected.size ? true : undefined),
      180_000,
      250,
    );
    // The acks of the last batch land just after its request.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const after = await readCounts(local);
    const delta = (read: (c: Counts) => number) => (read(after) - read(before)) / webhooks;
    const kv = (method: string) => delta((c) => c.kv[method] ?? 0);
    // One cron run, counted on its own: what a deployment pays 288 times a day.
    const beforeCron = await readCounts(local);
    const afterCron = (await (await fetch(`${local.url}/__bench/cron`, { method: "POST" })).json()) as Counts;
    const dailyOverhead: Partial<Record<Resource, number>> = {
      workerRequests: CRON_RUNS_PER_DAY,
      d1RowsRead: (afterCron.d1.rowsRead - beforeCron.d1.rowsRead) * CRON_RUNS_PER_DAY,
      d1RowsWritten: (afterCron.d1.rowsWritten - beforeCron.d1.rowsWritten) * CRON_RUNS_PER_DAY,
      kvLists: (afterCron.kv.list ?? 0) - (beforeCron.kv.list ?? 0) > 0 ? CRON_RUNS_PER_DAY : 0,
    };
    const perWebhook = {
      workerRequests: delta((c) => c.workerRequests + c.queueInvocations),
      queueInvocations: delta((c) => c.queueInvocations),
      kvReads: kv("get") + kv("getWithMetadata"),
      kvWrites: kv("put"),
      kvDeletes: kv("delete"),
      kvLists: kv("list"),
      queueWrites: delta((c) => c.queue.writes),
      queueReads: delta((c) => c.queue.reads),
      queueDeletes: delta((c) => c.queue.deletes),
      queueOps: delta((c) => c.queue.writes + c.queue.reads + c.queue.deletes),
      segmentRequests: delta((c) => c.fetches.segment),
      d1RowsRead: delta((c) => c.d1.rowsRead),
      d1RowsWritten: delta((c) => c.d1.rowsWritten),
      r2ClassA: delta((c) => c.r2?.classA ?? 0),
      r2ClassB: delta((c) => c.r2?.classB ?? 0),
    };
    const bytesPerWebhook = delta((c) => c.r2?.bytesPut ?? 0);
    return {
      mode,
      archiveMode,
      r2: { bytesPerWebhook, ...storageOf(bytesPerWebhook, ARCHIVE_DAYS) },
      webhooks,
      calls: expected.size,
      perWebhook,
      ...costOf(perWebhook, dailyOverhead),
      dailyOverhead,
      d1RoundTripsPerWebhook: delta((c) => c.d1.roundTrips),
      logs: logFigures(
        Object.fromEntries(
          Object.entries(after.logs).map(([key, count]) => [key, count - (before.logs[key] ?? 0)]),
        ),
        { edgeInvocations: delta((c) => c.workerRequests), consumerInvocations: perWebhook.queueInvocations },
        webhooks,
        invocationLogsKept(),
      ),
    };
  } finally {
    await local.stop();
  }
}

// wrangler.toml's ARCHIVE_DAYS: how long the archive keeps what a webhook put in R2.
const ARCHIVE_DAYS = Number(unstable_readConfig({ config: "wrangler.toml" }).vars?.ARCHIVE_DAYS ?? 7);

/** Pure: what keeping a million webhooks' R2 bytes for `days` costs (storage is billed by the month). */
export function storageOf(bytesPerWebhook: number, days: number) {
  const gbMonths = ((bytesPerWebhook * 1_000_000) / 1e9) * (days / 30);
  return { storagePerMillion: gbMonths * R2_STORAGE.perGbMonth, keptDays: days };
}

/** Pure: dollars per million webhooks, and the Free plan's daily ceiling, from operations per webhook. */
export function costOf(
  perWebhook: Record<Resource, number>,
  overhead: Partial<Record<Resource, number>> = {},
) {
  const resources = Object.keys(FREE_PLAN_DAILY) as Resource[];
  const costPerMillion = Object.fromEntries(
    resources.map((resource) => [resource, perWebhook[resource] * PRICES.perMillion[resource]]),
  ) as Record<Resource, number>;
  const total = resources.reduce((sum, resource) => sum + costPerMillion[resource], 0);
  let best = { webhooks: Number.POSITIVE_INFINITY, limitedBy: "workerRequests" as Resource };
  for (const resource of resources) {
    if (perWebhook[resource] <= 0) continue;
    const room = FREE_PLAN_DAILY[resource] - (overhead[resource] ?? 0);
    const webhooks = Math.floor(room / perWebhook[resource]);
    if (webhooks < best.webhooks) best = { webhooks, limitedBy: resource };
  }
  return { costPerMillion: { ...costPerMillion, total }, freePlanDaily: best };
}
