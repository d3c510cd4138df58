import type { MiddlewareHandler } from "hono";
// The smallest router (PatternRouter): a dozen routes need no more, and the bundle is budgeted.
import { Hono } from "hono/tiny";
import { createAdminRoutes } from "../admin/routes";
import { createConsoleRoutes } from "../console/routes";
import type { Env } from "../env";
import { log } from "../log";
import { DEFAULT_SOURCE } from "../sources";
import { RELAY_NAME, RELAY_VERSION } from "../version";
import { debugTransform } from "./debug";
import { notFound } from "./failures";
import { health } from "./health";
import { ingestWebhook } from "./ingest";

/**
 * No answer is for an intermediary to keep: admin listings and /health carry state behind a
 * token, a webhook's answer names the event it took, a 404 the path it was asked. And none is for
 * a browser to sniff into HTML. Set after the handler, so every answer has them: 200s, 401s,
 * 404s and onError's 500.
 */
const ANSWER_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
} as const;

const answerHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  // c.header copies a finished response first, so a handler's immutable headers are no obstacle.
  for (const [name, value] of Object.entries(ANSWER_HEADERS)) c.header(name, value);
};

export function createApp() {
  const app = new Hono<{ Bindings: Env }>();

  app.use("*", answerHeaders);

  app.get("/", (c) => c.json({ name: RELAY_NAME, version: RELAY_VERSION, webhook: "POST /pendo?token=..." }));
  app.post("/pendo", (c) => ingestWebhook(c, DEFAULT_SOURCE));
  app.post("/pendo/:source", (c) => ingestWebhook(c, c.req.param("source")));
  app.get("/health", health);
  app.post("/debug/transform", debugTransform);
  app.route("/admin", createAdminRoutes());
  app.route("/console", createConsoleRoutes());

  app.notFound(notFound);
  // Reached only by a bug: the request's own faults are answered as data before this. The URL is
  // not logged: it may carry the token.
  app.onError((error, c) => {
    log("error", "unhandled", {
      path: c.req.path,
      error: error instanceof Error ? error.message : String(error),
    });
    return c.json(
      { error: "internal", message: "the relay failed unexpectedly; the event was not accepted" },
      500,
    );
  });
  return app;
}
