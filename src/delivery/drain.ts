import { type AlertScope, alertSoon } from "../alerts/notify";
import type { Settings } from "../config";
import type { Target } from "../destination/target";
import type { Env } from "../env";
import { recordId } from "../kv/keys";
import { type CountDelta, countedEvent, countStatement } from "../ledger/counts";
import { deliveryStatement } from "../ledger/delivery";
import {
  backToOutageStatement,
  beatStatement,
  claimParkedStatement,
  claimProbeStatement,
  type DestinationState,
  drainedStatement,
  drainingStatement,
  nothingClaimedStatement,
  type ParkedRow,
  probeAtStatement,
  releaseParkedStatement,
  shrinkParkedStatement,
  unparkStatement,
} from "../ledger/destinations";
import { deadLetterOf, type LedgerRecord, safeIdPart } from "../ledger/records";
import { log } from "../log";
import type { RelayMessage } from "../queue/message";
import { storeRecords } from "../records/store";
import { targetFor } from "../targets";
import type { Next } from "./control";
import { flagCheck, logDropped } from "./flags";
import { parkedObject, readParked } from "./park";
import type { Sender, SendUnit, UnitResult } from "./send";

/**
 * One step of a destination's chain in outage mode:
 * - outage: when a probe is due (one per OUTAGE_PROBE_SECONDS), the oldest parked batch goes out;
 *   if it gets through, the destination is draining, and this step goes on draining;
 * - draining: parked batches go out in arrival order, a few at a time, until the invocation's
 *   request budget is spent; a 429 pauses the chain for its Retry-After, any other failure sends
 *   the destination back to probing; when nothing is left it is open again (and alerts so);
 * - held or open: the chain ends.
 * Each parked message is sent to its source's destination as configured now (a rotated write key
 * included), under its original messageIds, after do-not-process is applied by its own event time.
 */

const PARALLEL_BATCHES = 4;
// A claim outlives a step (requests time out after SEGMENT_TIMEOUT_MS, at most 60 s).
const LEASE_MS = 5 * 60_000;
// Parked batches claimed by another step (a retried one whose lease has not lapsed): look again then.
const CLAIMED_ELSEWHERE_SECONDS = 30;

/**
 * Rounds of PARALLEL_BATCHES one step runs at most. Each round costs about a dozen subrequests
 * (a claim, the reads, a flag check, the sends, a batch, a delete) besides the requests the
 * budget counts (binding calls count as subrequests too); at the default budget (40, sized for
 * the Free plan's 50 subrequests) three rounds, above it a round per PARALLEL_BATCHES requests. A round that sends nothing (every event dropped
 * or dead-lettered) spends no request budget, so this cap is what ends such a step.
 */
export const roundsOf = (settings: Settings) =>
  settings.SEGMENT_REQUEST_BUDGET <= 50 ? 3 : Math.floor(settings.SEGMENT_REQUEST_BUDGET / PARALLEL_BATCHES);

/**
 * `current` is the token the step's message carries; `chain` the one its successor will carry
 * (chosen by the caller, so that a step that throws still hands the chain on).
 */
