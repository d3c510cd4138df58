import type { AlertScope } from "../alerts/notify";
import { alertSoon } from "../alerts/notify";
import { archiveBatch } from "../archive/write";
import { loadSettings, type Settings } from "../config";
import type { Target } from "../destination/target";
import type { Env } from "../env";
import { type DestinationState, failureStatement, statesStatement } from "../ledger/destinations";
import { randomHex } from "../ledger/records";
import { log } from "../log";
import { type ControlMessage, decodeQueueBody } from "../queue/message";
import { targetFor } from "../targets";
import { recordLedger } from "./bookkeeping";
import { handleControl, startChain } from "./control";
import { flagCheck, logDropped } from "./flags";
import { malformedLetter } from "./letters";
import { parkBatch } from "./park";
import { Sender, type SendUnit, type UnitResult } from "./send";
import { Settlement } from "./settle";

type QueueMessage = Message<unknown>;

/** One queue message, decoded, as sending sees it. */
interface Unit extends SendUnit {
  queued: QueueMessage;
}

// Used only when the settings themselves are unreadable, so there is no configured base.
const MISCONFIGURED_RETRY_SECONDS = 300;

/**
 * The `pendo-events` consumer: decode, apply do-not-process, then per destination either send
 * (open, or draining its parked backlog) or park the batch (outage mode, or held by an operator).
 * A destination that has failed every batch for OUTAGE_AFTER_SECONDS enters outage mode here, and
 * the failed messages of that very batch are parked rather than retried.
 *
 * Ledger work per queue batch, whatever its size: one round trip for do-not-process and the
 * destinations' states (before anything is sent); one for a destination that failed; one statement
 * for a parked batch, one for the dead letters (with their counters); one for counters, drift and
 * delivery status (after; its failure never touches the events). R2: one put per parked batch,
 * per group of dead letters, and per archived (source, hour).
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
  const { settings } = config;
  const now = Date.now();
  const scope: AlertScope = {
    db: env.LEDGER,
    settings,
    waitUntil: (promise) => ctx.waitUntil(promise),
    now,
  };
  const settle = new Settlement(env, settings, batch.messages, now);
  const sender = new Sender(settings);
  const controls: { queued: QueueMessage; control: ControlMessage }[] = [];
  const units: Unit[] = [];
  try {
    for (const queued of batch.messages) {
      const decoded = decodeQueueBody(queued.body);
      if (!decoded.ok) {
        // Checked on read: one bad message is stored at once and never holds up its neighbours.
        settle.store(queued, malformedLetter(queued, decoded.detail));
        continue;
      }
      if ("control" in decoded) {
        controls.push({ queued, control: decoded.control });
        continue;
      }
      const { message } = decoded;
      if (message.probe) {
        settle.ack(queued);
        continue;
      }
      units.push({ queued, message, calls: message.calls, bytes: message.bytes, attempts: queued.attempts });
    }
    await deliver(env, settings, scope, settle, sender, units);
    sender.reportDeferred();
    await settle.storeDeadLetters();
    for (const source of settle.deadLettered) alertSoon(scope, source, "dead-letters");
    await recordLedger(scope, {
      messages: units.map((unit) => unit.message),
      counts: settle.counts,
      rounds: sender.rounds,
      recovered: [...sender.health].filter(([, health]) => health.delivered).map(([id]) => id),
    });
    // The relay's own chains (outage probes and drains, archive replay steps) go last, with what
    // is left of the invocation's request budget.
    for (const { queued, control } of controls) {
      await handleControl(env, settings, scope, sender, control);
      settle.ack(queued);
    }
  } catch (error) {
    log("error", "consumer-failed", { error: String(error) });
  } finally {
    settle.retryUnsettled();
  }
}

async function deliver(
  env: Env,
  settings: Settings,
  scope: AlertScope,
  settle: Settlement,
  sender: Sender,
  units: Unit[],
): Promise<void> {
  const { now } = settle;
  // Where each message goes; a source without a key or a URL keeps its messages queued.
  const groups = new Map<string, { target: Target; units: Unit[] }>();
  const unconfigured = new Set<string>();
  for (const unit of units) {
    const resolved = await targetFor(settings, unit.message.source, unit.message.destination);
    if (!resolved.ok) {
      if (!unconfigured.has(unit.message.source)) {
        // One line per source per batch, not per message.
        unconfigured.add(unit.message.source);
        log("error", "no-write-key", {
          source: unit.message.source,
          message: `${resolved.detail}: its events stay queued and are retried`,
        });
      }
      settle.failTransient(unit.queued, unit.message, {
        status: null,
        reason: "no-write-key",
        detail: resolved.missing === "url" ? "no destination URL is configured" : resolved.detail,
      });
      continue;
    }
    const group = groups.get(resolved.target.id) ?? { target: resolved.target, units: [] };
    group.units.push(unit);
    groups.set(resolved.target.id, group);
  }
  const routed = [...groups.values()].flatMap((group) => group.units);

  // One round trip before anything is sent: the flags this batch carries and asks about, and where
  // each destination stands. Without an answer nothing is sent: flagged visitors' events never
  // leave on a guess.
  const flags = settings.HONOR_DO_NOT_PROCESS ? await flagCheck(env.LEDGER, routed, now) : undefined;
  const ids = [...groups.keys()];
  let states = new Map<string, DestinationState>();
  let dropped = new Set<Unit>();
  let flagFailure: unknown;
  try {
    const results = await env.LEDGER.batch([...(flags?.statements ?? []), statesStatement(env.LEDGER, ids)]);
    dropped = flags?.dropped(results.slice(0, flags.statements.length)) ?? new Set();
    const rows = (results.at(-1)?.results ?? []) as { id: string; state: DestinationState }[];
    states = new Map(rows.map((row) => [row.id, row.state]));
  } catch (error) {
    flagFailure = error;
  }

  // Every webhook is archived on its first attempt, whatever happens to it next (its source not
  // configured, the flag check down, a destination in outage): only a flagged visitor's events,
  // known as such, are not kept.
  const archived =
    settings.ARCHIVE_MODE === "all"
      ? archiveBatch(
          env.ARCHIVE,
          units.filter((unit) => !dropped.has(unit) && unit.attempts === 1).map((unit) => unit.message),
          now,
        )
      : undefined;
  // Awaited whatever happens below: a handler that returns or throws first would cancel it.
  try {
    if (flagFailure !== undefined) {
      log("error", "flag-check-failed", { messages: routed.length, error: String(flagFailure) });
      for (const unit of routed)
        settle.failTransient(unit.queued, unit.message, {
          status: null,
          reason: "retries-exhausted",
          detail: "the do-not-process check failed",
        });
      return;
    }
    for (const unit of dropped) {
      logDropped(unit.message);
      settle.count(unit.message, "dropped");
      settle.ack(unit.queued);
    }

    const toPark = new Map<string, { target: Target; units: Unit[] }>();
    const sends: Promise<{ target: Target; results: Map<Unit, UnitResult> }>[] = [];
    for (const { target, units: all } of groups.values()) {
      const kept = all.filter((unit) => !dropped.has(unit));
      if (kept.length === 0) continue;
      const state = states.get(target.id) ?? "open";
      if (state === "outage" || state === "held") toPark.set(target.id, { target, units: kept });
      else sends.push(sender.sendAll(target, kept).then((results) => ({ target, results })));
    }
    const sent = await Promise.all(sends);

    // A destination whose every request failed: failing since when, and is it now an outage?
    const failing = [...sent].filter(({ target }) => {
      const health = sender.health.get(target.id);
      return health?.failed && !health.delivered;
    });
    const nowParking = await enterOutage(
      env,
      settings,
      scope,
      sender,
      failing.map(({ target }) => target),
    );

    for (const { target, results } of sent) {
      for (const [unit, result] of results) {
        switch (result.kind) {
          case "delivered":
            settle.count(unit.message, "delivered");
            settle.ack(unit.queued);
            break;
          case "dead-letter":
            settle.deadLetter(unit.queued, unit.message, result.reason, result.status, result.detail);
            break;
          case "deferred":
            settle.defer(unit.queued, unit.message);
            break;
          case "failed": {
            if (nowParking.has(target.id)) {
              const group = toPark.get(target.id) ?? { target, units: [] };
              group.units.push(unit);
              toPark.set(target.id, group);
              break;
            }
            // A 429 waits its Retry-After, but never less than the backoff: a short Retry-After on
            // every attempt would otherwise spend all retries in minutes.
            settle.failTransient(unit.queued, unit.message, {
              status: result.status,
              reason: "retries-exhausted",
              detail: result.detail,
              atLeastSeconds: result.retryAfterSeconds,
            });
            break;
          }
        }
      }
    }

    await Promise.all(
      [...toPark.values()].map(async ({ target, units: parking }) => {
        const parked = await parkBatch(
          env.ARCHIVE,
          env.LEDGER,
          target,
          parking.map((unit) => unit.message),
          now,
        );
        if (parked.ok) {
          log("warn", "parked", { destination: target.id, messages: parking.length, seq: parked.seq });
          for (const unit of parking) settle.ack(unit.queued);
          return;
        }
        log(parked.reason === "open" ? "info" : "error", "park-failed", {
          destination: target.id,
          messages: parking.length,
          detail: parked.detail,
        });
        // Not parked: the ordinary way, retried with backoff (the next attempt finds it open, or parks).
        for (const unit of parking)
          settle.failTransient(unit.queued, unit.message, {
            status: null,
            reason: "retries-exhausted",
            detail: `not parked: ${parked.detail}`,
          });
      }),
    );
  } finally {
    await archived;
  }
}

/**
 * Records the failure of each destination that failed every request of this invocation; returns
 * those now in outage mode (whose failed messages are parked, not retried). The statement that
 * starts an outage starts its probe chain and its alert.
 */
