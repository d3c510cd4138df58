import { type AlertScope, alertSoon } from "../alerts/notify";
import { loadSettings, type Settings } from "../config";
import { batchBody, batchBytes, countCalls, type Packable, packBatches } from "../destination/batch";
import { classifySegmentResponse } from "../destination/classify";
import { postBatch, type SegmentTarget } from "../destination/client";
import { PROFILES, type RejectedEvent } from "../destination/profiles";
import type { Env } from "../env";
import { type CountDelta, countedEvent, countStatement } from "../ledger/counts";
import { type DeliveryRound, deliveryStatement } from "../ledger/delivery";
import { type DriftItem, driftRows, driftStatement, evictionStatements } from "../ledger/drift";
import { flaggedStatement, flagKey, flagStatement, visitorHash } from "../ledger/flags";
import {
  type DeadLetterInput,
  type DeadLetterReason,
  deadLetterOf,
  type LedgerRecord,
} from "../ledger/records";
import { cutText } from "../ledger/text";
import { cutDetail, LOGGED_NAME_LIMIT, log } from "../log";
import { decodeRelayMessage, type RelayMessage } from "../queue/message";
import { resolveSource } from "../sources";
import { delayWithinRetention, retryDelaySeconds, secondsBeforeExpiry } from "./backoff";
import { malformedLetter, storeLetters } from "./letters";

type QueueMessage = Message<unknown>;

/** One queue message, decoded, as batch packing sees it. */
interface Unit extends Packable {
  queued: QueueMessage;
  message: RelayMessage;
}

// Used only when the settings themselves are unreadable, so there is no configured base.
const MISCONFIGURED_RETRY_SECONDS = 300;

