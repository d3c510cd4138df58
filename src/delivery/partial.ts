import type { RejectedEvent } from "../destination/profiles";
import type { SendUnit } from "./send";

/**
 * The units whose calls a 2xx answer names as refused, with the destination's reasons; the
 * reasons naming no call of this request (no messageId, or an id the destination rewrote).
 */
export function refusedUnits<T extends SendUnit>(units: readonly T[], rejected: readonly RejectedEvent[]) {
  const refused = new Map<T, string[]>();
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
