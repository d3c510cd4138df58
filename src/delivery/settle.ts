import type { Settings } from "../config";
import type { Env } from "../env";
import { type CountDelta, countedEvent, type Outcome } from "../ledger/counts";
import {
  type DeadLetterInput,
  type DeadLetterReason,
  deadLetterOf,
  type LedgerRecord,
} from "../ledger/records";
import type { RelayMessage } from "../queue/message";
import { delayWithinRetention, retryDelaySeconds, secondsBeforeExpiry } from "./backoff";
import { storeLetters } from "./letters";

type QueueMessage = Message<unknown>;

// Used when a store failed: long enough for D1 or R2 to come back, never past the retention.
export const STORE_RETRY_SECONDS = 300;

/**
 * How each queue message of one consumer invocation ends: acked (delivered, dropped, parked, or
 * stored as a dead letter first), or retried with a delay. Every message is settled exactly once;
 * a later ack or retry of the same message is ignored, and whatever an unexpected error left
 * unsettled is retried at the end. The handler never throws, because a throwing queue handler
 * retries the whole batch, acked messages included in the local simulator.
 */
export class Settlement {
  private readonly settled = new Set<QueueMessage>();
  /** Dead letters of this invocation, stored together before their messages are acked. */
  private readonly letters: { queued: QueueMessage; record: LedgerRecord }[] = [];
  /** Outcomes for the delivery counters (dead letters are counted where their rows land). */
  readonly counts: CountDelta[] = [];
  /** Sources that stored dead letters, for the alert. */
  readonly deadLettered = new Set<string>();

  constructor(
    private readonly env: Env,
    private readonly settings: Settings,
    private readonly messages: readonly QueueMessage[],
    readonly now: number,
  ) {}

  count(message: RelayMessage, outcome: Outcome) {
    this.counts.push({ source: message.source, event: countedEvent(message.event), outcome, at: this.now });
  }

  /** Settles a message once: a later ack or retry of the same message is ignored. */
  ack(queued: QueueMessage) {
    if (this.settled.has(queued)) return;
    this.settled.add(queued);
    queued.ack();
  }

  retry(queued: QueueMessage, delaySeconds: number) {
    if (this.settled.has(queued)) return;
    this.settled.add(queued);
    queued.retry({ delaySeconds });
  }

  isSettled(queued: QueueMessage) {
    return this.settled.has(queued);
  }

  /**
   * Retry later, unless this was the last delivery the queue allows or the queue's retention
   * would end first: then the message is kept as a dead letter with what is known of its failure.
   * Returns the delay, or undefined once it is to be stored.
   */
  failTransient(
    queued: QueueMessage,
    message: RelayMessage,
    failure: { status: number | null; reason: DeadLetterReason; detail: string; atLeastSeconds?: number },
  ): number | undefined {
    const { RETRY_BASE_SECONDS, RETRY_MAX_SECONDS } = this.settings;
    const delay = Math.max(
      retryDelaySeconds(queued.attempts, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS),
      failure.atLeastSeconds ?? 0,
    );
    if (queued.attempts > this.settings.MAX_RETRIES || this.wouldExpire(queued, delay)) {
      this.deadLetter(queued, message, failure.reason, failure.status, failure.detail);
      return undefined;
    }
    this.retry(queued, delay);
    return delay;
  }

  /** Not sent for want of budget: retried after the first backoff step, not counted as a failure. */
  defer(queued: QueueMessage, message: RelayMessage): void {
    const delay = retryDelaySeconds(1, this.settings.RETRY_BASE_SECONDS, this.settings.RETRY_MAX_SECONDS);
    if (queued.attempts > this.settings.MAX_RETRIES || this.wouldExpire(queued, delay)) {
      const detail = "not sent: the invocation's Segment request budget ran out";
      this.deadLetter(queued, message, "retries-exhausted", null, detail);
      return;
    }
    this.retry(queued, delay);
  }

  /** A store failed (R2 or D1): retried, never later than the queue's retention allows. */
  retryAfterStoreFailure(queued: QueueMessage) {
    this.retry(
      queued,
      delayWithinRetention(
        STORE_RETRY_SECONDS,
        queued.timestamp,
        this.settings.QUEUE_RETENTION_SECONDS,
        this.now,
      ),
    );
  }

  /**
   * Whether the queue would delete the message before (or soon after) a retry after `delay`:
   * then it is kept as a dead letter now, rather than lost to the queue's retention.
   */
  private wouldExpire(queued: QueueMessage, delaySeconds: number): boolean {
    return (
      delaySeconds >= secondsBeforeExpiry(queued.timestamp, this.settings.QUEUE_RETENTION_SECONDS, this.now)
    );
  }

  deadLetter(
    queued: QueueMessage,
    message: RelayMessage,
    reason: DeadLetterReason,
    status: number | null,
    detail: string,
  ) {
    this.store(queued, {
      reason,
      source: message.source,
      eventId: message.eventId,
      event: message.event,
      attempts: queued.attempts,
      lastStatus: status,
      detail,
      receivedAt: message.receivedAt,
      message,
    });
  }

  /** Queues a dead letter for `storeDeadLetters`; its message stays unsettled until then. */
  store(queued: QueueMessage, input: DeadLetterInput) {
    this.letters.push({ queued, record: deadLetterOf(input, this.now) });
  }

  /**
   * Every dead letter of the invocation, stored as one group (bytes in R2, rows in the ledger or
   * its second store) before its message is acked; what no store takes is retried.
   */
  async storeDeadLetters(): Promise<void> {
    const { stored, unstored } = await storeLetters(this.env, this.letters, this.now);
    for (const { queued } of unstored) this.retryAfterStoreFailure(queued);
    for (const { queued, record } of stored) {
      this.ack(queued);
      this.deadLettered.add(record.source);
    }
  }

  /** Anything an unexpected error left unsettled (a dead letter never stored, too) is retried. */
  retryUnsettled() {
    for (const queued of this.messages) {
      if (!this.settled.has(queued)) this.retry(queued, this.settings.RETRY_BASE_SECONDS);
    }
  }
}
