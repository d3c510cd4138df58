import type { Env } from "../env";
import type { DeadLetterInput, LedgerRecord } from "../ledger/records";
import { log } from "../log";
import { bytesOfBody } from "../queue/message";
import { storeRecords } from "../records/store";

/**
 * The dead letter of a queue message this relay could not read (either consumer may meet one):
 * kept as the bytes received, under its own reason. Replay reads those bytes again, so a message
 * a later deploy understands can still be sent.
 */
export function malformedLetter(queued: Message<unknown>, detail: string): DeadLetterInput {
  return {
    reason: "malformed-message",
    source: "unknown",
    eventId: "unknown",
    event: "",
    attempts: queued.attempts,
    lastStatus: null,
    detail,
    receivedAt: queued.timestamp.getTime(),
    body: bytesOfBody(queued.body),
  };
}

/** A queue message and the dead letter it became. */
export interface PendingLetter {
  queued: Message<unknown>;
  record: LedgerRecord;
}

/**
 * Stores a consumer invocation's dead letters as one group (src/records/store.ts): their bytes in
 * one R2 object, their rows in one ledger statement, or in `pending/` while the ledger refuses.
 * Logs each one stored. Returns what was not stored: the caller retries those, never acks them.
 */
export async function storeLetters<T extends PendingLetter>(
  env: Env,
  letters: readonly T[],
  now: number,
): Promise<{ stored: T[]; unstored: T[] }> {
  if (letters.length === 0) return { stored: [], unstored: [] };
  const result = await storeRecords(
    env.ARCHIVE,
    env.LEDGER,
    letters.map(({ record }) => record),
    { now, secondStore: true },
  );
  if (!result.ok) {
    log("error", "dead-letter-write-failed", {
      store: result.store,
      count: letters.length,
      error: result.error,
    });
    return { stored: [], unstored: [...letters] };
  }
  if (result.where === "pending") {
    log("error", "dead-letter-write-failed", {
      store: "ledger",
      count: letters.length,
      kept: "pending: the cron moves the rows into the ledger",
    });
  }
  for (const { record } of letters) {
    log("warn", "dead-letter", {
      source: record.source,
      event: record.event,
      uniqueId: record.eventId,
      reason: record.reason,
      status: record.lastStatus,
    });
  }
  return { stored: [...letters], unstored: [] };
}
