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

/**
 * A D1 database whose statements fail when the rule says so: the rule sees each statement's SQL,
 * so a test can fail only the dead-letter insert, or only the flag check. A batch fails whole
 * (it is one transaction) when any of its statements would.
 */
export function faultyDb(db: D1Database, fails: (sql: string) => boolean): D1Database {
  const real = new WeakMap<object, { statement: D1PreparedStatement; sql: string }>();
  const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        if (property === "bind") return (...args: unknown[]) => wrap(value.apply(target, args), sql);
        return (...args: unknown[]) =>
          fails(sql) ? Promise.reject(new Error("injected D1 failure")) : value.apply(target, args);
      },
    });
    real.set(proxy, { statement, sql });
    return proxy;
  };
  return new Proxy(db, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (property === "prepare") return (sql: string) => wrap(value.call(target, sql), sql);
      if (property === "batch") {
        return (statements: D1PreparedStatement[]) => {
          const unwrapped = statements.map((s) => real.get(s) ?? { statement: s, sql: "" });
          if (unwrapped.some(({ sql }) => fails(sql)))
            return Promise.reject(new Error("injected D1 failure"));
          return value.call(
            target,
            unwrapped.map(({ statement }) => statement),
          );
        };
      }
      return value.bind(target);
    },
  });
}

/** Every statement whose SQL contains `fragment` fails. */
export const dbFailingOn = (db: D1Database, fragment: string | RegExp) =>
  faultyDb(db, (sql) => (typeof fragment === "string" ? sql.includes(fragment) : fragment.test(sql)));

export type R2Method = "put" | "get" | "head" | "list" | "delete";

/**
 * An R2 bucket whose calls fail when the rule says so: the rule sees the method and the key (or
 * the list prefix), so a test can fail only the put of a parked batch, or only the get of one
 * record's object.
 */
export function faultyBucket(bucket: R2Bucket, fails: (method: R2Method, key: string) => boolean): R2Bucket {
  return new Proxy(bucket, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const first = args[0];
        const key =
          typeof first === "string"
            ? first
            : Array.isArray(first)
              ? first.join(",")
              : String((first as { prefix?: string } | undefined)?.prefix ?? "");
        return fails(property as R2Method, key)
          ? Promise.reject(new Error(`injected R2 ${String(property)} failure`))
          : value.apply(target, args);
      };
    },
  });
}

/** Every call of the given R2 methods under `prefix` fails. */
export const bucketFailing = (bucket: R2Bucket, prefix: string, ...methods: R2Method[]) =>
  faultyBucket(bucket, (method, key) => methods.includes(method) && key.startsWith(prefix));
