import { raiseAlert } from "../alerts/notify";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { type DeadLetterInput, deadLetterOf, putDeadLetter } from "../kv/records";
import { log } from "../log";
import { decodeRelayMessage } from "../queue/message";
import { retryDelaySeconds, retrySchedule } from "./backoff";
import { malformedLetter } from "./letters";

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

const DEFAULT_TTL_SECONDS = 1_209_600;

/**
 * The `pendo-events-dlq` consumer: messages the queue gave up on without the main consumer
 * settling them (it crashed or ran out of time on every try). Each is stored like any dead
 * letter. A message whose write fails is retried with growing delays, never acked unstored; on
 * the very last attempt it is written whole to the error log, so it can be recovered from
 * Workers Logs.
 */
export async function consumeDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const config = loadSettings(env);
  const ttl = config.ok ? config.settings.DEAD_LETTER_TTL_SECONDS : DEFAULT_TTL_SECONDS;
  const maxRetries = config.ok ? config.settings.MAX_RETRIES : null;
  const now = Date.now();
  await Promise.all(
    batch.messages.map(async (queued) => {
      const decoded = decodeRelayMessage(queued.body);
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
      const letter = deadLetterOf(input, now);
      try {
        await putDeadLetter(env.DEDUP, letter, ttl);
        log("warn", "dead-letter", {
          source: letter.source,
          event: letter.event,
          uniqueId: letter.eventId,
          reason: letter.reason,
        });
        queued.ack();
        if (config.ok) {
          const scope = {
            kv: env.DEDUP,
            settings: config.settings,
            waitUntil: (p: Promise<unknown>) => ctx.waitUntil(p),
            now,
          };
          raiseAlert(scope, letter.source, "dead-letters", {
            example: { event: letter.event, uniqueId: letter.eventId },
            keys: [letter.reason],
          });
        }
      } catch (error) {
        const last = queued.attempts > DLQ_MAX_RETRIES;
        // The queue deletes the message after this try: the log line is the only copy left.
        log("error", last ? "dead-letter-lost" : "dead-letter-write-failed", {
          uniqueId: letter.eventId,
          attempt: queued.attempts,
          error: String(error),
          ...(last ? { message: queued.body } : {}),
        });
        queued.retry({
          delaySeconds: retryDelaySeconds(queued.attempts, DLQ_RETRY_BASE_SECONDS, DLQ_RETRY_MAX_SECONDS),
        });
      }
    }),
  );
}
