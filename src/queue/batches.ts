import { MAX_QUEUE_MESSAGE_BYTES } from "./message";

// Queues: sendBatch takes at most 100 messages and 256 KB (developers.cloudflare.com/queues/platform/limits).
export const SEND_BATCH_MESSAGES = 100;
const SEND_BATCH_BYTES = 256_000;

/**
 * Items in groups that each fit one `sendBatch`: at most 100 messages and 256 KB. `text` is an
 * item's message as it will be sent; its UTF-8 is at most three bytes a character, and a message
 * at most MAX_QUEUE_MESSAGE_BYTES, so a group never exceeds the limit, measured or not.
 */
export function sendBatchGroups<T>(items: readonly T[], text: (item: T) => string): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = Math.min(text(item).length * 3, MAX_QUEUE_MESSAGE_BYTES);
    if (current.length > 0 && (current.length >= SEND_BATCH_MESSAGES || bytes + size > SEND_BATCH_BYTES)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
