/**
 * The relay with every billed platform operation counted: the real Worker (src/index.ts) behind
 * wrappers of its real bindings, run by `wrangler dev` for the cost benchmark. Counts follow
 * Cloudflare's billing units: KV per call by kind; queue operations per 64 KB written, read and
 * deleted; Worker invocations (requests and queue batches); subrequests by destination.
 * GET /__bench/counts answers them; nothing here changes what the relay does.
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
};

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

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext) {
    if (new URL(request.url).pathname === "/__bench/counts") return Response.json(counts);
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
