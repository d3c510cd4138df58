/**
 * State an isolate keeps in memory beside a KV namespace, per key (a source, an alert): what
 * saves a KV read per request. Keyed by the namespace first, since tests bind several
 * environments to one isolate, and held weakly, so a namespace gone takes its state with it.
 */
export function isolateState<T>(create: () => T): (kv: KVNamespace, key: string) => T {
  const byNamespace = new WeakMap<KVNamespace, Map<string, T>>();
  return (kv, key) => {
    let byKey = byNamespace.get(kv);
    if (!byKey) {
      byKey = new Map();
      byNamespace.set(kv, byKey);
    }
    let state = byKey.get(key);
    if (state === undefined) {
      state = create();
      byKey.set(key, state);
    }
    return state;
  };
}
