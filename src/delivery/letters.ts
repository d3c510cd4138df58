import type { Env } from "../env";
import { putFallback } from "../ledger/fallback";
import { type DeadLetterInput, insertRecord, type LedgerRecord } from "../ledger/records";
import { cutDetail, log } from "../log";
import { bytesOfBody } from "../queue/message";

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
    detail: cutDetail(detail),
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
 * Stores dead letters, as both consumers do: in the ledger, in transactions of at most
 * CHUNK_STATEMENTS statements and CHUNK_BYTES (D1 limits a row to 2 MB and counts queries per
 * invocation); if D1 refuses, each in KV, the second store the cron moves back. Logs each one
 * stored. Returns what neither store took: the caller retries those, never acks them.
 */
export async function storeLetters<T extends PendingLetter>(
  env: Env,
  letters: readonly T[],
  ttlSeconds: number,
): Promise<{ stored: T[]; unstored: T[] }> {
  const stored: T[] = [];
  const unstored: T[] = [];
  if (letters.length === 0) return { stored, unstored };
  const db = env.LEDGER;
  try {
    for (const chunk of chunks(letters)) await db.batch(chunk.map(({ record }) => insertRecord(db, record)));
    stored.push(...letters);
  } catch (error) {
    log("error", "dead-letter-write-failed", {
      store: "ledger",
      count: letters.length,
      error: String(error),
    });
    // A chunk D1 took before failing is also written to KV: the cron's move ignores an id it has.
    await Promise.all(
      letters.map(async (letter) => {
        try {
          await putFallback(env.DEDUP, letter.record, ttlSeconds);
          stored.push(letter);
        } catch (fallbackError) {
          log("error", "dead-letter-write-failed", {
            store: "kv",
            uniqueId: letter.record.eventId,
            attempt: letter.queued.attempts,
            error: cutDetail(String(fallbackError)),
          });
          unstored.push(letter);
        }
      }),
    );
  }
  for (const { record } of stored) {
    log("warn", "dead-letter", {
      source: record.source,
      event: record.event,
      uniqueId: record.eventId,
      reason: record.reason,
      status: record.lastStatus,
    });
  }
  return { stored, unstored };
}

const CHUNK_STATEMENTS = 20;
const CHUNK_BYTES = 1_000_000;

/** Consecutive groups within both bounds; a letter over the byte bound travels alone. */
function chunks<T extends PendingLetter>(letters: readonly T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const letter of letters) {
    // A message's text may take up to 3 bytes a character as UTF-8.
    const size = (letter.record.message?.length ?? 0) * 3 + (letter.record.body?.length ?? 0);
    if (current.length > 0 && (current.length >= CHUNK_STATEMENTS || bytes + size > CHUNK_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(letter);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
