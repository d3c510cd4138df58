/**
 * The edge beside a naive relay making the same billed calls (bench/naive-worker.ts), both under
 * `wrangler dev`, in alternating rounds (issue 21): the relay at LOG_LEVEL=info, the relay at
 * LOG_LEVEL=warn and the naive relay (which logs nothing), 50 connections, every request a new
 * uniqueId. Each round yields one ratio per level (relay / naive of that round); the median of the
 * rounds is the figure, so a busy neighbour that slows one round does not decide it.
 */
import autocannon from "autocannon";
import { LOCAL_TOKEN, type LocalRelay, startLocalRelay } from "../scripts/harness/local-relay";
import { sampleWebhook } from "../scripts/samples";

export type SideBySideTarget = "naive" | "info" | "warn";

export interface SideBySideFigures {
  connections: number;
  roundSeconds: number;
  /** Requests per second per round, in the order run. */
  rounds: Record<SideBySideTarget, number>[];
  /** Median over rounds of relay / naive of the same round. */
  ratioInfo: number;
  ratioWarn: number;
  /** Median requests per second of each target. */
  medians: Record<SideBySideTarget, number>;
  non2xx: number;
}

const CONNECTIONS = 50;
const ROUND_SECONDS = 6;

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

// Unique across targets and rounds, so no request ever takes the cheaper duplicate path.
let counter = 0;
const runId = Date.now().toString(16).slice(-8);

/** Autocannon requests that each carry a new guideDisplayed webhook (a new uniqueId). */
export function newWebhookEachRequest(): autocannon.Request[] {
  const template = sampleWebhook("guideDisplayed");
  return [
    {
      setupRequest: (request) => {
        counter++;
        const uniqueId = `${runId}${counter.toString(16).padStart(10, "0")}${"c".repeat(22)}`;
        return { ...request, body: JSON.stringify({ ...template, uniqueId }) };
      },
    },
  ];
}

function load(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/pendo?token=${LOCAL_TOKEN}`,
    connections: CONNECTIONS,
    duration: seconds,
    method: "POST",
    headers: { "content-type": "application/json" },
    requests: newWebhookEachRequest(),
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function benchSideBySide(
  rounds = Number(process.env.BENCH_ROUNDS ?? 7),
): Promise<SideBySideFigures> {
  const started: Partial<Record<SideBySideTarget, LocalRelay>> = {};
  try {
    // One at a time: three wrangler dev starting at once on two busy cores time out.
    started.naive = await startLocalRelay({}, { main: "bench/naive-worker.ts" });
    started.info = await startLocalRelay({ LOG_LEVEL: "info" });
    started.warn = await startLocalRelay({ LOG_LEVEL: "warn" });
    const targets = started as Record<SideBySideTarget, LocalRelay>;
    const order: SideBySideTarget[] = ["naive", "info", "warn"];
    for (const target of order) await load(targets[target].url, 2); // warm-up
    const results: Record<SideBySideTarget, number>[] = [];
    let non2xx = 0;
    for (let round = 0; round < rounds; round++) {
      const figures = {} as Record<SideBySideTarget, number>;
      // Rotated each round, so no target always runs right after the same neighbour.
      for (let i = 0; i < order.length; i++) {
        const target = order[(i + round) % order.length] as SideBySideTarget;
        await pause(1_000); // the previous target's consumer drains its last batch
        const result = await load(targets[target].url, ROUND_SECONDS);
        figures[target] = Math.round(result.requests.average);
        non2xx += result.non2xx;
      }
      console.log(`  round ${round + 1}: ${JSON.stringify(figures)}`);
      results.push(figures);
    }
    const of = (target: SideBySideTarget) => results.map((r) => r[target]);
    const ratio = (level: "info" | "warn") => median(results.map((r) => r[level] / r.naive));
    return {
      connections: CONNECTIONS,
      roundSeconds: ROUND_SECONDS,
      rounds: results,
      ratioInfo: Number(ratio("info").toFixed(2)),
      ratioWarn: Number(ratio("warn").toFixed(2)),
      medians: { naive: median(of("naive")), info: median(of("info")), warn: median(of("warn")) },
      non2xx,
    };
  } finally {
    await Promise.all(Object.values(started).map((local) => local.stop()));
  }
}

if (process.argv[1]?.endsWith("side-by-side.ts")) console.log(await benchSideBySide());
