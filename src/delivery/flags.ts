import {
  type FlagQuestion,
  flaggedPositions,
  flaggedStatement,
  flagStatement,
  visitorHash,
} from "../ledger/flags";
import { cutText } from "../ledger/text";
import { LOGGED_NAME_LIMIT, log } from "../log";
import type { RelayMessage } from "../queue/message";

/**
 * Do-not-process for a batch of messages, as statements for the caller's one round trip: the
 * flag events it carries are recorded first (a replayed flag event reaches the history this way
 * too), then each other message with a visitor asks whether that visitor was flagged at the
 * message's own Pendo time. The flag event itself is always delivered.
 */
export interface FlagCheck<T> {
  statements: D1PreparedStatement[];
  /** Reads the answer (the results of `statements`, in order): the units to drop. */
  dropped(results: readonly D1Result[]): Set<T>;
}

const NO_CHECK = { statements: [], dropped: () => new Set<never>() };

export async function flagCheck<T extends { message: RelayMessage }>(
  db: D1Database,
  units: readonly T[],
  now: number,
): Promise<FlagCheck<T>> {
  const withVisitor = units.filter((unit) => unit.message.visitor !== undefined);
  if (withVisitor.length === 0) return NO_CHECK;
  const hashes = new Map<string, string>();
  await Promise.all(
    [...new Set(withVisitor.map((unit) => unit.message.visitor as string))].map(async (visitor) => {
      hashes.set(visitor, await visitorHash(visitor));
    }),
  );
  const statements: D1PreparedStatement[] = [];
  const asked: T[] = [];
  const questions: FlagQuestion[] = [];
  for (const unit of withVisitor) {
    const { message } = unit;
    const hash = hashes.get(message.visitor as string) as string;
    const eventTime = message.eventTime ?? message.receivedAt;
    if (message.doNotProcess !== undefined) {
      const update = { source: message.source, visitorHash: hash, flagged: message.doNotProcess, eventTime };
      statements.push(flagStatement(db, update, now));
    } else {
      asked.push(unit);
      questions.push({ source: message.source, visitorHash: hash, eventTime });
    }
  }
  if (questions.length > 0) statements.push(flaggedStatement(db, questions));
  return {
    statements,
    dropped(results) {
      if (questions.length === 0) return new Set();
      const positions = flaggedPositions(results[statements.length - 1]?.results ?? []);
      return new Set(asked.filter((_, i) => positions.has(i)));
    },
  };
}

/** The log line of an event dropped for its visitor's flag. */
export function logDropped(message: RelayMessage, via?: string) {
  log("info", "do-not-process-drop", {
    source: message.source,
    event: cutText(message.event, LOGGED_NAME_LIMIT),
    uniqueId: message.eventId,
    ...(via ? { via } : {}),
  });
}
