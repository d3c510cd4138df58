import type { Context } from "hono";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { prepareEvent } from "../intake/prepare";
import { DEFAULT_SOURCE, resolveSource } from "../sources";
import { isAdmin } from "./auth";
import { readBodyLimited } from "./body";
import { failureResponse, notFound } from "./failures";

/** The only ENVIRONMENT in which /debug/transform needs no token: what `npm start` sets. */
export const OPEN_DEBUG_ENVIRONMENT = "development";

/**
 * POST /debug/transform[?source=name]: the Segment calls a Pendo payload would become, without
 * enqueueing, storing or marking anything. Open only where ENVIRONMENT is `development`;
 * anywhere else only with the admin token, and without it the route does not exist (404).
 */
export async function debugTransform(c: Context<{ Bindings: Env }>): Promise<Response> {
  const config = loadSettings(c.env);
  if (!config.ok) return failureResponse(c, config);
  const settings = config.settings;
  const open = settings.ENVIRONMENT === OPEN_DEBUG_ENVIRONMENT;
  if (!open && !(await isAdmin(c.req.raw, settings.ADMIN_TOKEN))) return notFound(c);

  const sourceName = c.req.query("source") ?? DEFAULT_SOURCE;
  const source = resolveSource(settings, sourceName);
  if (!source) return failureResponse(c, { reason: "unknown-source", source: sourceName });
  const body = await readBodyLimited(c.req.raw, settings.MAX_BODY_BYTES);
  if (!body.ok) {
    return body.reason === "too-large"
      ? failureResponse(c, { reason: "too-large", limit: settings.MAX_BODY_BYTES })
      : failureResponse(c, { reason: "invalid", issues: [{ path: "", message: "body is not valid UTF-8" }] });
  }
  const prepared = await prepareEvent(body.text, source, Date.now());
  if (!prepared.ok) {
    return prepared.reason === "invalid"
      ? failureResponse(c, prepared)
      : c.json({ error: "event-too-large", message: prepared.detail, eventId: prepared.eventId }, 422);
  }
  return c.json({
    source: source.name,
    eventId: prepared.eventId,
    mapped: prepared.entry !== undefined,
    family: prepared.entry?.family ?? null,
    calls: prepared.calls,
    warnings: prepared.warnings,
    bytes: prepared.message.bytes,
    queuedBytes: prepared.queuedBytes,
    enqueued: false,
  });
}
