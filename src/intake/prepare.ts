import type { SegmentCall } from "../destination/calls";
import { PROFILES, shortIdKey } from "../destination/profiles";
import { digestHex } from "../hash";
import type { Issue } from "../issues";
import {
  type CatalogEntry,
  DO_NOT_PROCESS_EVENT,
  doNotProcessFlag,
  unknownPropertyKeys,
} from "../pendo/catalog";
import type { PendoWebhook } from "../pendo/envelope";
import { visitorOf } from "../pendo/identity";
import { readWebhook } from "../pendo/intake";
import { eventTime } from "../pendo/time";
import { transformWebhook } from "../pendo/transform";
import { fitForQueue, MAX_DRIFT_KEYS, type RelayMessage } from "../queue/message";
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

/** Cut so that a hostile key cannot bloat a queue message or a ledger row. */
const DRIFT_KEY_LIMIT = 100;

export interface PrepareOptions {
  /**
   * Carry the webhook's own text in the message (ARCHIVE_MODE failures or all), when it fits
   * the queue's 128 KB beside its calls; a webhook too large for that travels as its calls only.
   */
  keepRaw?: boolean;
}

/**
 * Raw webhook body -> the queue message for it: intake checks, the event id (Pendo's uniqueId,
 * or a SHA-1 of the body so redeliveries still dedupe), and the transform. Shared by the webhook
 * route, replays of stored webhooks, archive replay and the debug route, so all judge a body the
 * same way.
 */
export async function prepareEvent(
  text: string,
  source: Source,
  receivedAt: number,
  options: PrepareOptions = {},
): Promise<PreparedEvent> {
  const intake = readWebhook(text);
  if (!intake.ok) return intake;
  const { webhook, entry } = intake;
  const eventId = webhook.uniqueId ?? (await sha1Hex(text));
  const result = transformWebhook(webhook, {
    source: source.name,
    eventNames: source.eventNames,
    trackEvents: source.trackEvents,
    eventId,
    idKey:
      PROFILES[source.destination].messageIds === "short"
        ? await shortIdKey(source.name, eventId)
        : undefined,
    receivedAt,
    asciiOnly: intake.ascii,
    warnings: intake.warnings,
    invalid: intake.invalid,
  });
  if (!result.ok) {
    const detail = `${result.callType} call is ${result.bytes} bytes after trimming; Segment's limit is 32768`;
    return { ok: false, reason: "event-too-large", webhook, eventId, detail };
  }
  const doNotProcess =
    webhook.event === DO_NOT_PROCESS_EVENT ? doNotProcessFlag(webhook.properties) : undefined;
  const message: RelayMessage = {
    source: source.name,
    eventId,
    event: webhook.event,
    receivedAt,
    calls: result.encoded.map((call) => call.json),
    bytes: result.encoded.reduce((sum, call) => sum + call.bytes, 0),
    eventTime: Date.parse(eventTime(webhook.timestamp, receivedAt).iso),
  };
  const visitor = visitorOf(webhook);
  if (visitor !== undefined) message.visitor = visitor;
  if (doNotProcess !== undefined) message.doNotProcess = doNotProcess;
  if (!entry) message.unmapped = true;
  const drift = unknownPropertyKeys(entry, webhook.properties);
  if (drift.length > 0) {
    message.drift = drift.slice(-MAX_DRIFT_KEYS).map((key) => key.slice(0, DRIFT_KEY_LIMIT));
  }
  if (options.keepRaw) message.raw = text;
  // Each call fits 32 KB, so three fit 128 KB; measured anyway, as the queue will count it.
  const fitted = fitForQueue(message);
  if (!fitted.ok) return { ok: false, reason: "event-too-large", webhook, eventId, detail: fitted.detail };
  const { encoded, bytes } = fitted;
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
    doNotProcess,
  };
}

/** 40 hex characters, the shape of Pendo's own uniqueId. */
const sha1Hex = (text: string) => digestHex("SHA-1", text);
