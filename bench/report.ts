/** Renders bench results as docs/benchmarks.md and an SVG latency chart. Pure. */
import { BUNDLE_BUDGET_GZIP } from "../scripts/bundle-size";
import { type CostFigures, FREE_PLAN_DAILY, LOG_PRICES, type LogFigures, PRICES, R2_STORAGE } from "./cost";
import type { DeliveryFigures } from "./delivery";
import type { EdgeFigures } from "./edge";
import type { MachineInfo } from "./environment";
import type { LatencyFigures } from "./latency";
import type { SideBySideFigures } from "./side-by-side";
import type { StageFigures } from "./stages";
import type { TransformFigures } from "./transform";

export interface BenchResults {
  machine: MachineInfo;
  transform: TransformFigures[];
  edge: EdgeFigures[];
  /** The edge beside the naive relay (issue 21); absent in runs before it existed. */
  sideBySide?: SideBySideFigures;
  stages?: StageFigures;
  /** `--only`: the parts this run measured; the rest come from `rest`. */
  partial?: { ran: string[]; rest?: string };
  delivery: Omit<DeliveryFigures, "latencies">;
  cost: CostFigures[];
  latency: LatencyFigures[];
  bundle: { raw: number; gzip: number };
}

/** Targets, each checked against a ratio or count of one run (issue 11). */
export const TARGETS = {
  transformRatio: 2.2,
  /** Relay / naive relay throughput at LOG_LEVEL=warn (issue 21). */
  sideBySideWarn: 0.9,
  requestsPerWebhook: 0.012,
  // scripts/bundle-size.ts's budget: the number CI holds the bundle to.
  bundleGzipKiB: BUNDLE_BUDGET_GZIP / 1024,
} as const;

