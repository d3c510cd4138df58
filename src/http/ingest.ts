import type { Context } from "hono";
import { loadSettings, type Settings } from "../config";
import { digestHex, prepareEvent } from "../delivery/prepare";
import { putDeadLetter, putQuarantine } from "../delivery/records";
import type { Env } from "../env";
import { dedupKey, recordId } from "../kv/keys";
import { log } from "../log";
import type { PendoWebhook } from "../pendo/envelope";
import { isDoNotProcess, setDoNotProcess } from "../privacy/doNotProcess";
import { resolveSource, type Source } from "../sources";
import { presentedToken, tokenMatches } from "./auth";
import { readBodyLimited } from "./body";
import { failureResponse, type IngestFailure } from "./failures";

type Outcome = "accepted" | "duplicate" | "dropped" | "dead-lettered" | IngestFailure["kind"];

const DO_NOT_PROCESS_EVENT = "visitorDoNotProcessUpdated";

/**
 * POST /pendo[/:source]: authenticate, read at most MAX_BODY_BYTES, validate, dedup, transform,
 * enqueue, and only then mark the event as seen. Every path ends in exactly one log line.
 */
export async function ingestWebhook(c: Context<{ Bindings: Env }>, sourceName: string): Promise<Response> {
  const started = Date.now();
  const logged: Record<string, unknown> = { source: sourceName };
  const finish = (outcome: Outcome, response: Response) => {
    const level = outcome === "unavailable" || outcome === "misconfigured" ? "error" : "info";
    log(level, "webhook", { ...logged, outcome, status: response.status, durationMs: Date.now() - started });
    return response;
  };
  const fail = (failure: IngestFailure) => {
    // The log keeps what the terse answer leaves out: which store failed, which limit applied.
    if (failure.kind === "unavailable") logged.reason = failure.reason;
    if (failure.kind === "too-large") logged.limit = failure.limit;
    return finish(failure.kind, failureResponse(c, failure));
  };

  const config = loadSettings(c.env);
  if (!config.ok) return fail({ kind: "misconfigured", problems: config.problems });
  const settings = config.settings;
  const source = resolveSource(settings, sourceName);
  if (!source) return fail({ kind: "unknown-source", source: sourceName });
  if (source.tokens.length === 0) {
    return fail({ kind: "misconfigured", problems: [{ setting: "WEBHOOK_TOKEN", message: "is not set" }] });
  }

  // Nothing past the headers is read for an unauthenticated request.
  if (!(await tokenMatches(presentedToken(c.req.raw), source.tokens))) return fail({ kind: "unauthorized" });

  const body = await readBodyLimited(c.req.raw, settings.MAX_BODY_BYTES);
  if (!body.ok && body.reason === "too-large")
    return fail({ kind: "too-large", limit: settings.MAX_BODY_BYTES });
  const receivedAt = Date.now();
  const text = body.ok ? body.text : "";
  const prepared = body.ok
    ? await prepareEvent(text, source, receivedAt)
    : {
        ok: false as const,
        kind: "invalid" as const,
        issues: [{ path: "", message: "body is not valid UTF-8" }],
      };

  if (!prepared.ok && prepared.kind === "invalid") {
    // Authenticated but invalid: kept, so a fixed relay can replay it (docs/operations.md).
    const entry = {
      id: recordId(receivedAt, crypto.randomUUID()),
      source: source.name,
      receivedAt,
      issues: prepared.issues,
      rawBody: text,
    };
    c.executionCtx.waitUntil(
      putQuarantine(c.env.DEDUP, entry, settings.DEAD_LETTER_TTL_SECONDS).catch((error) =>
        log("error", "quarantine-write-failed", { source: source.name, error: String(error) }),
      ),
    );
    Object.assign(logged, { quarantineId: entry.id, issues: prepared.issues.length });
    return fail({ kind: "invalid", issues: prepared.issues });
  }

  const { webhook, eventId } = prepared;
  Object.assign(logged, { event: webhook.event, uniqueId: eventId });
  if (prepared.ok && !prepared.entry) {
    log("warn", "unmapped-event", { source: source.name, event: webhook.event, uniqueId: eventId });
  }

  let visitorHash: string | undefined;
  let seen: string | null;
  let flagged: boolean;
  try {
    visitorHash = await visitorHashFor(settings, webhook);
    const checkFlag = visitorHash !== undefined && webhook.event !== DO_NOT_PROCESS_EVENT;
    const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
    [seen, flagged] = await Promise.all([
      c.env.DEDUP.get(dedupKey(source.name, eventId)),
      checkFlag
        ? isDoNotProcess(c.env.DEDUP, source.name, visitorHash as string, receivedAt, waitUntil)
        : false,
    ]);
  } catch (error) {
    // Without the do-not-process answer the relay cannot honour it: refuse, and Pendo retries.
    log("error", "kv-read-failed", { source: source.name, error: String(error) });
    return fail({ kind: "unavailable", reason: "kv" });
  }
  if (seen !== null) return finish("duplicate", c.json({ status: "duplicate", eventId }, 200));
  if (flagged) {
    log("info", "do-not-process-drop", { source: source.name, event: webhook.event, uniqueId: eventId });
    return finish("dropped", c.json({ status: "dropped", reason: "do-not-process", eventId }, 200));
  }

  if (!prepared.ok) {
    const id = recordId(receivedAt, eventId);
    try {
      await putDeadLetter(
        c.env.DEDUP,
        {
          id,
          reason: "event-too-large",
          source: source.name,
          eventId,
          event: webhook.event,
          attempts: 0,
          lastStatus: null,
          detail: prepared.detail,
          receivedAt,
          lastFailureAt: receivedAt,
          rawBody: text,
        },
        settings.DEAD_LETTER_TTL_SECONDS,
      );
    } catch (error) {
      log("error", "dead-letter-write-failed", {
        source: source.name,
        uniqueId: eventId,
        error: String(error),
      });
      return fail({ kind: "unavailable", reason: "kv" });
    }
    logged.deadLetterId = id;
    // Accepted (kept), so marked like any accepted event: a redelivery must not store it twice.
    c.executionCtx.waitUntil(
      afterEnqueue(c.env.DEDUP, settings, source, eventId, receivedAt, webhook, undefined),
    );
    return finish(
      "dead-lettered",
      c.json({ status: "dead-lettered", reason: "event-too-large", eventId, id }, 202),
    );
  }

  try {
    await c.env.EVENTS.send(prepared.message);
  } catch (error) {
    log("error", "enqueue-failed", { source: source.name, uniqueId: eventId, error: String(error) });
    return fail({ kind: "unavailable", reason: "queue" });
  }

  // Marked only after the queue accepted the event, so a failed enqueue stays retryable.
  c.executionCtx.waitUntil(
    afterEnqueue(c.env.DEDUP, settings, source, eventId, receivedAt, webhook, visitorHash),
  );
  const calls = prepared.calls.map((call) => ({ type: call.type, messageId: call.messageId }));
  const event = (prepared.calls[0] as { event: string }).event;
  return finish("accepted", c.json({ status: "accepted", eventId, event, calls }, 202));
}

