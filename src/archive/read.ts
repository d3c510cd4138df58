import * as v from "valibot";
import { decodeFrames } from "../r2/frames";
import { archiveHourPrefix } from "../r2/keys";

/** What each archived webhook's frame says of it. */
export const ArchiveMetaSchema = v.object({
  eventId: v.string(),
  event: v.string(),
  receivedAt: v.number(),
  holds: v.picklist(["body", "message"]),
});
export type ArchiveMeta = v.InferOutput<typeof ArchiveMetaSchema>;

export interface ArchiveObject {
  key: string;
  events: number;
  first: number;
  last: number;
}

const HOUR_MS = 3_600_000;

export interface ListOptions {
  /** Continue after this key (a job's cursor). */
  after?: string;
  /** Stop once this many objects are listed. */
  maxObjects: number;
  /** Stop after this many list calls: each is a billed Class A operation and a subrequest. */
  maxLists: number;
}

export interface Listing {
  objects: ArchiveObject[];
  /** Every object of the range (after the cursor) is in `objects`. */
  complete: boolean;
  lists: number;
  /** The last key looked at, in the range or not: where the next listing may start after. */
  scanned?: string;
}

/**
 * The archive objects of one source that may hold webhooks received in [from, to), in key order
 * (hour by hour, each hour's objects in the order they were written), with each object's count
 * and time span from its metadata, so counting needs no object read.
 */
export async function listArchive(
  bucket: R2Bucket,
  source: string,
  from: number,
  to: number,
  options: ListOptions,
): Promise<Listing> {
  const listing: Listing = { objects: [], complete: false, lists: 0 };
  const lastHour = Math.floor((to - 1) / HOUR_MS);
  for (let hour = Math.floor(from / HOUR_MS); hour <= lastHour; hour++) {
    const prefix = archiveHourPrefix(source, hour * HOUR_MS);
    if (options.after && options.after >= `${prefix}\uffff`) continue; // the cursor is past this hour
    let cursor: string | undefined;
    do {
      if (listing.lists >= options.maxLists) return listing;
      // Whole pages whatever maxObjects is: objects outside the range are passed over in bulk.
      const page = await bucket.list({
        prefix,
        cursor,
        limit: 1_000,
        include: ["customMetadata"],
        ...(options.after && !cursor && options.after.startsWith(prefix)
          ? { startAfter: options.after }
          : {}),
      });
      listing.lists++;
      for (const object of page.objects) {
        if (listing.objects.length >= options.maxObjects) return listing;
        const meta = object.customMetadata ?? {};
        const entry = {
          key: object.key,
          events: Number(meta.events ?? 0),
          first: Number(meta.first ?? hour * HOUR_MS),
          last: Number(meta.last ?? (hour + 1) * HOUR_MS - 1),
        };
        if (entry.last >= from && entry.first < to) listing.objects.push(entry);
        listing.scanned = object.key;
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    // The whole hour looked at: the next listing starts past it, even when it held nothing.
    listing.scanned = `${prefix}\uffff`;
  }
  listing.complete = true;
  return listing;
}

export type ArchivedWebhook = { meta: ArchiveMeta; bytes: Uint8Array };

export type ArchiveRead =
  | { ok: true; webhooks: ArchivedWebhook[]; unreadable: number }
  | { ok: false; reason: "missing-object" | "unreadable-object"; detail: string };

/** One archive object's webhooks received in [from, to); frames no reader understands are counted. */
export async function readArchiveObject(
  bucket: R2Bucket,
  key: string,
  from: number,
  to: number,
): Promise<ArchiveRead> {
  let data: Uint8Array;
  try {
    const object = await bucket.get(key);
    if (!object) return { ok: false, reason: "missing-object", detail: `R2 has no object ${key} (expired?)` };
    data = new Uint8Array(await object.arrayBuffer());
  } catch (error) {
    return { ok: false, reason: "unreadable-object", detail: `R2 could not read ${key}: ${String(error)}` };
  }
  const decoded = decodeFrames(data);
  const webhooks: ArchivedWebhook[] = [];
  let unreadable = decoded.ok ? 0 : 1;
  for (const frame of decoded.frames) {
    const meta = v.safeParse(ArchiveMetaSchema, frame.meta);
    if (!meta.success) {
      unreadable++;
      continue;
    }
    if (meta.output.receivedAt >= from && meta.output.receivedAt < to)
      webhooks.push({ meta: meta.output, bytes: frame.bytes });
  }
  return { ok: true, webhooks, unreadable };
}

/** Exact count of webhooks in [from, to) over listed objects: metadata where an object lies inside. */
export async function countArchived(
  bucket: R2Bucket,
  objects: readonly ArchiveObject[],
  from: number,
  to: number,
): Promise<{ events: number; unreadable: number }> {
  let events = 0;
  let unreadable = 0;
  const straddling: ArchiveObject[] = [];
  for (const object of objects) {
    if (object.first >= from && object.last < to) events += object.events;
    else straddling.push(object);
  }
  // Only objects across the range's ends are read: a handful, written around those instants.
  for (const object of straddling) {
    const read = await readArchiveObject(bucket, object.key, from, to);
    if (read.ok) {
      events += read.webhooks.length;
      unreadable += read.unreadable;
    } else unreadable++;
  }
  return { events, unreadable };
}