const table = (header: string[], rows: (string | number)[][]) =>
  [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");
const fmt = (n: number) => n.toLocaleString("en-US");
const dollars = (n: number) => `$${n.toFixed(n < 0.1 ? 3 : 2)}`;
const per = (n: number) => (n === 0 ? "0" : n < 0.1 ? n.toFixed(4) : n.toFixed(2));

export function edgeRatios(edge: EdgeFigures[]) {
  const modes = [...new Set(edge.map((e) => e.mode))];
  return modes.flatMap((mode) =>
    [...new Set(edge.filter((e) => e.mode === mode).map((e) => e.connections))].map((connections) => {
      const cell = (route: "trivial" | "ingest") =>
        edge.find(
          (e) => e.mode === mode && e.connections === connections && e.route === route,
        ) as EdgeFigures;
      const trivial = cell("trivial");
      const ingest = cell("ingest");
      return {
        mode,
        connections,
        trivial,
        ingest,
        ratio: ingest.requestsPerSecond / trivial.requestsPerSecond,
      };
    }),
  );
}

const RESOURCE_LABEL: Record<keyof typeof FREE_PLAN_DAILY, string> = {
  workerRequests: "Worker requests (webhooks + consumer batches)",
  kvReads: "KV reads",
  kvWrites: "KV writes",
  kvDeletes: "KV deletes",
  kvLists: "KV lists",
  queueOps: "Queue operations (64 KB written, read, deleted)",
  d1RowsRead: "D1 rows read",
  d1RowsWritten: "D1 rows written",
  r2ClassA: "R2 Class A (puts, lists)",
  r2ClassB: "R2 Class B (gets, heads)",
};

export function renderBenchmarks(results: BenchResults, resultFile: string): string {
  const { machine, transform, edge, delivery, cost, latency, bundle } = results;
  const rows = edgeRatios(edge);
  const { sideBySide, stages, partial } = results;
  const worstTransform = Math.max(...transform.map((t) => t.ratio));
  const cpuMicros = Math.round(1e6 / Math.min(...transform.map((t) => t.relayEventsPerSecond)));
  const kv = cost.find((c) => c.mode === "kv") as CostFigures;
  const off = cost.find((c) => c.mode === "off" && (c.archiveMode ?? "all") === "all") as CostFigures;
  const archiveRuns = (["all", "failures", "off"] as const).flatMap((mode) =>
    cost.filter((c) => c.mode === "off" && c.archiveMode === mode),
  );
  const resources = Object.keys(FREE_PLAN_DAILY) as (keyof typeof FREE_PLAN_DAILY)[];
  const gzipKiB = bundle.gzip / 1024;
  return `# Benchmarks

<!-- Written by \`npm run bench\`; figures from ${resultFile}. -->

${
  partial
    ? `This run measured ${partial.ran.join(", ")} only (\`npm run bench -- --only ${partial.ran.join(",")}\`); every other figure is from bench/results/${partial.rest}.

`
    : ""
}Measured ${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node.js
${machine.node}, wrangler ${machine.wrangler}, workerd ${machine.workerd}. Every figure comes from one run of
\`npm run bench\` and is quoted beside its baseline from the same run; absolute numbers depend on
the machine, the ratios much less. Rerun it to compare.

## Summary

| What | Figure | Target | |
| --- | --- | --- | --- |
| Validate + transform, relay / (JSON.parse + JSON.stringify) | ${worstTransform.toFixed(2)}x (worst set) | at most ${TARGETS.transformRatio}x | ${verdict(worstTransform <= TARGETS.transformRatio)} |
${sideBySideSummary(sideBySide)}
| Segment requests per webhook, sustained | ${delivery.requestsPerWebhook} | at most ${TARGETS.requestsPerWebhook} (floor 0.01) | ${verdict(delivery.requestsPerWebhook <= TARGETS.requestsPerWebhook)} |
| Calls not delivered | ${delivery.undelivered} | 0 | ${verdict(delivery.undelivered === 0)} |
| Deployable bundle, gzip | ${gzipKiB.toFixed(1)} KiB | at most ${TARGETS.bundleGzipKiB} KiB | ${verdict(gzipKiB <= TARGETS.bundleGzipKiB)} |
| Cost per million webhooks (Paid plan, \`DEDUP_MODE=kv\` / \`off\`) | ${dollars(kv.costPerMillion.total)} / ${dollars(off.costPerMillion.total)} | reported | |
| Largest daily volume on the Free plan (\`kv\` / \`off\`) | ${fmt(kv.freePlanDaily.webhooks)} / ${fmt(off.freePlanDaily.webhooks)} webhooks | reported | |

## What a webhook costs

Counted, not reasoned: \`bench/counting-worker.ts\` runs the real Worker under \`wrangler dev\` with
its real bindings wrapped, and counts every billed operation while ${fmt(kv.webhooks)} webhooks of every
catalog event (${fmt(kv.calls)} Segment calls) go through to the Segment stand-in, once per \`DEDUP_MODE\`.
Queue operations are counted as billed: one per 64 KB written, read, or deleted.

${table(
  ["Per webhook", "`DEDUP_MODE=kv`", "`DEDUP_MODE=off`"],
  [
    ...resources.map((r) => [RESOURCE_LABEL[r], per(kv.perWebhook[r] ?? 0), per(off.perWebhook[r] ?? 0)]),
    ["of which consumer batches", per(kv.perWebhook.queueInvocations), per(off.perWebhook.queueInvocations)],
    [
      "of which queue writes / reads / deletes",
      `${per(kv.perWebhook.queueWrites)} / ${per(kv.perWebhook.queueReads)} / ${per(kv.perWebhook.queueDeletes)}`,
      `${per(off.perWebhook.queueWrites)} / ${per(off.perWebhook.queueReads)} / ${per(off.perWebhook.queueDeletes)}`,
    ],
    ["D1 round trips (edge and consumer)", per(kv.d1RoundTripsPerWebhook), per(off.d1RoundTripsPerWebhook)],
    ...logRows(kv, off, (l) => [
      per(l.total),
      `${l.invocationLogs === false ? "0 (off)" : per(l.edgeInvocations + l.consumerInvocations)} / ${per(l.edgeLines)} / ${per(l.consumerLines)}`,
    ]),
    [
      "Segment requests (not billed by Cloudflare)",
      per(kv.perWebhook.segmentRequests),
      per(off.perWebhook.segmentRequests),
    ],
  ],
)}

The ledger (D1) in steady state, with no failure: ${per(kv.perWebhook.d1RowsWritten)} rows written per webhook (target: at most 0.05),
all from the consumer's counters and delivery status (one row per hour and source per batch,
whatever events the batch holds, and the status at most once a minute); the edge touches D1 only to store a quarantine, a dead letter or
a do-not-process flag. The rows read are the consumer's flag check, one primary-key lookup per
distinct visitor of a batch.

At the Workers Paid plan's published prices (checked ${PRICES.checked}: Worker requests $${PRICES.perMillion.workerRequests},
KV reads $${PRICES.perMillion.kvReads}, KV writes, deletes and lists $${PRICES.perMillion.kvWrites}, queue operations $${PRICES.perMillion.queueOps}, D1 rows read
$${PRICES.perMillion.d1RowsRead} and written $${PRICES.perMillion.d1RowsWritten}, each per million; ${PRICES.pages.join(", ")}), beyond the plan's monthly inclusions and its $5 base:

${table(
  ["Per million webhooks", "`DEDUP_MODE=kv`", "`DEDUP_MODE=off`"],
  [
    ...resources.map((r) => [
      RESOURCE_LABEL[r],
      dollars(kv.costPerMillion[r] ?? 0),
      dollars(off.costPerMillion[r] ?? 0),
    ]),
    ["**Total**", `**${dollars(kv.costPerMillion.total)}**`, `**${dollars(off.costPerMillion.total)}**`],
    ...logRows(kv, off, (l) => [dollars(l.costPerMillion)]),
  ],
)}

${logsNote(kv)}

${archiveTable(archiveRuns)}

CPU time is billed too (Standard usage model), but the relay's own work is about ${cpuMicros} µs per webhook
(see *Transform cost*), a few cents per million webhooks at most.

**The Free plan** (daily limits: ${resources.map((r) => `${fmt(FREE_PLAN_DAILY[r])} ${RESOURCE_LABEL[r].split(" (")[0]}`).join(", ")})
carries at most **${fmt(kv.freePlanDaily.webhooks)} webhooks a day with \`DEDUP_MODE=kv\`** (capped by ${RESOURCE_LABEL[kv.freePlanDaily.limitedBy]})
and **${fmt(off.freePlanDaily.webhooks)} with \`off\`** (capped by ${RESOURCE_LABEL[off.freePlanDaily.limitedBy]}). These
subtract what a deployment spends per day whatever its volume: the cron, every five minutes (288
Worker invocations, ${fmt(kv.dailyOverhead.d1RowsRead ?? 0)} D1 rows read and ${fmt(kv.dailyOverhead.d1RowsWritten ?? 0)} written a day, measured in the same run, one source). Its queues also keep messages only 24 hours (\`QUEUE_RETENTION_SECONDS\`).

**Choosing \`DEDUP_MODE\`.** The edge marker is the largest cost by far (a KV write costs ten times a
read and twelve times a queue operation) and the Free plan's ceiling. What it buys is a dedup
window of \`DEDUP_TTL_SECONDS\` (7 days) at the edge, against Segment's own messageId dedup of about
24 hours that works either way: with \`off\`, a redelivery within a day is enqueued and sent again
and Segment drops it (it costs its queue operations and a share of a Segment request); one later
than a day would reach the warehouse twice. Pendo does not document how long it redelivers; if it
is minutes or hours, \`off\` loses nothing. Dead letters of events over 32 KB are not marked with
\`off\`, so a redelivery of one is stored again.

## Transform cost

Validation and mapping of each payload inside workerd (the lossless JSON parse, the valibot
envelope checks, the transform, and the one serialization of every Segment call),
beside \`JSON.stringify(JSON.parse(body))\` of the same payloads, median of 5 rounds.

${table(
  ["Payloads", "Relay events/s", "Baseline events/s", "Ratio", "Relay CPU per event"],
  transform.map((t) => [
    t.set,
    fmt(t.relayEventsPerSecond),
    fmt(t.baselineEventsPerSecond),
    `${t.ratio}x`,
    `${Math.round(1e6 / t.relayEventsPerSecond)} µs`,
  ]),
)}

The relay parses the body once (plain \`JSON.parse\` unless a literal could lose digits), bounds its
nesting with one scan of the text, checks the envelope in one valibot pass without copying, and
serializes each call once. Its output carries every input field plus identity, context and
messageIds, so serializing it costs at least what the baseline's serialization does, twice for
visitor and account events (track and identify).

${edgeBesideNaive(sideBySide, stages)}

## Edge cost per \`DEDUP_MODE\`

\`wrangler dev\` on this machine, autocannon for 5 s per cell, once per \`DEDUP_MODE\`. The ingest
route does auth, body limit, intake, the transform and a queue write for a new event each
request, and with \`kv\` a dedup read (overlapped with intake) and a marker write after the answer;
the trivial route is \`GET /\` of the same Worker. The consumer delivers to the local Segment
stand-in meanwhile, on the same cores. Latency is what Pendo waits for its answer.

${table(
  [
    "Mode",
    "Connections",
    "Trivial req/s",
    "Trivial p50 / p99 ms",
    "Ingest req/s",
    "Ingest p50 / p99 ms",
    "Ingest / trivial",
  ],
  rows.map((r) => [
    r.mode,
    r.connections,
    fmt(r.trivial.requestsPerSecond),
    `${r.trivial.p50Ms} / ${r.trivial.p99Ms}`,
    fmt(r.ingest.requestsPerSecond),
    `${r.ingest.p50Ms} / ${r.ingest.p99Ms}`,
    r.ratio.toFixed(2),
  ]),
)}

Under \`wrangler dev\` each binding call is a round trip from workerd to the local KV and queue
simulators, on the same two cores as autocannon; production KV and Queues run apart from the
Worker, so these ratios are a floor for a deployed relay, not a forecast.

## Delivery latency and the batch window

An event waits on the queue until its batch fills (100 messages) or \`max_batch_timeout\` passes.
For each window: a trickle of one webhook a second, and a burst of webhooks from 32 senders.
Accept-to-arrival is the time from the relay's 202 to the call's arrival at the Segment stand-in.

${table(
  ["`max_batch_timeout`", "Load", "Webhooks", "Accept to arrival p50", "p99", "Segment requests per webhook"],
  latency.map((l) => [
    `${l.maxBatchTimeout} s`,
    l.load,
    fmt(l.webhooks),
    `${fmt(l.p50Ms)} ms`,
    `${fmt(l.p99Ms)} ms`,
    l.requestsPerWebhook,
  ]),
)}

A low-traffic deployment pays for a short window in Segment requests (each a subrequest and a
consumer invocation, both billed per call): at one webhook a second, a 1 s window sends about one
request per webhook. Under load the window hardly matters: batches fill first.

## Segment efficiency

${fmt(delivery.webhooks)} \`guideDisplayed\` webhooks sent by 32 concurrent senders into the relay, delivered to
the local Segment stand-in (queue batches of up to 100, 5 s window).

${table(
  [
    "Webhooks",
    "Segment calls",
    "Segment requests",
    "Requests per webhook",
    "Bytes per webhook",
    "Accept to arrival p50",
    "p99",
  ],
  [
    [
      fmt(delivery.webhooks),
      fmt(delivery.calls),
      fmt(delivery.segmentRequests),
      delivery.requestsPerWebhook,
      fmt(delivery.bytesPerWebhook),
      `${fmt(delivery.latencyP50Ms)} ms`,
      `${fmt(delivery.latencyP99Ms)} ms`,
    ],
  ],
)}

For comparison: Pendo's own Segment webhook makes one request per event (1.0 per webhook), and a
Worker that forwards each webhook as it comes (Segment's recipe for Workers) about one per webhook
too. The floor for this relay is 0.01: one request per full queue batch of 100.

![Delivery latency, accept to arrival](benchmarks-latency.svg)

\`wrangler dev\` simulates the queue on the same two cores that the senders saturate, so the
consumer is starved while the load lasts and catches up when it stops (the whole backlog drained
${delivery.drainSeconds} s after the last send). Production queues run apart from the Worker that feeds them.
How far one deployment goes, and what to do past it: [scaling](scaling.md).

## Bundle

\`npm run bundle\` (\`wrangler deploy --dry-run\`): ${(bundle.raw / 1024).toFixed(1)} KiB, ${gzipKiB.toFixed(1)} KiB gzip.
`;
}

const ratioVerdict = (ratio: number) => verdict(ratio >= TARGETS.sideBySideWarn);

function sideBySideSummary(figures: SideBySideFigures | undefined): string {
  if (!figures) return "| Edge / naive relay throughput | not measured in this run | | |";
  return [
    `| Edge / naive relay with the same billed calls, 50 connections, \`LOG_LEVEL=warn\` (median of ${figures.rounds.length} rounds) | ${figures.ratioWarn.toFixed(2)} | at least ${TARGETS.sideBySideWarn} | ${ratioVerdict(figures.ratioWarn)} |`,
    `| Same, \`LOG_LEVEL=info\` (one \`webhook\` line per request; the naive relay logs nothing) | ${figures.ratioInfo.toFixed(2)} | as close as the log line allows | |`,
  ].join("\n");
}

/**
 * R2 per ARCHIVE_MODE, from runs with DEDUP_MODE=off and nothing failing: what the archive costs
 * (its puts, and its bytes kept ARCHIVE_DAYS) and what the webhook's bytes on the queue cost.
 */
function archiveTable(runs: CostFigures[]): string {
  if (runs.length === 0) return "";
  const days = runs[0]?.r2?.keptDays ?? 7;
  const cell = (c: CostFigures, value: (c: CostFigures) => string) => value(c);
  const costOfR2 = (c: CostFigures) =>
    (c.costPerMillion.r2ClassA ?? 0) + (c.costPerMillion.r2ClassB ?? 0) + (c.r2?.storagePerMillion ?? 0);
  return `**R2 per \`ARCHIVE_MODE\`** (\`DEDUP_MODE=off\`, nothing failing, ${fmt(runs[0]?.webhooks ?? 0)} webhooks each; storage
kept \`ARCHIVE_DAYS\` = ${days} days at $${R2_STORAGE.perGbMonth} per GB-month, the first ${R2_STORAGE.freeGb} GB free). Dead letters,
quarantine and parked batches are stored in every mode and cost only when something fails:

${table(
  ["Per webhook / per million", ...runs.map((c) => `\`ARCHIVE_MODE=${c.archiveMode}\``)],
  [
    ["R2 Class A (puts)", ...runs.map((c) => cell(c, (x) => per(x.perWebhook.r2ClassA ?? 0)))],
    ["R2 Class B (gets)", ...runs.map((c) => cell(c, (x) => per(x.perWebhook.r2ClassB ?? 0)))],
    ["R2 bytes written per webhook", ...runs.map((c) => fmt(Math.round(c.r2?.bytesPerWebhook ?? 0)))],
    [
      "Queue operations per webhook (the webhook's bytes travel in `failures` and `all`)",
      ...runs.map((c) => per(c.perWebhook.queueOps)),
    ],
    [
      `R2 per million webhooks: operations + ${days} days of storage`,
      ...runs.map((c) => dollars(costOfR2(c))),
    ],
    [
      "Total per million webhooks (with the queue and the rest)",
      ...runs.map((c) => dollars(c.costPerMillion.total + (c.r2?.storagePerMillion ?? 0))),
    ],
  ],
)}`;
}

/** Rows of the cost tables for Workers Logs at info and warn; none for runs that did not count them. */
function logRows(kv: CostFigures, off: CostFigures, cells: (l: LogFigures) => string[]): string[][] {
  if (!kv.logs || !off.logs) return [];
  const label = (level: string) => `Workers Logs events, \`LOG_LEVEL=${level}\``;
  return (["info", "warn"] as const).flatMap((level) => {
    const a = kv.logs.find((l) => l.level === level) as LogFigures;
    const b = off.logs.find((l) => l.level === level) as LogFigures;
    const [ca, cb] = [cells(a), cells(b)];
    const rows = [[label(level), ca[0] as string, cb[0] as string]];
    if (ca[1]) rows.push(["of which invocation logs / edge lines / consumer lines", ca[1], cb[1] as string]);
    return rows;
  });
}

