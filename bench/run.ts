/**
 * `npm run bench`: every benchmark in one run, on this machine. Writes bench/results/<date>.json
 * and regenerates docs/benchmarks.md and docs/benchmarks-latency.svg. Not part of `npm test`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { measureBundle } from "../scripts/bundle-size";
import { startLocalRelay } from "../scripts/harness/local-relay";
import { benchDelivery } from "./delivery";
import { benchEdge } from "./edge";
import { machineInfo } from "./environment";
import { type BenchResults, renderBenchmarks, renderLatencySvg } from "./report";
import { benchTransform } from "./transform";

const webhooks = Number(process.env.BENCH_WEBHOOKS ?? 10_000);

console.log("transform cost (workerd)…");
const transform = await benchTransform();
console.table(transform);

console.log("starting wrangler dev with the Segment stand-in…");
const local = await startLocalRelay();
let results: BenchResults;
let latencies: number[];
try {
  console.log("edge cost (autocannon)…");
  const edge = await benchEdge(local.url);
  console.table(edge);
  // Let the edge run's events drain before measuring delivery on its own.
  await new Promise((resolve) => setTimeout(resolve, 8_000));
  console.log(`Segment efficiency (${webhooks} webhooks)…`);
  const { latencies: measured, ...delivery } = await benchDelivery(local, webhooks);
  latencies = measured;
  console.table([delivery]);
  results = { machine: machineInfo(), transform, edge, delivery, bundle: measureBundle() };
} finally {
  await local.stop();
}

const day = results.machine.date.slice(0, 10);
const resultFile = `bench/results/${day}.json`;
mkdirSync("bench/results", { recursive: true });
writeFileSync(resultFile, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync("docs/benchmarks.md", renderBenchmarks(results, resultFile));
writeFileSync("docs/benchmarks-latency.svg", renderLatencySvg(latencies));
console.log(`wrote ${resultFile}, docs/benchmarks.md and docs/benchmarks-latency.svg`);
