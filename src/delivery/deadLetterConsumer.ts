import { alertSoon } from "../alerts/notify";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { base64Of, type DeadLetterInput, deadLetterOf, type LedgerRecord } from "../ledger/records";
import { log } from "../log";
import { bytesOfBody, decodeQueueBody } from "../queue/message";
import { delayWithinRetention, retryDelaySeconds, retrySchedule } from "./backoff";
import { malformedLetter, storeLetters } from "./letters";

/**
 * The dead-letter queue has no queue behind it, so its consumer must not give up early. Its
 * `max_retries` in wrangler.toml (held equal to this by a test) with delays growing from a minute
 * to half an hour spans about 11 to 23 hours: inside the shortest retention a queue has (the
 * Free plan's fixed 24 hours), so even the last attempt, which logs the whole message, runs
 * before the queue could expire it.
 */
export const DLQ_MAX_RETRIES = 50;
export const DLQ_RETRY_BASE_SECONDS = 60;
export const DLQ_RETRY_MAX_SECONDS = 1_800;
// Queues on the Workers Free plan keep messages 24 hours (Paid: 4 days unless configured).
export const SHORTEST_QUEUE_RETENTION_SECONDS = 86_400;

/** When the last DLQ retry can run at the latest, for docs and the retention test. */
export const dlqSchedule = () =>
  retrySchedule(DLQ_MAX_RETRIES, DLQ_RETRY_BASE_SECONDS, DLQ_RETRY_MAX_SECONDS);

/**
 * The `pendo-events-dlq` consumer: messages the queue gave up on without the main consumer
 * settling them (it crashed or ran out of time on every try). Each is stored like any dead
 * letter, and counted with it: bytes in R2, its row in the ledger, else in R2's `pending/` (the
 * second store). A message no store takes is retried
 * with growing delays, never past its retention; on the very last attempt it is written to the
 * error log as base64, one message per invocation (`max_batch_size = 1` in wrangler.toml), so the
 * line stays under the platform's 256 KB of logs per invocation and can be recovered from
 * Workers Logs.
 */
export async function consumeDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const config = loadSettings(env);
  const retention = config.ok ? config.settings.QUEUE_RETENTION_SECONDS : SHORTEST_QUEUE_RETENTION_SECONDS;
  const maxRetries = config.ok ? config.settings.MAX_RETRIES : null;
  const now = Date.now();
  const letters: { queued: Message<unknown>; record: LedgerRecord }[] = [];
  for (const queued of batch.messages) {
    const decoded = decodeQueueBody(queued.body);
    if (decoded.ok && "control" in decoded) {
      // A chain step the main queue gave up on: nothing of a sender's is in it, and the cron
      // restarts a chain that went quiet.
      log("warn", "control-exhausted", { kind: decoded.control.kind });
      queued.ack();
      continue;
    }
    const input: DeadLetterInput = decoded.ok
      ? {
          reason: "queue-exhausted",
          source: decoded.message.source,
          eventId: decoded.message.eventId,
          event: decoded.message.event,
          // The main queue's count is not carried over; it moved the message after max_retries.
          attempts: maxRetries === null ? 0 : maxRetries + 1,
          lastStatus: null,
          detail: "the pendo-events queue exhausted its retries without the consumer settling the message",
          receivedAt: decoded.message.receivedAt,
          message: decoded.message,
        }
      : malformedLetter(queued, decoded.detail);
    letters.push({ queued, record: deadLetterOf(input, now) });
  }
  const { stored, unstored } = await storeLetters(env, letters, now);
  for (const { queued, record } of unstored) {
    if (queued.attempts > DLQ_MAX_RETRIES) {
      // The queue deletes the message after this try: this line is the only copy left.
      const bytes = bytesOfBody(queued.body);
      log("error", "dead-letter-lost", {
        uniqueId: record.eventId,
        attempt: queued.attempts,
        bytes: bytes.length,
        messageBase64: base64Of(bytes),
      });
    }
    const delay = retryDelaySeconds(queued.attempts, DLQ_RETRY_BASE_SECONDS, DLQ_RETRY_MAX_SECONDS);
    queued.retry({ delaySeconds: delayWithinRetention(delay, queued.timestamp, retention, now) });
  }
  for (const { queued } of stored) queued.ack();
  if (!config.ok) return;
  const scope = {
    db: env.LEDGER,
    settings: config.settings,
    waitUntil: (p: Promise<unknown>) => ctx.waitUntil(p),
    now,
  };
  for (const source of new Set(stored.map(({ record }) => record.source)))
    alertSoon(scope, source, "dead-letters");
}
