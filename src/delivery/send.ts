import type { Settings } from "../config";
import { batchBody, batchBytes, countCalls, type Packable, packBatches } from "../destination/batch";
import { classifySegmentResponse } from "../destination/classify";
import { postBatch } from "../destination/client";
import type { Target } from "../destination/target";
import type { DeliveryRound } from "../ledger/delivery";
import { cutDetail, log } from "../log";
import type { RelayMessage } from "../queue/message";
import { refusedUnits } from "./partial";

/** What sending needs of a unit: its calls packed, its message, and how often it was tried. */
export interface SendUnit extends Packable {
  message: RelayMessage;
  attempts: number;
}

/** How one unit ended in this invocation's sending; the caller settles it (ack, park, retry, store). */
export type UnitResult =
  | { kind: "delivered" }
  | { kind: "dead-letter"; reason: "segment-rejected" | "segment-refused"; status: number; detail: string }
  | { kind: "failed"; status: number | null; detail: string; retryAfterSeconds?: number }
  | { kind: "deferred" };

/** What one invocation saw of a destination: did it answer, did it fail, how. */
export interface DestinationHealth {
  delivered: boolean;
  failed: boolean;
  lastStatus: number | null;
  /** The longest Retry-After of a 429 it sent. */
  retryAfterSeconds?: number;
}

/**
 * Sends packed requests to destinations within one invocation's budget (SEGMENT_REQUEST_BUDGET;
 * the rest are deferred, not failed). A whole-request 400, or a refusal in a 2xx that names no
 * event, is bisected until the events the destination refuses stand alone. Shared by the queue
 * consumer and by the drain of parked batches, which settle the results each their own way.
 */
export class Sender {
  private budget: number;
  deferred = 0;
  /** Per source: for delivery status and its alerts (every source in a request, not the first). */
  readonly rounds = new Map<string, DeliveryRound>();
  /** Per destination id: for outage mode. */
  readonly health = new Map<string, DestinationHealth>();

  constructor(private readonly settings: Settings) {
    this.budget = settings.SEGMENT_REQUEST_BUDGET;
  }

  /** Packs the units by the destination's caps and sends every request; a result per unit. */
  async sendAll<T extends SendUnit>(target: Target, units: readonly T[]): Promise<Map<T, UnitResult>> {
    const results = new Map<T, UnitResult>();
    const { profile } = target;
    await Promise.all(
      packBatches(units, profile.packRequestBytes, profile.maxRequestEvents).map((request) =>
        this.send(target, request, results),
      ),
    );
    return results;
  }

  private healthOf(id: string): DestinationHealth {
    let health = this.health.get(id);
    if (!health) {
      health = { delivered: false, failed: false, lastStatus: null };
      this.health.set(id, health);
    }
    return health;
  }

  private roundOf(source: string): DeliveryRound {
    let round = this.rounds.get(source);
    if (!round) {
      round = { delivered: false, failed: false, lastStatus: null };
      this.rounds.set(source, round);
    }
    return round;
  }