async function afterEnqueue(
  kv: KVNamespace,
  settings: Settings,
  source: Source,
  eventId: string,
  at: number,
  webhook: PendoWebhook,
  visitorHash: string | undefined,
): Promise<void> {
  const writes: Promise<void>[] = [
    kv.put(dedupKey(source.name, eventId), JSON.stringify({ at }), {
      expirationTtl: settings.DEDUP_TTL_SECONDS,
    }),
  ];
  if (visitorHash && webhook.event === DO_NOT_PROCESS_EVENT) {
    writes.push(setDoNotProcess(kv, source.name, visitorHash, webhook.properties?.doNotProcess === true, at));
  }
  const results = await Promise.allSettled(writes);
  for (const result of results) {
    if (result.status === "rejected") {
      log("warn", "kv-write-failed", {
        source: source.name,
        uniqueId: eventId,
        error: String(result.reason),
      });
    }
  }
}

async function visitorHashFor(settings: Settings, webhook: PendoWebhook) {
  const visitorId = webhook.visitorId?.trim();
  if (!settings.HONOR_DO_NOT_PROCESS || !visitorId) return undefined;
  // Hashed: keys stay under KV's 512 bytes and the namespace holds no visitor ids in the clear.
  return digestHex("SHA-256", visitorId);
}
