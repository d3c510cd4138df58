import type { Context } from "hono";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { log } from "../log";
import { resolveSource, sourceNames } from "../sources";
import { RELAY_NAME, RELAY_VERSION } from "../version";

type Check = "ok" | "failed" | "skipped";

const HEALTH_KEY = "health:probe";

/**
 * GET /health: what is configured (present or not, never a value), and whether KV answers.
 * `?deep=1` also enqueues a probe message (the consumer acks it unsent), proving the queue takes
 * writes; it costs a queue operation, so monitors that poll often should leave it off.
 * 200 when everything needed to relay is there and answers, 503 otherwise.
 */
export async function health(c: Context<{ Bindings: Env }>): Promise<Response> {
  const env = c.env;
  const config = loadSettings(env);
  const problems: string[] = config.ok ? [] : config.problems.map((p) => `${p.setting} ${p.message}`);
  const sources = config.ok
    ? sourceNames(config.settings).map((name) => {
        const source = resolveSource(config.settings, name);
        if (source?.tokens.length === 0) problems.push(`source ${name}: no webhook token is set`);
        if (!source?.writeKey) problems.push(`source ${name}: no Segment write key is set`);
        return {
          name,
          endpoint: source?.endpoint,
          writeKey: Boolean(source?.writeKey),
          tokens: source?.tokens.length ?? 0,
        };
      })
    : [];

  const checks: { kv: Check; queue: Check } = { kv: "skipped", queue: "skipped" };
  try {
    await env.DEDUP.get(HEALTH_KEY);
    checks.kv = "ok";
  } catch (error) {
    checks.kv = "failed";
    problems.push("KV namespace DEDUP did not answer");
    log("error", "health-kv-failed", { error: String(error) });
  }
  if (c.req.query("deep") === "1") {
    try {
      await env.EVENTS.send({
        v: 1,
        source: "health",
        eventId: "probe",
        event: "probe",
        receivedAt: Date.now(),
        calls: [],
        bytes: 0,
        probe: true,
      });
      checks.queue = "ok";
    } catch (error) {
      checks.queue = "failed";
      problems.push("queue pendo-events refused a write");
      log("error", "health-queue-failed", { error: String(error) });
    }
  }

  const body = {
    status: problems.length === 0 ? "ok" : "unhealthy",
    name: RELAY_NAME,
    version: RELAY_VERSION,
    environment: config.ok ? config.settings.ENVIRONMENT : undefined,
    bindings: { DEDUP: Boolean(env.DEDUP), EVENTS: Boolean(env.EVENTS) },
    secrets: {
      WEBHOOK_TOKEN: Boolean(env.WEBHOOK_TOKEN),
      SEGMENT_WRITE_KEY: Boolean(env.SEGMENT_WRITE_KEY),
      ADMIN_TOKEN: Boolean(env.ADMIN_TOKEN),
      SOURCES: Boolean(env.SOURCES),
    },
    sources,
    checks,
    problems,
  };
  return c.json(body, problems.length === 0 ? 200 : 503);
}
