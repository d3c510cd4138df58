/**
 * Segment caps a /v1/batch request at 500 KB and, silently, at 2,500 events; analytics-node
 * packs to 480 KB to leave headroom, and so does the relay.
 */
export const MAX_REQUEST_BYTES = 480 * 1024;
export const MAX_REQUEST_EVENTS = 2_500;

/** What packing needs of a unit: its calls, serialized once, and their UTF-8 bytes. */
export interface Packable {
  calls: readonly string[];
  bytes: number;
}

// `{"batch":[` + `],"sentAt":"2026-01-01T00:00:00.000Z"}`: ISO times are always 24 characters.
const ENVELOPE_BYTES = '{"batch":[],"sentAt":""}'.length + 24;

/**
 * Greedy packing in arrival order: a unit's calls always travel together, so a unit is settled
 * by exactly one request's answer.
 */
export function packBatches<T extends Packable>(
  units: readonly T[],
  maxBytes = MAX_REQUEST_BYTES,
  maxEvents = MAX_REQUEST_EVENTS,
): T[][] {
  const requests: T[][] = [];
  let current: T[] = [];
  let bytes = ENVELOPE_BYTES;
  let events = 0;
  for (const unit of units) {
    // One comma between calls, including between this unit's calls and the previous ones.
    const size = unit.bytes + unit.calls.length;
    if (current.length > 0 && (bytes + size > maxBytes || events + unit.calls.length > maxEvents)) {
      requests.push(current);
      current = [];
      bytes = ENVELOPE_BYTES;
      events = 0;
    }
    current.push(unit);
    bytes += size;
    events += unit.calls.length;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/** The request body, built by concatenating calls serialized once at the edge. */
export function batchBody(units: readonly Packable[], sentAt: string): string {
  const calls = units.flatMap((unit) => unit.calls);
  return `{"batch":[${calls.join(",")}],"sentAt":"${sentAt}"}`;
}

/** Exact UTF-8 size of `batchBody(units, …)`. */
export function batchBytes(units: readonly Packable[]): number {
  return ENVELOPE_BYTES + units.reduce((sum, unit) => sum + unit.bytes + unit.calls.length, 0) - 1;
}

export function countCalls(units: readonly Packable[]): number {
  return units.reduce((sum, unit) => sum + unit.calls.length, 0);
}
