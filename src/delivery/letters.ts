import type { DeadLetterInput } from "../kv/records";
import { cutDetail } from "../log";

/**
 * The dead letter of a queue message no relay wrote (either consumer may meet one): kept as
 * received, under its own reason, with nothing to replay.
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
    rawMessage: JSON.stringify(queued.body) ?? String(queued.body),
  };
}
