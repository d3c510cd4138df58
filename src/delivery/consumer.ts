import { loadSettings, type Settings } from "../config";
import type { Env } from "../env";
import { recordId } from "../kv/keys";
import { log } from "../log";
import { batchBody, countCalls, packBatches } from "../segment/batch";
import { classifySegmentResponse } from "../segment/classify";
import { postBatch, type SegmentTarget } from "../segment/client";
import { resolveSource } from "../sources";
import { retryDelaySeconds } from "./backoff";
import type { RelayMessage } from "./message";
import { cutDetail, type DeadLetterReason, putDeadLetter } from "./records";

type RelayQueueMessage = Message<RelayMessage>;

// Used only when the settings themselves are unreadable, so there is no configured base.
const MISCONFIGURED_RETRY_SECONDS = 300;

/**
 * The `pendo-events` consumer. Every message is settled explicitly (ack, retry with a delay, or
 * stored as a dead letter then acked); the handler never throws, because a throwing queue handler
 * retries the whole batch, acked messages included in the local simulator.
 */
export async function consumeEvents(batch: MessageBatch<RelayMessage>, env: Env): Promise<void> {
  const config = loadSettings(env);
  if (!config.ok) {
    log("error", "consumer-misconfigured", { messages: batch.messages.length, problems: config.problems });
    for (const message of batch.messages) message.retry({ delaySeconds: MISCONFIGURED_RETRY_SECONDS });
    return;
  }
  const delivery = new Delivery(env, config.settings, batch.messages);
  try {
    const groups = new Map<
      string,
      { target: SegmentTarget; source: string; messages: RelayQueueMessage[] }
    >();
    const unconfigured = new Set<string>();
    for (const message of batch.messages) {
      if (message.body.probe) {
        delivery.ack(message);
        continue;
      }
      const source = resolveSource(config.settings, message.body.source);
      if (!source?.writeKey) {
        // One line per source per batch, not per message.
        if (!unconfigured.has(message.body.source)) {
          unconfigured.add(message.body.source);
          log("error", "no-write-key", {
            source: message.body.source,
            message: source
              ? "no Segment write key is set for this source: its events stay queued and are retried"
              : "this source is no longer configured: its events stay queued and are retried",
          });
        }
        await delivery.failTransient(message, null, "no-write-key", "no Segment write key is configured");
        continue;
      }
      // Sources sharing a write key and endpoint share requests.
      const key = `${source.endpoint}\n${source.writeKey}`;
      let group = groups.get(key);
      if (!group) {
        group = {
          target: { endpoint: source.endpoint, writeKey: source.writeKey },
          source: source.name,
          messages: [],
        };
        groups.set(key, group);
      }
      group.messages.push(message);
    }
    const sends: Promise<void>[] = [];
    for (const group of groups.values()) {
      for (const request of packBatches(group.messages))
        sends.push(delivery.send(group.target, group.source, request));
    }
    await Promise.all(sends);
  } catch (error) {
    log("error", "consumer-failed", { error: String(error) });
  } finally {
    delivery.retryUnsettled();
  }
}

class Delivery {
  private readonly settled = new Set<RelayQueueMessage>();

  constructor(
    private readonly env: Env,
    private readonly settings: Settings,
    private readonly messages: readonly RelayQueueMessage[],
  ) {}

