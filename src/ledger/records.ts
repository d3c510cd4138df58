import * as v from "valibot";
import type { Issue } from "../issues";
import { recordId } from "../kv/keys";
import { encodeRelayMessage, type RelayMessage } from "../queue/message";
import { cutText } from "./text";

/**
 * Dead letters (accepted, not deliverable) and quarantined webhooks (authenticated but invalid):
 * one row each in the ledger's `records` table (migrations/0001_ledger.sql). A row keeps the
 * bytes as received, valid UTF-8 or not; listing, counting and filtering are SQL over indexed
 * columns, so counts are exact and no listing reads a body.
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
export type RecordState = "stored" | "replaying";

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
  /** The destination's answer or the failure's detail, at most 2 KB. */
  detail: string;
  issues?: Issue[];
  receivedAt: number;
  createdAt: number;
  /** The bytes as received: a raw webhook (quarantine, too large) or an unreadable queue message. */
  body?: Uint8Array;
  /** The queued message in its queue encoding, replayed as is. */
  message?: string;
  claimedAt?: number;
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
}

// Columns hold what an operator filters and reads: capped so a hostile name cannot bloat a row.
const NAME_LIMIT = 200;

/** The one place a dead letter is built: the edge, both consumers and tests all come here. */
export function deadLetterOf(input: DeadLetterInput, now: number): LedgerRecord {
  const record: LedgerRecord = {
    id: newRecordId(now, input.source, input.eventId),
    kind: "dead-letters",
    state: "stored",
    reason: input.reason,
    source: cutText(input.source, NAME_LIMIT),
    event: cutText(input.event, NAME_LIMIT),
    eventId: cutText(input.eventId, NAME_LIMIT),
    attempts: input.attempts,
    lastStatus: input.lastStatus,
    detail: input.detail,
    receivedAt: input.receivedAt,
    createdAt: now,
  };
  if (input.message) record.message = encodeRelayMessage(input.message);
  if (input.body) record.body = input.body;
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
    detail: input.issues.map((issue) => `${issue.path || "(body)"}: ${issue.message}`).join("; "),
    issues: input.issues.slice(0, 50),
    receivedAt: now,
    createdAt: now,
    body: input.body,
  };
}

/**
 * `<13-digit ms>-<source>.<eventId>.<random>`: time-ordered for listing, and unique even for the
 * same event rejected in two sources within one millisecond.
 */
export function newRecordId(now: number, source: string, eventId?: string): string {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  return recordId(now, [safeIdPart(source), ...(eventId ? [safeIdPart(eventId)] : []), random].join("."));
}

const safeIdPart = (text: string) => text.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
export const RECORD_ID = /^\d{13}-[A-Za-z0-9_.-]{1,200}$/;

const COLUMNS =
  "id, kind, state, reason, source, event, event_id, attempts, last_status, detail, issues, received_at, created_at, body, message";

