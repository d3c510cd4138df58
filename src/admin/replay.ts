import type { Settings } from "../config";
import { flagCheck, logDropped } from "../delivery/flags";
import type { Env } from "../env";
import { prepareEvent } from "../intake/prepare";
import type { Issue } from "../issues";
import {
  bodyText,
  claimable,
  getRecord,
  type LedgerRecord,
  markDropped,
  markSent,
  type RecordKind,
  unmarkSent,
} from "../ledger/records";
import { log } from "../log";
import { SEND_BATCH_MESSAGES, sendBatchGroups } from "../queue/batches";
import { decodeRelayMessage, fitForQueue, type RelayMessage } from "../queue/message";
import { loadRecordBytes } from "../records/bytes";
import { resolveSource } from "../sources";

export type ReplayResult =
  | { ok: true; id: string; status: "replayed" | "dropped"; eventId: string }
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
        | "missing-bytes"
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
      /** Where the calls come from: stored as accepted, or mapped afresh from the webhook. */
      from: "stored" | "mapped";
    }
  | Failure;

/**
 * The one place that decides what a replay sends, shared by the replay and its preview: the
 * webhook as received, mapped by today's code and settings, whenever the record has it (a
 * quarantined or too-large webhook, or a queued message that carried its webhook); else the
 * queued message as it was accepted; the bytes of a message no reader understood, read again.
 */