  private async send<T extends SendUnit>(
    target: Target,
    units: T[],
    results: Map<T, UnitResult>,
  ): Promise<void> {
    if (this.budget <= 0) {
      // Past the plan's subrequest limit every fetch would throw: these wait for a fresh invocation.
      this.deferred += units.length;
      for (const unit of units) results.set(unit, { kind: "deferred" });
      return;
    }
    this.budget--;
    const body = batchBody(units, new Date().toISOString());
    const attempt = await postBatch(target, body, this.settings.SEGMENT_TIMEOUT_MS);
    const outcome = classifySegmentResponse(attempt, Date.now(), target.profile);
    const sources = [...new Set(units.map((unit) => unit.message.source))];
    const fields = {
      source: sources.join(","),
      destination: target.id,
      messages: units.length,
      events: countCalls(units),
      bytes: batchBytes(units),
      attempt: Math.max(...units.map((unit) => unit.attempts)),
      status: outcome.status,
      outcome: outcome.kind,
    };
    const health = this.healthOf(target.id);
    if (outcome.kind === "delivered" || outcome.kind === "partial") {
      health.delivered = true;
      for (const source of sources) this.roundOf(source).delivered = true;
    } else if (outcome.kind !== "rejected") {
      Object.assign(health, { failed: true, lastStatus: outcome.status });
      for (const source of sources)
        Object.assign(this.roundOf(source), { failed: true, lastStatus: outcome.status });
    }

    switch (outcome.kind) {
      case "delivered":
        log("info", "segment-request", fields);
        for (const unit of units) results.set(unit, { kind: "delivered" });
        return;
      case "partial": {
        const { refused, unattributed } = refusedUnits(units, outcome.rejected);
        log("warn", "segment-request", {
          ...fields,
          refusedEvents: outcome.rejected.length,
          detail: cutDetail(outcome.rejected.map((r) => `${r.messageId ?? "?"}: ${r.detail}`).join("; ")),
        });
        // A refusal the relay cannot pin on one of its events: split the request until it can.
        if (unattributed.length > 0 && units.length > 1) return this.bisect(target, units, results);
        for (const unit of units) {
          const reasons = refused.get(unit) ?? (unattributed.length > 0 ? unattributed : undefined);
          results.set(
            unit,
            reasons
              ? {
                  kind: "dead-letter",
                  reason: "segment-rejected",
                  status: outcome.status,
                  detail: reasons.join("; "),
                }
              : { kind: "delivered" },
          );
        }
        return;
      }
      case "rejected": {
        log("warn", "segment-request", { ...fields, detail: outcome.detail });
        if (units.length > 1) return this.bisect(target, units, results);
        const [unit] = units as [T];
        results.set(unit, {
          kind: "dead-letter",
          reason: "segment-rejected",
          status: outcome.status,
          detail: outcome.detail,
        });
        return;
      }
      case "refused":
        log("error", "segment-request", { ...fields, detail: outcome.detail });
        for (const unit of units)
          results.set(unit, {
            kind: "dead-letter",
            reason: "segment-refused",
            status: outcome.status,
            detail: outcome.detail,
          });
        return;
      case "rate-limited":
      case "redirected":
      case "transient": {
        const detail = outcome.kind === "rate-limited" ? "rate limited" : outcome.detail;
        const retryAfterSeconds = outcome.kind === "rate-limited" ? outcome.retryAfterSeconds : undefined;
        if (retryAfterSeconds !== undefined)
          health.retryAfterSeconds = Math.max(health.retryAfterSeconds ?? 0, retryAfterSeconds);
        // A redirect is a configuration fault, not the destination's weather: said at error level.
        log(outcome.kind === "redirected" ? "error" : "warn", "segment-request", {
          ...fields,
          detail: cutDetail(detail),
        });
        for (const unit of units)
          results.set(unit, {
            kind: "failed",
            status: outcome.status,
            detail,
            ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
          });
        return;
      }
      default:
        return assertNever(outcome);
    }
  }

  /** A whole-request refusal is never settled whole: halves are sent until the culprit stands alone. */
  private async bisect<T extends SendUnit>(
    target: Target,
    units: T[],
    results: Map<T, UnitResult>,
  ): Promise<void> {
    const half = Math.ceil(units.length / 2);
    // Both halves run to the end whatever one of them meets.
    await Promise.allSettled([
      this.send(target, units.slice(0, half), results),
      this.send(target, units.slice(half), results),
    ]);
  }

  reportDeferred() {
    if (this.deferred > 0) {
      log("warn", "segment-budget-exhausted", {
        budget: this.settings.SEGMENT_REQUEST_BUDGET,
        deferredMessages: this.deferred,
      });
    }
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled outcome ${JSON.stringify(value)}`);
}
