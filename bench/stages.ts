/**
 * What each stage of the edge path costs per webhook (issue 21): bench/stage-worker.ts runs each
 * stage of src/http/ingest.ts on its own inside workerd, with in-memory bindings, N times; this
 * side times each run from outside and takes the median of several rounds, run in alternation.
 * The whole path (the real Worker's fetch) and the naive relay run the same way, so the rows
 * show where the relay's own CPU goes and what is left once the stages are accounted for.
 */
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { LOCAL_TOKEN } from "../scripts/harness/local-relay";
import { sampleWebhook } from "../scripts/samples";
import { median } from "./side-by-side";

export interface StageFigure {
  stage: string;
  what: string;
  microseconds: number;
}

export interface StageFigures {
  stages: StageFigure[];
  /** The whole edge path per webhook, in-memory bindings, µs. */
  relayInfo: number;
  relayWarn: number;
  naive: number;
}

// Many short rounds: on a shared machine a burst of other work then spoils a few, not the median.
const ROUNDS = 15;
const TARGET_MS = 80;

/** The stages in the order the edge runs them, and what each one is. */
const ROWS: [stage: string, what: string][] = [
  ["settings", "settings (cached per isolate) and the source"],
  ["auth", "token: SHA-256 of the presented token, constant-time compare"],
  ["body", "body read with the size limit, UTF-8 decode"],
  ["dedupHint", "uniqueId read from the raw text, to start the KV read early"],
  ["intake", "lossless JSON parse, depth bound, envelope checks (valibot)"],
  ["transform", "the transform and one serialization per Segment call"],
  ["message", "queue message: header, drift keys, text encoding, byte count"],
  ["answer", "the 202 answer (JSON body)"],
  ["logLine", "the `webhook` log line (LOG_LEVEL=info only)"],
];

export async function benchStages(): Promise<StageFigures> {
  const bundle = await build({
    entryPoints: ["bench/stage-worker.ts"],
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
    mainFields: ["module", "main"],
    external: ["cloudflare:*"],
  });
  const script = bundle.outputFiles[0]?.text ?? "";
  // Log lines are written to stdout as under wrangler dev, but not shown.
  // Miniflare 5 takes a list of workers; the converter keeps the one-script form. The date is
  // wrangler.toml's compatibility_date, so the stages run with the Worker's semantics.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: true,
      script,
      compatibilityDate: "2026-11-17",
      handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
        stdout.resume();
        stderr.resume();
      },
    }),
  );
  try {
    const body = JSON.stringify({ ...sampleWebhook("guideDisplayed"), uniqueId: "d".repeat(40) });
    await mf.dispatchFetch("http://bench/load", {
      method: "POST",
      body: JSON.stringify({ body, vars: { WEBHOOK_TOKEN: LOCAL_TOKEN, SEGMENT_WRITE_KEY: "bench" } }),
    });
    const time = async (stage: string, iterations: number) => {
      const started = performance.now();
      const response = await mf.dispatchFetch(`http://bench/run?stage=${stage}&iterations=${iterations}`, {
        method: "POST",
      });
      if (!response.ok) throw new Error(`${stage}: ${await response.text()}`);
      return performance.now() - started;
    };
    const measured = [
      "request",
      "settings",
      "auth",
      "body",
      "dedupHint",
      "intake",
      "intakeTransform",
      "prepare",
      "answer",
      "logLine",
      "relayInfo",
      "relayWarn",
      "naive",
    ];
    // Calibrate each stage so one run takes about TARGET_MS, after a warm-up.
    const iterations: Record<string, number> = {};
    for (const stage of measured) {
      await time(stage, 100);
      const probe = await time(stage, 200);
      iterations[stage] = Math.max(200, Math.round((200 * TARGET_MS) / Math.max(1, probe)));
    }
    const samples: Record<string, number[]> = Object.fromEntries(measured.map((stage) => [stage, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const stage of measured) {
        const n = iterations[stage] as number;
        samples[stage]?.push(((await time(stage, n)) * 1000) / n);
      }
    }
    const us = (stage: string) => median(samples[stage] as number[]);
    const request = us("request");
    const cost: Record<string, number> = {
      settings: us("settings"),
      auth: us("auth") - request,
      body: us("body") - request,
      dedupHint: us("dedupHint"),
      intake: us("intake"),
      transform: us("intakeTransform") - us("intake") - us("settings"),
      message: us("prepare") - us("intakeTransform"),
      answer: us("answer"),
      logLine: us("logLine"),
    };
    const round1 = (n: number) => Math.max(0, Math.round(n * 10) / 10);
    return {
      stages: ROWS.map(([stage, what]) => ({ stage, what, microseconds: round1(cost[stage] as number) })),
      relayInfo: round1(us("relayInfo") - request),
      relayWarn: round1(us("relayWarn") - request),
      naive: round1(us("naive") - request),
    };
  } finally {
    await mf.dispose();
  }
}

if (process.argv[1]?.endsWith("stages.ts")) console.log(await benchStages());
