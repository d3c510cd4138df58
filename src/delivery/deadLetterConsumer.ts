import { loadSettings } from "../config";
import type { Env } from "../env";
import { recordId } from "../kv/keys";
import { log } from "../log";
import type { RelayMessage } from "./message";
import { putDeadLetter } from "./records";

/**
 * The `pendo-events-dlq` consumer: messages the queue gave up on without the main consumer
 * settling them (it crashed or ran out of time on every try). Each is stored like any dead letter;
 * a message whose write fails is retried, never acked unstored.
 */
export async function consumeDeadLetters(batch: MessageBatch<RelayMessage>, env: Env): Promise<void> {
  const config = loadSettings(env);
  const ttl = config.ok ? config.settings.DEAD_LETTER_TTL_SECONDS : 1_209_600;
  const maxRetries = config.ok ? config.settings.MAX_RETRIES : null;
  const now = Date.now();
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = message.body;
      try {
        await putDeadLetter(
          env.DEDUP,
          {
            id: recordId(now, body.eventId),
            reason: "queue-exhausted",
            source: body.source,
            eventId: body.eventId,
            event: body.event,
            // The main queue's count is not carried over; it moved the message after max_retries.
            attempts: maxRetries === null ? 0 : maxRetries + 1,
            lastStatus: null,
            detail: "the pendo-events queue exhausted its retries without the consumer settling the message",
            receivedAt: body.receivedAt,
            lastFailureAt: now,
            message: body,
          },
          ttl,
        );
        log("warn", "dead-letter", {
          source: body.source,
          event: body.event,
          uniqueId: body.eventId,
          reason: "queue-exhausted",
        });
        message.ack();
      } catch (error) {
        log("error", "dead-letter-write-failed", { uniqueId: body.eventId, error: String(error) });
        message.retry({ delaySeconds: 60 });
      }
    }),
  );
}
