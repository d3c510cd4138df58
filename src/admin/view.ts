import { base64Of, bodyText, type LedgerRecord } from "../ledger/records";
import { decodeRelayMessage, type RelayMessage } from "../queue/message";

/**
 * A record as the admin API shows it: the bytes as received always as `rawBodyBase64`, and as
 * `rawBody` text when they are UTF-8; a queued message decoded, with its messageIds, so a record
 * can be found from Segment's side as well as from Pendo's uniqueId.
 */
export function recordView(record: LedgerRecord) {
  const { body, message: encoded, createdAt, ...rest } = record;
  const view: Record<string, unknown> = { ...rest, lastFailureAt: createdAt };
  if (encoded !== undefined) {
    const decoded = decodeRelayMessage(encoded);
    if (decoded.ok) {
      view.message = decoded.message;
      view.messageIds = messageIdsOf(decoded.message);
    }
  }
  if (body !== undefined) {
    view.rawBodyBase64 = base64Of(body);
    const text = bodyText(body);
    if (text !== undefined) view.rawBody = text;
  }
  return view;
}

function messageIdsOf(message: RelayMessage): string[] {
  return message.calls.flatMap((call) => {
    const match = /"messageId":"([^"\\]*)"/.exec(call);
    return match?.[1] ? [match[1]] : [];
  });
}
