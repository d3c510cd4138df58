import { runScheduled } from "./cron/scheduled";
import { consumeEvents } from "./delivery/consumer";
import { consumeDeadLetters } from "./delivery/deadLetterConsumer";
import type { Env } from "./env";
import { createApp } from "./http/app";

const app = createApp();

// Queue bodies are `unknown`: a message may come from another deploy, so the consumers decode
// and check every one (queue/message.ts).
export default {
  fetch: app.fetch,
  async queue(batch, env, ctx) {
    // One Worker consumes both queues; the dead-letter queue is the one named *-dlq.
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env, ctx);
    else await consumeEvents(batch, env, ctx);
  },
  async scheduled(controller, env, ctx) {
    await runScheduled(env, ctx, controller.scheduledTime);
  },
} satisfies ExportedHandler<Env, unknown>;