function logsNote(kv: CostFigures): string {
  if (!kv.logs) return "Workers Logs events were not counted in this run.";
  const at = (level: string) => kv.logs.find((l) => l.level === level) as LogFigures;
  const info = at("info");
  const ceiling = (l: LogFigures) =>
    l.freePlanDailyWebhooks === null
      ? "any number of healthy webhooks"
      : `${fmt(l.freePlanDailyWebhooks)} webhooks`;
  const invocations = per(info.edgeInvocations + info.consumerInvocations);
  const invocationLogs = info.invocationLogs
    ? `every invocation writes one invocation log (a webhook's request, a consumer batch: ${invocations} per webhook), and`
    : `invocation logs are off (\`[observability.logs] invocation_logs = false\` in wrangler.toml: they keep each
request's URL, and Pendo's token is in it), so the ${invocations} invocations per webhook write none;`;
  const repriced = kv.logsRepriced
    ? `\n\nThe log figures were priced again from this model (\`priceLogs\` in bench/cost.ts) with the
invocations and lines that run counted: it ran while invocation logs were still kept, when they were
${invocations} of the ${per(info.edgeInvocations + info.consumerInvocations + info.edgeLines + info.consumerLines)} events per webhook at \`info\`. Nothing was measured again.`
    : "";
  return `**Logs.** The totals above leave out Workers Logs (\`[observability] enabled = true\`), priced apart:
${invocationLogs} every line the relay writes is one event (counted by \`bench/counting-worker.ts\` by level and \`msg\`; lines at
\`warn\` are those of the same run at warn or error). Workers Paid includes ${fmt(LOG_PRICES.paidIncludedPerMonth)} events a month, then
$${LOG_PRICES.perMillion} per million; Workers Free keeps ${fmt(LOG_PRICES.freePerDay)} a day, and drops logs past that, not webhooks
(checked ${LOG_PRICES.checked}, ${LOG_PRICES.page}). With \`DEDUP_MODE=kv\`, the Free plan's log limit covers
${ceiling(info)} a day at \`LOG_LEVEL=info\` and ${ceiling(at("warn"))} at \`warn\`. \`head_sampling_rate\` under
\`[observability]\` keeps only that share of invocations and their lines.${repriced}`;
}

