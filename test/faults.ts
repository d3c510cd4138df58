/**
 * Faults on demand around the real bindings: every call goes to the real KV namespace or queue
 * unless the test's rule says this one fails. The rule sees the method and the key (or body), so
 * a test can fail only dead-letter writes, or only the second enqueue.
 */
export type KvMethod = "get" | "getWithMetadata" | "put" | "list" | "delete";

export function faultyKv(kv: KVNamespace, fails: (method: KvMethod, key: unknown) => boolean): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        fails(property as KvMethod, args[0])
          ? Promise.reject(new Error(`injected KV ${String(property)} failure`))
          : value.apply(target, args);
    },
  });
}

export function faultyQueue<T>(queue: Queue<T>, fails: (method: "send" | "sendBatch") => boolean): Queue<T> {
  return new Proxy(queue, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        fails(property as "send" | "sendBatch")
          ? Promise.reject(new Error(`injected queue ${String(property)} failure`))
          : value.apply(target, args);
    },
  });
}

/** Every call of the given KV methods fails. */
export const kvFailing = (kv: KVNamespace, ...methods: KvMethod[]) =>
  faultyKv(kv, (method) => methods.includes(method));
