/**
 * The yardstick for the edge (issue 21): a deliberately naive relay making exactly the relay's
 * billed calls per new webhook (one KV read, one queue send, one KV write after the answer) and
 * nothing else: a Hono route, a token comparison, JSON.parse, one small track call, 202. No
 * validation, no limits, no logging. It lives in bench/ only and is never deployed; `wrangler dev`
 * runs it with the relay's wrangler.toml, so its consumer acks what the relay's would deliver.
 */
import { Hono } from "hono";

interface NaiveEnv {
  WEBHOOK_TOKEN: string;
  DEDUP: KVNamespace;
  EVENTS: Queue;
}

const app = new Hono<{ Bindings: NaiveEnv }>();

app.get("/health", (c) => c.json({ ok: true }));
app.post("/pendo", async (c) => {
  if (c.req.query("token") !== c.env.WEBHOOK_TOKEN) return c.json({ error: "unauthorized" }, 401);
  const webhook = JSON.parse(await c.req.text()) as Record<string, unknown>;
  const key = `dedup:default:${webhook.uniqueId}`;
  if ((await c.env.DEDUP.get(key)) !== null) return c.json({ status: "duplicate" }, 200);
  const track = {
    type: "track",
    event: webhook.event,
    userId: webhook.visitorId,
    properties: webhook.properties,
    messageId: `pendo:default:${webhook.uniqueId}:track`,
  };
  await c.env.EVENTS.send(JSON.stringify(track), { contentType: "text" });
  c.executionCtx.waitUntil(c.env.DEDUP.put(key, "1", { expirationTtl: 604_800 }));
  return c.json({ status: "accepted" }, 202);
});

export default {
  fetch: app.fetch,
  // The relay's consumers are configured in wrangler.toml; here they only settle what arrives.
  async queue(batch: MessageBatch) {
    batch.ackAll();
  },
} satisfies ExportedHandler<NaiveEnv>;