export async function destinationStep(
  env: Env,
  settings: Settings,
  scope: AlertScope,
  sender: Sender,
  id: string,
  current: string,
  chain: string,
): Promise<Next> {
  const db = env.LEDGER;
  const now = Date.now();
  const beat = await beatStatement(db, id, current, chain, now).first<{
    state: DestinationState;
    nextProbeAt: number;
  }>();
  // A stale chain (a newer one owns the destination, an operator held it, or this very step's
  // message came twice and the other copy moved on): it ends here.
  if (!beat) return undefined;
  if (beat.state === "held" || beat.state === "open") return undefined;
  const next = (delaySeconds: number): Next => ({ delaySeconds });
  const probeMs = settings.OUTAGE_PROBE_SECONDS * 1000;
  if (beat.state === "outage") {
    if (beat.nextProbeAt > now) return next((beat.nextProbeAt - now) / 1000);
    const claimed = await claimProbeStatement(db, id, chain, now, now + probeMs).first();
    if (!claimed) return next(settings.OUTAGE_PROBE_SECONDS);
    const probe = await drainSome(env, settings, sender, id, chain, 1, now);
    log("warn", "outage-probe", { destination: id, outcome: probe.kind });
    switch (probe.kind) {
      case "failed":
        return next(settings.OUTAGE_PROBE_SECONDS);
      case "stopped":
        return undefined;
      case "claimed":
      case "deferred": {
        // Nothing was sent: the probe is not spent, and is taken again when the next step runs.
        const delay = probe.kind === "claimed" ? CLAIMED_ELSEWHERE_SECONDS : 0;
        await probeAtStatement(db, id, chain, Date.now() + delay * 1000).run();
        return next(delay);
      }
      case "paused":
        await probeAtStatement(db, id, chain, now + probe.seconds * 1000).run();
        return next(probe.seconds);
    }
    // Through (or nothing parked to probe with): parked batches go out from now on.
    const draining = await drainingStatement(db, id, chain).run();
    // Held or replaced meanwhile: the next beat tells.
    if (draining.meta.changes === 0) return next(1);
  }
  for (let round = 0; round < roundsOf(settings); round++) {
    const step = await drainSome(env, settings, sender, id, chain, PARALLEL_BATCHES, Date.now());
    switch (step.kind) {
      case "sent":
        continue;
      case "stopped":
        return undefined;
      case "claimed":
        return next(CLAIMED_ELSEWHERE_SECONDS);
      case "deferred":
        // The invocation's request budget is spent: the next step runs in a fresh invocation.
        return next(0);
      case "paused":
        return next(step.seconds);
      case "failed":
        await backToOutageStatement(db, id, chain, step.status, Date.now() + probeMs).run();
        log("warn", "outage-resumed", { destination: id, status: step.status });
        return next(settings.OUTAGE_PROBE_SECONDS);
      case "empty": {
        const drained = await drainedStatement(db, id, chain).first();
        if (!drained) return next(1); // something was parked meanwhile, or is still claimed
        log("warn", "outage-drained", { destination: id });
        alertSoon(scope, id, "outage-drained");
        return undefined;
      }
    }
  }
  // This step's rounds are spent: the next runs in a fresh invocation.
  return next(0);
}

type Drained =
  | { kind: "sent" }
  | { kind: "empty" }
  /** Parked batches wait, but another step holds every one of them. */
  | { kind: "claimed" }
  /** The chain does not own the destination any more (held, replaced, or open again). */
  | { kind: "stopped" }
  | { kind: "deferred" }
  | { kind: "paused"; seconds: number }
  | { kind: "failed"; status: number | null };

interface ParkedUnit extends SendUnit {
  row: ParkedRow;
  /** The parked object's version (its etag) and the message's place in it: a dead letter's id. */
  version: string;
  index: number;
}

/** Claims the next `limit` parked batches in order, sends them, and settles each. */
async function drainSome(
  env: Env,
  settings: Settings,
  sender: Sender,
  id: string,
  chain: string,
  limit: number,
  now: number,
): Promise<Drained> {
  const db = env.LEDGER;
  const claimed = await claimParkedStatement(db, id, chain, limit, now, now + LEASE_MS).all<ParkedRow>();
  const rows = claimed.results.sort((a, b) => (a.seq < b.seq ? -1 : 1));
  if (rows.length === 0) {
    const why = await nothingClaimedStatement(db, id, chain).first<{ owned: number; parked: number }>();
    if (!why?.owned) return { kind: "stopped" };
    return why.parked ? { kind: "claimed" } : { kind: "empty" };
  }
  const release = () =>
    releaseParkedStatement(
      db,
      id,
      rows.map((row) => row.seq),
    ).run();
  try {
    return await sendClaimed(env, settings, sender, id, rows, release, now);
  } catch (error) {
    // Given back at once rather than when the lease lapses; what was sent goes again (same ids).
    await release().catch(() => undefined);
    throw error;
  }
}

