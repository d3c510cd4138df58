import * as v from "valibot";

/**
 * The Pendo URL-webhook envelope (support.pendo.io, "Example Webhook Responses"). Strict where
 * the relay depends on a field (event, ids, timestamp, properties), loose everywhere else: Pendo
 * adds fields over time, and unknown ones pass through to `context.pendo.extra`.
 */

/** valibot's object schemas accept arrays (their keys are strings); a Pendo object never is one. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const jsonObject = (message: string) => v.custom<Record<string, unknown>>(isJsonObject, message);

const optionalText = (max: number, name: string) =>
  v.nullish(
    v.pipe(
      v.string(`${name} must be a string`),
      v.maxLength(max, `${name} must be at most ${max} characters`),
    ),
  );

// Pendo's ids are numbers (app.id can be negative; subscription.id has 16 digits) but an id past
// 2^53 arrives as a string from the lossless parser, so both are accepted.
const numericId = v.nullish(v.union([v.number(), v.string()], "must be a number or a string"));

export const PendoWebhookSchema = v.looseObject(
  {
    event: v.pipe(
      v.string("event must be a string"),
      v.trim(),
      v.minLength(1, "event must be a non-empty string"),
      v.maxLength(200, "event must be at most 200 characters"),
    ),
    visitorId: optionalText(1_024, "visitorId"),
    accountId: optionalText(1_024, "accountId"),
    // Pendo sends 40 hex characters. The bound keeps messageIds under Segment's 100 characters.
    uniqueId: v.nullish(
      v.pipe(
        v.string("uniqueId must be a string"),
        v.regex(
          /^[A-Za-z0-9_-]{1,48}$/,
          "uniqueId must be 1-48 letters, digits, '-' or '_' (Pendo sends 40 hex)",
        ),
      ),
    ),
    // An integer past 2^53 arrives as its digits (see json.ts); it is an absurd time, so it is
    // read as a number and left to the time fallback rather than refused.
    timestamp: v.nullish(
      v.union(
        [v.pipe(v.number(), v.finite()), v.pipe(v.string(), v.regex(/^-?\d{16,}$/), v.transform(Number))],
        "timestamp must be a number (Unix seconds or milliseconds)",
      ),
    ),
    properties: v.nullish(jsonObject("properties must be a JSON object")),
    userAgent: optionalText(2_048, "userAgent"),
    app: v.nullish(
      v.looseObject(
        { id: numericId, name: optionalText(512, "app.name"), platform: optionalText(64, "app.platform") },
        "app must be an object",
      ),
    ),
    subscription: v.nullish(
      v.looseObject(
        { id: numericId, name: optionalText(512, "subscription.name") },
        "subscription must be an object",
      ),
    ),
  },
  "the body must be a JSON object",
);

export type PendoWebhook = v.InferOutput<typeof PendoWebhookSchema>;

/** The envelope keys the transform maps itself; any other top-level key is "extra". */
export const ENVELOPE_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(PendoWebhookSchema.entries),
  "user",
]);

export interface ValidationIssue {
  path: string;
  message: string;
}

/** valibot issues flattened to what a webhook sender can act on: a dotted path and a sentence. */
export function toValidationIssues(issues: readonly v.BaseIssue<unknown>[]): ValidationIssue[] {
  return issues.map((issue) => ({ path: v.getDotPath(issue) ?? "", message: issue.message }));
}
