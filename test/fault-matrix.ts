/**
 * The fault matrix: every binding call the relay makes and every answer Segment can give, at each
 * stage an event passes, with where the event ends. test/faults.test.ts runs every row and
 * asserts exactly what the row says; docs/reliability.md shows this table, generated from it. An
 * event may end only one of these ways: the sender got a 5xx (and retries), it was delivered (a
 * 2xx from Segment), or it was stored before anyone was told otherwise (dead-lettered,
 * quarantined); "retried by the queue" is a way station whose last step is a dead letter.
 * (The DLQ's send is done by the platform, not by relay code, so it has no row of its own.)
 */
export type FaultEnd =
  | "sender retries"
  | "delivered"
  | "dead-lettered"
  | "quarantined"
  | "retried by the queue"
  | "dropped (do-not-process)";

export interface FaultCell {
  id: string;
  stage: string;
  fault: string;
  /** What the sender (Pendo, or the operator for replay) is answered; "-" where nobody waits. */
  answer: string;
  ends: string;
  expect: { status?: number; end: FaultEnd; reason?: string };
}

const edge = "Edge (`POST /pendo`)";
const consumer = "Consumer (`pendo-events`)";
const dlq = "Dead-letter queue consumer";
const replay = "Admin replay";
const cron = "Cron (`scheduled`, every 5 minutes)";

