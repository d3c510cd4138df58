import { base64Of, bodyText, type LedgerRecord } from "../ledger/records";
import { decodeRelayMessage, type RelayMessage } from "../queue/message";

/**
 * A record as the admin API shows it: the bytes as received (read back from R2) always as
 * `rawBodyBase64`, and as `rawBody` text when they are UTF-8; a queued message decoded, with its
 * messageIds, so a record can be found from Segment's side as well as from Pendo's uniqueId. A
 * record whose bytes could not be read says so (`bytesMissing`), and one kept over its source's
 * budget says that only its row was kept.
 */
export function recordView(record: LedgerRecord, bytesMissing?: string) {
  const { body, message: encoded, createdAt, object, holds, ...rest } = record;
  const view: Record<string, unknown> = { ...rest, lastFailureAt: createdAt };
  if (object) view.object = object;
  if (holds === "none") view.bytesMissing = "only the row was kept: the source was over RECORD_BUDGET_BYTES";
  if (bytesMissing) view.bytesMissing = bytesMissing;
  if (encoded !== undefined) {
    const decoded = decodeRelayMessage(encoded);
    if (decoded.ok) {
      const { raw, ...message } = decoded.message;
      view.message = message;
      view.messageIds = messageIdsOf(decoded.message);
      // The webhook as received, when it travelled with its message (ARCHIVE_MODE failures or all).
      if (raw !== undefined) view.rawBody = raw;
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
