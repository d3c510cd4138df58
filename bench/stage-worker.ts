/**
 * Runs inside workerd for the stage benchmark (bench/stages.ts): each stage of the edge path
 * (src/http/ingest.ts) on its own, N times, and the whole path through the real Worker and
 * through the naive relay, with in-memory bindings (a KV that never finds a key, a queue that
 * takes every send), so only the Worker's own CPU is measured. POST /load {body, vars} keeps the
 * webhook and the settings; POST /run?stage=…&iterations=N runs one stage N times. Timing is done
 * by the caller: workerd's clock does not advance during pure CPU work.
 */
import { loadSettings } from "../src/config";
import type { Env } from "../src/env";
import { presentedToken, tokenMatches } from "../src/http/auth";
import { readBodyLimited } from "../src/http/body";
import relay from "../src/index";
import { prepareEvent } from "../src/intake/prepare";
import { log } from "../src/log";
import { readWebhook, uniqueIdHint } from "../src/pendo/intake";
import { transformWebhook } from "../src/pendo/transform";
import { resolveSource, type Source } from "../src/sources";
import naive from "./naive-worker";

const memoryKv = {
  get: async () => null,
  put: async () => undefined,
} as unknown as KVNamespace;
const memoryQueue = { send: async () => undefined } as unknown as Queue;
const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} };

let body = "";
let env = {} as Env;
const URL_WITH_TOKEN = "https://relay.bench/pendo?token=";
let url = URL_WITH_TOKEN;

// As a sender's request arrives: with its Content-Length.
const request = () =>
  new Request(url, {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(body.length) },
    body,
  });
const source = (): Source => {
  const config = loadSettings(env);
  if (!config.ok) throw new Error("bench settings invalid");
  return resolveSource(config.settings, "default") as Source;
};

/** Each stage, as the edge runs it for one new, valid webhook. */
const STAGES: Record<string, () => unknown> = {
  /** Building the Request object: a cost of the bench, subtracted from the stages that need one. */
  request: () => request(),
  settings: () => source(),
  auth: async () => {
    const req = request();
    const ok = await tokenMatches(presentedToken(req), source().tokens);
    if (!ok) throw new Error("token refused");
  },
  body: () => readBodyLimited(request(), 262_144),
  dedupHint: () => uniqueIdHint(body),
  intake: () => readWebhook(body),
  intakeTransform: () => {
    const intake = readWebhook(body);
    if (!intake.ok) throw new Error("invalid");
    const s = source();
    return transformWebhook(intake.webhook, {
      source: s.name,
      eventNames: s.eventNames,
      trackEvents: s.trackEvents,
      eventId: intake.webhook.uniqueId ?? "bench",
      receivedAt: 1_700_000_000_000,
      asciiOnly: intake.ascii,
      warnings: intake.warnings,
      invalid: intake.invalid,
    });
  },
  prepare: () => prepareEvent(body, source(), 1_700_000_000_000),
  logLine: () =>
    log("info", "webhook", {
      source: "default",
      event: "guideDisplayed",
      uniqueId: "a".repeat(40),
      outcome: "accepted",
      status: 202,
      durationMs: 1,
    }),
  answer: () =>
    new Response(
      JSON.stringify({
        status: "accepted",
        eventId: "a".repeat(40),
        event: "guideDisplayed",
        calls: [{ type: "track", messageId: `pendo:default:${"a".repeat(40)}:track` }],
      }),
      { status: 202, headers: { "content-type": "application/json" } },
    ),
  relayInfo: async () => {
    const response = await relay.fetch(request(), envInfo, ctx as never);
    if (response.status !== 202) throw new Error(`relay answered ${response.status}`);
  },
  relayWarn: async () => {
    const response = await relay.fetch(request(), envWarn, ctx as never);
    if (response.status !== 202) throw new Error(`relay answered ${response.status}`);
  },
  naive: async () => {
    const response = await naive.fetch(request(), env as never, ctx as never);
    if (response.status !== 202) throw new Error(`naive answered ${response.status}`);
  },
};
// Built once: settings are cached per env object, as they are per isolate in production.
let envInfo = {} as Env;
let envWarn = {} as Env;

export default {
  async fetch(incoming: Request): Promise<Response> {
    const at = new URL(incoming.url);
    if (at.pathname === "/load") {
      const loaded = (await incoming.json()) as { body: string; vars: Record<string, string> };
      body = loaded.body;
      env = { ...loaded.vars, DEDUP: memoryKv, EVENTS: memoryQueue } as unknown as Env;
      envInfo = { ...env, LOG_LEVEL: "info" } as Env;
      envWarn = { ...env, LOG_LEVEL: "warn" } as Env;
      url = `${URL_WITH_TOKEN}${encodeURIComponent(loaded.vars.WEBHOOK_TOKEN ?? "")}`;
      return new Response("ok");
    }
    const stage = STAGES[at.searchParams.get("stage") ?? ""];
    if (!stage) return new Response("no such stage", { status: 404 });
    const iterations = Number(at.searchParams.get("iterations") ?? 1);
    for (let i = 0; i < iterations; i++) await stage();
    return new Response("done");
  },
};
