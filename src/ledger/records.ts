import * as v from "valibot";
import type { Issue } from "../issues";
import { recordId } from "../kv/keys";
import { encodeRelayMessage, type RelayMessage } from "../queue/message";
import { cutText, cutUtf8 } from "./text";

/**
 * Dead letters (accepted, not deliverable) and quarantined webhooks (authenticated but invalid):
 * one row each in the ledger's `records` table (migrations/0002_bytes_in_r2.sql), the index. The
 * bytes (the raw webhook, or the queued message) live in R2, one object per stored group; a row
 * points at its slice. Listing, counting and filtering are SQL over indexed columns, so counts
 * are exact and no listing reads a body. No row exceeds ROW_LIMIT_BYTES, whatever the input.
 */

export const DEAD_LETTER_REASONS = [
  /** The destination answered 400 for this event alone, after bisecting its batch. */
  "segment-rejected",
  /** The destination answered a status that retrying cannot fix (401, 403, 413, 501, 505, ...). */
  "segment-refused",
  /** Still failing after the last retry the consumer was allowed. */
  "retries-exhausted",
  /** The queue gave up on the message without the consumer settling it (pendo-events-dlq). */
  "queue-exhausted",
  /** Over Segment's 32 KB even after trimming; stored instead of being sent to be rejected. */
  "event-too-large",
  /** No Segment write key was configured for the message's source until its retries ran out. */
  "no-write-key",
  /** A queue message this relay could not read: kept as received (its bytes). */
  "malformed-message",
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

export type RecordKind = "dead-letters" | "quarantine";
export const RECORD_KINDS: readonly RecordKind[] = ["dead-letters", "quarantine"];

/**
 * stored: waiting for an operator. sent: a replay enqueued it (marked before the enqueue, never
 * claimable again). dropped: a replay found its visitor flagged do-not-process. deleted: an
 * operator removed it. The last three are tombstones kept until the purge, so that a copy moved
 * in late from the second store (`pending/` in R2) finds its id taken and stays out.
 * replaying: a claim written by a deploy from before migration 0002, read as stored once stale.
 */
export const RECORD_STATES = ["stored", "replaying", "sent", "dropped", "deleted"] as const;
export type RecordState = (typeof RECORD_STATES)[number];

/** What a record's bytes are: a raw webhook, a queued message, nothing (over budget), or D1 columns. */
export type RecordHolds = "body" | "message" | "none" | "legacy";

/** One dead letter or quarantined webhook, as the relay works with it. */
export interface LedgerRecord {
  id: string;
  kind: RecordKind;
  state: RecordState;
  /** A dead-letter reason, or "invalid" for quarantine. */
  reason: string;
  source: string;
  event: string;
  eventId: string;
  attempts: number;
  lastStatus: number | null;
  /** The destination's answer or the failure's detail, at most DETAIL_BYTES. */
  detail: string;
  issues?: Issue[];
  receivedAt: number;
  createdAt: number;
  holds: RecordHolds;
  /** Where its bytes are in R2, once stored. */
  object?: { key: string; offset: number; length: number };
  /** The bytes as received: a raw webhook (quarantine, too large) or an unreadable queue message. */
  body?: Uint8Array;
  /** The queued message in its queue encoding, replayed as is. */
  message?: string;
  claimedAt?: number;
  settledAt?: number;
}

/** Everything a dead letter is made from; `deadLetterOf` fills in id, kind and times. */
export interface DeadLetterInput {
  reason: DeadLetterReason;
  source: string;
  eventId: string;
  event: string;
  attempts: number;
  lastStatus: number | null;
  detail: string;
  receivedAt: number;
  message?: RelayMessage;
  body?: Uint8Array;
  /** A stable id, for a letter that may be stored twice (the ledger keeps the first). */
  id?: string;
}

// Columns hold what an operator filters and reads: capped so a hostile name cannot bloat a row.
const NAME_LIMIT = 200;
/** The destination's answer or an error: enough to act on, bounded in bytes (D1 counts bytes). */
export const DETAIL_BYTES = 2_048;
/** Quarantine issues as stored JSON; the rest are summarized in one last issue. */
export const ISSUES_BYTES = 2_048;
const ISSUE_PATH_LIMIT = 200;
const ISSUE_MESSAGE_LIMIT = 300;
/**
 * No row exceeds this: names 3 x 200 characters (at most 2,400 bytes), detail and issues 2 KB
 * each, the rest ids and numbers. D1 refuses a row over 2 MB, and every byte is billed storage.
 */
export const ROW_LIMIT_BYTES = 8_192;

/** The one place a dead letter is built: the edge, both consumers and tests all come here. */
export function deadLetterOf(input: DeadLetterInput, now: number): LedgerRecord {
  const record: LedgerRecord = {
    id: input.id ?? newRecordId(now, input.source, input.eventId),
    kind: "dead-letters",
    state: "stored",
    reason: input.reason,
    source: cutText(input.source, NAME_LIMIT),
    event: cutText(input.event, NAME_LIMIT),
    eventId: cutText(input.eventId, NAME_LIMIT),
    attempts: input.attempts,
    lastStatus: input.lastStatus,
    detail: cutUtf8(input.detail, DETAIL_BYTES),
    receivedAt: input.receivedAt,
    createdAt: now,
    holds: input.message ? "message" : input.body ? "body" : "none",
  };
  if (input.message) record.message = encodeRelayMessage(input.message);
  else if (input.body) record.body = input.body;
  return record;
}

export interface QuarantineInput {
  source: string;
  issues: Issue[];
  body: Uint8Array;
  /** The event name, when the body names one (for filters and counts). */
  event?: string;
  eventId?: string;
}

export function quarantineOf(input: QuarantineInput, now: number): LedgerRecord {
  const issues = boundedIssues(input.issues);
  return {
    id: newRecordId(now, input.source),
    kind: "quarantine",
    state: "stored",
    reason: "invalid",
    source: cutText(input.source, NAME_LIMIT),
    event: cutText(input.event ?? "", NAME_LIMIT),
    eventId: cutText(input.eventId ?? "", NAME_LIMIT),
    attempts: 0,
    lastStatus: null,
    detail: cutUtf8(
      issues.map((issue) => `${issue.path || "(body)"}: ${issue.message}`).join("; "),
      DETAIL_BYTES,
    ),
    issues,
    receivedAt: now,
    createdAt: now,
    holds: "body",
    body: input.body,
  };
}

/**
 * Issues as a row keeps them: each path and message cut, and as many as fit ISSUES_BYTES of
 * JSON; the rest are counted in a last issue, so the row says that there were more.
 */
export function boundedIssues(issues: readonly Issue[]): Issue[] {
  const kept: Issue[] = [];
  let bytes = 2; // []
  const reserve = 80; // room for the "and N more" issue
  for (const issue of issues) {
    const cut = {
      path: cutText(issue.path, ISSUE_PATH_LIMIT),
      message: cutText(issue.message, ISSUE_MESSAGE_LIMIT),
    };
    const size = utf8Bytes(JSON.stringify(cut)) + 1;
    if (bytes + size + reserve > ISSUES_BYTES) {
      kept.push({ path: "", message: `and ${issues.length - kept.length} more issues` });
      return kept;
    }
    kept.push(cut);
    bytes += size;
  }
  return kept;
}

const utf8 = new TextEncoder();
const utf8Bytes = (text: string) => utf8.encode(text).length;

/**
 * `<13-digit ms>-<source>.<eventId>.<random>`: time-ordered for listing, and unique even for the
 * same event rejected in two sources within one millisecond.
 */
export function newRecordId(now: number, source: string, eventId?: string): string {
  return recordId(
    now,
    [safeIdPart(source), ...(eventId ? [safeIdPart(eventId)] : []), randomHex(4)].join("."),
  );
}

export function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}

