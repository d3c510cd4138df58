import type { RelayMessage } from "../delivery/message";

/**
 * Segment caps a /v1/batch request at 500 KB and, silently, at 2,500 events; analytics-node
 * packs to 480 KB to leave headroom, and so does the relay.
 */
export const MAX_REQUEST_BYTES = 480 * 1024;
export const MAX_REQUEST_EVENTS = 2_500;

// `{"batch":[` + `],"sentAt":"2026-01-01T00:00:00.000Z"}`: ISO times are always 24 characters.
const ENVELOPE_BYTES = '{"batch":[],"sentAt":""}'.length + 24;

/**
 * Greedy packing in arrival order: a message's calls always travel together, so a message is
 * settled by exactly one request's answer.
 */
export function packBatches<T extends { body: RelayMessage }>(
  messages: readonly T[],
  maxBytes = MAX_REQUEST_BYTES,
  maxEvents = MAX_REQUEST_EVENTS,
): T[][] {
  const requests: T[][] = [];
  let current: T[] = [];
  let bytes = ENVELOPE_BYTES;
  let events = 0;
  for (const message of messages) {
    const { calls, bytes: callBytes } = message.body;
    // One comma between calls, including between this message's calls and the previous ones.
    const size = callBytes + calls.length;
    if (current.length > 0 && (bytes + size > maxBytes || events + calls.length > maxEvents)) {
      requests.push(current);
      current = [];
      bytes = ENVELOPE_BYTES;
      events = 0;
    }
    current.push(message);
    bytes += size;
    events += calls.length;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/** The request body, built by concatenating calls serialized once at the edge. */
export function batchBody(messages: readonly { body: RelayMessage }[], sentAt: string): string {
  const calls = messages.flatMap((message) => message.body.calls);
  return `{"batch":[${calls.join(",")}],"sentAt":"${sentAt}"}`;
}

export function countCalls(messages: readonly { body: RelayMessage }[]): number {
  return messages.reduce((sum, message) => sum + message.body.calls.length, 0);
}
