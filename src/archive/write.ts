import { randomHex } from "../ledger/records";
import { log } from "../log";
import { encodeRelayMessage, type RelayMessage } from "../queue/message";
import { encodeFrames, type Frame } from "../r2/frames";
import { archiveKey, groupId } from "../r2/keys";
import type { ArchiveMeta } from "./read";

const encoder = new TextEncoder();

/**
 * ARCHIVE_MODE=all: a consumer batch's webhooks, as received, one R2 object per (source, hour
 * received) — in practice one per batch — never one per webhook. A message whose webhook did not
 * travel with it (too large to share a queue message with its calls) is archived as its calls.
 * The archive is a copy for sending a time range again: a put that fails is logged and counted
 * in that line, and never holds up delivery. Expiry is the bucket's lifecycle rule (ARCHIVE_DAYS).
 */
export async function archiveBatch(
  bucket: R2Bucket,
  messages: readonly RelayMessage[],
  now: number,
): Promise<void> {
  const groups = new Map<string, RelayMessage[]>();
  for (const message of messages) {
    if (message.replayedAt !== undefined) continue; // archived when it first came
    const hour = Math.floor(message.receivedAt / 3_600_000);
    const key = `${message.source}\n${hour}`;
    groups.set(key, [...(groups.get(key) ?? []), message]);
  }
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const first = group[0] as RelayMessage;
      const frames: Frame[] = group.map((message) => {
        const meta: ArchiveMeta = {
          eventId: message.eventId,
          event: message.event.slice(0, 200),
          receivedAt: message.receivedAt,
          holds: message.raw === undefined ? "message" : "body",
        };
        return {
          meta: meta as unknown as Record<string, unknown>,
          bytes: encoder.encode(message.raw ?? encodeRelayMessage(message)),
        };
      });
      const times = group.map((message) => message.receivedAt);
      const key = archiveKey(first.source, first.receivedAt, groupId(now, randomHex(6)));
      try {
        await bucket.put(key, encodeFrames(frames).data, {
          customMetadata: {
            events: String(group.length),
            first: String(Math.min(...times)),
            last: String(Math.max(...times)),
          },
        });
      } catch (error) {
        log("error", "archive-write-failed", {
          source: first.source,
          webhooks: group.length,
          error: String(error),
        });
      }
    }),
  );
}