export const safeIdPart = (text: string) => text.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
export const RECORD_ID = /^\d{13}-[A-Za-z0-9_.-]{1,200}$/;

/** A record as one row of the insert's JSON list: the index only, never the bytes. */
function rowOf(record: LedgerRecord) {
  return {
    id: record.id,
    kind: record.kind,
    reason: record.reason,
    source: record.source,
    event: record.event,
    eventId: record.eventId,
    attempts: record.attempts,
    lastStatus: record.lastStatus,
    detail: record.detail,
    issues: record.issues ? JSON.stringify(record.issues) : null,
    receivedAt: record.receivedAt,
    createdAt: record.createdAt,
    objectKey: record.object?.key ?? null,
    objectOffset: record.object?.offset ?? null,
    objectLength: record.object?.length ?? null,
    holds: record.holds,
  };
}

export type RecordRow = ReturnType<typeof rowOf>;

/** The rows of records, for one insert statement or for the second store (`pending/`). */
export const recordRows = (records: readonly LedgerRecord[]): RecordRow[] => records.map(rowOf);

/** Rows one insert statement takes: 100 rows of at most ROW_LIMIT_BYTES stay far under D1's 2 MB for a value. */
export const ROWS_PER_INSERT = 100;

/**
 * The statements inserting every row, run in one transaction (`db.batch`): the list travels as
 * one JSON parameter per ROWS_PER_INSERT rows (D1 binds at most 100 parameters). An id the ledger
 * already has (a tombstone included, or the same group stored again by a retried step) is left
 * alone, and a row older than `notBefore` (rows moved in from the second store after the purge
 * has passed them) is not brought back.
 */
