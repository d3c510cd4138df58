import type { Context } from "hono";
import { type AlertScope, alertSoon } from "../alerts/notify";
import { loadSettings, type Settings, SOURCE_NAME_MAX } from "../config";
import type { Env } from "../env";
import { type PreparedEvent, prepareEvent } from "../intake/prepare";
import { dedupKey } from "../kv/keys";
import { flagStatement, visitorHash } from "../ledger/flags";
import { deadLetterOf, type LedgerRecord, quarantineOf } from "../ledger/records";
import { cutText } from "../ledger/text";
import { LOGGED_NAME_LIMIT, log, logs } from "../log";
import { DO_NOT_PROCESS_EVENT, doNotProcessFlag } from "../pendo/catalog";
import type { PendoWebhook } from "../pendo/envelope";
import { visitorOf } from "../pendo/identity";
import { eventNameHint, uniqueIdHint } from "../pendo/intake";
import { eventTime } from "../pendo/time";
import { checkBudget, nearBudget } from "../records/budget";
import { storeRecords } from "../records/store";
import { resolveSource, unconfigured } from "../sources";
import { presentedToken, tokenMatches } from "./auth";
import { readBodyLimited } from "./body";
import { type EdgeFailure, failureResponse } from "./failures";

type Outcome = "accepted" | "duplicate" | "dead-lettered" | EdgeFailure["reason"];

// Compared against for an unknown source, so its answer costs what a known source's does.
const UNKNOWN_SOURCE_TOKENS = ["no-source-has-this-token-0000"];

const NOT_UTF8: PreparedEvent = {
  ok: false,
  reason: "invalid",
  issues: [{ path: "", message: "body is not valid UTF-8" }],
};

/**
 * POST /pendo[/:source]: authenticate, read at most MAX_BODY_BYTES, check, dedup, transform,
 * enqueue, and only then mark the event as seen. Every path ends in exactly one log line, and in
 * one of: on the queue (202), stored in the ledger before the answer (400 quarantined, 202
 * dead-lettered), a redelivery already accepted (200 duplicate), or a 5xx so the sender retries.
 * Do-not-process flags are applied by the consumer, per batch: nothing is dropped here.
 */
