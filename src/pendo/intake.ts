import * as v from "valibot";
import { type CatalogEntry, catalogEntry } from "./catalog";
import {
  isJsonObject,
  type PendoWebhook,
  PendoWebhookSchema,
  toValidationIssues,
  type ValidationIssue,
} from "./envelope";
import { parseJsonLossless } from "./json";
import { keepProtoKey } from "./own";

/**
 * Pendo's deepest published field (guideProperties.steps[].id) is 4 levels down. Far deeper bodies
 * are no Pendo event; accepted, they could make Segment or a warehouse fail on a whole batch.
 */
export const MAX_DEPTH = 32;

// Without non-ASCII characters or \u escapes in the body, every call built from it is ASCII.
const MAYBE_NON_ASCII = /[\u0080-\uffff]|\\u/;

export type IntakeResult =
  | { ok: true; webhook: PendoWebhook; entry: CatalogEntry | undefined; ascii: boolean }
  | { ok: false; issues: ValidationIssue[] };

/**
 * Raw body -> validated webhook: the envelope, then the event's own property checks from the
 * catalog. Every issue is reported at once, each with the path a sender can fix.
 */
export function readWebhook(text: string): IntakeResult {
  const parsed = parseJsonLossless(text, MAX_DEPTH);
  if (!parsed.ok) return { ok: false, issues: [{ path: parsed.path, message: parsed.message }] };

  if (!isJsonObject(parsed.value))
    return { ok: false, issues: [{ path: "", message: "the body must be a JSON object" }] };
  const envelope = v.safeParse(PendoWebhookSchema, parsed.value);
  if (!envelope.success) return { ok: false, issues: toValidationIssues(envelope.issues) };

  const webhook = envelope.output;
  // valibot copies objects by assignment, which drops an own "__proto__" key (see own.ts).
  const raw = parsed.value as Record<string, unknown>;
  keepProtoKey(raw, webhook);
  keepProtoKey(raw.app, webhook.app);
  keepProtoKey(raw.subscription, webhook.subscription);
  const entry = catalogEntry(webhook.event);
  if (entry?.properties) {
    const checked = v.safeParse(entry.properties, webhook.properties ?? {});
    if (!checked.success) {
      return {
        ok: false,
        issues: toValidationIssues(checked.issues).map((issue) => ({
          path: issue.path ? `properties.${issue.path}` : "properties",
          message: issue.message,
        })),
      };
    }
  }
  return { ok: true, webhook, entry, ascii: !MAYBE_NON_ASCII.test(text) };
}
