import { deadLetterKey, KEY_PREFIX, quarantineKey } from "../kv/keys";
import type { ValidationIssue } from "../pendo/envelope";
import type { RelayMessage } from "./message";

/**
 * Dead letters (accepted, not deliverable) and quarantined webhooks (authenticated but invalid)
 * are kept in KV with a small metadata summary, so the admin API can list and filter them
 * without reading every value.
 */

export type DeadLetterReason =
  /** Segment answered 400 for this event alone, after bisecting its batch. */
  | "segment-rejected"
  /** Segment answered a status that retrying cannot fix (401, 403, 413, 501, 505, ...). */
  | "segment-refused"
  /** Still failing after the last retry the consumer was allowed. */
  | "retries-exhausted"
  /** The queue gave up on the message without the consumer settling it (pendo-events-dlq). */
  | "queue-exhausted"
  /** Over Segment's 32 KB even after trimming; stored instead of being sent to be rejected. */
  | "event-too-large"
  /** No Segment write key is configured for the message's source. */
  | "no-write-key";

export interface DeadLetter {
  id: string;
  reason: DeadLetterReason;
  source: string;
  eventId: string;
  event: string;
  attempts: number;
  lastStatus: number | null;
  /** Segment's answer or the failure's detail, cut to 2 KB. */
  detail: string;
  receivedAt: number;
  lastFailureAt: number;
  /** The queued message, replayed as is. */
  message?: RelayMessage;
  /** For events that never became a message (too large): the raw webhook, replayed through intake. */
  rawBody?: string;
}

export interface QuarantineEntry {
  id: string;
  source: string;
  receivedAt: number;
  issues: ValidationIssue[];
  rawBody: string;
}

export interface RecordMeta {
  at: number;
  source: string;
  event: string;
  reason: string;
}

export const DETAIL_LIMIT = 2_048;
export const cutDetail = (text: string) =>
  text.length > DETAIL_LIMIT ? `${text.slice(0, DETAIL_LIMIT)}…` : text;

export async function putDeadLetter(kv: KVNamespace, letter: DeadLetter, ttlSeconds: number): Promise<void> {
  const metadata: RecordMeta = {
    at: letter.lastFailureAt,
    source: letter.source,
    event: letter.event,
    reason: letter.reason,
  };
  await kv.put(deadLetterKey(letter.id), JSON.stringify(letter), { expirationTtl: ttlSeconds, metadata });
}

export async function putQuarantine(
  kv: KVNamespace,
  entry: QuarantineEntry,
  ttlSeconds: number,
): Promise<void> {
  const event = eventNameHint(entry.rawBody);
  const metadata: RecordMeta = { at: entry.receivedAt, source: entry.source, event, reason: "invalid" };
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
export const RECORD_ID = /^\d{13}-[A-Za-z0-9_-]{1,64}$/;

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

export async function getRecord<T extends DeadLetter | QuarantineEntry>(
  kv: KVNamespace,
  kind: RecordKind,
  id: string,
): Promise<T | null> {
  if (!RECORD_ID.test(id)) return null;
  return kv.get<T>(`${PREFIX[kind]}${id}`, "json");
}

export async function deleteRecord(kv: KVNamespace, kind: RecordKind, id: string): Promise<void> {
  await kv.delete(`${PREFIX[kind]}${id}`);
}