/** Says so when the rounds disagree too much for the median to separate 0.9 from 1.0. */
function spreadNote(figures: SideBySideFigures): string {
  const warn = figures.rounds.map((r) => r.warn / r.naive);
  const [low, high] = [Math.min(...warn), Math.max(...warn)];
  if (high - low <= 0.2) return "";
  return ` The rounds at \`warn\` spread from ${low.toFixed(2)} to ${high.toFixed(2)}: on a machine this busy the
median cannot tell 0.9 from 1.0, and a relay faster than its naive twin is noise. Rerun on a quiet
machine before relying on the verdict; the CPU figures below depend on the load much less.`;
}

function edgeBesideNaive(figures: SideBySideFigures | undefined, stages: StageFigures | undefined): string {
  const parts = ["## The edge beside a naive relay"];
  if (figures) {
    parts.push(`\`bench/naive-worker.ts\` makes exactly the relay's billed calls per new webhook (a KV read, a
queue send of one small track call, a KV write after the answer) and nothing else: a Hono route, a
token comparison, \`JSON.parse\`, 202, no logging. Both run under \`wrangler dev\` with the same bindings,
the relay twice (\`LOG_LEVEL=info\` and \`warn\`), at ${figures.connections} connections in alternating
${figures.roundSeconds}-second rounds, every request a new uniqueId; each round gives a ratio to the naive relay
of the same round, and the figure is their median. Requests per second:

${table(
  ["Round", "Naive", "Relay, `info`", "Relay, `warn`", "`info` / naive", "`warn` / naive"],
  figures.rounds.map((r, i) => [
    i + 1,
    fmt(r.naive),
    fmt(r.info),
    fmt(r.warn),
    (r.info / r.naive).toFixed(2),
    (r.warn / r.naive).toFixed(2),
  ]),
)}

Median ratio: **${figures.ratioInfo.toFixed(2)} at \`info\`**, **${figures.ratioWarn.toFixed(2)} at \`warn\`** (target at least ${TARGETS.sideBySideWarn} at \`warn\`: ${ratioVerdict(figures.ratioWarn)}).${spreadNote(figures)}
Under \`wrangler dev\` a log line also travels through wrangler's own process to the terminal, on the
same cores, so \`info\` costs more here than in production, where it is a Workers Logs event.`);
  }
  if (stages) {
    const sum = stages.stages.reduce((total, s) => total + (s.stage === "logLine" ? 0 : s.microseconds), 0);
    parts.push(`### What each stage of the edge costs

\`bench/stages.ts\` runs each stage of \`src/http/ingest.ts\` on its own inside workerd, with in-memory
bindings (a KV that finds nothing, a queue that takes every send), for one new \`guideDisplayed\`
webhook, and times the whole path through the real Worker and through the naive relay the same way
(median of 15 short rounds; the cost of building the bench's Request is subtracted). CPU per webhook:

${table(
  ["Stage", "What", "µs per webhook"],
  [
    ...stages.stages.map((s) => [`\`${s.stage}\``, s.what, s.microseconds.toFixed(1)]),
    ["", "**the stages, without the log line**", `**${sum.toFixed(1)}**`],
    [
      "whole path, `warn`",
      "the Worker's fetch: the stages, Hono, bindings, waitUntil",
      stages.relayWarn.toFixed(1),
    ],
    ["whole path, `info`", "the same with the `webhook` line", stages.relayInfo.toFixed(1)],
    ["naive relay", "bench/naive-worker.ts, same bindings", stages.naive.toFixed(1)],
  ],
)}

