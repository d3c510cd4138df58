import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { decodeRelayMessage, type RelayMessage } from "../src/queue/message";

export const TOKEN = env.WEBHOOK_TOKEN as string;
export const WRITE_KEY = env.SEGMENT_WRITE_KEY as string;
export const ADMIN_TOKEN = env.ADMIN_TOKEN as string;

// Fixtures that need no Worker runtime live in ./fixtures (the Node-run tests use them too).
export { clone, freshUniqueId, PUBLISHED, withUniqueId } from "./fixtures";

export interface CallOptions {
  token?: string | null;
  bearer?: string;
  path?: string;
  headers?: Record<string, string>;
  env?: Partial<Env>;
  /** Also put what the edge enqueued on the real queue, for its consumer to deliver. */
  toQueue?: boolean;
}

/** Posts a webhook to the Worker's fetch handler; what it enqueued is in the answer (see callWorker). */
export async function postWebhook(body: unknown, options: CallOptions = {}) {
  const token = options.token === undefined ? TOKEN : options.token;
  const url = new URL(`https://relay.test${options.path ?? "/pendo"}`);
  if (token !== null) url.searchParams.set("token", token);
  const headers: Record<string, string> = { "content-type": "application/json", ...options.headers };
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  const request = new Request(url, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return callWorker(request, options.env, options.toQueue);
}

/**
 * Calls the Worker with the test env; the queue binding is a spy that records what was enqueued.
 * Only with `toQueue` does a message also reach the real queue: otherwise its consumer would
 * deliver (and log) after the test file has ended, which vitest reports as a teardown error.
 */
export async function callWorker(request: Request, overrides: Partial<Env> = {}, toQueue = false) {
  const send = vi.fn((body: string, options?: QueueSendOptions) =>
    toQueue ? env.EVENTS.send(body, options) : Promise.resolve(),
  );
  // A batch is recorded as its messages, one `send` call each, so a test reads both alike.
  const sendBatch = async (messages: Iterable<MessageSendRequest<string>>) => {
    for (const message of messages) await send(message.body, { contentType: message.contentType });
  };
  const testEnv = { ...env, EVENTS: { ...env.EVENTS, send, sendBatch }, ...overrides } as Env;
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, testEnv, ctx);
  await waitOnExecutionContext(ctx);
  const json = (await response.clone().json()) as Record<string, unknown>;
  return { response, json, enqueued: send.mock.calls.map(([body]) => decoded(body)), sent: send.mock.calls };
}

/** A queue body read back as the consumer reads it. */
export function decoded(body: unknown): RelayMessage {
  const result = decodeRelayMessage(body);
  if (!result.ok) throw new Error(result.detail);
  return result.message;
}

/**
 * A queue binding that keeps what is sent instead of delivering it (bodies and delays, in order):
 * a test drives the consumer itself, and nothing reaches the real queue after the test has ended.
 */
export function keptQueue() {
  const sent: { body: string; delaySeconds: number }[] = [];
  const queue = {
    send: async (body: string, options?: QueueSendOptions) => {
      sent.push({ body, delaySeconds: options?.delaySeconds ?? 0 });
    },
    sendBatch: async (messages: Iterable<MessageSendRequest<string>>) => {
      for (const message of messages)
        sent.push({ body: message.body, delaySeconds: message.delaySeconds ?? 0 });
    },
  } as unknown as Queue<string>;
  return { queue, sent, bodies: () => sent.map((message) => message.body) };
}

/** One run of the Cron Trigger, as the platform would start it, with the given bindings. */
export async function runCron(bindings: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }),
    { ...env, ...bindings } as Env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
}
