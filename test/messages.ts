import type { createMessageBatch } from "cloudflare:test";
import type { RelayMessage } from "../src/delivery/message";
import { relayMessageOf } from "../src/delivery/prepare";
import { readWebhook } from "../src/pendo/intake";
import { transformWebhook } from "../src/pendo/transform";
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
  return relayMessageOf("default", intake.webhook.event, eventId, Date.now(), result.encoded);
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

type TestQueueMessage = Parameters<typeof createMessageBatch<RelayMessage>>[1][number];

export function queueMessages(bodies: RelayMessage[], attempts = 1): TestQueueMessage[] {
  return bodies.map((body, index) => ({
    id: `msg-${index}-${body.eventId}`,
    timestamp: new Date(),
    attempts,
    body,
  }));
}
