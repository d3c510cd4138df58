import { Hono } from "hono/tiny";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { notFound } from "../http/failures";
import { CONSOLE_HTML, CONSOLE_SCRIPT, CONSOLE_STYLE } from "./assets.generated";

/**
 * GET /console: the operator console, one page with its script and style served beside it, no
 * other origin ever (a strict Content-Security-Policy says so to the browser). The page holds no
 * data and no secret: it signs in with the admin token and reads the admin API as Bearer. While
 * ADMIN_TOKEN is unset it does not exist (404), like /admin. `no-store` and `nosniff` are on
 * every answer of the Worker (src/http/app.ts).
 */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

// A relay arrow, so the browser asks for no /favicon.ico.
const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M2 8h10M8 4l4 4-4 4" stroke="#2563eb" stroke-width="2" fill="none"/></svg>';

export function createConsoleRoutes() {
  const console = new Hono<{ Bindings: Env }>();
  console.use("*", async (c, next) => {
    const config = loadSettings(c.env);
    if (!config.ok || !config.settings.ADMIN_TOKEN) return notFound(c);
    await next();
  });
  const serve = (body: string, type: string) => () =>
    new Response(body, { headers: { "content-type": `${type}; charset=utf-8`, ...SECURITY_HEADERS } });
  console.get("/", serve(CONSOLE_HTML, "text/html"));
  console.get("/app.js", serve(CONSOLE_SCRIPT, "text/javascript"));
  console.get("/app.css", serve(CONSOLE_STYLE, "text/css"));
  console.get("/icon.svg", serve(ICON, "image/svg+xml"));
  return console;
}
