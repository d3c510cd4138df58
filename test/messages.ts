import type { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import {
  bodyText,
  type DeadLetterReason,
  deadLetterOf,
  type LedgerRecord,
  quarantineOf,
  recordFromRow,
} from "../src/ledger/records";
import { readWebhook } from "../src/pendo/intake";
import { transformWebhook } from "../src/pendo/transform";
import { decodeRelayMessage, encodeRelayMessage, type RelayMessage } from "../src/queue/message";
import { loadRecordBytes } from "../src/records/bytes";
import { storeRecords } from "../src/records/store";
import { freshUniqueId, PUBLISHED, withUniqueId } from "./helpers";

/** The queue message the edge would enqueue for a webhook, built by the same code. */
export function relayMessage(webhook: object = withUniqueId(PUBLISHED.guideDisplayed)): RelayMessage {
  const intake = readWebhook(JSON.stringify(webhook));
  if (!intake.ok) throw new Error(JSON.stringify(intake.issues));
  const eventId = intake.webhook.uniqueId ?? freshUniqueId();
  const result = transformWebhook(intake.webhook, {
    source: "default",
    eventNames: "pendo",
    trackEvents: "wrapped",
    eventId,
    receivedAt: Date.now(),
  });
  if (!result.ok) throw new Error(result.reason);
  const message: RelayMessage = {
    source: "default",
    eventId,
    event: intake.webhook.event,
    receivedAt: Date.now(),
    calls: result.encoded.map((call) => call.json),
    bytes: result.encoded.reduce((sum, call) => sum + call.bytes, 0),
    eventTime: Date.now(),
  };
  if (intake.webhook.visitorId) message.visitor = intake.webhook.visitorId;
  return message;
}

/**
 * A message the edge would never produce: its track is over Segment's 32 KB, so Segment answers
 * 400 for any batch that holds it. It stands for "an event Segment rejects".
 */
export function poisonedMessage(): RelayMessage {
  const message = relayMessage();
  const track = JSON.parse(message.calls[0] as string);
  track.properties.padding = "p".repeat(33 * 1024);
  const json = JSON.stringify(track);
  return { ...message, calls: [json], bytes: json.length };
}

type TestQueueMessage = Parameters<typeof createMessageBatch<unknown>>[1][number];

/** Queue messages as the queue delivers them: encoded as the edge sends them (or raw, as given). */
export function queueMessages(
  bodies: (RelayMessage | { raw: unknown })[],
  attempts = 1,
  timestamp = new Date(),
): TestQueueMessage[] {
  return bodies.map((body, index) => ({
    id: `msg-${index}-${"calls" in body ? body.eventId : "raw"}`,
    timestamp,
    attempts,
    body: "calls" in body ? encodeRelayMessage(body) : body.raw,
  }));
}

/** A dead letter as a test reads it: the row, its message decoded and its body as text. */
export type DeadLetter = Omit<LedgerRecord, "message"> & { message?: RelayMessage; rawBody?: string };

function readable(record: LedgerRecord): DeadLetter {
  const { message, ...rest } = record;
  const letter: DeadLetter = rest;
  if (message !== undefined) {
    const decoded = decodeRelayMessage(message);
    if (!decoded.ok) throw new Error(decoded.detail);
    letter.message = decoded.message;
  }
  const text = bodyText(record.body);
  if (text !== undefined) letter.rawBody = text;
  return letter;
}

/** Records as the ledger holds them, with their bytes read back from R2 as the admin API does. */
export async function recordsOf(sql: string, ...params: unknown[]): Promise<LedgerRecord[]> {
  const { results } = await env.LEDGER.prepare(sql)
    .bind(...params)
    .all();
  const records = results.map((row) => {
    const record = recordFromRow(row);
    if (!record)
      throw new Error(`a ledger row does not match its schema: ${JSON.stringify(row).slice(0, 200)}`);
    return record;
  });
  // A record whose bytes are gone is still returned (without them): the tests of that case look.
  await loadRecordBytes(env.ARCHIVE, records);
  return records;
}

async function rows(sql: string, ...params: unknown[]): Promise<DeadLetter[]> {
  return (await recordsOf(sql, ...params)).map(readable);
}

/** Stores records as the relay does: their bytes in one R2 object, their rows in one statement. */
export async function storeForTest(...records: LedgerRecord[]): Promise<void> {
  const stored = await storeRecords(env.ARCHIVE, env.LEDGER, records, { now: Date.now() });
  if (!stored.ok) throw new Error(`could not store: ${stored.error}`);
}

/** Every dead letter stored, checked against its schema as the admin API reads it. */
export const deadLetters = () => rows("SELECT * FROM records WHERE kind = 'dead-letters' ORDER BY id");

/** The dead letter of one event, found by its Pendo uniqueId. */
export async function deadLetterFor(eventId: string): Promise<DeadLetter | undefined> {
  return (
    await rows("SELECT * FROM records WHERE kind = 'dead-letters' AND event_id = ? ORDER BY id", eventId)
  )[0];
}

/** Quarantined webhooks of one source (newest last). */
export const quarantined = (source = "default") =>
  rows("SELECT * FROM records WHERE kind = 'quarantine' AND source = ? ORDER BY id", source);

/** The dead letter of a message Segment refused (401), as the consumer builds one. */
export function refusedLetter(
  message: RelayMessage,
  receivedAt = Date.now(),
  detail = "seeded",
): LedgerRecord {
  return deadLetterOf(
    {
      reason: "segment-refused",
      source: message.source,
      eventId: message.eventId,
      event: message.event,
      attempts: 1,
      lastStatus: 401,
      detail,
      receivedAt,
      message,
    },
    Date.now(),
  );
}

/** A dead letter as the consumer stores one, for the admin and replay tests. */
export async function seedDeadLetter(
  options: { reason?: DeadLetterReason; event?: string; webhook?: object } = {},
): Promise<{ id: string; message: RelayMessage }> {
  const reason = options.reason ?? "segment-refused";
  const event = options.event ?? "guideDisplayed";
  const message = relayMessage(options.webhook ?? { ...withUniqueId(PUBLISHED.guideDisplayed), event });
  const letter = deadLetterOf(
    {
      reason,
      source: "default",
      eventId: message.eventId,
      event: message.event,
      attempts: 1,
      lastStatus: reason === "segment-refused" ? 401 : 400,
      detail: "seeded",
      receivedAt: Date.now(),
      message,
    },
    Date.now(),
  );
  await storeForTest(letter);
  return { id: letter.id, message };
}

/** A webhook quarantined under an older rule: authenticated, refused, stored. */
export async function seedQuarantine(webhook: object): Promise<string> {
  const entry = quarantineOf(
    {
      source: "default",
      issues: [{ path: "x", message: "old rule" }],
      body: new TextEncoder().encode(JSON.stringify(webhook)),
    },
    Date.now(),
  );
  await storeForTest(entry);
  return entry.id;
}
