import { digestHex } from "../hash";
import type { Issue } from "../issues";
import { type CatalogEntry, DO_NOT_PROCESS_EVENT, doNotProcessFlag } from "../pendo/catalog";
import type { PendoWebhook } from "../pendo/envelope";
import { readWebhook } from "../pendo/intake";
import { transformWebhook } from "../pendo/transform";
import {
  encodeRelayMessage,
  MAX_QUEUE_MESSAGE_BYTES,
  queuedBytes,
  type RelayMessage,
} from "../queue/message";
import type { SegmentCall } from "../segment/calls";
import type { Source } from "../sources";

/** A webhook judged by the edge: ready to enqueue, or why not. */
export type PreparedEvent =
  | { ok: false; reason: "invalid"; issues: Issue[] }
  | { ok: false; reason: "event-too-large"; webhook: PendoWebhook; eventId: string; detail: string }
  | {
      ok: true;
      webhook: PendoWebhook;
      entry: CatalogEntry | undefined;
      eventId: string;
      calls: SegmentCall[];
      message: RelayMessage;
      /** The message as the queue stores it (text), and its bytes as the queue counts them. */
      encoded: string;
      queuedBytes: number;
      warnings: Issue[];
      /** For visitorDoNotProcessUpdated: the flag to set, when it is readable. */
      doNotProcess: boolean | undefined;
    };

/**
 * Raw webhook body -> the queue message for it: intake checks, the event id (Pendo's uniqueId,
 * or a SHA-1 of the body so redeliveries still dedupe), and the transform. Shared by the webhook
 * route, quarantine replay and the debug route, so all three judge a body the same way.
 */
export async function prepareEvent(text: string, source: Source, receivedAt: number): Promise<PreparedEvent> {
  const intake = readWebhook(text);
  if (!intake.ok) return intake;
  const { webhook, entry } = intake;
  const eventId = webhook.uniqueId ?? (await sha1Hex(text));
  const result = transformWebhook(webhook, {
    source: source.name,
    eventNames: source.eventNames,
    trackEvents: source.trackEvents,
    eventId,
    receivedAt,
    asciiOnly: intake.ascii,
    warnings: intake.warnings,
    invalid: intake.invalid,
  });
  if (!result.ok) {
    const detail = `${result.callType} call is ${result.bytes} bytes after trimming; Segment's limit is 32768`;
    return { ok: false, reason: "event-too-large", webhook, eventId, detail };
  }
  const message: RelayMessage = {
    source: source.name,
    eventId,
    event: webhook.event,
    receivedAt,
    calls: result.encoded.map((call) => call.json),
    bytes: result.encoded.reduce((sum, call) => sum + call.bytes, 0),
  };
  const encoded = encodeRelayMessage(message);
  const bytes = queuedBytes(message, encoded);
  // Each call fits 32 KB, so three fit 128 KB; measured anyway, as the queue will count it.
  if (bytes > MAX_QUEUE_MESSAGE_BYTES) {
    const detail = `the queue message is ${bytes} bytes; a queue message holds at most ${MAX_QUEUE_MESSAGE_BYTES}`;
    return { ok: false, reason: "event-too-large", webhook, eventId, detail };
  }
  return {
    ok: true,
    webhook,
    entry,
    eventId,
    calls: result.calls,
    message,
    encoded,
    queuedBytes: bytes,
    warnings: result.warnings,
    doNotProcess: webhook.event === DO_NOT_PROCESS_EVENT ? doNotProcessFlag(webhook.properties) : undefined,
  };
}

/** 40 hex characters, the shape of Pendo's own uniqueId. */
const sha1Hex = (text: string) => digestHex("SHA-1", text);
