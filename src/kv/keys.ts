/**
 * The KV key layout: every key the relay writes to the `DEDUP` namespace is built here and
 * nowhere else. `docs/operations.md` documents these prefixes, value shapes and TTLs; the
 * generated table there reads `KV_LAYOUT`, so the two cannot drift.
 *
 * KV limits that shape it (developers.cloudflare.com/kv/platform/limits): keys up to 512 bytes,
 * `expirationTtl` at least 60 s, one write per second per key, eventually consistent reads.
 */

export const KEY_PREFIX = {
  dedup: "dedup:",
  doNotProcess: "dnp:",
  deadLetter: "dead:",
  quarantine: "quarantine:",
  alert: "alert:",
  drift: "drift:",
  deliveryStatus: "status:",
} as const;

export const KV_LAYOUT = [
  {
    prefix: KEY_PREFIX.dedup,
    key: "dedup:<source>:<eventId>",
    value: '`{"at": <ms>}`, the time the event was accepted',
    ttl: "`DEDUP_TTL_SECONDS` (default 7 days)",
    purpose: "Edge dedup marker, written only after the queue accepted the event.",
  },
  {
    prefix: KEY_PREFIX.doNotProcess,
    key: "dnp:<source>:<sha256(visitorId)>",
    value: '`{"at": <ms>}`, when the do-not-process flag was set',
    ttl: "none (deleted when the flag is cleared)",
    purpose:
      "Visitors who asked not to be processed; listed by each isolate every `DO_NOT_PROCESS_REFRESH_SECONDS`, never read per webhook.",
  },
  {
    prefix: KEY_PREFIX.deadLetter,
    key: "dead:<13-digit ms>-<source>.<eventId>.<random>",
    value:
      "DeadLetter JSON (reason, attempts, last status, the queued message or raw body); metadata: time, source, event, reason, eventId, status, attempts (at most 1,024 bytes)",
    ttl: "`DEAD_LETTER_TTL_SECONDS` (default 14 days)",
    purpose: "Events the relay accepted but could not deliver; replayable from the admin API.",
  },
  {
    prefix: KEY_PREFIX.quarantine,
    key: "quarantine:<13-digit ms>-<source>.<random>",
    value: "QuarantineEntry JSON (raw body, validation issues, time); metadata: time, source, event",
    ttl: "`DEAD_LETTER_TTL_SECONDS` (default 14 days)",
    purpose:
      "Authenticated webhooks rejected as invalid (400), stored before the answer; replay re-runs validation.",
  },
  {
    prefix: KEY_PREFIX.alert,
    key: "alert:<source>:<kind>[:<sha256(event name)>]",
    value: "`{kind, source, count, sentAt, text}`, the last alert sent",
    ttl: "`ALERT_INTERVAL_SECONDS` (unknown events: 1 day)",
    purpose: "Rate limit of alerts across isolates; written once per alert sent, never per event.",
  },
  {
    prefix: KEY_PREFIX.drift,
    key: "drift:<source>:<sha256(kind, event, key)>",
    value: "`{source, kind, event, key?, firstSeen, lastSeen, count}`, also as listing metadata",
    ttl: "30 days after it was last seen",
    purpose:
      "Event names the catalog does not know, and property keys new to a watched family; written at most once per item per day per isolate.",
  },
  {
    prefix: KEY_PREFIX.deliveryStatus,
    key: "status:<source>",
    value: "`{lastSuccessAt, lastFailureAt, lastStatus, failingSince, failingAlertedAt}`",
    ttl: "none",
    purpose:
      "Delivery health per source, from the consumer: at most one write per source per minute (and per alert).",
  },
] as const;

export const dedupKey = (source: string, eventId: string) => `${KEY_PREFIX.dedup}${source}:${eventId}`;
export const doNotProcessKey = (source: string, visitorHash: string) =>
  `${KEY_PREFIX.doNotProcess}${source}:${visitorHash}`;

/** Time-ordered ids: KV lists keys in byte order, so a zero-padded ms prefix lists oldest first. */
export function recordId(at: number, suffix: string): string {
  return `${String(Math.trunc(at)).padStart(13, "0")}-${suffix}`;
}
export const deadLetterKey = (id: string) => `${KEY_PREFIX.deadLetter}${id}`;
export const quarantineKey = (id: string) => `${KEY_PREFIX.quarantine}${id}`;
export const alertKey = (source: string, kind: string, name?: string) =>
  `${KEY_PREFIX.alert}${source}:${kind}${name ? `:${name}` : ""}`;
export const deliveryStatusKey = (source: string) => `${KEY_PREFIX.deliveryStatus}${source}`;
export const driftKey = (source: string, id: string) => `${KEY_PREFIX.drift}${source}:${id}`;