/**
 * The `pendo-events` consumer. Every message is settled explicitly (ack, retry with a delay, or
 * stored as a dead letter then acked); the handler never throws, because a throwing queue handler
 * retries the whole batch, acked messages included in the local simulator.
 *
 * Ledger work per queue batch, whatever its size: one query for the do-not-process flags (before
 * anything is sent), one batch of dead-letter inserts (only when there are dead letters), one
 * batch of counters, drift and delivery status (after; its failure never touches the events).
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
    db: env.LEDGER,
    settings: config.settings,
    waitUntil: (promise) => ctx.waitUntil(promise),
    now: Date.now(),
  };
  const delivery = new Delivery(env, config.settings, batch.messages, alerts);
  try {
    const units: Unit[] = [];
    for (const queued of batch.messages) {
      const decoded = decodeRelayMessage(queued.body);
      if (!decoded.ok) {
        // Checked on read: one bad message is stored at once and never holds up its neighbours.
        delivery.store(queued, malformedLetter(queued, decoded.detail), "(malformed)");
        continue;
      }
      const message = decoded.message;
      if (message.probe) {
        delivery.ack(queued);
        continue;
      }
      units.push({ queued, message, calls: message.calls, bytes: message.bytes });
    }
    const kept = await delivery.applyFlags(units);
    const groups = new Map<string, { target: SegmentTarget; source: string; units: Unit[] }>();
    const unconfigured = new Set<string>();
    const sends: Promise<unknown>[] = [];
    for (const unit of kept) {
      const { message } = unit;
      const source = resolveSource(config.settings, message.source);
      if (!source?.writeKey || !source.endpoint) {
        // One line per source per batch, not per message.
        const missing = source && !source.endpoint ? "url" : "key";
        if (!unconfigured.has(message.source)) {
          unconfigured.add(message.source);
          log("error", "no-write-key", {
            source: message.source,
            message: !source
              ? "this source is no longer configured: its events stay queued and are retried"
              : missing === "url"
                ? `no DESTINATION_URL is set for this source's destination (${source.destination}): its events stay queued and are retried`
                : "no Segment write key is set for this source: its events stay queued and are retried",
          });
        }
        const detail =
          missing === "url" ? "no destination URL is configured" : "no Segment write key is configured";
        delivery.failTransient(unit, null, "no-write-key", detail);
        continue;
      }
      // Sources sharing a destination, endpoint and write key share requests.
      const key = `${source.destination}\n${source.endpoint}\n${source.writeKey}`;
      let group = groups.get(key);
      if (!group) {
        group = {
          target: {
            endpoint: source.endpoint,
            writeKey: source.writeKey,
            profile: PROFILES[source.destination],
          },
          source: source.name,
          units: [],
        };
        groups.set(key, group);
      }
      group.units.push(unit);
    }
    for (const group of groups.values()) {
      const { profile } = group.target;
      for (const request of packBatches(group.units, profile.packRequestBytes, profile.maxRequestEvents))
        sends.push(delivery.send(group.target, group.source, request));
    }
    await Promise.all(sends);
    delivery.reportDeferred();
    await delivery.storeDeadLetters();
    await delivery.recordLedger(units);
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
  /** Per source: did the destination deliver, did it fail, with what status. */
  readonly rounds = new Map<string, DeliveryRound>();
  /** Dead letters of this invocation, stored together before their messages are acked. */
  private readonly pending: { queued: QueueMessage; record: LedgerRecord; event: string }[] = [];
  /** Outcomes for the delivery counters, added in one statement at the end. */
  private readonly counts: CountDelta[] = [];

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

  private count(message: RelayMessage, outcome: CountDelta["outcome"]) {
    const event = countedEvent(message.event);
    this.counts.push({ source: message.source, event, outcome, at: this.alerts.now });
  }

  /**
   * Do-not-process: applies the flag events of this batch, then reads which visitors are flagged,
   * in one round trip. An event at or after its visitor's flag time is dropped (acked, counted);
   * the flag event itself is always delivered. Without an answer from the ledger nothing is
   * sent: the batch is retried, so a flagged visitor's events never leave on a guess.
   */
  async applyFlags(units: Unit[]): Promise<Unit[]> {
    if (!this.settings.HONOR_DO_NOT_PROCESS) return units;
    const withVisitor = units.filter((unit) => unit.message.visitor !== undefined);
    if (withVisitor.length === 0) return units;
    const hashes = new Map<string, string>();
    await Promise.all(
      [...new Set(withVisitor.map((unit) => unit.message.visitor as string))].map(async (visitor) => {
        hashes.set(visitor, await visitorHash(visitor));
      }),
    );
    const db = this.env.LEDGER;
    const pairs = new Map<string, { source: string; visitorHash: string }>();
    const updates: D1PreparedStatement[] = [];
    for (const { message } of withVisitor) {
      const hash = hashes.get(message.visitor as string) as string;
      pairs.set(flagKey(message.source, hash), { source: message.source, visitorHash: hash });
      if (message.doNotProcess !== undefined) {
        const update = {
          source: message.source,
          visitorHash: hash,
          flagged: message.doNotProcess,
          eventTime: message.eventTime ?? message.receivedAt,
        };
        updates.push(flagStatement(db, update, this.alerts.now));
      }
    }
    let flags: Map<string, number>;
    try {
      const results = await db.batch([...updates, flaggedStatement(db, [...pairs.values()])]);
      const rows = (results.at(-1)?.results ?? []) as {
        source: string;
        visitorHash: string;
        eventTime: number;
      }[];
      flags = new Map(rows.map((row) => [flagKey(row.source, row.visitorHash), row.eventTime]));
    } catch (error) {
      log("error", "flag-check-failed", { messages: units.length, error: String(error) });
      for (const unit of units)
        this.failTransient(unit, null, "retries-exhausted", "the do-not-process check failed");
      return [];
    }
    return units.filter((unit) => {
      const { message } = unit;
      if (message.visitor === undefined || message.doNotProcess !== undefined) return true;
      const since = flags.get(flagKey(message.source, hashes.get(message.visitor) as string));
      if (since === undefined || (message.eventTime ?? message.receivedAt) < since) return true;
      log("info", "do-not-process-drop", {
        source: message.source,
        event: cutText(message.event, LOGGED_NAME_LIMIT),
        uniqueId: message.eventId,
      });
      this.count(message, "dropped");
      this.ack(unit.queued);
      return false;
    });
  }

  /** Sends one packed request; a 400 is bisected until the events Segment rejects stand alone. */
  async send(target: SegmentTarget, source: string, units: Unit[]): Promise<void> {
    if (this.budget <= 0) {
      // Past the plan's subrequest limit every fetch would throw: these wait for a fresh invocation.
      this.deferred += units.length;
      for (const unit of units) this.defer(unit);
      return;
    }
    this.budget--;
    const body = batchBody(units, new Date().toISOString());
    const attempt = await postBatch(target, body, this.settings.SEGMENT_TIMEOUT_MS);
    const outcome = classifySegmentResponse(attempt, Date.now(), target.profile);
    const fields = {
      source,
      destination: target.profile.name,
      messages: units.length,
      events: countCalls(units),
      bytes: batchBytes(units),
      attempt: Math.max(...units.map((unit) => unit.queued.attempts)),
      status: outcome.status,
      outcome: outcome.kind,
    };

    if (outcome.kind === "delivered" || outcome.kind === "partial") this.round(source).delivered = true;
    else if (outcome.kind !== "rejected")
      Object.assign(this.round(source), { failed: true, lastStatus: outcome.status });

    switch (outcome.kind) {
      case "delivered":
        log("info", "segment-request", fields);
        for (const unit of units) {
          this.count(unit.message, "delivered");
          this.ack(unit.queued);
        }
        return;
      case "partial": {
        const { refused, unattributed } = refusedUnits(units, outcome.rejected);
        log("warn", "segment-request", {
          ...fields,
          refusedEvents: outcome.rejected.length,
          detail: cutDetail(outcome.rejected.map((r) => `${r.messageId ?? "?"}: ${r.detail}`).join("; ")),
        });
        // A refusal the relay cannot pin on one of its events: split the request until it can.
        if (unattributed.length > 0 && units.length > 1) return this.bisect(target, source, units);
        for (const unit of units) {
          const reasons = refused.get(unit) ?? (unattributed.length > 0 ? unattributed : undefined);
          if (reasons) this.deadLetter(unit, "segment-rejected", outcome.status, reasons.join("; "));
          else {
            this.count(unit.message, "delivered");
            this.ack(unit.queued);
          }
        }
        return;
      }
      case "rejected": {
        log("warn", "segment-request", { ...fields, detail: outcome.detail });
        if (units.length === 1) {
          this.deadLetter(units[0] as Unit, "segment-rejected", outcome.status, outcome.detail);
          return;
        }
        return this.bisect(target, source, units);
      }
      case "refused":
        log("error", "segment-request", { ...fields, detail: outcome.detail });
        for (const unit of units) this.deadLetter(unit, "segment-refused", outcome.status, outcome.detail);
        return;
      case "rate-limited":
      case "redirected":
      case "transient": {
        const detail = outcome.kind === "rate-limited" ? "rate limited" : outcome.detail;
        // A 429 waits its Retry-After, but never less than the backoff: a short Retry-After on
        // every attempt would otherwise spend all retries in minutes.
        const atLeast = outcome.kind === "rate-limited" ? outcome.retryAfterSeconds : undefined;
        const next = units.map((u) =>
          this.failTransient(u, outcome.status, "retries-exhausted", detail, atLeast),
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

  /** A whole-request refusal is never settled whole: halves are sent until the culprit stands alone. */
  private async bisect(target: SegmentTarget, source: string, units: Unit[]): Promise<void> {
    const half = Math.ceil(units.length / 2);
    // Both halves run to the end whatever one of them meets: a half cannot settle a message
    // after the handler has given up on the batch.
    await Promise.allSettled([
      this.send(target, source, units.slice(0, half)),
      this.send(target, source, units.slice(half)),
    ]);
  }

  /**
   * Retry later, unless this was the last delivery the queue allows: then the message is kept as
   * a dead letter with what is known of its failure. Returns the delay, or undefined once stored.
   */
  failTransient(
    unit: Unit,
    status: number | null,
    finalReason: DeadLetterReason,
    detail: string,
    atLeastSeconds = 0,
  ): number | undefined {
    const { attempts } = unit.queued;
    const { RETRY_BASE_SECONDS, RETRY_MAX_SECONDS } = this.settings;
    const delay = Math.max(
      retryDelaySeconds(attempts, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS),
      atLeastSeconds,
    );
    if (attempts > this.settings.MAX_RETRIES || this.wouldExpire(unit.queued, delay)) {
      this.deadLetter(unit, finalReason, status, detail);
      return undefined;
    }
    this.retry(unit.queued, delay);
    return delay;
  }

  /** Not sent for want of budget: retried after the first backoff step, not counted as a failure. */
  private defer(unit: Unit): void {
    const delay = retryDelaySeconds(1, this.settings.RETRY_BASE_SECONDS, this.settings.RETRY_MAX_SECONDS);
    if (unit.queued.attempts > this.settings.MAX_RETRIES || this.wouldExpire(unit.queued, delay)) {
      const detail = "not sent: the invocation's Segment request budget ran out";
      this.deadLetter(unit, "retries-exhausted", null, detail);
      return;
    }
    this.retry(unit.queued, delay);
  }

  /**
   * Whether the queue would delete the message before (or soon after) a retry after `delay`:
   * then it is kept as a dead letter now, rather than lost to the queue's retention.
   */
  private wouldExpire(queued: QueueMessage, delaySeconds: number): boolean {
    const left = secondsBeforeExpiry(
      queued.timestamp,
      this.settings.QUEUE_RETENTION_SECONDS,
      this.alerts.now,
    );
    return delaySeconds >= left;
  }

  reportDeferred() {
    if (this.deferred > 0) {
      log("warn", "segment-budget-exhausted", {
        budget: this.settings.SEGMENT_REQUEST_BUDGET,
        deferredMessages: this.deferred,
      });
    }
  }

  deadLetter(unit: Unit, reason: DeadLetterReason, status: number | null, detail: string) {
    const { message } = unit;
    const input: DeadLetterInput = {
      reason,
      source: message.source,
      eventId: message.eventId,
      event: message.event,
      attempts: unit.queued.attempts,
      lastStatus: status,
      detail: cutDetail(detail),
      receivedAt: message.receivedAt,
      message,
    };
    this.store(unit.queued, input, countedEvent(message.event));
  }

  /** Queues a dead letter for `storeDeadLetters`; its message stays unsettled until then. */
  store(queued: QueueMessage, input: DeadLetterInput, countedAs: string) {
    this.pending.push({ queued, record: deadLetterOf(input, this.alerts.now), event: countedAs });
  }

  /**
   * Every dead letter of the invocation, stored (src/delivery/letters.ts) before its message is
   * acked; one neither store takes is retried, never later than the queue's retention allows.
   */
  async storeDeadLetters(): Promise<void> {
    const { stored, unstored } = await storeLetters(
      this.env,
      this.pending,
      this.settings.DEAD_LETTER_TTL_SECONDS,
    );
    for (const { queued } of unstored) {
      const { QUEUE_RETENTION_SECONDS } = this.settings;
      this.retry(
        queued,
        delayWithinRetention(
          MISCONFIGURED_RETRY_SECONDS,
          queued.timestamp,
          QUEUE_RETENTION_SECONDS,
          this.alerts.now,
        ),
      );
    }
    for (const { queued, record, event } of stored) {
      this.ack(queued);
      this.counts.push({ source: record.source, event, outcome: "deadLettered", at: this.alerts.now });
    }
    for (const source of new Set(stored.map(({ record }) => record.source))) {
      alertSoon(this.alerts, source, "dead-letters");
    }
  }

  /**
   * Counters, drift and delivery status for the whole batch, in one round trip after delivery.
   * Bookkeeping, not delivery: a failure is logged and never touches the events.
   */
  async recordLedger(units: readonly Unit[]): Promise<void> {
    const db = this.env.LEDGER;
    const now = this.alerts.now;
    const drift: DriftItem[] = [];
    for (const { message } of units) {
      if (message.unmapped) drift.push({ source: message.source, kind: "event", event: message.event });
      for (const key of message.drift ?? []) {
        drift.push({ source: message.source, kind: "property", event: message.event, key });
      }
    }
    const rows = driftRows(drift);
    const counted = countStatement(db, this.counts);
    const rounds = [...this.rounds];
    const statements = [
      ...rounds.map(([source, round]) => deliveryStatement(db, source, round, now)),
      ...(rows.length > 0 ? [driftStatement(db, rows)] : []),
      ...(counted ? [counted] : []),
    ];
    if (statements.length === 0) return;
    try {
      const results = await db.batch(statements);
      rounds.forEach(([source, round], i) => {
        const status = results[i]?.results[0] as
          | { recovered: number; failingSince: number | null }
          | undefined;
        // Only a change of state asks the ledger whether to alert: steady delivery asks nothing.
        if (status?.recovered) alertSoon(this.alerts, source, "delivery-recovered");
        else if (round.failed && !round.delivered) alertSoon(this.alerts, source, "delivery-failing");
      });
      type Fresh = { source: string; kind: string; event: string; key: string; fresh: number };
      const fresh =
        rows.length > 0 ? ((results[rounds.length]?.results ?? []) as Fresh[]).filter((r) => r.fresh) : [];
      if (fresh.length === 0) return;
      for (const row of fresh) {
        log("warn", "drift", {
          source: row.source,
          kind: row.kind,
          event: row.event,
          key: row.key || undefined,
        });
      }
      const sources = new Set(fresh.map((row) => row.source));
      await db.batch([...sources].flatMap((source) => evictionStatements(db, source)));
      for (const source of new Set(fresh.filter((row) => row.kind === "event").map((row) => row.source))) {
        alertSoon(this.alerts, source, "unknown-event");
      }
    } catch (error) {
      log("warn", "ledger-write-failed", { record: "counts", error: String(error) });
    }
  }

  /** Settles a message once: a later ack or retry of the same message is ignored. */
  ack(queued: QueueMessage) {
    if (this.settled.has(queued)) return;
    this.settled.add(queued);
    queued.ack();
  }

  private retry(queued: QueueMessage, delaySeconds: number) {
    if (this.settled.has(queued)) return;
    this.settled.add(queued);
    queued.retry({ delaySeconds });
  }

  /** Anything an unexpected error left unsettled (a dead letter never stored, too) is retried. */
  retryUnsettled() {
    for (const queued of this.messages) {
      if (!this.settled.has(queued)) this.retry(queued, this.settings.RETRY_BASE_SECONDS);
    }
  }
}

/**
 * The units whose calls a 2xx answer names as refused, with the destination's reasons; the
 * reasons naming no call of this request (no messageId, or an id the destination rewrote).
 */
function refusedUnits(units: readonly Unit[], rejected: readonly RejectedEvent[]) {
  const refused = new Map<Unit, string[]>();
  const unattributed: string[] = [];
  for (const event of rejected) {
    const needle =
      event.messageId === undefined ? undefined : `"messageId":${JSON.stringify(event.messageId)}`;
    const unit = needle
      ? units.find((u) => u.message.calls.some((call) => call.includes(needle)))
      : undefined;
    const reason = `${event.messageId ?? "an event"}: ${event.detail}`;
    if (unit) refused.set(unit, [...(refused.get(unit) ?? []), reason]);
    else unattributed.push(reason);
  }
  return { refused, unattributed };
}

function assertNever(value: never): never {
  throw new Error(`unhandled outcome ${JSON.stringify(value)}`);
}
