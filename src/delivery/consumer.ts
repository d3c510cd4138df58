import { type AlertScope, raiseAlert } from "../alerts/notify";
import { loadSettings, type Settings } from "../config";
import type { Env } from "../env";
import { type DeadLetterReason, deadLetterOf, putDeadLetter } from "../kv/records";
import { cutDetail, log } from "../log";
import { decodeRelayMessage, type RelayMessage } from "../queue/message";
import { batchBody, batchBytes, countCalls, type Packable, packBatches } from "../segment/batch";
import { classifySegmentResponse } from "../segment/classify";
import { postBatch, type SegmentTarget } from "../segment/client";
import { resolveSource } from "../sources";
import { retryDelaySeconds } from "./backoff";
import { malformedLetter } from "./letters";
import { type DeliveryRound, recordDeliveryRounds } from "./status";

type QueueMessage = Message<unknown>;

/** One queue message, decoded, as batch packing sees it. */
interface Unit extends Packable {
  queued: QueueMessage;
  message: RelayMessage;
}

// Used only when the settings themselves are unreadable, so there is no configured base.
const MISCONFIGURED_RETRY_SECONDS = 300;
// Room for a retried message's batch window and its delivery before the queue's retention ends.
const RETENTION_MARGIN_SECONDS = 600;

/**
 * The `pendo-events` consumer. Every message is settled explicitly (ack, retry with a delay, or
 * stored as a dead letter then acked); the handler never throws, because a throwing queue handler
 * retries the whole batch, acked messages included in the local simulator.
 */
export async function consumeEvents(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const config = loadSettings(env);
  if (!config.ok) {
    log("error", "consumer-misconfigured", { messages: batch.messages.length, issues: config.issues });
    for (const queued of batch.messages) queued.retry({ delaySeconds: MISCONFIGURED_RETRY_SECONDS });
    return;
  }
  const alerts: AlertScope = {
    kv: env.DEDUP,
    settings: config.settings,
    waitUntil: (promise) => ctx.waitUntil(promise),
    now: Date.now(),
  };
  const delivery = new Delivery(env, config.settings, batch.messages, alerts);
  try {
    const groups = new Map<string, { target: SegmentTarget; source: string; units: Unit[] }>();
    const unconfigured = new Set<string>();
    const stores: Promise<unknown>[] = [];
    for (const queued of batch.messages) {
      const decoded = decodeRelayMessage(queued.body);
      if (!decoded.ok) {
        // Checked on read: one bad message is stored at once and never holds up its neighbours.
        stores.push(delivery.storeMalformed(queued, decoded.detail));
        continue;
      }
      const message = decoded.message;
      if (message.probe) {
        delivery.ack(queued);
        continue;
      }
      const unit: Unit = { queued, message, calls: message.calls, bytes: message.bytes };
      const source = resolveSource(config.settings, message.source);
      if (!source?.writeKey) {
        // One line per source per batch, not per message.
        if (!unconfigured.has(message.source)) {
          unconfigured.add(message.source);
          log("error", "no-write-key", {
            source: message.source,
            message: source
              ? "no Segment write key is set for this source: its events stay queued and are retried"
              : "this source is no longer configured: its events stay queued and are retried",
          });
        }
        stores.push(delivery.failTransient(unit, null, "no-write-key", "no Segment write key is configured"));
        continue;
      }
      // Sources sharing a write key and endpoint share requests.
      const key = `${source.endpoint}\n${source.writeKey}`;
      let group = groups.get(key);
      if (!group) {
        group = {
          target: { endpoint: source.endpoint, writeKey: source.writeKey },
          source: source.name,
          units: [],
        };
        groups.set(key, group);
      }
      group.units.push(unit);
    }
    for (const group of groups.values()) {
      for (const request of packBatches(group.units))
        stores.push(delivery.send(group.target, group.source, request));
    }
    await Promise.all(stores);
    delivery.reportDeferred();
    await recordDeliveryRounds(alerts, delivery.rounds);
  } catch (error) {
    log("error", "consumer-failed", { error: String(error) });
  } finally {
    delivery.retryUnsettled();
  }
}

