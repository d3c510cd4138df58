import type { Target } from "../destination/target";
import { parkStatement } from "../ledger/destinations";
import { randomHex } from "../ledger/records";
import { log } from "../log";
import { decodeRelayMessage, encodeRelayMessage, type RelayMessage } from "../queue/message";
import { decodeFrames, encodeFrames } from "../r2/frames";
import { groupId, parkedKey } from "../r2/keys";

/**
 * A parked batch: the messages of one consumer batch for a destination in outage mode, in one R2
 * object (frames of the messages as the queue held them) and one ledger row. The messages are
 * acked only after both are written; they stay parked, with no expiry, until sent or stored as
 * dead letters.
 */

export type ParkResult =
  | { ok: true; seq: string; objectKey: string }
  | { ok: false; reason: "open" | "failed"; detail: string };

const encoder = new TextEncoder();

export function parkedObject(messages: readonly RelayMessage[]): Uint8Array {
  return encodeFrames(
    messages.map((message) => ({ meta: {}, bytes: encoder.encode(encodeRelayMessage(message)) })),
  ).data;
}

export async function parkBatch(
  bucket: R2Bucket,
  db: D1Database,
  target: Target,
  messages: readonly RelayMessage[],
  now: number,
): Promise<ParkResult> {
  const seq = groupId(now, randomHex(6));
  const objectKey = parkedKey(target.id, seq);
  const data = parkedObject(messages);
  try {
    await bucket.put(objectKey, data, { customMetadata: { messages: String(messages.length) } });
  } catch (error) {
    return { ok: false, reason: "failed", detail: `R2: ${String(error)}` };
  }
  let changes: number;
  try {
    const result = await parkStatement(db, {
      destination: target.id,
      seq,
      objectKey,
      messages: messages.length,
      events: messages.reduce((sum, message) => sum + message.calls.length, 0),
      bytes: data.length,
      oldestAt: Math.min(...messages.map((message) => message.receivedAt)),
      now,
    }).run();
    changes = result.meta.changes;
  } catch (error) {
    // The row may have landed all the same (an error after the commit): the object goes only once
    // the ledger says the row is not there, so a row never points at nothing. Unanswered, it is
    // kept: at worst an orphan, or the batch parked twice by its retry and sent twice under the
    // same messageIds.
    const landed = await db
      .prepare("SELECT 1 AS x FROM parked WHERE destination = ? AND seq = ?")
      .bind(target.id, seq)
      .first()
      .catch(() => "unknown" as const);
    if (landed === null) await forget(bucket, objectKey);
    else log("error", "parked-object-kept", { key: objectKey, error: String(error) });
    return { ok: false, reason: "failed", detail: `ledger: ${String(error)}` };
  }
  if (changes === 0) {
    // The destination drained and opened meanwhile: nothing to park behind, sent the usual way.
    await forget(bucket, objectKey);
    return { ok: false, reason: "open", detail: "the destination is open again" };
  }
  return { ok: true, seq, objectKey };
}

/** An object no row points at: removed, or left for the orphan sweep if even that fails. */
async function forget(bucket: R2Bucket, key: string) {
  await bucket.delete(key).catch((error) => log("warn", "parked-object-left", { key, error: String(error) }));
}

export type ParkedRead =
  | {
      ok: true;
      messages: RelayMessage[];
      unreadable: { bytes: Uint8Array; detail: string }[];
      /** The object's etag: which version of a batch written again after part of it went out. */
      version: string;
    }
  | { ok: false; reason: "missing-object" | "unreadable-object"; detail: string };

/** A parked batch read back: its messages, and any frame no reader understands (kept as a dead letter). */
export async function readParked(bucket: R2Bucket, key: string): Promise<ParkedRead> {
  let data: Uint8Array;
  let version: string;
  try {
    const object = await bucket.get(key);
    if (!object) return { ok: false, reason: "missing-object", detail: `R2 has no object ${key}` };
    data = new Uint8Array(await object.arrayBuffer());
    version = object.etag;
  } catch (error) {
    return { ok: false, reason: "unreadable-object", detail: `R2 could not read ${key}: ${String(error)}` };
  }
  const decoded = decodeFrames(data);
  const messages: RelayMessage[] = [];
  const unreadable: { bytes: Uint8Array; detail: string }[] = [];
  for (const frame of decoded.frames) {
    const message = decodeRelayMessage(frame.bytes);
    if (message.ok) messages.push(message.message);
    else unreadable.push({ bytes: frame.bytes, detail: message.detail });
  }
  if (!decoded.ok) unreadable.push({ bytes: data, detail: `${key}: ${decoded.detail}` });
  return { ok: true, messages, unreadable, version };
}
