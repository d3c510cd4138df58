import type { Context } from "hono";
import { loadSettings, type Settings } from "../config";
import type { RelayMessage } from "../delivery/message";
import { newDeadLetterId, putDeadLetter, putQuarantine } from "../delivery/records";
import type { Env } from "../env";
import { dedupKey, doNotProcessKey, recordId } from "../kv/keys";
import { log } from "../log";
import type { PendoWebhook } from "../pendo/envelope";
import { readWebhook } from "../pendo/intake";
import { transformWebhook } from "../pendo/transform";
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
  const fail = (failure: IngestFailure) => finish(failure.kind, failureResponse(c, failure));

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
  const intake = body.ok
    ? readWebhook(body.text)
    : { ok: false as const, issues: [{ path: "", message: "body is not valid UTF-8" }] };
  if (!intake.ok) {
    // Authenticated but invalid: kept, so a fixed relay can replay it (docs/operations.md).
    const rawBody = body.ok ? body.text : "";
    const entry = {
      id: recordId(receivedAt, crypto.randomUUID()),
      source: source.name,
      receivedAt,
      issues: intake.issues,
      rawBody,
    };
    c.executionCtx.waitUntil(
      putQuarantine(c.env.DEDUP, entry, settings.DEAD_LETTER_TTL_SECONDS).catch((error) =>
        log("error", "quarantine-write-failed", { source: source.name, error: String(error) }),
      ),
    );
    logged.quarantineId = entry.id;
    logged.issues = intake.issues.length;
    return fail({ kind: "invalid", issues: intake.issues });
  }

  const { webhook } = intake;
  const eventId = webhook.uniqueId ?? (await sha1Hex(body.ok ? body.text : ""));
  Object.assign(logged, { event: webhook.event, uniqueId: eventId, mapped: intake.entry !== undefined });
  if (!intake.entry)
    log("warn", "unmapped-event", { source: source.name, event: webhook.event, uniqueId: eventId });

  let dnpKey: string | undefined;
  let seen: string | null;
  let flagged: string | null;
  try {
    dnpKey = await doNotProcessKeyFor(settings, source, webhook);
    const skipFlagCheck = !dnpKey || webhook.event === DO_NOT_PROCESS_EVENT;
    [seen, flagged] = await Promise.all([
      c.env.DEDUP.get(dedupKey(source.name, eventId)),
      skipFlagCheck ? null : c.env.DEDUP.get(dnpKey as string),
    ]);
  } catch (error) {
    // Without the do-not-process answer the relay cannot honour it: refuse, and Pendo retries.
    log("error", "kv-read-failed", { source: source.name, error: String(error) });
    return fail({ kind: "unavailable", reason: "kv" });
  }
  if (seen !== null) return finish("duplicate", c.json({ status: "duplicate", eventId }, 200));
  if (flagged !== null) {
    log("info", "do-not-process-drop", { source: source.name, event: webhook.event, uniqueId: eventId });
    return finish("dropped", c.json({ status: "dropped", reason: "do-not-process", eventId }, 200));
  }

  const result = transformWebhook(webhook, {
    source: source.name,
    eventNames: source.eventNames,
    trackEvents: source.trackEvents,
    eventId,
    receivedAt,
  });

  if (!result.ok) {
    const id = newDeadLetterId(receivedAt, eventId);
    try {
      await putDeadLetter(
        c.env.DEDUP,
        {
          id,
          reason: result.reason,
          source: source.name,
          eventId,
          event: webhook.event,
          attempts: 0,
          lastStatus: null,
          detail: `${result.callType} call is ${result.bytes} bytes after trimming; Segment's limit is 32768`,
          receivedAt,
          lastFailureAt: receivedAt,
          rawBody: body.ok ? body.text : "",
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
    return finish(
      "dead-lettered",
      c.json({ status: "dead-lettered", reason: result.reason, eventId, id }, 202),
    );
  }

  const message: RelayMessage = {
    v: 1,
    source: source.name,
    eventId,
    event: webhook.event,
    receivedAt,
    calls: result.encoded.map((call) => call.json),
    bytes: result.encoded.reduce((sum, call) => sum + call.bytes, 0),
  };
  try {
    await c.env.EVENTS.send(message);
  } catch (error) {
    log("error", "enqueue-failed", { source: source.name, uniqueId: eventId, error: String(error) });
    return fail({ kind: "unavailable", reason: "queue" });
  }

  // Marked only after the queue accepted the event, so a failed enqueue stays retryable.
  c.executionCtx.waitUntil(afterEnqueue(c.env.DEDUP, settings, source, eventId, receivedAt, webhook, dnpKey));
  return finish(
    "accepted",
    c.json(
      {
        status: "accepted",
        eventId,
        event: (result.calls[0] as { event: string }).event,
        calls: result.calls.map((call) => ({ type: call.type, messageId: call.messageId })),
      },
      202,
    ),
  );
}

async function afterEnqueue(
  kv: KVNamespace,
  settings: Settings,
  source: Source,
  eventId: string,
  at: number,
  webhook: PendoWebhook,
  dnpKey: string | undefined,
): Promise<void> {
  const writes: Promise<void>[] = [
    kv.put(dedupKey(source.name, eventId), JSON.stringify({ at }), {
      expirationTtl: settings.DEDUP_TTL_SECONDS,
    }),
  ];
  if (dnpKey && webhook.event === DO_NOT_PROCESS_EVENT) {
    writes.push(
      webhook.properties?.doNotProcess === true ? kv.put(dnpKey, JSON.stringify({ at })) : kv.delete(dnpKey),
    );
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

async function doNotProcessKeyFor(settings: Settings, source: Source, webhook: PendoWebhook) {
  const visitorId = webhook.visitorId?.trim();
  if (!settings.HONOR_DO_NOT_PROCESS || !visitorId) return undefined;
  // Hashed: keys stay under KV's 512 bytes and the namespace holds no visitor ids in the clear.
  return doNotProcessKey(source.name, await hex("SHA-256", visitorId));
}

const encoder = new TextEncoder();
async function hex(algorithm: "SHA-1" | "SHA-256", text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, encoder.encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
/** 40 hex characters, the shape of Pendo's own uniqueId. */
const sha1Hex = (text: string) => hex("SHA-1", text);
