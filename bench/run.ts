/**
 * `npm run bench`: every benchmark in one run, on this machine. Writes bench/results/<date>.json
 * and regenerates docs/benchmarks.md and docs/benchmarks-latency.svg. Not part of `npm test`.
 *
 * `npm run bench -- --only edge,cost` runs only the parts named (transform, edge, routes,
 * delivery, cost, latency; `edge` is the side-by-side with the naive relay and the stage table)
 * and takes every other part from the newest file in bench/results, for a busy machine;
 * `--only render` measures nothing and writes docs/benchmarks.md again from that file.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { measureBundle } from "../scripts/bundle-size";
import { startLocalRelay } from "../scripts/harness/local-relay";
import { benchCost, invocationLogsKept, repriceLogs } from "./cost";
import { benchDelivery } from "./delivery";
import { benchEdge } from "./edge";
import { machineInfo } from "./environment";
import { benchLatency } from "./latency";
import { type BenchResults, renderBenchmarks, renderLatencySvg } from "./report";
import { benchSideBySide } from "./side-by-side";
import { benchStages } from "./stages";
import { benchTransform } from "./transform";

// `render` measures nothing: it writes docs/benchmarks.md again from the newest results.
const PARTS = ["transform", "edge", "routes", "delivery", "cost", "latency", "render"] as const;
type Part = (typeof PARTS)[number];

const onlyAt = process.argv.indexOf("--only");
const only = onlyAt >= 0 ? (process.argv[onlyAt + 1] ?? "").split(",") : [...PARTS];
const unknown = only.filter((part) => !PARTS.includes(part as Part));
if (unknown.length > 0)
  throw new Error(`--only: unknown part ${unknown.join(", ")}; parts: ${PARTS.join(", ")}`);
const runs = (part: Part) => only.includes(part);

const newest = readdirSync("bench/results")
  .filter((name) => /^\d{4}-\d{2}-\d{2}\.json$/.test(name))
  .sort()
  .at(-1);
const previous: Partial<BenchResults> & { latencies?: number[] } =
  onlyAt >= 0 && newest ? JSON.parse(readFileSync(`bench/results/${newest}`, "utf8")) : {};

const webhooks = Number(process.env.BENCH_WEBHOOKS ?? 10_000);

// Each measurement gets a fresh relay, so one's backlog does not colour the next.
async function withRelay<T>(
  work: (local: Awaited<ReturnType<typeof startLocalRelay>>) => Promise<T>,
  vars: Record<string, string> = {},
): Promise<T> {
  const local = await startLocalRelay(vars);
  try {
    return await work(local);
  } finally {
    await local.stop();
  }
}

let transform = previous.transform;
if (runs("transform")) {
  console.log("transform cost (workerd)…");
  transform = await benchTransform();
  console.table(transform);
}

let stages = previous.stages;
let sideBySide = previous.sideBySide;
if (runs("edge")) {
  console.log("edge stages (workerd, in-memory bindings)…");
  stages = await benchStages();
  console.table(stages.stages);
  console.log("edge beside a naive relay (wrangler dev, alternating rounds)…");
  sideBySide = await benchSideBySide();
  console.log(sideBySide);
}

let edge = previous.edge;
if (runs("routes")) {
  console.log("edge cost per DEDUP_MODE (autocannon against wrangler dev)…");
  edge = [
    ...(await withRelay((local) => benchEdge(local.url, "kv"), { DEDUP_MODE: "kv" })),
    ...(await withRelay((local) => benchEdge(local.url, "off"), { DEDUP_MODE: "off" })),
  ];
  console.table(edge);
}

let delivery = previous.delivery;
let latencies = previous.latencies ?? [];
if (runs("delivery")) {
  console.log(`Segment efficiency (${webhooks} webhooks)…`);
  const measured = await withRelay((local) => benchDelivery(local, webhooks));
  ({ latencies, ...delivery } = measured);
  console.table([delivery]);
}

let cost = previous.cost;
if (runs("cost")) {
  console.log("cost model (counted operations, both DEDUP_MODEs, every ARCHIVE_MODE)…");
  cost = [
    await benchCost("kv"),
    await benchCost("off"),
    await benchCost("off", "failures"),
    await benchCost("off", "off"),
  ];
  console.table(
    cost.map(({ mode, archiveMode, perWebhook, costPerMillion, freePlanDaily }) => ({
      mode,
      archiveMode,
      ...perWebhook,
      total: costPerMillion.total,
      freePlan: freePlanDaily.webhooks,
    })),
  );
}

// Priced with wrangler.toml as it is now: a run counted before invocation logs were turned off
// is priced again from its counted parts (the note in docs/benchmarks.md says so).
const invocationLogs = invocationLogsKept();
cost = cost?.map((figures) => repriceLogs(figures, invocationLogs));

let latency = previous.latency;
if (runs("latency")) {
  console.log("latency against max_batch_timeout…");
  latency = await benchLatency();
  console.table(latency);
}

function partialOf(earlier: BenchResults["partial"]): BenchResults["partial"] {
  if (!earlier || newest !== `${new Date().toISOString().slice(0, 10)}.json`)
    return { ran: only, rest: newest };
  const ran = [...new Set([...earlier.ran, ...only])].filter((part) => part !== "render");
  return { ran, rest: earlier.rest };
}

const bundle = measureBundle();
const missing = Object.entries({ transform, edge, delivery, cost, latency }).filter(([, value]) => !value);
if (missing.length > 0) throw new Error(`no figures for ${missing.map(([name]) => name).join(", ")}`);
const measuredNothing = only.every((part) => part === "render");
const results = {
  machine: measuredNothing && previous.machine ? previous.machine : machineInfo(),
  // The figures not measured here come from the run that measured them, not from a partial copy;
  // parts measured by an earlier partial run today stay named as measured.
  ...(onlyAt >= 0 ? { partial: partialOf(previous.partial) } : {}),
  transform,
  edge,
  sideBySide,
  stages,
  delivery,
  cost,
  latency,
  bundle,
} as BenchResults;

const day = results.machine.date.slice(0, 10);
const resultFile = `bench/results/${day}.json`;
mkdirSync("bench/results", { recursive: true });
// The latencies are kept so a partial run can draw the chart again.
writeFileSync(resultFile, `${JSON.stringify({ ...results, latencies }, null, 2)}\n`);
writeFileSync("docs/benchmarks.md", renderBenchmarks(results, resultFile));
if (latencies.length > 0) writeFileSync("docs/benchmarks-latency.svg", renderLatencySvg(latencies));
console.log(`wrote ${resultFile}, docs/benchmarks.md and docs/benchmarks-latency.svg`);