/**
 * A dead letter's id from where it lies: the parked batch, the version of its object (a batch
 * part of which went out is written again, and its messages move), and the frame's place in it.
 * A step done twice (it threw after storing them) reads the same object and stores the same ids,
 * which the ledger keeps once; two messages never share one, even two copies of one event.
 */
function parkedLetterId(row: ParkedRow, version: string, what: string): string {
  const parkedAt = Number(row.seq.slice(0, 13));
  return recordId(
    parkedAt,
    `parked.${safeIdPart(row.seq.slice(14))}.${safeIdPart(version).slice(0, 12)}.${what}`,
  );
}

async function sendClaimed(
  env: Env,
  settings: Settings,
  sender: Sender,
  id: string,
  rows: ParkedRow[],
  release: () => Promise<unknown>,
  now: number,
): Promise<Drained> {
  const db = env.LEDGER;

  const read = await Promise.all(
    rows.map(async (row) => ({ row, read: await readParked(env.ARCHIVE, row.objectKey) })),
  );
  if (read.some(({ read: parked }) => !parked.ok && parked.reason === "unreadable-object")) {
    // R2 did not answer: not the destination's fault, and nothing is lost; tried again shortly.
    log("error", "parked-read-failed", { destination: id, batches: rows.length });
    await release();
    return { kind: "paused", seconds: 30 };
  }
  const letters: LedgerRecord[] = [];
  const units: ParkedUnit[] = [];
  for (const { row, read: parked } of read) {
    if (!parked.ok) {
      // Its bytes are gone: said loudly, and the row is kept as a dead letter naming what is lost.
      letters.push(
        deadLetterOf(
          {
            id: parkedLetterId(row, "gone", "object"),
            reason: "malformed-message",
            source: "unknown",
            eventId: row.seq,
            event: "",
            attempts: 0,
            lastStatus: null,
            detail: `parked batch ${row.seq} (${row.messages} messages): ${parked.detail}`,
            receivedAt: row.oldestAt,
          },
          now,
        ),
      );
      continue;
    }
    for (const [index, unreadable] of parked.unreadable.entries()) {
      letters.push(
        deadLetterOf(
          {
            id: parkedLetterId(row, parked.version, `frame${index}`),
            reason: "malformed-message",
            source: "unknown",
            eventId: "unknown",
            event: "",
            attempts: 0,
            lastStatus: null,
            detail: unreadable.detail,
            receivedAt: row.oldestAt,
            body: unreadable.bytes,
          },
          now,
        ),
      );
    }
    for (const [index, message] of parked.messages.entries())
      units.push({
        row,
        version: parked.version,
        index,
        message,
        calls: message.calls,
        bytes: message.bytes,
        attempts: 1,
      });
  }

  const flags = settings.HONOR_DO_NOT_PROCESS ? await flagCheck(db, units, now) : undefined;
  let dropped = new Set<ParkedUnit>();
  if (flags && flags.statements.length > 0) {
    try {
      dropped = flags.dropped(await db.batch(flags.statements));
    } catch (error) {
      log("error", "flag-check-failed", { destination: id, error: String(error) });
      await release();
      return { kind: "failed", status: null };
    }
  }
  const counts: CountDelta[] = [];
  for (const unit of dropped) {
    logDropped(unit.message, "parked");
    counts.push({
      source: unit.message.source,
      event: countedEvent(unit.message.event),
      outcome: "dropped",
      at: now,
    });
  }

  // Each message to its source's destination as configured now.
  const byTarget = new Map<string, { target: Target; units: ParkedUnit[] }>();
  const waiting: ParkedUnit[] = [];
  for (const unit of units) {
    if (dropped.has(unit)) continue;
    const resolved = await targetFor(settings, unit.message.source, unit.message.destination);
    if (!resolved.ok) {
      waiting.push(unit); // kept parked until its source is configured again
      continue;
    }
    const group = byTarget.get(resolved.target.id) ?? { target: resolved.target, units: [] };
    group.units.push(unit);
    byTarget.set(resolved.target.id, group);
  }
  const results = new Map<ParkedUnit, UnitResult>();
  for (const sent of await Promise.all(
    [...byTarget.values()].map(({ target, units: some }) => sender.sendAll(target, some)),
  )) {
    for (const [unit, result] of sent) results.set(unit, result);
  }

  let failure: { status: number | null; retryAfterSeconds?: number } | undefined;
  let deferred = false;
  const remaining = new Map<ParkedRow, RelayMessage[]>(rows.map((row) => [row, []]));
  for (const unit of waiting) remaining.get(unit.row)?.push(unit.message);
  for (const [unit, result] of results) {
    if (result.kind === "delivered") {
      counts.push({
        source: unit.message.source,
        event: countedEvent(unit.message.event),
        outcome: "delivered",
        at: now,
      });
    } else if (result.kind === "dead-letter") {
      letters.push(
        deadLetterOf(
          {
            id: parkedLetterId(unit.row, unit.version, `message${unit.index}`),
            reason: result.reason,
            source: unit.message.source,
            eventId: unit.message.eventId,
            event: unit.message.event,
            attempts: 1,
            lastStatus: result.status,
            detail: result.detail,
            receivedAt: unit.message.receivedAt,
            message: unit.message,
          },
          now,
        ),
      );
    } else {
      remaining.get(unit.row)?.push(unit.message);
      if (result.kind === "deferred") deferred = true;
      else if (!failure || (result.retryAfterSeconds ?? 0) > (failure.retryAfterSeconds ?? 0))
        failure = { status: result.status, retryAfterSeconds: result.retryAfterSeconds };
    }
  }

  if (letters.length > 0) {
    const stored = await storeRecords(env.ARCHIVE, db, letters, { now, secondStore: true });
    if (!stored.ok) {
      // Nothing is settled that is not stored: the batches stay parked whole, and are sent again
      // (under the same messageIds) once the stores take writes.
      log("error", "dead-letter-write-failed", {
        store: stored.store,
        count: letters.length,
        error: stored.error,
      });
      await release();
      return { kind: "failed", status: null };
    }
  }

  const done = rows.filter((row) => (remaining.get(row) ?? []).length === 0);
  const partly = rows.filter((row) => (remaining.get(row) ?? []).length > 0);
  // What is left of a batch part of which went out is written back first: the row never points at
  // an object that holds events already delivered.
  await Promise.all(
    partly.map(async (row) => {
      const left = remaining.get(row) ?? [];
      if (left.length === row.messages) return;
      const data = parkedObject(left);
      await env.ARCHIVE.put(row.objectKey, data, { customMetadata: { messages: String(left.length) } });
      Object.assign(row, {
        messages: left.length,
        events: left.reduce((sum, message) => sum + message.calls.length, 0),
        bytes: data.length,
        oldestAt: Math.min(...left.map((message) => message.receivedAt)),
      });
    }),
  );
  const counted = countStatement(db, counts);
  await db.batch([
    ...(done.length > 0
      ? [
          unparkStatement(
            db,
            id,
            done.map((row) => row.seq),
          ),
        ]
      : []),
    ...partly.map((row) => shrinkParkedStatement(db, row)),
    ...(counted ? [counted] : []),
    ...[...sender.rounds].map(([source, round]) => deliveryStatement(db, source, round, now)),
  ]);
  sender.rounds.clear();
  if (done.length > 0) {
    await env.ARCHIVE.delete(done.map((row) => row.objectKey)).catch((error) =>
      log("warn", "parked-object-left", { destination: id, objects: done.length, error: String(error) }),
    );
  }

  if (failure?.retryAfterSeconds !== undefined) return { kind: "paused", seconds: failure.retryAfterSeconds };
  if (failure) return { kind: "failed", status: failure.status };
  if (deferred) return { kind: "deferred" };
  // Only messages whose source is not configured any more were left: nothing to do until it is.
  if (results.size === 0 && letters.length === 0 && dropped.size === 0)
    return { kind: "paused", seconds: 300 };
  return { kind: "sent" };
}
