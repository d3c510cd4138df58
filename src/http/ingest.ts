import type { Context } from "hono";
import { type AlertScope, raiseAlert } from "../alerts/notify";
import { loadSettings, type Settings } from "../config";
import { noteDrift } from "../drift/watch";
import type { Env } from "../env";
import { type PreparedEvent, prepareEvent } from "../intake/prepare";
import { dedupKey } from "../kv/keys";
import { deadLetterOf, newRecordId, putDeadLetter, putQuarantine } from "../kv/records";
import { log } from "../log";
import { DO_NOT_PROCESS_EVENT, unknownPropertyKeys } from "../pendo/catalog";
import { visitorOf } from "../pendo/identity";
import { uniqueIdHint } from "../pendo/intake";
import { isDoNotProcess, setDoNotProcess } from "../privacy/doNotProcess";
import { resolveSource } from "../sources";
import { presentedToken, tokenMatches } from "./auth";
import { readBodyLimited } from "./body";
import { type EdgeFailure, failureResponse } from "./failures";

type Outcome = "accepted" | "duplicate" | "dropped" | "dead-lettered" | EdgeFailure["reason"];

const NOT_UTF8: PreparedEvent = {
  ok: false,
  reason: "invalid",
  issues: [{ path: "", message: "body is not valid UTF-8" }],
};

/**
 * POST /pendo[/:source]: authenticate, read at most MAX_BODY_BYTES, check, dedup, transform,
 * enqueue, and only then mark the event as seen. Every path ends in exactly one log line, and in
 * one of: on the queue (202), stored in KV before the answer (400 quarantined, 202 dead-lettered),
 * deliberately not forwarded (200 duplicate or do-not-process), or a 5xx so the sender retries.
 */
