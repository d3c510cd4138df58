/**
 * The KV key layout: every key the relay writes to the `DEDUP` namespace is built here and
 * nowhere else. `docs/operations.md` documents these prefixes, value shapes and TTLs; the
 * generated table there reads `KV_LAYOUT`, so the two cannot drift. Everything else the relay
 * remembers is in the D1 ledger (migrations/, docs/operations.md#ledger) and its bytes in R2
 * (src/r2/keys.ts): KV keeps only what tolerates a stale read, the dedup markers. `fallback:`
 * keys are what deploys before the R2 move left; the cron drains them, and nothing writes them.
 *
 * KV limits that shape it (developers.cloudflare.com/kv/platform/limits): keys up to 512 bytes,
 * `expirationTtl` at least 60 s, one write per second per key, eventually consistent reads.
 */

export const KEY_PREFIX = {
  dedup: "dedup:",
  fallback: "fallback:",
} as const;

export const KV_LAYOUT = [
  {
    prefix: KEY_PREFIX.dedup,
    key: "dedup:<source>:<eventId>",
    value: '`{"at": <ms>}`, the time the event was accepted',
    ttl: "`DEDUP_TTL_SECONDS` (default 7 days)",
    purpose: "Edge dedup marker, written only after the queue accepted the event; one read per webhook.",
  },
  {
    prefix: KEY_PREFIX.fallback,
    key: "fallback:<record id>",
    value: "the dead letter as JSON (its bytes as `bodyBase64`)",
    ttl: "`DEAD_LETTER_TTL_SECONDS` (default 14 days)",
    purpose:
      "Written only by deploys before the R2 move, for a dead letter the ledger refused; the cron moves every one into D1 (page after page), then deletes the key. R2's `pending/` took this role.",
  },
] as const;

export const dedupKey = (source: string, eventId: string) => `${KEY_PREFIX.dedup}${source}:${eventId}`;

/** Time-ordered ids: a zero-padded ms prefix sorts oldest first, as text and in the ledger. */
export function recordId(at: number, suffix: string): string {
  return `${String(Math.trunc(at)).padStart(13, "0")}-${suffix}`;
}
