import { env, exports } from "cloudflare:workers";
import guideDisplayed from "../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../src/pendo/examples/visitorCreated.json";

export const TOKEN = env.WEBHOOK_TOKEN as string;
export const WRITE_KEY = env.SEGMENT_WRITE_KEY as string;

/** Pendo's published examples, unchanged (copied into src/pendo/examples). */
export const PUBLISHED = { guideDisplayed, trackEventReceived, visitorCreated } as const;

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** POST a webhook to the Worker as Pendo would: the token in the query string. */
export function postWebhook(
  body: unknown,
  init: { token?: string | null; path?: string; headers?: HeadersInit } = {},
) {
  const token = init.token === undefined ? TOKEN : init.token;
  const url = new URL(`https://relay.test${init.path ?? "/pendo"}`);
  if (token !== null) url.searchParams.set("token", token);
  return exports.default.fetch(
    new Request(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...init.headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}