async function enterOutage(
  env: Env,
  settings: Settings,
  scope: AlertScope,
  sender: Sender,
  targets: readonly Target[],
): Promise<Set<string>> {
  const parking = new Set<string>();
  if (targets.length === 0) return parking;
  const now = scope.now;
  const chains = targets.map(() => randomHex(8));
  try {
    const results = await env.LEDGER.batch(
      targets.map((target, i) =>
        failureStatement(env.LEDGER, {
          id: target.id,
          host: target.host,
          status: sender.health.get(target.id)?.lastStatus ?? null,
          now,
          outageIfFailingSince: now - settings.OUTAGE_AFTER_SECONDS * 1000,
          nextProbeAt: now + settings.OUTAGE_PROBE_SECONDS * 1000,
          chain: chains[i] as string,
        }),
      ),
    );
    await Promise.all(
      targets.map(async (target, i) => {
        const row = results[i]?.results[0] as { state: DestinationState; started: number } | undefined;
        // Held by an operator meanwhile parks too: a hold means nothing is sent until resumed.
        if (row?.state !== "outage" && row?.state !== "held") return;
        parking.add(target.id);
        if (!row.started) return;
        log("error", "outage-started", { destination: target.id, host: target.host });
        alertSoon(scope, target.id, "outage-started");
        await startChain(env, target.id, chains[i] as string, settings.OUTAGE_PROBE_SECONDS);
      }),
    );
  } catch (error) {
    // Unrecorded: the failed messages are retried the ordinary way, and the next batch tries again.
    log("warn", "ledger-write-failed", { record: "destination-failure", error: String(error) });
  }
  return parking;
}
