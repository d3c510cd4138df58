import type { Context } from "hono";
import type { ConfigProblem } from "../config";
import type { ValidationIssue } from "../pendo/envelope";

/**
 * Why the edge refused a webhook. Inside, failures are data; `failureResponse` is the one place
 * they become HTTP answers. Logs keep the rich reason, responses stay terse and never carry a
 * secret or a stack trace.
 */
export type IngestFailure =
  | { kind: "unknown-source"; source: string }
  | { kind: "misconfigured"; problems: ConfigProblem[] }
  | { kind: "unauthorized" }
  | { kind: "too-large"; limit: number }
  | { kind: "invalid"; issues: ValidationIssue[] }
  | { kind: "unavailable"; reason: string };

export function failureResponse(c: Context, failure: IngestFailure): Response {
  switch (failure.kind) {
    case "unknown-source":
      return c.json({ error: "unknown-source", message: `no source named "${failure.source}"` }, 404);
    case "misconfigured":
      return c.json(
        {
          error: "misconfigured",
          message: "the relay is not configured correctly",
          problems: failure.problems,
        },
        503,
      );
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
    case "unavailable":
      return c.json({ error: "unavailable", message: "could not store the event; retry later" }, 503, {
        "retry-after": "30",
      });
  }
}
