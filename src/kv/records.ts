import * as v from "valibot";
import { type Issue, issuesOf } from "../issues";
import { type RelayMessage, RelayMessageSchema } from "../queue/message";
import { utf8Length } from "../segment/calls";
import { deadLetterKey, KEY_PREFIX, quarantineKey, recordId } from "./keys";

/**
 * Dead letters (accepted, not deliverable) and quarantined webhooks (authenticated but invalid)
 * are kept in KV with a small metadata summary, so the admin API can list and filter them
 * without reading every value. Both are read back by other invocations, perhaps of another
 * deploy: each has a schema, its type is inferred from it, and every read checks it.
 */

export const DEAD_LETTER_REASONS = [
  /** Segment answered 400 for this event alone, after bisecting its batch. */
  "segment-rejected",
  /** Segment answered a status that retrying cannot fix (401, 403, 413, 501, 505, ...). */
  "segment-refused",
  /** Still failing after the last retry the consumer was allowed. */
  "retries-exhausted",
  /** The queue gave up on the message without the consumer settling it (pendo-events-dlq). */
  "queue-exhausted",
  /** Over Segment's 32 KB even after trimming; stored instead of being sent to be rejected. */
  "event-too-large",
  /** No Segment write key was configured for the message's source until its retries ran out. */
  "no-write-key",
  /** A queue message no version of the relay wrote: kept as received. */
  "malformed-message",
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

const IssueSchema = v.object({ path: v.string(), message: v.string() });

export const DeadLetterSchema = v.object({
  id: v.string(),
  reason: v.picklist(DEAD_LETTER_REASONS),
  source: v.string(),
  eventId: v.string(),
  event: v.string(),
  attempts: v.number(),
  lastStatus: v.nullable(v.number()),
  /** Segment's answer or the failure's detail, cut to 2 KB. */
  detail: v.string(),
  receivedAt: v.number(),
  lastFailureAt: v.number(),
  /** The queued message, replayed as is. */
  message: v.optional(RelayMessageSchema),
  /** For events that never became a message (too large): the raw webhook, replayed through intake. */
  rawBody: v.optional(v.string()),
  /** For a malformed queue message: what the queue delivered, as JSON. Not replayable. */
  rawMessage: v.optional(v.string()),
  /** Set when a replay claimed the record; a claimed record is never replayed again. */
  replayedAt: v.optional(v.number()),
});
export type DeadLetter = v.InferOutput<typeof DeadLetterSchema>;

export const QuarantineSchema = v.object({
  id: v.string(),
  source: v.string(),
  receivedAt: v.number(),
  issues: v.array(IssueSchema),
  rawBody: v.string(),
  replayedAt: v.optional(v.number()),
});
export type QuarantineEntry = v.InferOutput<typeof QuarantineSchema>;

/** Everything a dead letter is made from; the one constructor below fills in id and times. */
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
  rawBody?: string;
  rawMessage?: string;
}

/** The one place a dead letter is built: the edge, both consumers and tests all come here. */
export function deadLetterOf(input: DeadLetterInput, now: number): DeadLetter {
  return { id: newRecordId(now, input.source, input.eventId), ...input, lastFailureAt: now };
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

export interface RecordMeta {
  at: number;
  source: string;
  event: string;
  reason: string;
  eventId?: string;
  status?: number | null;
  attempts?: number;
}

// KV metadata is at most 1,024 bytes, serialized (developers.cloudflare.com/kv/platform/limits).
// Every string field is capped by its serialized bytes, so the sum stays under it whatever the
// event name holds (an escaped control character takes 6 bytes).
export const METADATA_LIMIT = 1_024;
const FIELD_BYTES = { source: 80, event: 420, eventId: 140, reason: 60 } as const;

/** `text`, cut (with an ellipsis) so that its JSON string takes at most `maxBytes` UTF-8 bytes. */
export function capForJson(text: string, maxBytes: number): string {
  if (utf8Length(JSON.stringify(text)) <= maxBytes) return text;
  let end = Math.min(text.length, maxBytes);
  while (end > 0 && utf8Length(JSON.stringify(`${text.slice(0, end)}…`)) > maxBytes) {
    end = Math.floor(end * 0.8);
  }
  return `${text.slice(0, end)}…`;
}

export function recordMeta(meta: RecordMeta): RecordMeta {
  const capped: RecordMeta = {
    ...meta,
    source: capForJson(meta.source, FIELD_BYTES.source),
    event: capForJson(meta.event, FIELD_BYTES.event),
    reason: capForJson(meta.reason, FIELD_BYTES.reason),
  };
  if (meta.eventId !== undefined) capped.eventId = capForJson(meta.eventId, FIELD_BYTES.eventId);
  return capped;
}

export async function putDeadLetter(kv: KVNamespace, letter: DeadLetter, ttlSeconds: number): Promise<void> {
  const metadata = recordMeta({
    at: letter.lastFailureAt,
    source: letter.source,
    event: letter.event,
    reason: letter.reason,
    eventId: letter.eventId,
    status: letter.lastStatus,
    attempts: letter.attempts,
  });
  await kv.put(deadLetterKey(letter.id), JSON.stringify(letter), { expirationTtl: ttlSeconds, metadata });
}

export async function putQuarantine(
  kv: KVNamespace,
  entry: QuarantineEntry,
  ttlSeconds: number,
): Promise<void> {
  const event = eventNameHint(entry.rawBody);
  const metadata = recordMeta({ at: entry.receivedAt, source: entry.source, event, reason: "invalid" });
  await kv.put(quarantineKey(entry.id), JSON.stringify(entry), { expirationTtl: ttlSeconds, metadata });
}

/** The event name of an invalid body, if one can be read cheaply, for listing filters. */
function eventNameHint(rawBody: string): string {
  const match = /"event"\s*:\s*"([^"\\]{1,200})"/.exec(rawBody);
  return match?.[1] ?? "";
}