In CPU alone the naive relay's path is ${(stages.naive / stages.relayWarn).toFixed(2)} of the relay's at \`warn\` and ${(stages.naive / stages.relayInfo).toFixed(2)} at \`info\`.
Under \`wrangler dev\` each request also pays the HTTP hop and the KV and queue simulators, the same
for both, so the throughput ratio above is much closer to 1 than this CPU ratio; a deployed Worker
is billed for this CPU time, not for the simulators'.

The body read is paid by the naive relay too (\`c.req.text()\`); what the relay adds is validation,
the transform, the queue message and, at \`info\`, its log line. On the request path the line costs
${(stages.relayInfo - stages.relayWarn).toFixed(1)} µs (whole path at \`info\` less at \`warn\`), against ${(stages.stages.find((s) => s.stage === "logLine")?.microseconds ?? 0).toFixed(1)} µs for the same line
written alone; where the rest goes inside workerd (its per-invocation log records, most likely) is
not measured here.`);
  }
  return parts.join("\n\n");
}

/** A cumulative distribution of delivery latencies, as a self-contained SVG. */
export function renderLatencySvg(latencies: number[]): string {
  const width = 640;
  const height = 320;
  const pad = { left: 56, right: 16, top: 24, bottom: 44 };
  const sorted = [...latencies].sort((a, b) => a - b);
  const maxMs = Math.max(1, sorted.at(-1) ?? 1);
  const x = (ms: number) => pad.left + (ms / maxMs) * (width - pad.left - pad.right);
  const y = (share: number) => height - pad.bottom - share * (height - pad.top - pad.bottom);
  const step = Math.max(1, Math.floor(sorted.length / 400));
  const points: string[] = [];
  for (let i = 0; i < sorted.length; i += step)
    points.push(`${x(sorted[i] as number).toFixed(1)},${y((i + 1) / sorted.length).toFixed(1)}`);
  points.push(`${x(maxMs).toFixed(1)},${y(1).toFixed(1)}`);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(maxMs * f));
  const lines = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>Delivery latency from the relay's 202 to arrival at Segment, as a cumulative distribution</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${pad.left}" y="16" font-weight="bold">Delivery latency, relay accept to Segment arrival (CDF, ${sorted.length} calls)</text>`,
    ...[0, 0.5, 0.99].map(
      (share) =>
        `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(share)}" y2="${y(share)}" stroke="#ddd"/><text x="${pad.left - 6}" y="${y(share) + 4}" text-anchor="end">p${Math.round(share * 100)}</text>`,
    ),
    ...ticks.map(
      (ms) =>
        `<text x="${x(ms)}" y="${height - pad.bottom + 16}" text-anchor="middle">${(ms / 1000).toFixed(1)} s</text>`,
    ),
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="#333"/>`,
    `<line x1="${pad.left}" x2="${width - pad.right}" y1="${height - pad.bottom}" y2="${height - pad.bottom}" stroke="#333"/>`,
    `<polyline fill="none" stroke="#2563eb" stroke-width="2" points="${points.join(" ")}"/>`,
    `<text x="${(pad.left + width - pad.right) / 2}" y="${height - 8}" text-anchor="middle">seconds after the relay answered 202</text>`,
    "</svg>",
  ];
  return `${lines.join("\n")}\n`;
}
