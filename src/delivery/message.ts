/**
 * What the edge puts on the `pendo-events` queue: one message per accepted webhook, holding its
 * Segment calls already serialized (each under 32 KB), so the consumer packs batches by
 * concatenation. Cloudflare caps a queue message at 128 KB; a webhook's calls stay under it
 * (at most three calls of 32 KB each).
 */
export interface RelayMessage {
  v: 1;
  source: string;
  eventId: string;
  /** The Pendo event name as received, for logs and dead-letter filters. */
  event: string;
  /** When the relay accepted the webhook (ms). */
  receivedAt: number;
  calls: string[];
  /** UTF-8 bytes of all calls, for packing without re-measuring. */
  bytes: number;
  /** Set when an operator replayed a dead letter or a quarantined webhook. */
  replayedAt?: number;
  /** A `GET /health?deep=1` probe: proves the queue takes writes; acked, never sent. */
  probe?: true;
}
