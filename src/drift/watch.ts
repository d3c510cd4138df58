import { digestHex } from "../hash";
import { isolateState } from "../kv/isolateState";
import { driftKey, KEY_PREFIX } from "../kv/keys";
import { capForJson } from "../kv/records";
import { log } from "../log";

/**
 * Drift: what Pendo sends that the catalog does not know. An unknown event name, or a property key
 * new to a watched family, is logged at warn level the first time an isolate sees it, and recorded
 * in KV with when it was first and last seen and how often: at most one write per item per day
 * per isolate, never one per webhook. This is how an operator learns Pendo added something before
 * the warehouse does.
 */

export interface DriftItem {
  source: string;
  kind: "event" | "property";
  event: string;
  key?: string;
}

export interface DriftRecord extends DriftItem {
  firstSeen: number;
  lastSeen: number;
  count: number;
}

const DAY_MS = 86_400_000;
const TTL_SECONDS = 30 * 86_400;
// Bounds this isolate's memory (and its writes) whatever a sender invents.
const MAX_ITEMS = 200;

interface Watch {
  pending: number;
  writtenDay: number;
  warned: boolean;
}
const watchOf = isolateState<Watch>(() => ({ pending: 0, writtenDay: -1, warned: false }));
let tracked = 0;

export interface DriftScope {
  kv: KVNamespace;
  waitUntil: (promise: Promise<unknown>) => void;
  now: number;
}

export function noteDrift(scope: DriftScope, item: DriftItem): void {
  const id = `${item.source}\n${item.kind}\n${item.event}\n${item.key ?? ""}`;
  const watch = watchOf(scope.kv, id);
  if (watch.writtenDay === -1 && watch.pending === 0) {
    if (tracked >= MAX_ITEMS) return;
    tracked++;
  }
  watch.pending++;
  if (!watch.warned) {
    watch.warned = true;
    log("warn", "drift", { source: item.source, kind: item.kind, event: item.event, key: item.key });
  }
  const day = Math.floor(scope.now / DAY_MS);
  if (watch.writtenDay === day) return;
  watch.writtenDay = day;
  const count = watch.pending;
  watch.pending = 0;
  scope.waitUntil(
    record(scope, item, id, count).catch((error) => {
      // Retried with the next sighting.
      watch.writtenDay = -1;
      watch.pending += count;
      log("warn", "kv-write-failed", { source: item.source, record: "drift", error: String(error) });
    }),
  );
}

async function record(scope: DriftScope, item: DriftItem, id: string, count: number): Promise<void> {
  const key = driftKey(item.source, (await digestHex("SHA-256", id)).slice(0, 32));
  const before = await scope.kv.get<DriftRecord>(key, "json");
  const capped: DriftItem = { ...item, event: capForJson(item.event, 300) };
  if (item.key !== undefined) capped.key = capForJson(item.key, 300);
  const next: DriftRecord = {
    ...capped,
    firstSeen: before?.firstSeen ?? scope.now,
    lastSeen: scope.now,
    count: (before?.count ?? 0) + count,
  };
  await scope.kv.put(key, JSON.stringify(next), { expirationTtl: TTL_SECONDS, metadata: next });
}

/** Every drift record, from the listing metadata alone (no value is read). */
export async function listDrift(kv: KVNamespace, limit = 1_000): Promise<DriftRecord[]> {
  const page = await kv.list<DriftRecord>({ prefix: KEY_PREFIX.drift, limit });
  return page.keys.flatMap((key) => (key.metadata ? [key.metadata] : []));
}
