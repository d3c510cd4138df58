import * as v from "valibot";
import type { Issue } from "../issues";
import { isJsonObject } from "../json";

/**
 * The Pendo URL-webhook envelope (support.pendo.io, "Example Webhook Responses"). Pendo publishes
 * payloads for a few events only, so the relay refuses only what it cannot map at all: a body
 * that is not a JSON object, no event name, or an identity field of an impossible type. Every
 * other field is checked too, but a failure there is a warning: the event is forwarded, the
 * unusable value is kept in `context.pendo.invalid`, and the doubt is listed in
 * `context.pendo.warnings`.
 */

const jsonObject = (message: string) => v.custom<Record<string, unknown>>(isJsonObject, message);

// Ids may be numbers (`12345`) or strings; either becomes a string with its exact digits (an
// integer past 2^53 already arrives as its digits, see json.ts).
const identity = (name: string) =>
  v.nullish(v.union([v.string(), v.pipe(v.number(), v.finite())], `${name} must be a string or a number`));

/** Fields without which the event cannot be mapped: a failure here is a 400. */
const REQUIRED = {
  event: v.pipe(
    v.string("event must be a string"),
    v.trim(),
    v.minLength(1, "event must be a non-empty string"),
  ),
  visitorId: identity("visitorId"),
  accountId: identity("accountId"),
};

/** Fields the mapping reads but can do without: a failure here is a warning. */
const LENIENT = {
  // Pendo sends 40 hex characters. The bound keeps messageIds under Segment's 100 characters and
  // KV keys plain; another shape falls back to a hash of the body as the event id.
  uniqueId: v.nullish(
    v.pipe(
      v.string("uniqueId must be a string"),
      v.regex(
        /^[A-Za-z0-9_-]{1,48}$/,
        "uniqueId must be 1-48 letters, digits, '-' or '_' (Pendo sends 40 hex)",
      ),
    ),
  ),
  properties: v.nullish(jsonObject("properties must be a JSON object")),
  userAgent: v.nullish(v.string("userAgent must be a string")),
  app: v.nullish(jsonObject("app must be a JSON object")),
  subscription: v.nullish(jsonObject("subscription must be a JSON object")),
};

const HARD_KEYS: ReadonlySet<string> = new Set(Object.keys(REQUIRED));

export const PendoWebhookSchema = v.looseObject({ ...REQUIRED, ...LENIENT }, (issue) =>
  issue.path?.length === 1 && issue.input === undefined
    ? `${String(issue.path[0]?.key)} is required`
    : "the body must be a JSON object",
);

/** A webhook as the transform reads it: every known field of its checked type, ids as strings. */
export type PendoWebhook = {
  event: string;
  visitorId?: string | null;
  accountId?: string | null;
  uniqueId?: string | null;
  /** Read by time.ts alone, whatever it holds: what is not a plausible time is flagged there. */
  timestamp?: unknown;
  properties?: Record<string, unknown> | null;
  userAgent?: string | null;
  app?: Record<string, unknown> | null;
  subscription?: Record<string, unknown> | null;
  [key: string]: unknown;
};

/** The envelope keys the transform maps itself; any other top-level key is "extra". */
export const ENVELOPE_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(PendoWebhookSchema.entries),
  "timestamp",
  "user",
]);

export type EnvelopeResult =
  | { ok: true; webhook: PendoWebhook; warnings: Issue[]; invalid: Record<string, unknown> | undefined }
  | { ok: false; reason: "invalid"; issues: Issue[] };

/**
 * Checks a parsed body in one valibot pass and sorts its issues: on a required field they refuse
 * the webhook; on a lenient one the value moves to `invalid` and a warning says why. The body is
 * normalised in place (it was parsed for this request alone): no copy is made.
 */
export function checkEnvelope(body: Record<string, unknown>): EnvelopeResult {
  // Nearly every webhook is clean: checking its fields one by one copies nothing (an object
  // schema builds a copy of the body) and stops at the first doubt, which the full pass below
  // then describes field by field.
  if (FIELDS.every(([key, schema]) => v.is(schema, body[key]))) return accepted(body, [], undefined);
  const result = v.safeParse(PendoWebhookSchema, body);
  let warnings: Issue[] = [];
  let invalid: Record<string, unknown> | undefined;
  if (!result.success) {
    const refused: Issue[] = [];
    for (const issue of result.issues) {
      const key = issue.path?.[0]?.key;
      const path = v.getDotPath(issue) ?? "";
      if (typeof key !== "string" || HARD_KEYS.has(key)) {
        refused.push({ path, message: issue.message });
        continue;
      }
      invalid ??= {};
      if (!Object.hasOwn(invalid, key)) {
        Object.defineProperty(invalid, key, { value: body[key], enumerable: true, writable: true });
        delete body[key];
      }
      warnings = [...warnings, { path, message: `${issue.message}; kept in context.pendo.invalid` }];
    }
    if (refused.length > 0) return { ok: false, reason: "invalid", issues: refused };
  }
  return accepted(body, warnings, invalid);
}

const FIELDS = Object.entries({ ...REQUIRED, ...LENIENT });

/** The checked body as the webhook the transform reads: event trimmed, ids as strings. */
function accepted(
  body: Record<string, unknown>,
  warnings: Issue[],
  invalid: Record<string, unknown> | undefined,
): EnvelopeResult {
  const webhook = body as PendoWebhook;
  webhook.event = (body.event as string).trim();
  if (typeof body.visitorId === "number") webhook.visitorId = String(body.visitorId);
  if (typeof body.accountId === "number") webhook.accountId = String(body.accountId);
  return { ok: true, webhook, warnings, invalid };
}