  /** Sends one packed request; a 400 is bisected until the events Segment rejects stand alone. */
  async send(target: SegmentTarget, source: string, messages: RelayQueueMessage[]): Promise<void> {
    const body = batchBody(messages, new Date().toISOString());
    const attempt = await postBatch(target, body, this.settings.SEGMENT_TIMEOUT_MS);
    const outcome = classifySegmentResponse(attempt, Date.now());
    const attempts = Math.max(...messages.map((message) => message.attempts));
    const fields = {
      source,
      messages: messages.length,
      events: countCalls(messages),
      bytes: messages.reduce((sum, message) => sum + message.body.bytes, 0),
      attempt: attempts,
    };

    switch (outcome.kind) {
      case "delivered":
        log("info", "segment-request", { ...fields, status: outcome.status, outcome: outcome.kind });
        for (const message of messages) this.ack(message);
        return;
      case "rejected": {
        log("warn", "segment-request", {
          ...fields,
          status: 400,
          outcome: outcome.kind,
          detail: outcome.detail,
        });
        if (messages.length === 1) {
          await this.deadLetter(messages[0] as RelayQueueMessage, "segment-rejected", 400, outcome.detail);
          return;
        }
        const half = Math.ceil(messages.length / 2);
        await Promise.all([
          this.send(target, source, messages.slice(0, half)),
          this.send(target, source, messages.slice(half)),
        ]);
        return;
      }
      case "refused":
        log("error", "segment-request", {
          ...fields,
          status: outcome.status,
          outcome: outcome.kind,
          detail: outcome.detail,
        });
        await Promise.all(
          messages.map((m) => this.deadLetter(m, "segment-refused", outcome.status, outcome.detail)),
        );
        return;
      case "rate-limited":
      case "transient": {
        const delay = outcome.kind === "rate-limited" ? outcome.retryAfterSeconds : undefined;
        const detail = outcome.kind === "transient" ? outcome.detail : "rate limited";
        const next = await Promise.all(
          messages.map((m) => this.failTransient(m, outcome.status, "retries-exhausted", detail, delay)),
        );
        log("warn", "segment-request", {
          ...fields,
          status: outcome.status,
          outcome: outcome.kind,
          detail: cutDetail(detail),
          nextRetrySeconds: Math.min(...next.filter((n): n is number => n !== undefined)),
        });
        return;
      }
      default:
        return assertNever(outcome);
    }
  }

  /**
   * Retry later, unless this was the last delivery the queue allows: then the message is kept as
   * a dead letter with what is known of its failure. Returns the delay, or undefined once stored.
   */
  async failTransient(
    message: RelayQueueMessage,
    status: number | null,
    finalReason: DeadLetterReason,
    detail: string,
    delaySeconds?: number,
  ): Promise<number | undefined> {
    if (message.attempts > this.settings.MAX_RETRIES) {
      await this.deadLetter(message, finalReason, status, detail);
      return undefined;
    }
    const delay =
      delaySeconds ??
      retryDelaySeconds(message.attempts, this.settings.RETRY_BASE_SECONDS, this.settings.RETRY_MAX_SECONDS);
    this.retry(message, delay);
    return delay;
  }

  async deadLetter(
    message: RelayQueueMessage,
    reason: DeadLetterReason,
    status: number | null,
    detail: string,
  ) {
    const now = Date.now();
    const body = message.body;
    try {
      await putDeadLetter(
        this.env.DEDUP,
        {
          id: recordId(now, body.eventId),
          reason,
          source: body.source,
          eventId: body.eventId,
          event: body.event,
          attempts: message.attempts,
          lastStatus: status,
          detail: cutDetail(detail),
          receivedAt: body.receivedAt,
          lastFailureAt: now,
          message: body,
        },
        this.settings.DEAD_LETTER_TTL_SECONDS,
      );
      log("warn", "dead-letter", {
        source: body.source,
        event: body.event,
        uniqueId: body.eventId,
        reason,
        status,
      });
      this.ack(message);
    } catch (error) {
      // Not stored, so not acked: the queue keeps it and tries again.
      log("error", "dead-letter-write-failed", { uniqueId: body.eventId, error: String(error) });
      this.retry(message, MISCONFIGURED_RETRY_SECONDS);
    }
  }

  ack(message: RelayQueueMessage) {
    this.settled.add(message);
    message.ack();
  }

  private retry(message: RelayQueueMessage, delaySeconds: number) {
    this.settled.add(message);
    message.retry({ delaySeconds });
  }

  /** Anything an unexpected error left unsettled is retried, never dropped. */
  retryUnsettled() {
    for (const message of this.messages) {
      if (!this.settled.has(message)) this.retry(message, this.settings.RETRY_BASE_SECONDS);
    }
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled outcome ${JSON.stringify(value)}`);
}