export type RecordKind = "dead-letters" | "quarantine";
const PREFIX: Record<RecordKind, string> = {
  "dead-letters": KEY_PREFIX.deadLetter,
  quarantine: KEY_PREFIX.quarantine,
};
export const RECORD_ID = /^\d{13}-[A-Za-z0-9_.-]{1,200}$/;

export interface RecordFilter {
  reason?: string;
  event?: string;
  source?: string;
  from?: number;
  to?: number;
}

export interface RecordSummary extends RecordMeta {
  id: string;
}

function matches(meta: RecordMeta | null, filter: RecordFilter): meta is RecordMeta {
  if (!meta) return false;
  if (filter.reason !== undefined && meta.reason !== filter.reason) return false;
  if (filter.event !== undefined && meta.event !== filter.event) return false;
  if (filter.source !== undefined && meta.source !== filter.source) return false;
  if (filter.from !== undefined && meta.at < filter.from) return false;
  if (filter.to !== undefined && meta.at > filter.to) return false;
  return true;
}

/**
 * One page of a KV listing, filtered on the metadata stored with each key, so listing reads no
 * values. A filtered page can hold fewer than `limit` entries; `cursor` continues the scan.
 */
export async function listRecords(
  kv: KVNamespace,
  kind: RecordKind,
  filter: RecordFilter,
  limit: number,
  cursor?: string,
): Promise<{ entries: RecordSummary[]; cursor: string | null }> {
  const page = await kv.list<RecordMeta>({ prefix: PREFIX[kind], limit, cursor });
  const entries = page.keys
    .filter((key) => matches(key.metadata ?? null, filter))
    .map((key) => ({ id: key.name.slice(PREFIX[kind].length), ...(key.metadata as RecordMeta) }));
  return { entries, cursor: page.list_complete ? null : page.cursor };
}

export interface StoredRecords {
  "dead-letters": DeadLetter;
  quarantine: QuarantineEntry;
}

const SCHEMA = { "dead-letters": DeadLetterSchema, quarantine: QuarantineSchema } as const;

export type RecordRead<K extends RecordKind> =
  | { ok: true; record: StoredRecords[K] }
  | { ok: false; reason: "not-found" }
  | { ok: false; reason: "malformed-record"; issues: Issue[] };

/** Reads one record and checks it against its schema; a record no relay wrote is reported, not used. */
export async function getRecord<K extends RecordKind>(
  kv: KVNamespace,
  kind: K,
  id: string,
): Promise<RecordRead<K>> {
  if (!RECORD_ID.test(id)) return { ok: false, reason: "not-found" };
  const raw = await kv.get(`${PREFIX[kind]}${id}`, "json");
  if (raw === null) return { ok: false, reason: "not-found" };
  const checked = v.safeParse(SCHEMA[kind], raw);
  if (!checked.success) return { ok: false, reason: "malformed-record", issues: issuesOf(checked.issues) };
  return { ok: true, record: checked.output as StoredRecords[K] };
}

/** Rewrites a record in place (a replay claim), keeping its listing metadata. */
export async function putRecord<K extends RecordKind>(
  kv: KVNamespace,
  kind: K,
  record: StoredRecords[K],
  ttlSeconds: number,
): Promise<void> {
  if (kind === "dead-letters") await putDeadLetter(kv, record as DeadLetter, ttlSeconds);
  else await putQuarantine(kv, record as QuarantineEntry, ttlSeconds);
}

export async function deleteRecord(kv: KVNamespace, kind: RecordKind, id: string): Promise<void> {
  await kv.delete(`${PREFIX[kind]}${id}`);
}
