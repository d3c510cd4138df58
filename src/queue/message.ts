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
 * v3: the same, when the webhook's own bytes travel with it (ARCHIVE_MODE failures or all): the
 * header counts its calls (`callCount`), and everything after the last call's line is the webhook
 * as received, verbatim (it may hold newlines). A v2 reader refuses a v3 header, so a deploy from
 * before v3 keeps such a message as a malformed dead letter (replayable) and never sends the
 * webhook's lines as calls.
 *
 * v1 (an object with `calls: string[]`, sent by earlier deploys) is still read.
 *
 * Control messages (`{"v":"control",…}`, one line) drive the relay's own chains through the same
 * queue: a destination's probe and drain in outage mode, and an archive replay job's next step.
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
  /** An archive replay to another destination than the source's own (a destination id). */
  destination: v.optional(v.string()),
};

/** Unknown property keys one message carries: bounded whatever a sender invents. */
export const MAX_DRIFT_KEYS = 20;

/** A relay message as the consumer works with it, whatever its encoding on the queue. */
export const RelayMessageSchema = v.object({
  ...header,
  calls: v.array(v.string()),
  /** The webhook as received (v3), for the archive and for replays mapped by today's code. */
  raw: v.optional(v.string()),
});
export type RelayMessage = v.InferOutput<typeof RelayMessageSchema>;

const HeaderV2Schema = v.object({ v: v.literal(2), ...header });
const HeaderV3Schema = v.object({
  v: v.literal(3),
  ...header,
  callCount: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
const MessageV1Schema = v.object({ v: v.literal(1), ...header, calls: v.array(v.string()) });

/** What drives the relay's own chains; see src/delivery/control.ts. */
export const ControlSchema = v.variant("kind", [
  v.object({
    v: v.literal("control"),
    kind: v.literal("destination"),
    destination: v.string(),
    chain: v.string(),
  }),
  v.object({ v: v.literal("control"), kind: v.literal("replay-job"), job: v.string(), chain: v.string() }),
]);
export type ControlMessage = v.InferOutput<typeof ControlSchema>;

export const encodeControl = (control: ControlMessage): string => JSON.stringify(control);

/** The text the queue stores for a message. */
export function encodeRelayMessage(message: RelayMessage): string {
  const { calls, raw, ...rest } = message;
  if (raw === undefined) return [JSON.stringify({ v: RELAY_MESSAGE_VERSION, ...rest }), ...calls].join("\n");
  return [JSON.stringify({ v: 3, ...rest, callCount: calls.length }), ...calls, raw].join("\n");
}

/** Bytes the queue counts for an encoded message: calls are measured once, the rest here. */
export type Fitted =
  | { ok: true; encoded: string; bytes: number }
  | { ok: false; bytes: number; detail: string };

/**
 * A message encoded for the queue, measured as the queue counts it. Past the queue's limit, the
 * raw webhook is dropped from it (the webhook then travels, and is archived, as its calls); still
 * past it, the message cannot travel at all.
 */
export function fitForQueue(message: RelayMessage): Fitted {
  let encoded = encodeRelayMessage(message);
  let bytes = queuedBytes(message, encoded);
  if (bytes > MAX_QUEUE_MESSAGE_BYTES && message.raw !== undefined) {
    delete message.raw;
    encoded = encodeRelayMessage(message);
    bytes = queuedBytes(message, encoded);
  }
  if (bytes <= MAX_QUEUE_MESSAGE_BYTES) return { ok: true, encoded, bytes };
  return {
    ok: false,
    bytes,
    detail: `the queue message is ${bytes} bytes; a queue message holds at most ${MAX_QUEUE_MESSAGE_BYTES}`,
  };
}

export function queuedBytes(message: RelayMessage, encoded: string): number {
  const callsLength = message.calls.reduce((sum, call) => sum + call.length + 1, 0);
  const rest = encoded.length - callsLength;
  // The header (and the raw webhook, after the calls) measured; the calls' bytes are known.
  const header = encoded.slice(0, message.raw === undefined ? rest : rest - message.raw.length - 1);
  const raw = message.raw === undefined ? 0 : utf8Length(message.raw) + 1;
  return utf8Length(header) + message.bytes + message.calls.length + raw;
}

export type DecodeResult =
  | { ok: true; message: RelayMessage }
  | { ok: false; reason: "malformed-message"; detail: string };

export type QueueBody = DecodeResult | { ok: true; control: ControlMessage };

/** What the queue delivered: a relay message of any deploy, or a control message. */
export function decodeQueueBody(input: unknown): QueueBody {
  if (typeof input === "string" && input.startsWith('{"v":"control"')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch {
      return malformed("the control message is not JSON");
    }
    const checked = v.safeParse(ControlSchema, parsed);
    return checked.success ? { ok: true, control: checked.output } : malformed(describe(checked.issues));
  }
  return decodeRelayMessage(input);
}

/** Reads a message from any deploy: v3 and v2 text, v1 object. Anything else is malformed. */
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
    if ((parsed as { v?: unknown } | null)?.v === 3) return decodeV3(body, newline, parsed);
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

/** v3: `callCount` lines of calls after the header, then the raw webhook, verbatim. */
function decodeV3(body: string, newline: number, parsed: unknown): DecodeResult {
  const checked = v.safeParse(HeaderV3Schema, parsed);
  if (!checked.success) return malformed(describe(checked.issues));
  const { v: _version, callCount, ...rest } = checked.output;
  const calls: string[] = [];
  let at = newline + 1;
  for (let i = 0; i < callCount; i++) {
    const end = body.indexOf("\n", at);
    if (newline < 0 || end < 0) return malformed(`the message holds fewer than its ${callCount} calls`);
    calls.push(body.slice(at, end));
    at = end + 1;
  }
  return { ok: true, message: { ...rest, calls, raw: body.slice(at) } };
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