async function planReplay(settings: Settings, record: LedgerRecord): Promise<ReplayPlan> {
  const { id } = record;
  if (record.holds === "none")
    return {
      ok: false,
      id,
      reason: "missing-bytes",
      detail: "only the row was kept: the source was over RECORD_BUDGET_BYTES when it was stored",
    };
  if (record.message !== undefined) {
    const decoded = decodeRelayMessage(record.message);
    if (!decoded.ok) return { ok: false, id, reason: "not-replayable", detail: decoded.detail };
    const { raw, ...stored } = decoded.message;
    if (raw === undefined) return { ok: true, message: stored, from: "stored" };
    return mapWebhook(settings, record, raw, stored.receivedAt);
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
  return mapWebhook(settings, record, text, record.receivedAt);
}

async function mapWebhook(
  settings: Settings,
  record: LedgerRecord,
  text: string,
  receivedAt: number,
): Promise<ReplayPlan> {
  const { id } = record;
  const source = resolveSource(settings, record.source);
  if (!source) return { ok: false, id, reason: "unknown-source", detail: record.source };
  const prepared = await prepareEvent(text, source, receivedAt, { keepRaw: settings.ARCHIVE_MODE !== "off" });
  if (!prepared.ok) {
    return prepared.reason === "invalid"
      ? { ok: false, id, reason: "invalid", issues: prepared.issues }
      : { ok: false, id, reason: "event-too-large", detail: prepared.detail };
  }
  return { ok: true, message: prepared.message, from: "mapped" };
}

/** Records one replay call takes: one sendBatch's worth (src/queue/batches.ts). */
export const REPLAY_PAGE = SEND_BATCH_MESSAGES;

/**
 * Replays records, exactly once each: they are marked sent by one conditional statement before
 * anything is enqueued (so of concurrent replays one takes each record, and a sent record never
 * becomes replayable again, whatever fails later); a record whose send fails is given back at
 * once. Do-not-process is decided here, by each event's own Pendo time, and a flagged one is
 * answered `dropped` and kept as such: the answer says what happens to the event. Ledger work per
 * call, however many records: one statement marks, one asks the flags, one settles the dropped
 * (and one gives back what could not be enqueued); R2: one ranged get per stored group; the
 * queue: one sendBatch per 100 messages or 256 KB.
 */
export async function replayRecords(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  ids: readonly string[],
  now: number,
  options: { again?: boolean } = {},
): Promise<ReplayResult[]> {
  const db = env.LEDGER;
  const marked = await markSent(db, kind, ids, now, options.again);
  const results = new Map<string, ReplayResult>();
  for (const id of marked.malformed) {
    results.set(id, {
      ok: false,
      id,
      reason: "malformed-record",
      issues: [{ path: "", message: "the row does not match its schema" }],
    });
  }
  const give: string[] = [];
  const fail = (failure: Failure) => {
    results.set(failure.id, failure);
    give.push(failure.id);
  };

  for (const problem of await loadRecordBytes(env.ARCHIVE, marked.records)) {
    // A missing object is said as such; R2 not answering is a retry-later, like the queue's.
    const reason = problem.reason === "missing-object" ? "missing-bytes" : "store-unavailable";
    fail({ ok: false, id: problem.id, reason, detail: problem.detail });
  }
  const planned: { id: string; message: RelayMessage }[] = [];
  for (const record of marked.records) {
    if (results.has(record.id)) continue;
    const plan = await planReplay(settings, record).catch(
      (error): Failure => ({ ok: false, id: record.id, reason: "not-replayable", detail: String(error) }),
    );
    if (plan.ok) planned.push({ id: record.id, message: { ...plan.message, replayedAt: now } });
    else fail(plan);
  }

  let dropped = new Set<{ id: string; message: RelayMessage }>();
  if (settings.HONOR_DO_NOT_PROCESS && planned.length > 0) {
    const flags = await flagCheck(db, planned, now);
    if (flags.statements.length > 0) {
      try {
        dropped = flags.dropped(await db.batch(flags.statements));
      } catch (error) {
        for (const { id } of planned)
          fail({
            ok: false,
            id,
            reason: "store-unavailable",
            detail: `the do-not-process check failed: ${String(error)}`,
          });
        planned.length = 0;
      }
    }
  }
  for (const entry of dropped) {
    logDropped(entry.message, "replay");
    results.set(entry.id, { ok: true, id: entry.id, status: "dropped", eventId: entry.message.eventId });
  }
  const sending: { id: string; message: RelayMessage; body: string }[] = [];
  for (const entry of planned) {
    if (dropped.has(entry)) continue;
    // Measured again with replayedAt on it: a message at the limit may not fit any more.
    const fitted = fitForQueue(entry.message);
    if (fitted.ok) sending.push({ ...entry, body: fitted.encoded });
    else fail({ ok: false, id: entry.id, reason: "not-replayable", detail: fitted.detail });
  }
  for (const chunk of sendBatchGroups(sending, (entry) => entry.body)) {
    try {
      await env.EVENTS.sendBatch(chunk.map(({ body }) => ({ body, contentType: "text" as const })));
      for (const { id, message } of chunk) {
        results.set(id, { ok: true, id, status: "replayed", eventId: message.eventId });
        log("info", "replayed", {
          kind,
          id,
          source: message.source,
          event: message.event,
          uniqueId: message.eventId,
        });
      }
    } catch (error) {
      for (const { id } of chunk) fail({ ok: false, id, reason: "queue-unavailable", detail: String(error) });
    }
  }

  // Each independently: one failing does not keep the other from settling its records.
  const [droppedMarked, given] = await Promise.allSettled([
    markDropped(
      db,
      [...dropped].map(({ id }) => id),
      now,
    ),
    unmarkSent(db, give),
  ]);
  if (droppedMarked.status === "rejected")
    // Left marked sent: dropped and never sent; the console shows it as sent.
    log("error", "replay-drop-mark-failed", { kind, ids: dropped.size, error: String(droppedMarked.reason) });
  if (given.status === "rejected")
    // Left marked sent: never sent twice; the console shows it as sent, and an operator can send again.
    log("error", "replay-unclaim-failed", { kind, ids: give.length, error: String(given.reason) });

  // Ids that were not marked: gone, or taken already; said record by record.
  const unmarked = ids.filter((id) => !results.has(id) && !marked.records.some((record) => record.id === id));
  await Promise.all(
    unmarked.map(async (id) => {
      const read = await getRecord(db, kind, id);
      if (!read.ok && read.reason === "not-found") {
        results.set(id, { ok: false, id, reason: "not-found", detail: `no ${kind} entry ${id}` });
      } else if (!read.ok) {
        results.set(id, { ok: false, id, reason: "malformed-record", issues: read.issues });
      } else {
        const { state, settledAt, claimedAt } = read.record;
        const at = new Date(settledAt ?? claimedAt ?? now).toISOString();
        results.set(id, { ok: false, id, reason: "already-replayed", detail: `it is ${state} since ${at}` });
      }
    }),
  );
  return ids.map(
    (id) =>
      results.get(id) ?? { ok: false, id, reason: "not-replayable", detail: "no result (duplicate id?)" },
  );
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
      /** False once it was sent, dropped or deleted. */
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
  const [problem] = await loadRecordBytes(env.ARCHIVE, [read.record]);
  if (problem) {
    const reason = problem.reason === "missing-object" ? "missing-bytes" : "store-unavailable";
    return { ok: false, id, reason, detail: problem.detail };
  }
  const plan = await planReplay(settings, read.record);
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
