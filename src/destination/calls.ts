/**
 * Segment Spec calls as the relay sends them (segment.com/docs/connections/spec/common).
 * `sentAt` is set per request by the consumer, never here.
 */

export interface SegmentLibrary {
  name: "pendo-segment-relay";
  version: string;
}

export interface SegmentContext {
  library: SegmentLibrary;
  userAgent?: string;
  groupId?: string;
  pendo: Record<string, unknown>;
}

interface SegmentCallBase {
  messageId: string;
  timestamp: string;
  userId?: string;
  anonymousId?: string;
  context: SegmentContext;
}

export interface SegmentTrack extends SegmentCallBase {
  type: "track";
  event: string;
  properties: Record<string, unknown>;
}
export interface SegmentIdentify extends SegmentCallBase {
  type: "identify";
  traits: Record<string, unknown>;
}
export interface SegmentGroup extends SegmentCallBase {
  type: "group";
  groupId: string;
  traits: Record<string, unknown>;
}

export type SegmentCall = SegmentTrack | SegmentIdentify | SegmentGroup;

/** A call serialized once, at the edge; the consumer concatenates these without re-parsing. */
export interface EncodedCall {
  json: string;
  bytes: number;
}

// Segment rejects an event over 32 KB (segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size).
export const MAX_EVENT_BYTES = 32 * 1024;

// Native and fast: most Segment calls are pure ASCII, whose UTF-8 length is their length.
const NON_ASCII = /[\u0080-\uffff]/;

/** UTF-8 length of a string without allocating an encoded copy. */
export function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a surrogate pair: 2 UTF-16 units, 4 UTF-8 bytes
        i++;
      } else bytes += 2; // a lone surrogate is written as U+FFFD, 3 bytes
    } else bytes += 2;
  }
  return bytes;
}

/** Serialized once. `ascii`: the caller knows the call holds no non-ASCII text, so no scan is needed. */
export function encodeCall(call: SegmentCall, ascii = false): EncodedCall {
  const json = JSON.stringify(call);
  return { json, bytes: ascii ? json.length : utf8Length(json) };
}