class Delivery {
  private readonly settled = new Set<QueueMessage>();
  /** Segment requests this invocation may still make (SEGMENT_REQUEST_BUDGET). */
  private budget: number;
  private deferred = 0;
  /** Per source: did Segment deliver, did it fail, with what status (for delivery alerts). */
  readonly rounds = new Map<string, DeliveryRound>();

  constructor(
    private readonly env: Env,
    private readonly settings: Settings,
    private readonly messages: readonly QueueMessage[],
    private readonly alerts: AlertScope,
  ) {
    this.budget = settings.SEGMENT_REQUEST_BUDGET;
  }

  private round(source: string): DeliveryRound {
    let round = this.rounds.get(source);
    if (!round) {
      round = { delivered: false, failed: false, lastStatus: null };
      this.rounds.set(source, round);
    }
    return round;
  }

  /** Sends one packed request; a 400 is bisected until the events Segment rejects stand alone. */
  async send(target: SegmentTarget, source: string, units: Unit[]): Promise<void> {
    if (this.budget <= 0) {
      // Past the plan's subrequest limit every fetch would throw: these wait for a fresh invocation.
      this.deferred += units.length;
      await Promise.all(units.map((unit) => this.defer(unit)));
      return;
    }
    this.budget--;
    const body = batchBody(units, new Date().toISOString());
    const attempt = await postBatch(target, body, this.settings.SEGMENT_TIMEOUT_MS);
    const outcome = classifySegmentResponse(attempt, Date.now());
    const fields = {
      source,
      messages: units.length,
      events: countCalls(units),
      bytes: batchBytes(units),
      attempt: Math.max(...units.map((unit) => unit.queued.attempts)),
      status: outcome.status,
      outcome: outcome.kind,
    };

    if (outcome.kind === "delivered") this.round(source).delivered = true;
    else if (outcome.kind !== "rejected")
      Object.assign(this.round(source), { failed: true, lastStatus: outcome.status });

    switch (outcome.kind) {
      case "delivered":
        log("info", "segment-request", fields);
        for (const unit of units) this.ack(unit.queued);
        return;
      case "rejected": {
        log("warn", "segment-request", { ...fields, detail: outcome.detail });
        if (units.length === 1) {
          await this.deadLetter(units[0] as Unit, "segment-rejected", 400, outcome.detail);
          return;
        }
        const half = Math.ceil(units.length / 2);
        await Promise.all([
          this.send(target, source, units.slice(0, half)),
          this.send(target, source, units.slice(half)),
        ]);
        return;
      }
      case "refused":
        log("error", "segment-request", { ...fields, detail: outcome.detail });
        await Promise.all(
          units.map((u) => this.deadLetter(u, "segment-refused", outcome.status, outcome.detail)),
        );
        return;
      case "rate-limited":
      case "redirected":
      case "transient": {
        const detail = outcome.kind === "rate-limited" ? "rate limited" : outcome.detail;
        // A 429 waits its Retry-After, but never less than the backoff: a short Retry-After on
        // every attempt would otherwise spend all retries in minutes.
        const atLeast = outcome.kind === "rate-limited" ? outcome.retryAfterSeconds : undefined;
        const next = await Promise.all(
          units.map((u) => this.failTransient(u, outcome.status, "retries-exhausted", detail, atLeast)),
        );
        // A redirect is a configuration fault, not Segment's weather: said at error level.
        log(outcome.kind === "redirected" ? "error" : "warn", "segment-request", {
          ...fields,
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
    unit: Unit,
    status: number | null,
    finalReason: DeadLetterReason,
    detail: string,
    atLeastSeconds = 0,
  ): Promise<number | undefined> {
    const { attempts } = unit.queued;
    const { RETRY_BASE_SECONDS, RETRY_MAX_SECONDS } = this.settings;
    const delay = Math.max(
      retryDelaySeconds(attempts, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS),
      atLeastSeconds,
    );
    if (attempts > this.settings.MAX_RETRIES || this.wouldExpire(unit.queued, delay)) {
      await this.deadLetter(unit, finalReason, status, detail);
      return undefined;
    }
    this.retry(unit.queued, delay);
    return delay;
  }

  /** Not sent for want of budget: retried after the first backoff step, not counted as a failure. */
  private async defer(unit: Unit): Promise<void> {
    const delay = retryDelaySeconds(1, this.settings.RETRY_BASE_SECONDS, this.settings.RETRY_MAX_SECONDS);
    if (unit.queued.attempts > this.settings.MAX_RETRIES || this.wouldExpire(unit.queued, delay)) {
      const detail = "not sent: the invocation's Segment request budget ran out";
      await this.deadLetter(unit, "retries-exhausted", null, detail);
      return;
    }
    this.retry(unit.queued, delay);
  }

  /**
   * Whether the queue would delete the message before (or soon after) a retry after `delay`:
   * then it is kept as a dead letter now, rather than lost to the queue's retention.
   */
  private wouldExpire(queued: QueueMessage, delaySeconds: number): boolean {
    const expiresAt = queued.timestamp.getTime() + this.settings.QUEUE_RETENTION_SECONDS * 1000;
    return this.alerts.now + (delaySeconds + RETENTION_MARGIN_SECONDS) * 1000 >= expiresAt;
  }

  reportDeferred() {
    if (this.deferred > 0) {
      log("warn", "segment-budget-exhausted", {
        budget: this.settings.SEGMENT_REQUEST_BUDGET,
        deferredMessages: this.deferred,
      });
    }
  }

  async deadLetter(unit: Unit, reason: DeadLetterReason, status: number | null, detail: string) {
    const { message } = unit;
    await this.store(unit.queued, {
      reason,
      source: message.source,
      eventId: message.eventId,
      event: message.event,
      attempts: unit.queued.attempts,
      lastStatus: status,
      detail: cutDetail(detail),
      receivedAt: message.receivedAt,
      message,
    });
  }

  storeMalformed(queued: QueueMessage, detail: string) {
    return this.store(queued, malformedLetter(queued, detail));
  }

  private async store(queued: QueueMessage, input: Parameters<typeof deadLetterOf>[0]) {
    const letter = deadLetterOf(input, Date.now());
    try {
      await putDeadLetter(this.env.DEDUP, letter, this.settings.DEAD_LETTER_TTL_SECONDS);
      log("warn", "dead-letter", {
        source: letter.source,
        event: letter.event,
        uniqueId: letter.eventId,
        reason: letter.reason,
        status: letter.lastStatus,
      });
      this.ack(queued);
      raiseAlert(this.alerts, letter.source, "dead-letters", {
        example: { event: letter.event, uniqueId: letter.eventId },
        keys: [letter.reason],
      });
    } catch (error) {
      // Not stored, so not acked: the queue keeps it and tries again (and past max_retries hands
      // it to pendo-events-dlq, whose consumer stores it).
      log("error", "dead-letter-write-failed", { uniqueId: letter.eventId, error: String(error) });
      this.retry(queued, MISCONFIGURED_RETRY_SECONDS);
    }
  }

  ack(queued: QueueMessage) {
    this.settled.add(queued);
    queued.ack();
  }

  private retry(queued: QueueMessage, delaySeconds: number) {
    this.settled.add(queued);
    queued.retry({ delaySeconds });
  }

  /** Anything an unexpected error left unsettled is retried, never dropped. */
  retryUnsettled() {
    for (const queued of this.messages) {
      if (!this.settled.has(queued)) this.retry(queued, this.settings.RETRY_BASE_SECONDS);
    }
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled outcome ${JSON.stringify(value)}`);
}