export async function ingestWebhook(c: Context<{ Bindings: Env }>, sourceName: string): Promise<Response> {
  const started = Date.now();
  const logged: Record<string, unknown> = { source: sourceName };
  const finish = (outcome: Outcome, response: Response) => {
    const failed = outcome === "unavailable" || outcome === "misconfigured";
    const level = failed ? "error" : logged.warnings ? "warn" : "info";
    log(level, "webhook", { ...logged, outcome, status: response.status, durationMs: Date.now() - started });
    return response;
  };
  const fail = (failure: EdgeFailure) => {
    // The log keeps what the terse answer leaves out: which store failed, which limit applied.
    if (failure.reason === "unavailable") logged.store = failure.store;
    if (failure.reason === "too-large") logged.limit = failure.limit;
    return finish(failure.reason, failureResponse(c, failure));
  };

  const config = loadSettings(c.env);
  if (!config.ok) return fail(config);
  const settings = config.settings;
  // What alerts and drift need: they record in the background, never on the answer's path.
  const scope: AlertScope = {
    kv: c.env.DEDUP,
    settings,
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
    now: started,
  };
  const source = resolveSource(settings, sourceName);
  if (!source) return fail({ reason: "unknown-source", source: sourceName });
  if (source.tokens.length === 0) {
    return fail({ reason: "misconfigured", issues: [{ path: "WEBHOOK_TOKEN", message: "is not set" }] });
  }

  // Nothing past the headers is read for an unauthenticated request.
  if (!(await tokenMatches(presentedToken(c.req.raw), source.tokens)))
    return fail({ reason: "unauthorized" });

  const body = await readBodyLimited(c.req.raw, settings.MAX_BODY_BYTES);
  if (!body.ok && body.reason === "too-large")
    return fail({ reason: "too-large", limit: settings.MAX_BODY_BYTES });
  const receivedAt = Date.now();
  const text = body.ok ? body.text : "";
  const kvDedup = settings.DEDUP_MODE === "kv";
  const dedupRead = (eventId: string) =>
    kvDedup ? c.env.DEDUP.get(dedupKey(source.name, eventId)) : Promise.resolve(null);
  // The dedup read starts now, from the uniqueId the raw body names, and runs while the body is
  // checked and transformed; settled at once so a failure is seen only where it is awaited.
  const hinted = kvDedup && body.ok ? uniqueIdHint(text) : undefined;
  const early = hinted ? { eventId: hinted, read: settled(dedupRead(hinted)) } : undefined;
  const prepared = body.ok ? await prepareEvent(text, source, receivedAt) : NOT_UTF8;

  if (!prepared.ok && prepared.reason === "invalid") {
    // Authenticated but unmappable: stored before the 400, since a sender does not retry a 400.
    const entry = {
      id: newRecordId(receivedAt, source.name),
      source: source.name,
      receivedAt,
      issues: prepared.issues,
      rawBody: text,
    };
    Object.assign(logged, { quarantineId: entry.id, issues: prepared.issues.length });
    try {
      await putQuarantine(c.env.DEDUP, entry, settings.DEAD_LETTER_TTL_SECONDS);
    } catch (error) {
      log("error", "quarantine-write-failed", { source: source.name, error: String(error) });
      return fail({ reason: "unavailable", store: "kv" });
    }
    raiseAlert(scope, source.name, "invalid-webhooks", {
      keys: prepared.issues.map((issue) => issue.path || "(body)"),
    });
    return fail({ reason: "invalid", issues: prepared.issues });
  }

  const { webhook, eventId } = prepared;
  Object.assign(logged, { event: webhook.event, uniqueId: eventId });
  if (prepared.ok) {
    if (!prepared.entry) {
      log("warn", "unmapped-event", { source: source.name, event: webhook.event, uniqueId: eventId });
      const example = { event: webhook.event, uniqueId: eventId };
      raiseAlert(scope, source.name, "unknown-event", { name: webhook.event, example });
      noteDrift(scope, { source: source.name, kind: "event", event: webhook.event });
    }
    if (prepared.warnings.length > 0) logged.warnings = prepared.warnings;
    for (const key of unknownPropertyKeys(prepared.entry, webhook.properties)) {
      noteDrift(scope, { source: source.name, kind: "property", event: webhook.event, key });
    }
  }

  const kv = c.env.DEDUP;
  const refreshMs = settings.DO_NOT_PROCESS_REFRESH_SECONDS * 1000;
  const visitorId = settings.HONOR_DO_NOT_PROCESS ? visitorOf(webhook) : undefined;
  let seen: string | null;
  let flagged: boolean;
  try {
    const checkFlag = visitorId !== undefined && webhook.event !== DO_NOT_PROCESS_EVENT;
    const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
    [seen, flagged] = await Promise.all([
      early?.eventId === eventId ? early.read : dedupRead(eventId),
      checkFlag ? isDoNotProcess(kv, source.name, visitorId, receivedAt, waitUntil, refreshMs) : false,
    ]);
  } catch (error) {
    // Without the do-not-process answer the relay cannot honour it: refuse, and Pendo retries.
    log("error", "kv-read-failed", { source: source.name, error: String(error) });
    return fail({ reason: "unavailable", store: "kv" });
  }
  if (seen !== null) return finish("duplicate", c.json({ status: "duplicate", eventId }, 200));
  if (flagged) {
    log("info", "do-not-process-drop", { source: source.name, event: webhook.event, uniqueId: eventId });
    return finish("dropped", c.json({ status: "dropped", reason: "do-not-process", eventId }, 200));
  }
  const remember = () => {
    if (kvDedup) c.executionCtx.waitUntil(rememberEvent(kv, settings, source.name, eventId, receivedAt));
  };

  if (!prepared.ok) {
    const letter = deadLetterOf(
      {
        reason: "event-too-large",
        source: source.name,
        eventId,
        event: webhook.event,
        attempts: 0,
        lastStatus: null,
        detail: prepared.detail,
        receivedAt,
        rawBody: text,
      },
      receivedAt,
    );
    try {
      await putDeadLetter(kv, letter, settings.DEAD_LETTER_TTL_SECONDS);
    } catch (error) {
      log("error", "dead-letter-write-failed", {
        source: source.name,
        uniqueId: eventId,
        error: String(error),
      });
      return fail({ reason: "unavailable", store: "kv" });
    }
    logged.deadLetterId = letter.id;
    raiseAlert(scope, source.name, "dead-letters", {
      example: { event: webhook.event, uniqueId: eventId },
      keys: [letter.reason],
    });
    // Kept, so marked like any accepted event: a redelivery must not store it twice.
    remember();
    const answer = { status: "dead-lettered", reason: "event-too-large", eventId, id: letter.id };
    return finish("dead-lettered", c.json(answer, 202));
  }

  if (visitorId && webhook.event === DO_NOT_PROCESS_EVENT) {
    if (prepared.doNotProcess === undefined) {
      log("warn", "do-not-process-unreadable", { source: source.name, uniqueId: eventId });
    } else {
      try {
        // Before the answer: a flag the relay said it took must be in force.
        await setDoNotProcess(kv, source.name, visitorId, prepared.doNotProcess, receivedAt);
      } catch (error) {
        log("error", "kv-write-failed", { source: source.name, uniqueId: eventId, error: String(error) });
        return fail({ reason: "unavailable", store: "kv" });
      }
    }
  }

  try {
    await c.env.EVENTS.send(prepared.encoded, { contentType: "text" });
  } catch (error) {
    log("error", "enqueue-failed", { source: source.name, uniqueId: eventId, error: String(error) });
    return fail({ reason: "unavailable", store: "queue" });
  }

  // Marked only after the queue accepted the event, so a failed enqueue stays retryable.
  remember();
  const calls = prepared.calls.map((call) => ({ type: call.type, messageId: call.messageId }));
  const event = (prepared.calls[0] as { event: string }).event;
  const answer: Record<string, unknown> = { status: "accepted", eventId, event, calls };
  if (prepared.warnings.length > 0) answer.warnings = prepared.warnings;
  return finish("accepted", c.json(answer, 202));
}

/**
 * The dedup marker, after the event is on the queue or stored. Best effort: if it is lost, a
 * redelivery is enqueued again under the same messageIds, and Segment keeps one.
 */
async function rememberEvent(
  kv: KVNamespace,
  settings: Settings,
  source: string,
  eventId: string,
  at: number,
) {
  try {
    await kv.put(dedupKey(source, eventId), JSON.stringify({ at }), {
      expirationTtl: settings.DEDUP_TTL_SECONDS,
    });
  } catch (error) {
    log("warn", "kv-write-failed", { source, uniqueId: eventId, error: String(error) });
  }
}

/** A promise that rejects only when awaited: started early, it must not be an unhandled rejection. */
function settled<T>(promise: Promise<T>): Promise<T> {
  const outcome = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return outcome.then((result) => (result.ok ? result.value : Promise.reject(result.error)));
}
