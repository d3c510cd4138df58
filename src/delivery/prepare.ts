import type { CatalogEntry } from "../pendo/catalog";
import type { PendoWebhook, ValidationIssue } from "../pendo/envelope";
import { readWebhook } from "../pendo/intake";
import { transformWebhook } from "../pendo/transform";
import type { EncodedCall, SegmentCall } from "../segment/calls";
import type { Source } from "../sources";
import type { RelayMessage } from "./message";

export type PreparedEvent =
  | { ok: false; kind: "invalid"; issues: ValidationIssue[] }
  | {
      ok: false;
      kind: "too-large";
      webhook: PendoWebhook;
      eventId: string;
      detail: string;
    }
  | {
      ok: true;
      webhook: PendoWebhook;
      entry: CatalogEntry | undefined;
      eventId: string;
      calls: SegmentCall[];
      message: RelayMessage;
    };

/**
 * Raw webhook body -> the queue message for it: validation, the event id (Pendo's uniqueId, or a
 * SHA-1 of the body so redeliveries still dedupe), and the transform. Shared by the webhook route,
 * quarantine replay and the debug route, so all three judge a body the same way.
 */
export async function prepareEvent(text: string, source: Source, receivedAt: number): Promise<PreparedEvent> {
  const intake = readWebhook(text);
  if (!intake.ok) return { ok: false, kind: "invalid", issues: intake.issues };
  const { webhook, entry } = intake;
  const eventId = webhook.uniqueId ?? (await sha1Hex(text));
  const result = transformWebhook(webhook, {
    source: source.name,
    eventNames: source.eventNames,
    trackEvents: source.trackEvents,
    eventId,
    receivedAt,
    asciiOnly: intake.ascii,
  });
  if (!result.ok) {
    const detail = `${result.callType} call is ${result.bytes} bytes after trimming; Segment's limit is 32768`;
    return { ok: false, kind: "too-large", webhook, eventId, detail };
  }
  const message = relayMessageOf(source.name, webhook.event, eventId, receivedAt, result.encoded);
  return { ok: true, webhook, entry, eventId, calls: result.calls, message };
}

/** The queue message for one webhook's encoded calls. */
export function relayMessageOf(
  source: string,
  event: string,
  eventId: string,
  receivedAt: number,
  encoded: readonly EncodedCall[],
): RelayMessage {
  return {
    v: 1,
    source,
    eventId,
    event,
    receivedAt,
    calls: encoded.map((call) => call.json),
    bytes: encoded.reduce((sum, call) => sum + call.bytes, 0),
  };
}

const encoder = new TextEncoder();

export async function digestHex(algorithm: "SHA-1" | "SHA-256", text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, encoder.encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** 40 hex characters, the shape of Pendo's own uniqueId. */
const sha1Hex = (text: string) => digestHex("SHA-1", text);
