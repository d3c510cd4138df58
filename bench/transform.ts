/** Transform cost: validate + map per event in workerd, beside JSON.parse + JSON.stringify. */
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import guideDisplayed from "../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../src/pendo/examples/visitorCreated.json";

export interface TransformFigures {
  set: string;
  payloads: number;
  relayEventsPerSecond: number;
  baselineEventsPerSecond: number;
  ratio: number;
}

const ROUNDS = 5;
const TARGET_MS = 400;

async function timeRun(mf: Miniflare, kind: "relay" | "baseline", iterations: number): Promise<number> {
  const started = performance.now();
  const response = await mf.dispatchFetch(`http://bench/run?kind=${kind}&iterations=${iterations}`, {
    method: "POST",
  });
  await response.text();
  return performance.now() - started;
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

export async function benchTransform(): Promise<TransformFigures[]> {
  const bundle = await build({
    entryPoints: ["bench/transform-worker.ts"],
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
    mainFields: ["module", "main"],
  });
  const script = bundle.outputFiles[0]?.text ?? "";
  // Miniflare 5 takes a list of workers with a config each; the converter keeps the one-script form.
  // The date is wrangler.toml's compatibility_date, so the bench runs the Worker's semantics.
  const mf = new Miniflare(
    convertV4MiniflareOptions({ modules: true, script, compatibilityDate: "2026-11-17" }),
  );
  const sets = [
    { set: "published examples (3)", payloads: [guideDisplayed, trackEventReceived, visitorCreated] },
    {
      set: `every catalog event (${SAMPLE_EVENTS.length})`,
      payloads: SAMPLE_EVENTS.map((event) => sampleWebhook(event, 1_700_000_000_000)),
    },
  ];
  const figures: TransformFigures[] = [];
  try {
    for (const { set, payloads } of sets) {
      const texts = payloads.map((payload) => JSON.stringify(payload));
      await mf.dispatchFetch("http://bench/load", {
        method: "POST",
        body: JSON.stringify({ payloads: texts }),
      });
      // Calibrate iterations so one run takes about TARGET_MS, after a warm-up.
      await timeRun(mf, "relay", 200);
      const probe = await timeRun(mf, "relay", 200);
      const iterations = Math.max(200, Math.round((200 * TARGET_MS) / Math.max(1, probe)));
      const relay: number[] = [];
      const baseline: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        relay.push(await timeRun(mf, "relay", iterations));
        baseline.push(await timeRun(mf, "baseline", iterations));
      }
      const events = iterations * texts.length;
      const relayMs = median(relay);
      const baselineMs = median(baseline);
      figures.push({
        set,
        payloads: texts.length,
        relayEventsPerSecond: Math.round((events / relayMs) * 1000),
        baselineEventsPerSecond: Math.round((events / baselineMs) * 1000),
        ratio: Number((relayMs / baselineMs).toFixed(2)),
      });
    }
  } finally {
    await mf.dispose();
  }
  return figures;
}

if (process.argv[1]?.endsWith("transform.ts")) console.table(await benchTransform());
