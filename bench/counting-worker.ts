/**
 * The relay with every billed platform operation counted: the real Worker (src/index.ts) behind
 * wrappers of its real bindings, run by `wrangler dev` for the cost benchmark. Counts follow
 * Cloudflare's billing units: KV per call by kind; queue operations per 64 KB written, read and
 * deleted; D1 rows read and written as each result's `meta` reports them (D1's billing units),
 * with queries and round trips; R2 operations by billing class, and bytes put, by prefix;
 * Worker invocations (requests, queue batches, cron runs);
 * subrequests by destination; log lines by level and msg. GET /__bench/counts answers them; POST /__bench/cron runs the
 * scheduled handler once, as the platform would. Nothing here changes what the relay does.
 */
import type { Env } from "../src/env";
import relay from "../src/index";

const QUEUE_UNIT_BYTES = 64 * 1024;
const encoder = new TextEncoder();

const counts = {
  workerRequests: 0,
  queueInvocations: 0,
  kv: { get: 0, getWithMetadata: 0, put: 0, list: 0, delete: 0 } as Record<string, number>,
  queue: { writes: 0, reads: 0, deletes: 0, retries: 0, messages: 0 },
  fetches: { segment: 0, other: 0 },
  d1: { rowsRead: 0, rowsWritten: 0, queries: 0, roundTrips: 0 },
  /** R2 by billing class (r2/pricing): Class A puts and lists, Class B gets and heads; deletes are free. */
  r2: {
    classA: 0,
    classB: 0,
    deletes: 0,
    bytesPut: 0,
    puts: {} as Record<string, number>,
    bytesByPrefix: {} as Record<string, number>,
  },
  cronRuns: 0,
  /** The relay's own log lines, by `level msg` (each one a Workers Logs event in production). */
  logs: {} as Record<string, number>,
};

// Every line log() writes, counted by its level and msg, then written as before.
for (const method of ["log", "warn", "error"] as const) {
  const write = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    let key = `${method} (not JSON)`;
    try {
      const line = JSON.parse(String(args[0])) as { level?: string; msg?: string };
      key = `${line.level} ${line.msg}`;
    } catch {
      // a line not written by log(): counted under its console method
    }
    counts.logs[key] = (counts.logs[key] ?? 0) + 1;
    write(...args);
  };
}

type Meta = { rows_read?: number; rows_written?: number };
const addMeta = (meta: Meta | undefined) => {
  counts.d1.rowsRead += meta?.rows_read ?? 0;
  counts.d1.rowsWritten += meta?.rows_written ?? 0;
};