/** The statement that stores one record; run alone or inside a batch with its counters. */
export function insertRecord(db: D1Database, record: LedgerRecord, conflict = ""): D1PreparedStatement {
  return db
    .prepare(
      `INSERT ${conflict ? `${conflict} ` : ""}INTO records (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      record.id,
      record.kind,
      record.state,
      record.reason,
      record.source,
      record.event,
      record.eventId,
      record.attempts,
      record.lastStatus,
      record.detail,
      record.issues ? JSON.stringify(record.issues) : null,
      record.receivedAt,
      record.createdAt,
      record.body ?? null,
      record.message ?? null,
    );
}

/** A row as D1 returns it. */
const RowSchema = v.object({
  id: v.string(),
  kind: v.picklist(RECORD_KINDS),
  state: v.picklist(["stored", "replaying"]),
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
  };
  if (row.issues) record.issues = JSON.parse(row.issues) as Issue[];
  if (row.body != null) record.body = toBytes(row.body);
  if (row.message != null) record.message = row.message;
  if (row.claimed_at != null) record.claimedAt = row.claimed_at;
  return record;
}

// D1 hands a BLOB back as an array of numbers (or an ArrayBuffer, depending on the runtime).
function toBytes(body: number[] | ArrayBuffer | Uint8Array): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return Uint8Array.from(body);
}

export interface RecordFilter {
  reason?: string;
  event?: string;
  source?: string;
  from?: number;
  to?: number;
  /** Only records created at or before this time: a bulk replay's fixed set. */
  createdUpTo?: number;
  /** Only records a replay may claim at this time: stored, or claimed longer ago than the TTL. */
  claimableAt?: number;
}

/** The WHERE clause for a filter: a fixed shape, every value bound, none spliced into SQL. */
export function filterClause(kind: RecordKind, filter: RecordFilter): { sql: string; params: unknown[] } {
  const parts = ["kind = ?"];
  const params: unknown[] = [kind];
  const add = (sql: string, value: unknown) => {
    parts.push(sql);
    params.push(value);
  };
  if (filter.reason !== undefined) add("reason = ?", filter.reason);
  if (filter.event !== undefined) add("event = ?", filter.event);
  if (filter.source !== undefined) add("source = ?", filter.source);
  if (filter.from !== undefined) add("created_at >= ?", filter.from);
  if (filter.to !== undefined) add("created_at <= ?", filter.to);
  if (filter.createdUpTo !== undefined) add("created_at <= ?", filter.createdUpTo);
  if (filter.claimableAt !== undefined)
    add("(state = 'stored' OR claimed_at < ?)", filter.claimableAt - CLAIM_TTL_MS);
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
      `SELECT id, created_at AS at, source, event, reason, event_id AS eventId, last_status AS status, attempts, state
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

export async function getRecord(db: D1Database, kind: RecordKind, id: string): Promise<RecordRead> {
  if (!RECORD_ID.test(id)) return { ok: false, reason: "not-found" };
  const row = await db.prepare("SELECT * FROM records WHERE id = ? AND kind = ?").bind(id, kind).first();
  if (row === null) return { ok: false, reason: "not-found" };
  const record = recordFromRow(row);
  if (!record) {
    return {
      ok: false,
      reason: "malformed-record",
      issues: [{ path: "", message: "the row does not match its schema" }],
    };
  }
  return { ok: true, record };
}

/**
 * How long a replay's claim holds. A replay finishes within one admin request (seconds); a claim
 * older than this belongs to an invocation that died between claiming and finishing, and would
 * otherwise keep the record unreplayable for good. If that invocation had in fact sent the event
 * (its delete failed), a second replay sends the same messageIds, which Segment drops within its
 * ~24 h dedup window.
 */
export const CLAIM_TTL_MS = 15 * 60_000;

/**
 * Claims a record for one replay: one conditional statement, so of any number of concurrent
 * replays exactly one gets the row back. Null: someone else holds it, or it is gone.
 */
export async function claimRecord(
  db: D1Database,
  kind: RecordKind,
  id: string,
  now: number,
): Promise<LedgerRecord | null | "malformed"> {
  const row = await db
    .prepare(
      `UPDATE records SET state = 'replaying', claimed_at = ?1
       WHERE id = ?2 AND kind = ?3 AND (state = 'stored' OR claimed_at < ?4) RETURNING *`,
    )
    .bind(now, id, kind, now - CLAIM_TTL_MS)
    .first();
  if (row === null) return null;
  const record = recordFromRow(row);
  if (record) return record;
  // Claimed but unusable: given back at once, so a repaired row can still be replayed.
  await releaseRecord(db, id);
  return "malformed";
}

/** Whether a replay may claim the record now. */
export const claimable = (record: LedgerRecord, now: number) =>
  record.state === "stored" || (record.claimedAt ?? 0) < now - CLAIM_TTL_MS;

/** Gives a claimed record back, when its send failed: replayable again at once. */
export async function releaseRecord(db: D1Database, id: string): Promise<void> {
  await db
    .prepare("UPDATE records SET state = 'stored', claimed_at = NULL WHERE id = ? AND state = 'replaying'")
    .bind(id)
    .run();
}

/** Removes a record; `claimedOnly` removes it only while it is claimed (after its replay). */
export async function deleteRecord(db: D1Database, kind: RecordKind, id: string, claimedOnly = false) {
  const result = await db
    .prepare(`DELETE FROM records WHERE id = ? AND kind = ?${claimedOnly ? " AND state = 'replaying'" : ""}`)
    .bind(id, kind)
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
