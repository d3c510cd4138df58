import type { Settings } from "../config";
import type { Env } from "../env";
import { prepareEvent } from "../intake/prepare";
import type { Issue } from "../issues";
import { deleteRecord, getRecord, putRecord, type RecordKind, type StoredRecords } from "../kv/records";
import { log } from "../log";
import { visitorOf } from "../pendo/identity";
import { isDoNotProcess } from "../privacy/doNotProcess";
import { encodeRelayMessage, type RelayMessage } from "../queue/message";
import { resolveSource } from "../sources";

export type ReplayResult =
  | { ok: true; id: string; status: "replayed"; eventId: string; removed: boolean }
  | { ok: true; id: string; status: "dropped"; reason: "do-not-process"; eventId: string }
  | { ok: false; id: string; reason: "invalid" | "malformed-record"; issues: Issue[] }
  | {
      ok: false;
      id: string;
      reason:
        | "not-found"
        | "already-replayed"
        | "not-replayable"
        | "event-too-large"
        | "unknown-source"
        | "store-unavailable"
        | "queue-unavailable";
      detail: string;
    };

/** The stored record and what replaying it would send, or why nothing can be. */
type ReplayPlan =
  | {
      ok: true;
      record: StoredRecords[RecordKind];
      message: RelayMessage;
      visitor: string | undefined;
      /** Where the calls come from: stored as accepted, or mapped afresh from the raw webhook. */
      from: "stored" | "mapped";
    }
  | Extract<ReplayResult, { ok: false }>;

/**
 * The one place that decides what a replay sends, shared by the replay and its preview: a
 * queued message as it was accepted; a raw body (quarantine, too-large dead letters) through
 * intake and the transform of today's code and settings.
 */
async function planReplay(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  id: string,
  now: number,
): Promise<ReplayPlan> {
  const read = await getRecord(env.DEDUP, kind, id);
  if (!read.ok) {
    return read.reason === "not-found"
      ? { ok: false, id, reason: "not-found", detail: `no ${kind} entry ${id}` }
      : { ok: false, id, reason: "malformed-record", issues: read.issues };
  }
  const record: StoredRecords[RecordKind] = read.record;
  if ("rawMessage" in record && record.rawMessage !== undefined) {
    return {
      ok: false,
      id,
      reason: "not-replayable",
      detail: "a malformed queue message has no event to send",
    };
  }
  if ("message" in record && record.message) {
    return {
      ok: true,
      record,
      message: record.message,
      visitor: visitorOfCalls(record.message),
      from: "stored",
    };
  }
  const source = resolveSource(settings, record.source);
  if (!source) return { ok: false, id, reason: "unknown-source", detail: record.source };
  const prepared = await prepareEvent(record.rawBody ?? "", source, now);
  if (!prepared.ok) {
    return prepared.reason === "invalid"
      ? { ok: false, id, reason: "invalid", issues: prepared.issues }
      : { ok: false, id, reason: "event-too-large", detail: prepared.detail };
  }
  return {
    ok: true,
    record,
    message: prepared.message,
    visitor: visitorOf(prepared.webhook),
    from: "mapped",
  };
}

/**
 * Re-enqueue one stored entry. The dedup marker is not consulted: replay exists to send again
 * what the edge once accepted. A raw body (quarantine, too-large dead letters) goes through
 * intake and the transform again, so a fixed relay can ingest what it once refused. A visitor
 * flagged do-not-process since is not sent, and the record is removed.
 *
 * Never twice: the record is claimed (`replayedAt`) before it is sent, and a claimed record is
 * refused. If the send fails the claim is lifted; if the delete after a send fails, the claim
 * stays, so the record is kept but can never be replayed again.
 */
export async function replayRecord(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  id: string,
  now: number,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<ReplayResult> {
  const plan = await planReplay(env, settings, kind, id, now);
  if (!plan.ok) return plan;
  const { record, message, visitor } = plan;
  if (record.replayedAt !== undefined) {
    const at = new Date(record.replayedAt).toISOString();
    return {
      ok: false,
      id,
      reason: "already-replayed",
      detail: `replayed at ${at}; delete it if it is done`,
    };
  }

  const kv = env.DEDUP;
  const ttl = settings.DEAD_LETTER_TTL_SECONDS;
  if (
    settings.HONOR_DO_NOT_PROCESS &&
    visitor &&
    (await isDoNotProcess(
      kv,
      message.source,
      visitor,
      now,
      waitUntil,
      settings.DO_NOT_PROCESS_REFRESH_SECONDS * 1000,
    ))
  ) {
    await deleteRecord(kv, kind, id);
    log("info", "do-not-process-drop", { kind, id, source: message.source, uniqueId: message.eventId });
    return { ok: true, id, status: "dropped", reason: "do-not-process", eventId: message.eventId };
  }

  try {
    await putRecord(kv, kind, { ...record, replayedAt: now }, ttl);
  } catch (error) {
    return { ok: false, id, reason: "store-unavailable", detail: String(error) };
  }
  try {
    await env.EVENTS.send(encodeRelayMessage({ ...message, replayedAt: now }), { contentType: "text" });
  } catch (error) {
    await putRecord(kv, kind, record, ttl).catch((unclaim) =>
      log("error", "replay-unclaim-failed", { kind, id, error: String(unclaim) }),
    );
    return { ok: false, id, reason: "queue-unavailable", detail: String(error) };
  }
  let removed = true;
  await deleteRecord(kv, kind, id).catch((error) => {
    removed = false;
    log("error", "replay-not-removed", { kind, id, error: String(error) });
  });
  log("info", "replayed", {
    kind,
    id,
    source: message.source,
    event: message.event,
    uniqueId: message.eventId,
  });
  return { ok: true, id, status: "replayed", eventId: message.eventId, removed };
}

/** The visitor of a stored message, read from its first call (admin path only: parsing is fine here). */
function visitorOfCalls(message: RelayMessage): string | undefined {
  const first = message.calls[0];
  if (!first) return undefined;
  const call = JSON.parse(first) as { userId?: string; anonymousId?: string };
  return call.userId ?? call.anonymousId;
}

// Segment drops a messageId it has seen in about the last 24 hours, and no longer.
const SEGMENT_DEDUP_WINDOW_MS = 24 * 3_600_000;

export type ReplayPreview =
  | {
      ok: true;
      id: string;
      /** The calls a replay sends now. */
      willSend: unknown[];
      /** Stored as accepted, or mapped afresh from the raw webhook by today's code and settings. */
      from: "stored" | "mapped";
      receivedAt: number;
      ageHours: number;
      /** Older than Segment's messageId dedup: Segment will not drop a copy it already has. */
      outsideDedupWindow: boolean;
      /** False once claimed by an earlier replay. */
      replayable: boolean;
    }
  | Extract<ReplayResult, { ok: false }>;

/** What a replay of the record would send, sending nothing. */
export async function previewReplay(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  id: string,
  now: number,
): Promise<ReplayPreview> {
  const plan = await planReplay(env, settings, kind, id, now);
  if (!plan.ok) return plan;
  const { receivedAt, replayedAt } = plan.record;
  return {
    ok: true,
    id,
    willSend: plan.message.calls.map((call) => JSON.parse(call) as unknown),
    from: plan.from,
    receivedAt,
    ageHours: Math.round(((now - receivedAt) / 3_600_000) * 10) / 10,
    outsideDedupWindow: now - receivedAt > SEGMENT_DEDUP_WINDOW_MS,
    replayable: replayedAt === undefined,
  };
}
