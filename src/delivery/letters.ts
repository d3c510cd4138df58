import type { DeadLetterInput } from "../ledger/records";
import { cutDetail } from "../log";
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
