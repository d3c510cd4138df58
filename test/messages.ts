import type { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import * as v from "valibot";
import { KEY_PREFIX } from "../src/kv/keys";
import {
  type DeadLetter,
  type DeadLetterReason,
  DeadLetterSchema,
  deadLetterOf,
  newRecordId,
  putDeadLetter,
  putQuarantine,
  type RecordMeta,
} from "../src/kv/records";
import { readWebhook } from "../src/pendo/intake";
import { transformWebhook } from "../src/pendo/transform";
import { encodeRelayMessage, type RelayMessage } from "../src/queue/message";
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
  return {
    source: "default",
    eventId,
    event: intake.webhook.event,
    receivedAt: Date.now(),
    calls: result.encoded.map((call) => call.json),
    bytes: result.encoded.reduce((sum, call) => sum + call.bytes, 0),
  };
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
    id: `msg-${index}-${"raw" in body ? "raw" : body.eventId}`,
    timestamp,
    attempts,
    body: "raw" in body ? body.raw : encodeRelayMessage(body),
  }));
}

/** Every dead letter stored, checked against its schema as the admin API reads it. */
export async function deadLetters(): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.DEDUP.list<RecordMeta>({ prefix: KEY_PREFIX.deadLetter, cursor });
    for (const key of page.keys)
      letters.push(v.parse(DeadLetterSchema, await env.DEDUP.get(key.name, "json")));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return letters;
}

/** The dead letter of one event, found by the eventId its listing metadata carries. */
export async function deadLetterFor(eventId: string): Promise<DeadLetter | undefined> {
  const { keys } = await env.DEDUP.list<RecordMeta>({ prefix: KEY_PREFIX.deadLetter });
  const match = keys.find((key) => key.metadata?.eventId === eventId);
  return match ? v.parse(DeadLetterSchema, await env.DEDUP.get(match.name, "json")) : undefined;
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
  await putDeadLetter(env.DEDUP, letter, 3_600);
  return { id: letter.id, message };
}

/** A webhook quarantined as an older relay would have kept it: authenticated, refused, stored. */
export async function seedQuarantine(webhook: object): Promise<string> {
  const id = newRecordId(Date.now(), "default");
  const rawBody = JSON.stringify(webhook);
  const entry = {
    id,
    source: "default",
    receivedAt: Date.now(),
    issues: [{ path: "x", message: "old rule" }],
    rawBody,
  };
  await putQuarantine(env.DEDUP, entry, 3_600);
  return id;
}