export const FAULT_MATRIX: readonly FaultCell[] = [
  {
    id: "edge-kv-get",
    stage: edge,
    fault: "KV get (dedup marker) fails",
    answer: "503",
    ends: "sender retries",
    expect: { status: 503, end: "sender retries" },
  },
  {
    id: "edge-queue-send",
    stage: edge,
    fault: "Queue send fails",
    answer: "503, no dedup marker",
    ends: "sender retries",
    expect: { status: 503, end: "sender retries" },
  },
  {
    id: "edge-kv-put-marker",
    stage: edge,
    fault: "KV put (dedup marker, after the enqueue) fails",
    answer: "202",
    ends: "delivered (a redelivery is enqueued again under the same messageIds; Segment keeps one)",
    expect: { status: 202, end: "delivered" },
  },
  {
    id: "edge-quarantine-stored",
    stage: edge,
    fault: "Body cannot be mapped (no event name)",
    answer: "400 naming the field",
    ends: "quarantined, before the answer",
    expect: { status: 400, end: "quarantined" },
  },
  {
    id: "edge-d1-quarantine",
    stage: edge,
    fault: "D1 insert (quarantine) fails",
    answer: "503",
    ends: "sender retries",
    expect: { status: 503, end: "sender retries" },
  },
  {
    id: "edge-too-large-stored",
    stage: edge,
    fault: "Event over 32 KB after trimming",
    answer: "202 dead-lettered",
    ends: "dead-lettered, before the answer",
    expect: { status: 202, end: "dead-lettered", reason: "event-too-large" },
  },
  {
    id: "edge-d1-dead-letter",
    stage: edge,
    fault: "D1 insert (edge dead letter) fails",
    answer: "503",
    ends: "sender retries",
    expect: { status: 503, end: "sender retries" },
  },
  {
    id: "edge-d1-flag-set",
    stage: edge,
    fault: "D1 upsert (setting a do-not-process flag) fails",
    answer: "503, nothing enqueued",
    ends: "sender retries",
    expect: { status: 503, end: "sender retries" },
  },
  {
    id: "edge-d1-flag-clear",
    stage: edge,
    fault: "D1 upsert (clearing a do-not-process flag) fails",
    answer: "503, nothing enqueued",
    ends: "sender retries",
    expect: { status: 503, end: "sender retries" },
  },
  {
    id: "edge-escaped-calls",
    stage: edge,
    fault: 'Calls full of `"` (16,000 in visitor metadata)',
    answer: "202",
    ends: "delivered: the queue message is text, so nothing is escaped twice",
    expect: { status: 202, end: "delivered" },
  },
  {
    id: "segment-2xx",
    stage: consumer,
    fault: "Segment answers 200",
    answer: "-",
    ends: "delivered, acked",
    expect: { end: "delivered" },
  },
  {
    id: "segment-3xx",
    stage: consumer,
    fault: "Segment answers 301 (a moved endpoint)",
    answer: "-",
    ends: "retried with backoff, logged at error level with its Location; never counted as delivered",
    expect: { end: "retried by the queue" },
  },
  {
    id: "segment-400",
    stage: consumer,
    fault: "Segment answers 400 for one event of the batch",
    answer: "-",
    ends: "the rest delivered; that event dead-lettered",
    expect: { end: "dead-lettered", reason: "segment-rejected" },
  },
  {
    id: "segment-413",
    stage: consumer,
    fault: "Segment answers 413",
    answer: "-",
    ends: "dead-lettered at once",
    expect: { end: "dead-lettered", reason: "segment-refused" },
  },
  {
    id: "segment-429-retry-after",
    stage: consumer,
    fault: "Segment answers 429 with `Retry-After: 1`",
    answer: "-",
    ends: "retried after the larger of Retry-After and the backoff",
    expect: { end: "retried by the queue" },
  },
  {
    id: "segment-429",
    stage: consumer,
    fault: "Segment answers 429 without Retry-After",
    answer: "-",
    ends: "retried with backoff",
    expect: { end: "retried by the queue" },
  },
  {
    id: "segment-5xx",
    stage: consumer,
    fault: "Segment answers 503",
    answer: "-",
    ends: "retried with backoff",
    expect: { end: "retried by the queue" },
  },
  {
    id: "segment-timeout",
    stage: consumer,
    fault: "Segment does not answer within `SEGMENT_TIMEOUT_MS`",
    answer: "-",
    ends: "retried with backoff",
    expect: { end: "retried by the queue" },
  },
  {
    id: "segment-network",
    stage: consumer,
    fault: "Connection error",
    answer: "-",
    ends: "retried with backoff",
    expect: { end: "retried by the queue" },
  },
  {
    id: "segment-last-attempt",
    stage: consumer,
    fault: "Any retried answer on the last allowed attempt",
    answer: "-",
    ends: "dead-lettered with the last status",
    expect: { end: "dead-lettered", reason: "retries-exhausted" },
  },
  {
    id: "segment-past-retention",
    stage: consumer,
    fault: "A retry that would outlive the queue's retention (`QUEUE_RETENTION_SECONDS`)",
    answer: "-",
    ends: "dead-lettered now, instead of expiring on the queue",
    expect: { end: "dead-lettered", reason: "retries-exhausted" },
  },
  {
    id: "consumer-d1-dead-letter",
    stage: consumer,
    fault: "D1 insert (dead letters of the batch) fails",
    answer: "-",
    ends: "stored in KV (`fallback:`), acked; the cron moves it into D1",
    expect: { end: "dead-lettered", reason: "segment-refused" },
  },
  {
    id: "consumer-d1-and-kv-dead-letter",
    stage: consumer,
    fault: "D1 insert and the KV fallback both fail",
    answer: "-",
    ends: "not acked: retried, never later than the queue's retention allows",
    expect: { end: "retried by the queue" },
  },
  {
    id: "consumer-d1-flags",
    stage: consumer,
    fault: "D1 query (do-not-process flags of the batch) fails",
    answer: "-",
    ends: "nothing sent; the batch is retried with backoff",
    expect: { end: "retried by the queue" },
  },
  {
    id: "consumer-d1-counters",
    stage: consumer,
    fault: "D1 batch (counters, drift, delivery status) fails",
    answer: "-",
    ends: "delivered and acked; the failure is logged",
    expect: { end: "delivered" },
  },
  {
    id: "consumer-budget",
    stage: consumer,
    fault: "Bisection needs more requests than `SEGMENT_REQUEST_BUDGET`",
    answer: "-",
    ends: "what the budget could not send is retried, not failed",
    expect: { end: "retried by the queue" },
  },
  {
    id: "consumer-malformed",
    stage: consumer,
    fault: "A message no relay wrote",
    answer: "-",
    ends: "dead-lettered at once; its neighbours delivered",
    expect: { end: "dead-lettered", reason: "malformed-message" },
  },
  {
    id: "consumer-v1",
    stage: consumer,
    fault: "A message from the previous deploy (v1, JSON)",
    answer: "-",
    ends: "delivered",
    expect: { end: "delivered" },
  },
  {
    id: "dlq-stored",
    stage: dlq,
    fault: "A message the main queue gave up on",
    answer: "-",
    ends: "dead-lettered",
    expect: { end: "dead-lettered", reason: "queue-exhausted" },
  },
  {
    id: "dlq-d1",
    stage: dlq,
    fault: "D1 insert (dead letter) fails",
    answer: "-",
    ends: "stored in KV (`fallback:`), acked",
    expect: { end: "dead-lettered", reason: "queue-exhausted" },
  },
  {
    id: "dlq-d1-and-kv",
    stage: dlq,
    fault: "D1 insert and the KV fallback both fail",
    answer: "-",
    ends: "retried with growing delays, never past the retention, never acked unstored",
    expect: { end: "retried by the queue" },
  },
  {
    id: "dlq-d1-and-kv-last",
    stage: dlq,
    fault: "Both stores fail on the last attempt",
    answer: "-",
    ends: "the message written whole (base64) to one error line (`dead-letter-lost`), for recovery from Workers Logs",
    expect: { end: "retried by the queue" },
  },
  {
    id: "replay-queue-send",
    stage: replay,
    fault: "Queue send fails",
    answer: "503 for that record",
    ends: "still stored, not claimed: can be replayed again",
    expect: { status: 503, end: "dead-lettered" },
  },
  {
    id: "replay-d1-claim",
    stage: replay,
    fault: "D1 update (claim) fails",
    answer: "503",
    ends: "still stored, nothing sent",
    expect: { status: 503, end: "dead-lettered" },
  },
  {
    id: "replay-d1-delete",
    stage: replay,
    fault: "D1 delete (after the send) fails",
    answer: "202, `removed: false`",
    ends: "delivered; the row stays claimed and is never replayed again",
    expect: { status: 202, end: "delivered" },
  },
  {
    id: "replay-twice",
    stage: replay,
    fault: "Replayed again while an earlier replay's claim stands",
    answer: "409 `already-replayed`",
    ends: "delivered once",
    expect: { status: 409, end: "delivered" },
  },
  {
    id: "cron-moves-fallback",
    stage: cron,
    fault: "A dead letter waits in KV (`fallback:`)",
    answer: "-",
    ends: "moved into D1, then the KV key deleted",
    expect: { end: "dead-lettered", reason: "segment-refused" },
  },
  {
    id: "cron-d1-down",
    stage: cron,
    fault: "D1 fails while the cron moves a fallback",
    answer: "-",
    ends: "the record stays in KV for the next run",
    expect: { end: "dead-lettered", reason: "segment-refused" },
  },
];
