import type { Settings } from "../config";
import type { Env } from "../env";
import { prepareEvent } from "../intake/prepare";
import type { Issue } from "../issues";
import {
  bodyText,
  claimable,
  claimRecord,
  deleteRecord,
  getRecord,
  type LedgerRecord,
  type RecordKind,
  releaseRecord,
} from "../ledger/records";
import { log } from "../log";
import { decodeRelayMessage, encodeRelayMessage, type RelayMessage } from "../queue/message";
import { resolveSource } from "../sources";

export type ReplayResult =
  | { ok: true; id: string; status: "replayed"; eventId: string; removed: boolean }
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

type Failure = Extract<ReplayResult, { ok: false }>;

/** What replaying a record would send, or why nothing can be. */
type ReplayPlan =
  | {
      ok: true;
      message: RelayMessage;
      /** Where the calls come from: stored as accepted, or mapped afresh from the raw webhook. */
      from: "stored" | "mapped";
    }
  | Failure;

/**
 * The one place that decides what a replay sends, shared by the replay and its preview: a
 * queued message as it was accepted; the bytes of a message no reader understood, read again by
 * today's code; a raw body (quarantine, too-large dead letters) through intake and the transform
 * of today's code and settings. Do-not-process flags are not checked here: the consumer applies
 * them to every batch, replays included.
 */
async function planReplay(settings: Settings, record: LedgerRecord, now: number): Promise<ReplayPlan> {
  const { id } = record;
  if (record.message !== undefined) {
    const decoded = decodeRelayMessage(record.message);
    if (decoded.ok) return { ok: true, message: decoded.message, from: "stored" };
    return { ok: false, id, reason: "not-replayable", detail: decoded.detail };
  }
  const text = bodyText(record.body);
  if (record.reason === "malformed-message") {
    const decoded = decodeRelayMessage(text ?? record.body);
    if (decoded.ok) return { ok: true, message: decoded.message, from: "stored" };
    return {
      ok: false,
      id,
      reason: "not-replayable",
      detail: `the message still cannot be read: ${decoded.detail}`,
    };
  }
  if (text === undefined) {
    return { ok: false, id, reason: "invalid", issues: [{ path: "", message: "body is not valid UTF-8" }] };
  }
  const source = resolveSource(settings, record.source);
  if (!source) return { ok: false, id, reason: "unknown-source", detail: record.source };
  const prepared = await prepareEvent(text, source, now);
  if (!prepared.ok) {
    return prepared.reason === "invalid"
      ? { ok: false, id, reason: "invalid", issues: prepared.issues }
      : { ok: false, id, reason: "event-too-large", detail: prepared.detail };
  }
  return { ok: true, message: prepared.message, from: "mapped" };
}

/**
 * Re-enqueue one stored record. The dedup marker is not consulted: replay exists to send again
 * what the edge once accepted. Exactly once: the row is claimed by one conditional statement, so
 * of any number of concurrent replays one sends and the others are told it is taken. A send that
 * fails gives the row back at once; a sent record is deleted.
 */
export async function replayRecord(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  id: string,
  now: number,
): Promise<ReplayResult> {
  const db = env.LEDGER;
  const record = await claimRecord(db, kind, id, now);
  if (record === "malformed") {
    return {
      ok: false,
      id,
      reason: "malformed-record",
      issues: [{ path: "", message: "the row does not match its schema" }],
    };
  }
  if (!record) {
    const read = await getRecord(db, kind, id);
    if (!read.ok && read.reason === "not-found")
      return { ok: false, id, reason: "not-found", detail: `no ${kind} entry ${id}` };
    if (!read.ok) return { ok: false, id, reason: "malformed-record", issues: read.issues };
    const at = read.record.claimedAt ? new Date(read.record.claimedAt).toISOString() : "just now";
    return { ok: false, id, reason: "already-replayed", detail: `another replay claimed it at ${at}` };
  }
  const give = async <T extends Failure>(failure: T): Promise<T> => {
    await releaseRecord(db, id).catch((error) =>
      log("error", "replay-unclaim-failed", { kind, id, error: String(error) }),
    );
    return failure;
  };
  let plan: ReplayPlan;
  try {
    plan = await planReplay(settings, record, now);
  } catch (error) {
    return give({ ok: false, id, reason: "not-replayable", detail: String(error) } as const);
  }
  if (!plan.ok) return give(plan);
  const { message } = plan;
  try {
    await env.EVENTS.send(encodeRelayMessage({ ...message, replayedAt: now }), { contentType: "text" });
  } catch (error) {
    return give({ ok: false, id, reason: "queue-unavailable", detail: String(error) } as const);
  }
  let removed = true;
  await deleteRecord(db, kind, id, true).catch((error) => {
    // Sent, so it stays claimed: it can never be replayed twice; the console shows it as replaying.
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

// Segment drops a messageId it has seen in about the last 24 hours, and no longer.
const SEGMENT_DEDUP_WINDOW_MS = 24 * 3_600_000;

export type ReplayPreview =
  | {
      ok: true;
      id: string;
      /** The calls a replay sends now. */
      willSend: unknown[];
      from: "stored" | "mapped";
      receivedAt: number;
      ageHours: number;
      /** Older than Segment's messageId dedup: Segment will not drop a copy it already has. */
      outsideDedupWindow: boolean;
      /** False while a replay holds it. */
      replayable: boolean;
    }
  | Failure;

/** What a replay of the record would send, sending nothing. */
export async function previewReplay(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  id: string,
  now: number,
): Promise<ReplayPreview> {
  const read = await getRecord(env.LEDGER, kind, id);
  if (!read.ok) {
    return read.reason === "not-found"
      ? { ok: false, id, reason: "not-found", detail: `no ${kind} entry ${id}` }
      : { ok: false, id, reason: "malformed-record", issues: read.issues };
  }
  const plan = await planReplay(settings, read.record, now);
  if (!plan.ok) return plan;
  const { receivedAt } = read.record;
  return {
    ok: true,
    id,
    willSend: plan.message.calls.map((call) => JSON.parse(call) as unknown),
    from: plan.from,
    receivedAt,
    ageHours: Math.round(((now - receivedAt) / 3_600_000) * 10) / 10,
    outsideDedupWindow: now - receivedAt > SEGMENT_DEDUP_WINDOW_MS,
    replayable: claimable(read.record, now),
  };
}
