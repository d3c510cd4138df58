import type { Context } from "hono";
import * as v from "valibot";
import { loadSettings } from "../config";
import type { Env } from "../env";
import type { Issue } from "../issues";
import { deliveryStatuses } from "../ledger/delivery";
import { log } from "../log";
import { encodeRelayMessage } from "../queue/message";
import { DEFAULT_SOURCE, resolveSource, sourceNames, unconfigured } from "../sources";
import { RELAY_NAME, RELAY_VERSION } from "../version";
import { isAdmin } from "./auth";
import { failureResponse } from "./failures";
import { readQuery, wholeNumber } from "./query";

type Check = "ok" | "failed" | "skipped";

const HEALTH_KEY = "health:probe";

/**
 * GET /health: 200 when everything needed to relay is there and answers, 503 otherwise. Anyone
 * gets the status and version; with the admin token, what is configured (present or not, never a
 * value) and what failed. `?deep=1` (admin only) also enqueues a probe message, which the
 * consumer acks unsent, proving the queue takes writes; it costs a queue operation.
 */
export async function health(c: Context<{ Bindings: Env }>): Promise<Response> {
  const read = readQuery(c, { deep: v.optional(wholeNumber(0, 1), "0") });
  if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
  const env = c.env;
  const config = loadSettings(env);
  const problems: string[] = config.ok ? [] : config.issues.map((issue) => `${issue.path} ${issue.message}`);
  // What POST /pendo answers 503 with, told to anyone: setting names, never a value. Named
  // sources' gaps go to the admin only, since a source's name is not public.
  let publicIssues: Issue[] = config.ok ? [] : config.issues;
  const sources = config.ok
    ? sourceNames(config.settings).map((name) => {
        const source = resolveSource(config.settings, name);
        const missing = source ? unconfigured(source) : [];
        for (const issue of missing) problems.push(`source ${name}: ${issue.path} ${issue.message}`);
        if (name === DEFAULT_SOURCE) publicIssues = missing;
        return {
          name,
          destination: source?.destination,
          endpoint: source?.endpoint,
          eventNames: source?.eventNames,
          trackEvents: source?.trackEvents,
          writeKey: Boolean(source?.writeKey),
          tokens: source?.tokens.length ?? 0,
        };
      })
    : [];
  const admin = await isAdmin(c.req.raw, config.ok ? config.settings.ADMIN_TOKEN : undefined);

  const checks: { kv: Check; ledger: Check; r2: Check; queue: Check } = {
    kv: "skipped",
    ledger: "skipped",
    r2: "skipped",
    queue: "skipped",
  };
  try {
    await env.DEDUP.get(HEALTH_KEY);
    checks.kv = "ok";
  } catch (error) {
    checks.kv = "failed";
    problems.push("KV namespace DEDUP did not answer");
    log("error", "health-kv-failed", { error: String(error) });
  }
  try {
    // Reads no table: proves the database answers, at no billed row.
    await env.LEDGER.prepare("SELECT 1").first();
    checks.ledger = "ok";
  } catch (error) {
    checks.ledger = "failed";
    problems.push("D1 database LEDGER did not answer");
    log("error", "health-ledger-failed", { error: String(error) });
  }
  try {
    // A head of a key never written: proves the bucket answers (one Class B operation).
    await env.ARCHIVE.head(HEALTH_KEY);
    checks.r2 = "ok";
  } catch (error) {
    checks.r2 = "failed";
    problems.push("R2 bucket ARCHIVE did not answer");
    log("error", "health-r2-failed", { error: String(error) });
  }
  if (admin && read.query.deep === 1) {
    const probe = {
      source: "health",
      eventId: "probe",
      event: "probe",
      receivedAt: Date.now(),
      calls: [],
      bytes: 0,
    };
    try {
      await env.EVENTS.send(encodeRelayMessage({ ...probe, probe: true }), { contentType: "text" });
      checks.queue = "ok";
    } catch (error) {
      checks.queue = "failed";
      problems.push("queue pendo-events refused a write");
      log("error", "health-queue-failed", { error: String(error) });
    }
  }

  const status = problems.length === 0 ? 200 : 503;
  const summary = { status: status === 200 ? "ok" : "unhealthy", name: RELAY_NAME, version: RELAY_VERSION };
  if (!admin) return c.json(publicIssues.length > 0 ? { ...summary, issues: publicIssues } : summary, status);
  // Admin only: one query for every source, never paid by monitors polling without the token.
  const statuses = await deliveryStatuses(env.LEDGER).catch(() => null);
  const delivery = sources.map((source) => statuses?.get(source.name) ?? null);
  return c.json(
    {
      ...summary,
      environment: config.ok ? config.settings.ENVIRONMENT : undefined,
      bindings: {
        DEDUP: Boolean(env.DEDUP),
        LEDGER: Boolean(env.LEDGER),
        ARCHIVE: Boolean(env.ARCHIVE),
        EVENTS: Boolean(env.EVENTS),
      },
      secrets: {
        WEBHOOK_TOKEN: Boolean(env.WEBHOOK_TOKEN),
        SEGMENT_WRITE_KEY: Boolean(env.SEGMENT_WRITE_KEY),
        ADMIN_TOKEN: Boolean(env.ADMIN_TOKEN),
        SOURCES: Boolean(env.SOURCES),
      },
      sources: sources.map((source, i) => ({ ...source, delivery: delivery[i] })),
      checks,
      problems,
    },
    status,
  );
}
