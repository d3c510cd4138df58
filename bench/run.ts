/**
 * `npm run bench`: every benchmark in one run, on this machine. Writes bench/results/<date>.json
 * and regenerates docs/benchmarks.md and docs/benchmarks-latency.svg. Not part of `npm test`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { measureBundle } from "../scripts/bundle-size";
import { startLocalRelay } from "../scripts/harness/local-relay";
import { benchCost } from "./cost";
import { benchDelivery } from "./delivery";
import { benchEdge } from "./edge";
import { machineInfo } from "./environment";
import { benchLatency } from "./latency";
import { type BenchResults, renderBenchmarks, renderLatencySvg } from "./report";
import { benchTransform } from "./transform";

const webhooks = Number(process.env.BENCH_WEBHOOKS ?? 10_000);

console.log("transform cost (workerd)…");
const transform = await benchTransform();
console.table(transform);

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

console.log("edge cost (autocannon against wrangler dev)…");
const edge = [
  ...(await withRelay((local) => benchEdge(local.url, "kv"), { DEDUP_MODE: "kv" })),
  ...(await withRelay((local) => benchEdge(local.url, "off"), { DEDUP_MODE: "off" })),
];
console.table(edge);
console.log(`Segment efficiency (${webhooks} webhooks)…`);
const { latencies, ...delivery } = await withRelay((local) => benchDelivery(local, webhooks));
console.table([delivery]);
console.log("cost model (counted operations, both DEDUP_MODEs)…");
const cost = [await benchCost("kv"), await benchCost("off")];
console.table(
  cost.map(({ mode, perWebhook, costPerMillion, freePlanDaily }) => ({
    mode,
    ...perWebhook,
    total: costPerMillion.total,
    freePlan: freePlanDaily.webhooks,
  })),
);
console.log("latency against max_batch_timeout…");
const latency = await benchLatency();
console.table(latency);
const bundle = measureBundle();
const results: BenchResults = { machine: machineInfo(), transform, edge, delivery, cost, latency, bundle };

const day = results.machine.date.slice(0, 10);
const resultFile = `bench/results/${day}.json`;
mkdirSync("bench/results", { recursive: true });
writeFileSync(resultFile, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync("docs/benchmarks.md", renderBenchmarks(results, resultFile));
writeFileSync("docs/benchmarks-latency.svg", renderLatencySvg(latencies));
console.log(`wrote ${resultFile}, docs/benchmarks.md and docs/benchmarks-latency.svg`);
