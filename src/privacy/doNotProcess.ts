import { digestHex } from "../hash";
import { isolateState } from "../kv/isolateState";
import { doNotProcessKey } from "../kv/keys";
import { log } from "../log";

/**
 * Which visitors asked not to be processed, per source. The flags are rare and change rarely,
 * so instead of a KV read per webhook each isolate keeps the set of flagged visitor hashes,
 * loaded with KV list and refreshed in the background once it is older than the refresh period
 * (DO_NOT_PROCESS_REFRESH_SECONDS, default REFRESH_MS). A flag set elsewhere is honoured here
 * within KV's propagation delay plus that period. A flag
 * this isolate writes is honoured at once, and is kept over refreshes for OVERRIDE_MS, since a
 * KV list can lag behind a write by about a minute.
 */
// Five minutes: a list is a billed KV operation, and the Free plan allows 1,000 a day; an isolate
// under steady traffic lists 288 times a day at this period (2,880 at 30 s).
export const REFRESH_MS = 300_000;
export const OVERRIDE_MS = 600_000;

interface FlagSet {
  loadedAt: number;
  hashes: Set<string>;
  refreshing?: Promise<void>;
}

interface SourceFlags {
  current?: FlagSet;
  /** Flags this isolate set or cleared, with when: they win over a list that may lag behind. */
  overrides: Map<string, { flagged: boolean; at: number }>;
}

const flagsOf = isolateState<SourceFlags>(() => ({ overrides: new Map() }));

async function loadFlags(kv: KVNamespace, source: string, flags: SourceFlags, now: number): Promise<FlagSet> {
  const prefix = doNotProcessKey(source, "");
  const hashes = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix, cursor });
    for (const key of page.keys) hashes.add(key.name.slice(prefix.length));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  for (const [hash, override] of flags.overrides) {
    if (now - override.at > OVERRIDE_MS) flags.overrides.delete(hash);
    else if (override.flagged) hashes.add(hash);
    else hashes.delete(hash);
  }
  return { loadedAt: now, hashes };
}

/**
 * Whether the visitor is flagged. The first call of an isolate waits for the list (and throws if
 * KV fails, so the caller can refuse rather than forward); later calls answer from memory and
 * refresh in the background through `waitUntil`.
 */
export async function isDoNotProcess(
  kv: KVNamespace,
  source: string,
  visitorId: string,
  now: number,
  waitUntil: (promise: Promise<unknown>) => void,
  refreshMs = REFRESH_MS,
): Promise<boolean> {
  const flags = flagsOf(kv, source);
  const current = flags.current;
  if (!current) {
    flags.current = await loadFlags(kv, source, flags, now);
    return isFlagged(flags.current, visitorId);
  }
  if (now - current.loadedAt > refreshMs && !current.refreshing) {
    current.refreshing = loadFlags(kv, source, flags, now)
      .then((fresh) => {
        flags.current = fresh;
      })
      .catch((error) => {
        // Keep answering from the last good set; try again on a later request.
        current.refreshing = undefined;
        log("error", "do-not-process-refresh-failed", { source, error: String(error) });
      });
    waitUntil(current.refreshing);
  }
  return isFlagged(current, visitorId);
}

/** Most sources have no flag at all: then no visitor id is hashed. */
async function isFlagged(flags: FlagSet, visitorId: string): Promise<boolean> {
  if (flags.hashes.size === 0) return false;
  return flags.hashes.has((await visitorHash(visitorId)) as string);
}

/**
 * Records a flag change in KV, then in this isolate's set, so it applies here at once. Throws if
 * KV refuses: the caller answers 503 and the sender retries, rather than forget the request.
 */
export async function setDoNotProcess(
  kv: KVNamespace,
  source: string,
  visitorId: string,
  flagged: boolean,
  at: number,
): Promise<void> {
  const hash = (await visitorHash(visitorId)) as string;
  const key = doNotProcessKey(source, hash);
  if (flagged) await kv.put(key, JSON.stringify({ at }));
  else await kv.delete(key);
  const flags = flagsOf(kv, source);
  flags.overrides.set(hash, { flagged, at });
  if (flagged) flags.current?.hashes.add(hash);
  else flags.current?.hashes.delete(hash);
}

/** Flags are keyed by a hash: keys stay under KV's 512 bytes and hold no visitor id in the clear. */
export async function visitorHash(visitorId: string | undefined): Promise<string | undefined> {
  return visitorId ? digestHex("SHA-256", visitorId) : undefined;
}
