import { doNotProcessKey } from "../kv/keys";
import { log } from "../log";

/**
 * Which visitors asked not to be processed, per source. The flags are rare and change rarely,
 * so instead of a KV read per webhook each isolate keeps the set of flagged visitor hashes,
 * loaded with KV list and refreshed in the background once it is older than REFRESH_MS.
 * A flag set elsewhere is honoured here within KV's propagation delay plus REFRESH_MS; a flag
 * this isolate writes is honoured at once.
 */
export const REFRESH_MS = 30_000;

interface FlagSet {
  loadedAt: number;
  hashes: Set<string>;
  refreshing?: Promise<void>;
}

// Per KV namespace (tests bind several environments to one isolate), then per source.
const flagSets = new WeakMap<KVNamespace, Map<string, FlagSet>>();

async function loadFlags(kv: KVNamespace, source: string, now: number): Promise<FlagSet> {
  const prefix = doNotProcessKey(source, "");
  const hashes = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix, cursor });
    for (const key of page.keys) hashes.add(key.name.slice(prefix.length));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
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
  visitorHash: string,
  now: number,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<boolean> {
  let bySource = flagSets.get(kv);
  if (!bySource) {
    bySource = new Map();
    flagSets.set(kv, bySource);
  }
  let flags = bySource.get(source);
  if (!flags) {
    flags = await loadFlags(kv, source, now);
    bySource.set(source, flags);
  } else if (now - flags.loadedAt > REFRESH_MS && !flags.refreshing) {
    const stale = flags;
    stale.refreshing = loadFlags(kv, source, now)
      .then((fresh) => void bySource.set(source, fresh))
      .catch((error) => {
        // Keep answering from the last good set; try again on a later request.
        stale.refreshing = undefined;
        log("error", "do-not-process-refresh-failed", { source, error: String(error) });
      });
    waitUntil(stale.refreshing);
  }
  return flags.hashes.has(visitorHash);
}

/** Records a flag change in KV and in this isolate's set, so it applies here at once. */
export async function setDoNotProcess(
  kv: KVNamespace,
  source: string,
  visitorHash: string,
  flagged: boolean,
  at: number,
) {
  const key = doNotProcessKey(source, visitorHash);
  const flags = flagSets.get(kv)?.get(source);
  if (flagged) {
    flags?.hashes.add(visitorHash);
    await kv.put(key, JSON.stringify({ at }));
  } else {
    flags?.hashes.delete(visitorHash);
    await kv.delete(key);
  }
}