export function insertRecordsStatements(
  db: D1Database,
  rows: readonly RecordRow[],
  notBefore = 0,
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT)
    statements.push(insertStatement(db, rows.slice(i, i + ROWS_PER_INSERT), notBefore));
  return statements;
}

function insertStatement(db: D1Database, rows: readonly RecordRow[], notBefore: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO records (id, kind, state, reason, source, event, event_id, attempts,
         last_status, detail, issues, received_at, created_at, object_key, object_offset, object_length, holds)
       SELECT value ->> 'id', value ->> 'kind', 'stored', value ->> 'reason', value ->> 'source', value ->> 'event',
         value ->> 'eventId', value ->> 'attempts', value ->> 'lastStatus', value ->> 'detail', value ->> 'issues',
         value ->> 'receivedAt', value ->> 'createdAt', value ->> 'objectKey', value ->> 'objectOffset',
         value ->> 'objectLength', value ->> 'holds'
       FROM json_each(?1) WHERE value ->> 'createdAt' >= ?2`,
    )
    .bind(JSON.stringify(rows), notBefore);
}

/** A row as D1 returns it. */
const RowSchema = v.object({
  id: v.string(),
  kind: v.picklist(RECORD_KINDS),
  state: v.picklist(RECORD_STATES),
  reason: v.string(),
  source: v.string(),
  event: v.string(),
  event_id: v.string(),
  attempts: v.number(),
  last_status: v.nullable(v.number()),
  detail: v.string(),
  issues: v.optional(v.nullable(v.string())),
  received_at: v.number(),
  created_at: v.number(),
  body: v.optional(
    v.nullable(v.union([v.array(v.number()), v.instance(ArrayBuffer), v.instance(Uint8Array)])),
  ),
  message: v.optional(v.nullable(v.string())),
  claimed_at: v.optional(v.nullable(v.number())),
  object_key: v.optional(v.nullable(v.string())),
  object_offset: v.optional(v.nullable(v.number())),
  object_length: v.optional(v.nullable(v.number())),
  holds: v.optional(v.picklist(["body", "message", "none", "legacy"]), "legacy"),
  settled_at: v.optional(v.nullable(v.number())),
});
type Row = v.InferOutput<typeof RowSchema>;

/** A row read back and checked: a row no relay wrote is reported, not used. */
export function recordFromRow(raw: unknown): LedgerRecord | undefined {
  const checked = v.safeParse(RowSchema, raw);
  if (!checked.success) return undefined;
  const row: Row = checked.output;
  const record: LedgerRecord = {
    id: row.id,
    kind: row.kind,
    state: row.state,
    reason: row.reason,
    source: row.source,
    event: row.event,
    eventId: row.event_id,
    attempts: row.attempts,
    lastStatus: row.last_status,
    detail: row.detail,
    receivedAt: row.received_at,
    createdAt: row.created_at,
    holds: row.holds,
  };
  if (row.issues) record.issues = JSON.parse(row.issues) as Issue[];
  if (row.object_key != null && row.object_offset != null && row.object_length != null)
    record.object = { key: row.object_key, offset: row.object_offset, length: row.object_length };
  // Rows from before migration 0002 hold their bytes themselves.
  if (row.body != null) record.body = toBytes(row.body);
  if (row.message != null) record.message = row.message;
  if (row.claimed_at != null) record.claimedAt = row.claimed_at;
  if (row.settled_at != null) record.settledAt = row.settled_at;
  return record;
}

// D1 hands a BLOB back as an array of numbers (or an ArrayBuffer, depending on the runtime).
function toBytes(body: number[] | ArrayBuffer | Uint8Array): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return Uint8Array.from(body);
}

/** Which records a listing shows: waiting ones by default, tombstones on request. */
export const LISTED_STATES = ["stored", "sent", "dropped", "deleted", "all"] as const;
export type ListedState = (typeof LISTED_STATES)[number];

export interface RecordFilter {
  reason?: string;
  event?: string;
  source?: string;
  from?: number;
  to?: number;
  /** Default: stored (a stale pre-0002 claim included). */
  state?: ListedState;
  /** Only records created at or before this time: a bulk replay's fixed set. */
  createdUpTo?: number;
}

/** A pre-0002 claim ("replaying") older than this belongs to an invocation that died. */
export const CLAIM_TTL_MS = 15 * 60_000;

/** The SQL of "a replay may take it": stored, or a pre-0002 claim gone stale. ?stale is bound. */
const CLAIMABLE = "(state = 'stored' OR (state = 'replaying' AND claimed_at < ?))";

/** The WHERE clause for a filter: a fixed shape, every value bound, none spliced into SQL. */
export function filterClause(
  kind: RecordKind,
  filter: RecordFilter,
  now = Date.now(),
): { sql: string; params: unknown[] } {
  const parts = ["kind = ?"];
  const params: unknown[] = [kind];
  const add = (sql: string, value: unknown) => {
    parts.push(sql);
    params.push(value);
  };
  const state = filter.state ?? "stored";
  if (state === "stored") add(CLAIMABLE, now - CLAIM_TTL_MS);
  else if (state !== "all") add("state = ?", state);
  if (filter.reason !== undefined) add("reason = ?", filter.reason);
  if (filter.event !== undefined) add("event = ?", filter.event);
  if (filter.source !== undefined) add("source = ?", filter.source);
  if (filter.from !== undefined) add("created_at >= ?", filter.from);
  if (filter.to !== undefined) add("created_at <= ?", filter.to);
  if (filter.createdUpTo !== undefined) add("created_at <= ?", filter.createdUpTo);
  return { sql: parts.join(" AND "), params };
}

export interface RecordSummary {
  id: string;
  at: number;
  source: string;
  event: string;
  reason: string;
  eventId: string;
  status: number | null;
  attempts: number;
  state: RecordState;
  /** Bytes kept in R2 (0: over the source's budget, only the row was kept). */
  bytes: number;
}

/** A page of summaries, oldest first, after the cursor (the last id of the previous page). */
export async function listRecords(
  db: D1Database,
  kind: RecordKind,
  filter: RecordFilter,
  limit: number,
  after?: string,
): Promise<{ entries: RecordSummary[]; cursor: string | null }> {
  const where = filterClause(kind, filter);
  const cursorSql = after ? " AND id > ?" : "";
  const { results } = await db
    .prepare(
      `SELECT id, created_at AS at, source, event, reason, event_id AS eventId, last_status AS status, attempts, state,
              coalesce(object_length, length(body), length(CAST(message AS BLOB)), 0) AS bytes
       FROM records WHERE ${where.sql}${cursorSql} ORDER BY id LIMIT ?`,
    )
    .bind(...where.params, ...(after ? [after] : []), limit + 1)
    .all<RecordSummary>();
  const entries = results.slice(0, limit);
  const more = results.length > limit;
  return { entries, cursor: more ? (entries.at(-1)?.id ?? null) : null };
}

/** Exact counts by reason over everything that matches. */
export async function countByReason(
  db: D1Database,
  kind: RecordKind,
  filter: RecordFilter,
): Promise<Record<string, number>> {
  const where = filterClause(kind, filter);
  const { results } = await db
    .prepare(`SELECT reason, count(*) AS n FROM records WHERE ${where.sql} GROUP BY reason`)
    .bind(...where.params)
    .all<{ reason: string; n: number }>();
  return Object.fromEntries(results.map((row) => [row.reason, row.n]));
}

export type RecordRead =
  | { ok: true; record: LedgerRecord }
  | { ok: false; reason: "not-found" }
  | { ok: false; reason: "malformed-record"; issues: Issue[] };

const MALFORMED: Issue[] = [{ path: "", message: "the row does not match its schema" }];

export async function getRecord(db: D1Database, kind: RecordKind, id: string): Promise<RecordRead> {
  if (!RECORD_ID.test(id)) return { ok: false, reason: "not-found" };
  const row = await db.prepare("SELECT * FROM records WHERE id = ? AND kind = ?").bind(id, kind).first();
  if (row === null) return { ok: false, reason: "not-found" };
  const record = recordFromRow(row);
  if (!record) return { ok: false, reason: "malformed-record", issues: MALFORMED };
  return { ok: true, record };
}

/** Whether a replay may take the record now. */
export const claimable = (record: LedgerRecord, now: number) =>
  record.state === "stored" || (record.state === "replaying" && (record.claimedAt ?? 0) < now - CLAIM_TTL_MS);

export type Marked = { records: LedgerRecord[]; malformed: string[] };

/**
 * Marks records sent before anything is enqueued: one conditional statement, so of any number
 * of concurrent replays exactly one gets each row back, and a sent record never becomes
 * claimable again, whatever fails after (a failed enqueue gives it back with `unmarkSent`).
 * `again`: an operator's explicit resend of records already sent.
 */
export async function markSent(
  db: D1Database,
  kind: RecordKind,
  ids: readonly string[],
  now: number,
  again = false,
): Promise<Marked> {
  const { results } = await db
    .prepare(
      `UPDATE records SET state = 'sent', settled_at = ?1
       WHERE id IN (SELECT value FROM json_each(?2)) AND kind = ?3
         AND (${again ? "state = 'sent' OR " : ""}state = 'stored' OR (state = 'replaying' AND claimed_at < ?4))
       RETURNING *`,
    )
    .bind(now, JSON.stringify(ids), kind, now - CLAIM_TTL_MS)
    .all();
  const marked: Marked = { records: [], malformed: [] };
  for (const row of results) {
    const record = recordFromRow(row);
    if (record) marked.records.push(record);
    else marked.malformed.push(String((row as { id?: unknown }).id));
  }
  // Taken but unusable: given back at once, so a repaired row can still be replayed.
  if (marked.malformed.length > 0) await unmarkSent(db, marked.malformed);
  return { records: marked.records.sort((a, b) => (a.id < b.id ? -1 : 1)), malformed: marked.malformed };
}

/** Gives records back after their replay could not enqueue them: replayable again at once. */
export async function unmarkSent(db: D1Database, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .prepare(
      "UPDATE records SET state = 'stored', settled_at = NULL WHERE id IN (SELECT value FROM json_each(?)) AND state = 'sent'",
    )
    .bind(JSON.stringify(ids))
    .run();
}

/** Settles records a replay took without sending: the visitor was flagged do-not-process. */
export async function markDropped(db: D1Database, ids: readonly string[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .prepare(
      "UPDATE records SET state = 'dropped', settled_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND state = 'sent'",
    )
    .bind(now, JSON.stringify(ids))
    .run();
}

/**
 * An operator's delete: the row stays as a tombstone until the purge, so that a copy of it in the
 * second store can never come back. True if it was there to delete.
 */
export async function deleteRecord(db: D1Database, kind: RecordKind, id: string, now: number) {
  const result = await db
    .prepare(
      "UPDATE records SET state = 'deleted', settled_at = ? WHERE id = ? AND kind = ? AND state != 'deleted'",
    )
    .bind(now, id, kind)
    .run();
  return result.meta.changes > 0;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The body as text when it is UTF-8, else undefined. */
export function bodyText(body: Uint8Array | undefined): string | undefined {
  if (!body) return undefined;
  try {
    return decoder.decode(body);
  } catch {
    return undefined;
  }
}

export function base64Of(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function bytesOfBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
