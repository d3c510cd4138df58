/**
 * `npm run send -- <event> [<event>…]` or `npm run send -- --all`: post realistic Pendo webhooks
 * to a running relay (default http://localhost:8787), with the token from .dev.vars.
 * Options: --url <base>, --source <name>, --token <token>.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { SAMPLE_EVENTS, sampleWebhook } from "./samples";

export function devVars(path = ".dev.vars"): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match?.[1] && match[2] !== undefined) vars[match[1]] = match[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

export interface SendResult {
  event: string;
  status: number;
  body: Record<string, unknown>;
}

export async function sendSamples(events: readonly string[], base: string, token: string, source?: string) {
  const url = `${base.replace(/\/$/, "")}/pendo${source ? `/${source}` : ""}?token=${encodeURIComponent(token)}`;
  const results: SendResult[] = [];
  for (const event of events) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(sampleWebhook(event)),
    });
    results.push({
      event,
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
    });
  }
  return results;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      all: { type: "boolean", default: false },
      url: { type: "string", default: "http://localhost:8787" },
      source: { type: "string" },
      token: { type: "string" },
    },
  });
  const events = values.all ? SAMPLE_EVENTS : positionals;
  if (events.length === 0) {
    console.error(`usage: npm run send -- <event>… | --all\nevents: ${SAMPLE_EVENTS.join(", ")}`);
    process.exit(2);
  }
  const token = values.token ?? devVars().WEBHOOK_TOKEN;
  if (!token) {
    console.error("no token: pass --token or run `npm start` once to create .dev.vars");
    process.exit(2);
  }
  const results = await sendSamples(events, values.url, token, values.source);
  for (const { event, status, body } of results) {
    const calls = Array.isArray(body.calls)
      ? (body.calls as { type: string }[]).map((c) => c.type).join("+")
      : "";
    console.log(
      `${String(status).padEnd(4)} ${event.padEnd(28)} ${String(body.status ?? body.error)} ${calls}`,
    );
  }
  if (results.some((result) => result.status >= 400)) process.exit(1);
}

if (process.argv[1]?.endsWith("send.ts")) await main();
