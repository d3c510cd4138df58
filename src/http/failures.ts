import type { Context } from "hono";
import type { Issue } from "../issues";

/**
 * Why the edge refused a request. Inside, failures are data; `failureResponse` is the one place
 * they become HTTP answers. Logs keep the rich reason, responses stay terse and never carry a
 * secret or a stack trace.
 */
export type EdgeFailure =
  | { reason: "not-found" }
  | { reason: "unknown-source"; source: string }
  | { reason: "misconfigured"; issues: Issue[] }
  | { reason: "unauthorized" }
  | { reason: "too-large"; limit: number }
  | { reason: "invalid"; issues: Issue[] }
  /** A query parameter out of its range or shape (src/http/query.ts): each one named. */
  | { reason: "bad-query"; issues: Issue[] }
  | { reason: "unavailable"; store: "kv" | "queue" | "ledger" | "r2" };

export function failureResponse(c: Context, failure: EdgeFailure): Response {
  switch (failure.reason) {
    case "not-found":
      return c.json({ error: "not-found", message: `no route for ${c.req.method} ${c.req.path}` }, 404);
    case "misconfigured":
      return c.json(
        { error: "misconfigured", message: "the relay is not configured correctly", issues: failure.issues },
        503,
      );
    // An unknown source answers as a wrong token does, byte for byte: the answer neither tells a
    // prober which source names exist nor echoes the name it was sent. The log keeps the reason.
    case "unknown-source":
    case "unauthorized":
      return c.json(
        {
          error: "unauthorized",
          message: "a valid token is required (?token=... or Authorization: Bearer ...)",
        },
        401,
        { "www-authenticate": 'Bearer realm="pendo-segment-relay"' },
      );
    case "too-large":
      return c.json({ error: "too-large", message: `the body is over the ${failure.limit}-byte limit` }, 413);
    case "invalid":
      return c.json(
        { error: "invalid", message: "the webhook is not a valid Pendo event", issues: failure.issues },
        400,
      );
    case "bad-query":
      return c.json(
        {
          error: "invalid",
          message: failure.issues.map((issue) => `${issue.path} ${issue.message}`).join("; "),
          issues: failure.issues,
        },
        400,
      );
    case "unavailable":
      return c.json({ error: "unavailable", message: "could not store the event; retry later" }, 503, {
        "retry-after": "30",
      });
  }
}

/** The one not-found answer: unknown routes, and admin routes while ADMIN_TOKEN is unset. */
export const notFound = (c: Context) => failureResponse(c, { reason: "not-found" });