/** The database with every statement's billed rows counted; `first` is read through `all` for its meta. */
function countedDb(db: D1Database): D1Database {
  const real = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (property === "run" || property === "all") {
          return async () => {
            counts.d1.queries++;
            counts.d1.roundTrips++;
            const result = await target.all();
            addMeta(result.meta as Meta);
            return result;
          };
        }
        if (property === "first") {
          return async (column?: string) => {
            counts.d1.queries++;
            counts.d1.roundTrips++;
            const result = await target.all<Record<string, unknown>>();
            addMeta(result.meta as Meta);
            const row = result.results[0] ?? null;
            return column ? (row?.[column] ?? null) : row;
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    real.set(proxy, statement);
    return proxy;
  };
  return new Proxy(db, {
    get(target, property) {
      if (property === "prepare") return (sql: string) => wrap(target.prepare(sql));
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          counts.d1.queries += statements.length;
          counts.d1.roundTrips++;
          const results = await target.batch(statements.map((s) => real.get(s) ?? s));
          for (const result of results) addMeta(result.meta as Meta);
          return results;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const units = (body: unknown) =>
  Math.max(
    1,
    Math.ceil(
      encoder.encode(typeof body === "string" ? body : JSON.stringify(body)).length / QUEUE_UNIT_BYTES,
    ),
  );

const realFetch = globalThis.fetch;
globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (url.endsWith("/v1/batch")) counts.fetches.segment++;
  else counts.fetches.other++;
  return realFetch(input, init);
}) as typeof fetch;

function counted<T extends object>(target: T, count: (method: string, args: unknown[]) => void): T {
  return new Proxy(target, {
    get(object, property) {
      const value = Reflect.get(object, property, object);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        count(String(property), args);
        return value.apply(object, args);
      };
    },
  });
}

const envs = new WeakMap<Env, Env>();
function countedEnv(env: Env): Env {
  let wrapped = envs.get(env);
  if (!wrapped) {
    wrapped = {
      ...env,
      DEDUP: counted(env.DEDUP, (method) => {
        counts.kv[method] = (counts.kv[method] ?? 0) + 1;
      }),
      LEDGER: countedDb(env.LEDGER),
      ARCHIVE: counted(env.ARCHIVE, (method, args) => {
        if (method === "put" || method === "list" || method.startsWith("createMultipart")) counts.r2.classA++;
        if (method === "get" || method === "head") counts.r2.classB++;
        if (method === "delete") counts.r2.deletes++;
        if (method === "put") {
          const key = String(args[0]);
          const prefix = key.slice(0, key.indexOf("/") + 1);
          counts.r2.puts[prefix] = (counts.r2.puts[prefix] ?? 0) + 1;
          const value = args[1];
          const bytes =
            value instanceof Uint8Array || value instanceof ArrayBuffer
              ? value.byteLength
              : typeof value === "string"
                ? encoder.encode(value).length
                : 0;
          counts.r2.bytesPut += bytes;
          counts.r2.bytesByPrefix[prefix] = (counts.r2.bytesByPrefix[prefix] ?? 0) + bytes;
        }
      }),
      EVENTS: counted(env.EVENTS, (method, args) => {
        if (method === "send") counts.queue.writes += units(args[0]);
        if (method === "sendBatch")
          for (const m of args[0] as { body: unknown }[]) counts.queue.writes += units(m.body);
      }),
    };
    envs.set(env, wrapped);
  }
  return wrapped;
}

/** Rows and bytes (each column as SQLite stores it) of the tables a stored event costs. */
async function ledgerBytes(db: D1Database) {
  const sizes: Record<string, { rows: number; bytes: number }> = {};
  for (const table of ["records", "parked", "destinations"]) {
    const columns = await db
      .prepare(`SELECT name FROM pragma_table_info('${table}')`)
      .all<{ name: string }>();
    const sum = columns.results.map(({ name }) => `coalesce(length(CAST(${name} AS BLOB)), 0)`).join(" + ");
    const row = await db
      .prepare(`SELECT count(*) AS rows, coalesce(sum(${sum}), 0) AS bytes FROM ${table}`)
      .first<{ rows: number; bytes: number }>();
    sizes[table] = row ?? { rows: 0, bytes: 0 };
  }
  return sizes;
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__bench/counts") return Response.json(counts);
    if (pathname === "/__bench/ledger") return Response.json(await ledgerBytes(env.LEDGER));
    if (pathname === "/__bench/cron") {
      counts.cronRuns++;
      const controller = {
        scheduledTime: Date.now(),
        cron: "*/5 * * * *",
        noRetry() {},
      } as ScheduledController;
      await relay.scheduled(controller, countedEnv(env), ctx);
      return Response.json(counts);
    }
    counts.workerRequests++;
    return relay.fetch(request, countedEnv(env), ctx);
  },
  async queue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) {
    counts.queueInvocations++;
    const messages = batch.messages.map((message) => {
      counts.queue.messages++;
      counts.queue.reads += units(message.body);
      return counted(message, (method) => {
        if (method === "ack") counts.queue.deletes += units(message.body);
        if (method === "retry") counts.queue.retries++;
      });
    });
    const wrapped = new Proxy(batch, {
      get: (target, property) => (property === "messages" ? messages : Reflect.get(target, property, target)),
    });
    return relay.queue(wrapped, countedEnv(env), ctx);
  },
} satisfies ExportedHandler<Env, unknown>;
