import type { Context } from "hono";
import { loadSettings } from "../config";
import { prepareEvent } from "../delivery/prepare";
import type { Env } from "../env";
import { resolveSource } from "../sources";
import { presentedToken, tokenMatches } from "./auth";
import { readBodyLimited } from "./body";
import { failureResponse } from "./failures";

/**
 * POST /debug/transform[?source=name]: the Segment calls a Pendo payload would become, without
 * enqueueing, storing or marking anything. Open where ENVIRONMENT is not `production`; in
 * production only with the admin token. Elsewhere it does not exist (404).
 */
export async function debugTransform(c: Context<{ Bindings: Env }>): Promise<Response> {
  const config = loadSettings(c.env);
  if (!config.ok) return failureResponse(c, { kind: "misconfigured", problems: config.problems });
  const settings = config.settings;
  const header = c.req.header("authorization");
  const admin =
    settings.ADMIN_TOKEN !== undefined &&
    header?.startsWith("Bearer ") === true &&
    (await tokenMatches(presentedToken(c.req.raw), [settings.ADMIN_TOKEN]));
  if (settings.ENVIRONMENT === "production" && !admin) {
    return c.json({ error: "not-found", message: `no route for ${c.req.method} ${c.req.path}` }, 404);
  }

  const sourceName = c.req.query("source") ?? "default";
  const source = resolveSource(settings, sourceName);
  if (!source) return failureResponse(c, { kind: "unknown-source", source: sourceName });
  const body = await readBodyLimited(c.req.raw, settings.MAX_BODY_BYTES);
  if (!body.ok) {
    return body.reason === "too-large"
      ? failureResponse(c, { kind: "too-large", limit: settings.MAX_BODY_BYTES })
      : failureResponse(c, { kind: "invalid", issues: [{ path: "", message: "body is not valid UTF-8" }] });
  }
  const prepared = await prepareEvent(body.text, source, Date.now());
  if (!prepared.ok) {
    return prepared.kind === "invalid"
      ? failureResponse(c, { kind: "invalid", issues: prepared.issues })
      : c.json({ error: "event-too-large", message: prepared.detail, eventId: prepared.eventId }, 422);
  }
  return c.json({
    source: source.name,
    eventId: prepared.eventId,
    mapped: prepared.entry !== undefined,
    family: prepared.entry?.family ?? null,
    calls: prepared.calls,
    bytes: prepared.message.bytes,
    enqueued: false,
  });
}
