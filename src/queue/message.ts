import * as v from "valibot";
import { utf8Length } from "../destination/calls";

/**
 * What the edge puts on the `pendo-events` queue: one message per accepted webhook, holding its
 * Segment calls already serialized (each under 32 KB), so the consumer packs batches by
 * concatenation and never parses a call again.
 *
 * Encoding (v2): text, sent with `contentType: "text"`: one line of JSON header, then one call per
 * line. `JSON.stringify` never writes a raw newline, so lines split cleanly. Text matters: with
 * the queue's default JSON content type, each call (a JSON string inside a JSON message) would be
 * escaped a second time, and a call full of `"` would double in size and break the 128 KB limit.
 *
 * v1 (an object with `calls: string[]`, sent by earlier deploys) is still read.
 */

export const RELAY_MESSAGE_VERSION = 2;

// Cloudflare Queues: a message is at most 128 KB (developers.cloudflare.com/queues/platform/limits);
// the local simulator counts that as 128,000 bytes, the stricter reading, so the relay does too.
export const MAX_QUEUE_MESSAGE_BYTES = 128_000;

const header = {
  source: v.string(),
  eventId: v.string(),
  /** The Pendo event name as received, for logs and dead-letter filters. */
  event: v.string(),
  /** When the relay accepted the webhook (ms). */
  receivedAt: v.number(),
  /** UTF-8 bytes of all calls, for packing without re-measuring. */
  bytes: v.number(),
  /** Set when an operator replayed a dead letter or a quarantined webhook. */
  replayedAt: v.optional(v.number()),
  /** A `GET /health?deep=1` probe: proves the queue takes writes; acked, never sent. */
  probe: v.optional(v.literal(true)),
  // What the consumer needs for the ledger, decided at the edge so the consumer never parses a
  // call again (all optional: a message of an earlier deploy simply lacks them).
  /** The Pendo visitor id, for the do-not-process check. */
  visitor: v.optional(v.string()),
  /** Pendo's event time (ms): a flag applies to events at or after its own time. */
  eventTime: v.optional(v.number()),
  /** visitorDoNotProcessUpdated: the flag it sets (true) or clears (false). */
  doNotProcess: v.optional(v.boolean()),
  /** The event name is not in the catalog (drift, and counted as "(unknown)"). */
  unmapped: v.optional(v.literal(true)),
  /** Property keys new to the event's family, at most MAX_DRIFT_KEYS, each cut to 100 characters. */
  drift: v.optional(v.array(v.string())),
};

/** Unknown property keys one message carries: bounded whatever a sender invents. */
export const MAX_DRIFT_KEYS = 20;

/** A relay message as the consumer works with it, whatever its encoding on the queue. */
export const RelayMessageSchema = v.object({ ...header, calls: v.array(v.string()) });
export type RelayMessage = v.InferOutput<typeof RelayMessageSchema>;

const HeaderV2Schema = v.object({ v: v.literal(2), ...header });
const MessageV1Schema = v.object({ v: v.literal(1), ...header, calls: v.array(v.string()) });

/** The text the queue stores for a message. */
export function encodeRelayMessage(message: RelayMessage): string {
  const { calls, ...rest } = message;
  return [JSON.stringify({ v: RELAY_MESSAGE_VERSION, ...rest }), ...calls].join("\n");
}

/** Bytes the queue counts for an encoded message: calls are measured once, the header here. */
export function queuedBytes(message: RelayMessage, encoded: string): number {
  const headerLength = encoded.length - message.calls.reduce((sum, call) => sum + call.length + 1, 0);
  return utf8Length(encoded.slice(0, headerLength)) + message.bytes + message.calls.length;
}

export type DecodeResult =
  | { ok: true; message: RelayMessage }
  | { ok: false; reason: "malformed-message"; detail: string };

/** Reads a message from any deploy: v2 text, v1 object. Anything else is malformed. */
export function decodeRelayMessage(input: unknown): DecodeResult {
  // A message sent as bytes (another producer, or a later deploy) is read as its UTF-8 text.
  const body = input instanceof ArrayBuffer || input instanceof Uint8Array ? textOf(input) : input;
  if (typeof body === "string") {
    const newline = body.indexOf("\n");
    const head = newline < 0 ? body : body.slice(0, newline);
    let parsed: unknown;
    try {
      parsed = JSON.parse(head);
    } catch {
      return malformed("the header line is not JSON");
    }
    const checked = v.safeParse(HeaderV2Schema, parsed);
    if (!checked.success) return malformed(describe(checked.issues));
    const { v: _version, ...rest } = checked.output;
    return { ok: true, message: { ...rest, calls: newline < 0 ? [] : body.slice(newline + 1).split("\n") } };
  }
  const checked = v.safeParse(MessageV1Schema, body);
  if (!checked.success) return malformed(describe(checked.issues));
  const { v: _version, ...message } = checked.output;
  return { ok: true, message };
}

function textOf(bytes: ArrayBuffer | Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** What the queue delivered, as bytes: what a malformed message's dead letter keeps. */
export function bytesOfBody(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  const text = typeof body === "string" ? body : (JSON.stringify(body) ?? String(body));
  return new TextEncoder().encode(text);
}

function malformed(detail: string): DecodeResult {
  return { ok: false, reason: "malformed-message", detail };
}

function describe(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues.map((issue) => `${v.getDotPath(issue) ?? "message"}: ${issue.message}`).join("; ");
}
