/**
 * The R2 key layout: every key the relay writes to the `ARCHIVE` bucket is built here and nowhere
 * else, and the lifecycle rules `npm run setup` puts on the bucket are read from here too.
 * `docs/operations.md` shows `R2_LAYOUT` as a generated table. R2 holds bytes of any size; what
 * needs a query, an order or an atomic claim (which object, which offset, which state) is the
 * index in the D1 ledger.
 *
 * Objects are written per group, never per event: one per consumer batch (dead letters, a parked
 * batch, the archive) or per stored webhook at the edge (quarantine, too large). R2 bills a
 * Class A operation per put (developers.cloudflare.com/r2/pricing).
 */

export const R2_PREFIX = {
  records: "records/",
  parked: "parked/",
  archive: "archive/",
  pending: "pending/",
} as const;

/** Days after which R2 deletes `records/` objects no row points at any more (written, never indexed). */
export const ORPHAN_RECORD_DAYS = 400;

export const R2_LAYOUT = [
  {
    prefix: R2_PREFIX.records,
    key: "records/<yyyy-mm-dd>/<group id>",
    value:
      "the bytes of a group of dead letters or quarantined webhooks, each at the offset its ledger row gives",
    expiry: `deleted by the cron once every record of its day is past DEAD_LETTER_TTL_SECONDS; a lifecycle rule removes one never indexed after ${ORPHAN_RECORD_DAYS} days`,
    purpose:
      "What a dead letter or a quarantined webhook holds, byte for byte; the row holds what, when, why.",
  },
  {
    prefix: R2_PREFIX.parked,
    key: "parked/<destination id>/<13-digit ms>-<random>",
    value: "one consumer batch's queue messages, as the queue held them",
    expiry: "none: deleted once the batch is delivered or stored as dead letters",
    purpose: "Outage mode: a batch parked instead of spending retries, sent again in arrival order.",
  },
  {
    prefix: R2_PREFIX.archive,
    key: "archive/<source>/<yyyy-mm-dd>/<hh>/<13-digit ms>-<random>",
    value: "the webhooks of one consumer batch, as received",
    expiry: "`ARCHIVE_DAYS`, by a lifecycle rule on the prefix",
    purpose: "`ARCHIVE_MODE=all`: any time range can be sent again (`POST /admin/archive/replay`).",
  },
  {
    prefix: R2_PREFIX.pending,
    key: "pending/<group id>",
    value: "ledger rows D1 refused when they were written, as JSON",
    expiry: "none: the cron moves them into D1, then deletes the object",
    purpose: "The second store for the index while D1 is down; empty in normal operation.",
  },
] as const;

/** The bucket's lifecycle rules, as `npm run setup` applies them. */
export const lifecycleRules = (archiveDays: number) =>
  [
    { id: "archive-expiry", prefix: R2_PREFIX.archive, expireDays: archiveDays },
    { id: "orphan-records", prefix: R2_PREFIX.records, expireDays: ORPHAN_RECORD_DAYS },
  ] as const;

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const hour = (ms: number) => new Date(ms).toISOString().slice(11, 13);

/** A group's id: time-ordered, unique across isolates. */
export const groupId = (now: number, random: string) =>
  `${String(Math.trunc(now)).padStart(13, "0")}-${random}`;

export const recordsKey = (now: number, group: string) => `${R2_PREFIX.records}${day(now)}/${group}`;
export const pendingKey = (group: string) => `${R2_PREFIX.pending}${group}`;
export const parkedKey = (destination: string, seq: string) => `${R2_PREFIX.parked}${destination}/${seq}`;

/** The hour folder of an archive object: the hour its webhooks were received, in UTC. */
export const archiveHourPrefix = (source: string, receivedAt: number) =>
  `${R2_PREFIX.archive}${source}/${day(receivedAt)}/${hour(receivedAt)}/`;
export const archiveKey = (source: string, receivedAt: number, group: string) =>
  `${archiveHourPrefix(source, receivedAt)}${group}`;

/** The day folder `records/<yyyy-mm-dd>/` a time falls in, and the day a folder names. */
export const recordsDayPrefix = (ms: number) => `${R2_PREFIX.records}${day(ms)}/`;
export function dayOfRecordsPrefix(prefix: string): number | undefined {
  const match = /^records\/(\d{4}-\d{2}-\d{2})\/$/.exec(prefix);
  return match ? Date.parse(`${match[1]}T00:00:00Z`) : undefined;
}