export async function ingestWebhook(c: Context<{ Bindings: Env }>, sourceName: string): Promise<Response> {
  const started = Date.now();
  // The name is the path's, chosen by whoever sent the request, authenticated or not: cut just
  // past the longest a source can have, so a typo stays readable and a 15 KB path a short line.
  const logged: Record<string, unknown> = { source: cutText(sourceName, SOURCE_NAME_MAX + 1) };
  const finish = (outcome: Outcome, response: Response) => {
    const failed = outcome === "unavailable" || outcome === "misconfigured";
    const level = failed ? "error" : logged.warnings ? "warn" : "info";
    // Under LOG_LEVEL=warn a healthy webhook writes nothing: not even its fields are built.
    if (logs(level)) {
      // Added to the fields gathered so far rather than copied with them: one object per line.
      Object.assign(logged, { outcome, status: response.status, durationMs: Date.now() - started });
      log(level, "webhook", logged);
    }
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
  // What alerts need: they record in the background, never on the answer's path. Built only
  // on the paths that raise one.
  const scope = (): AlertScope => ({
    db: c.env.LEDGER,
    settings,
    waitUntil: (promise) => c.executionCtx.waitUntil(promise),
    now: started,
  });
  const source = resolveSource(settings, sourceName);
  if (!source) {
    // Answered as a wrong token is, after the same digest work: neither the body nor the time
    // tells a prober which source names exist.
    await tokenMatches(presentedToken(c.req.raw), UNKNOWN_SOURCE_TOKENS);
    return fail({ reason: "unknown-source", source: sourceName });
  }
  // Nothing is accepted that cannot be delivered: until the source is configured, a 503 names
  // what is missing and Pendo retries. Without a token nobody can authenticate, so everything
  // missing is named at once; otherwise only to a sender that presents a valid token.
  const missing = unconfigured(source);
  if (source.tokens.length === 0) return fail({ reason: "misconfigured", issues: missing });

  // Nothing past the headers is read for an unauthenticated request.
  if (!(await tokenMatches(presentedToken(c.req.raw), source.tokens)))
    return fail({ reason: "unauthorized" });
  if (missing.length > 0) return fail({ reason: "misconfigured", issues: missing });

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
  const prepared = body.ok
    ? await prepareEvent(text, source, receivedAt, { keepRaw: settings.ARCHIVE_MODE !== "off" })
    : NOT_UTF8;
  const db = c.env.LEDGER;

  if (!prepared.ok && prepared.reason === "invalid") {
    // Authenticated but unmappable: stored (the bytes as received) before the 400, since a
    // sender does not retry a 400.
    const hint = body.ok ? eventNameHint(text) : undefined;
    const entry = quarantineOf(
      {
        source: source.name,
        issues: prepared.issues,
        body: body.ok || body.reason === "not-utf8" ? body.bytes : new Uint8Array(),
        event: hint,
        eventId: body.ok ? uniqueIdHint(text) : undefined,
      },
      receivedAt,
    );
    Object.assign(logged, { quarantineId: entry.id, issues: prepared.issues.length });
    const stored = await storeAtEdge(c.env, settings, entry);
    if (!stored.ok) {
      log("error", "quarantine-write-failed", {
        source: source.name,
        store: stored.store,
        error: stored.error,
      });
      return fail({ reason: "unavailable", store: stored.store });
    }
    if (!stored.keptBytes) logged.overBudget = true;
    alertSoon(scope(), source.name, "invalid-webhooks");
    if (stored.nearBudget) alertSoon(scope(), source.name, "record-budget");
    return fail({ reason: "invalid", issues: prepared.issues });
  }

  const { webhook, eventId } = prepared;
  // The event name is the sender's: cut, so one webhook line stays far under Workers Logs' 256 KB.
  Object.assign(logged, { event: cutText(webhook.event, LOGGED_NAME_LIMIT), uniqueId: eventId });
  if (prepared.ok) {
    if (!prepared.entry) logged.unmapped = true;
    if (prepared.warnings.length > 0) logged.warnings = prepared.warnings;
  }

  const kv = c.env.DEDUP;
  let seen: string | null;
  try {
    seen = await (early?.eventId === eventId ? early.read : dedupRead(eventId));
  } catch (error) {
    log("error", "kv-read-failed", { source: source.name, error: String(error) });
    return fail({ reason: "unavailable", store: "kv" });
  }
  if (seen !== null) return finish("duplicate", c.json({ status: "duplicate", eventId }, 200));
  const remember = () => {
    if (kvDedup) c.executionCtx.waitUntil(rememberEvent(kv, settings, source.name, eventId, receivedAt));
  };

  // A flag event sets its flag before the answer, whatever becomes of the event itself (too
  // large, or enqueued): ordered by Pendo's event time, so a late retry of an older one loses.
  const flag = settings.HONOR_DO_NOT_PROCESS
    ? await flagUpdateOf(webhook, source.name, receivedAt)
    : undefined;

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
        body: body.ok ? body.bytes : undefined,
      },
      receivedAt,
    );
    const stored = await storeAtEdge(c.env, settings, letter, flag);
    if (!stored.ok) {
      log("error", "dead-letter-write-failed", {
        source: source.name,
        uniqueId: eventId,
        store: stored.store,
        error: stored.error,
      });
      return fail({ reason: "unavailable", store: stored.store });
    }
    logged.deadLetterId = letter.id;
    if (!stored.keptBytes) logged.overBudget = true;
    alertSoon(scope(), source.name, "dead-letters");
    if (stored.nearBudget) alertSoon(scope(), source.name, "record-budget");
    // Kept, so marked like any accepted event: a redelivery must not store it twice.
    remember();
    const answer = { status: "dead-lettered", reason: "event-too-large", eventId, id: letter.id };
    return finish("dead-lettered", c.json(answer, 202));
  }

  if (flag) {
    try {
      await flagStatement(db, flag, receivedAt).run();
    } catch (error) {
      log("error", "flag-write-failed", { source: source.name, uniqueId: eventId, error: String(error) });
      return fail({ reason: "unavailable", store: "ledger" });
    }
  } else if (webhook.event === DO_NOT_PROCESS_EVENT && settings.HONOR_DO_NOT_PROCESS) {
    log("warn", "do-not-process-unreadable", { source: source.name, uniqueId: eventId });
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

/** The flag a visitorDoNotProcessUpdated event sets or clears, when it names a visitor and a value. */
async function flagUpdateOf(webhook: PendoWebhook, source: string, receivedAt: number) {
  if (webhook.event !== DO_NOT_PROCESS_EVENT) return undefined;
  const visitor = visitorOf(webhook);
  const flagged = doNotProcessFlag(webhook.properties);
  if (visitor === undefined || flagged === undefined) return undefined;
  return {
    source,
    visitorHash: await visitorHash(visitor),
    flagged,
    eventTime: Date.parse(eventTime(webhook.timestamp, receivedAt).iso),
  };
}

/**
 * A webhook the edge keeps (quarantined, or too large to deliver): its bytes in R2 unless its
 * source is past RECORD_BUDGET_BYTES (then only the row), its row, its count and any flag it
 * carries in one transaction. No second store here: a failure answers 503 and the sender retries.
 */
async function storeAtEdge(
  env: Env,
  settings: Settings,
  record: LedgerRecord,
  flag?: Parameters<typeof flagStatement>[1],
): Promise<
  { ok: true; keptBytes: boolean; nearBudget: boolean } | { ok: false; store: "ledger" | "r2"; error: string }
> {
  const adding = record.body?.length ?? 0;
  let budget: Awaited<ReturnType<typeof checkBudget>>;
  try {
    budget = await checkBudget(env.LEDGER, record.source, adding, settings.RECORD_BUDGET_BYTES);
  } catch (error) {
    return { ok: false, store: "ledger", error: String(error) };
  }
  if (!budget.keep) {
    record.holds = "none";
    delete record.body;
  }
  const stored = await storeRecords(env.ARCHIVE, env.LEDGER, [record], {
    now: record.createdAt,
    with: flag ? [flagStatement(env.LEDGER, flag, record.createdAt)] : [],
  });
  if (!stored.ok) return stored;
  return { ok: true, keptBytes: budget.keep, nearBudget: nearBudget(budget, adding) };
}

/** A promise that rejects only when awaited: started early, it must not be an unhandled rejection. */
function settled<T>(promise: Promise<T>): Promise<T> {
  const outcome = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return outcome.then((result) => (result.ok ? result.value : Promise.reject(result.error)));
}
