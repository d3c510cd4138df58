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

/** The dotted path at which `value` first nests deeper than `limit`, or undefined. Never recurses past it. */
function pathDeeperThan(value: unknown, limit: number, depth = 0, path = ""): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (depth >= limit) return path;
  for (const key of Object.keys(value)) {
    const found = pathDeeperThan(
      (value as Record<string, unknown>)[key],
      limit,
      depth + 1,
      path ? `${path}.${key}` : key,
    );
    if (found !== undefined) return found;
  }
  return undefined;
}

export type IntakeResult =
  | { ok: true; webhook: PendoWebhook; entry: CatalogEntry | undefined }
  | { ok: false; issues: ValidationIssue[] };

/**
 * Raw body -> validated webhook: the envelope, then the event's own property checks from the
 * catalog. Every issue is reported at once, each with the path a sender can fix.
 */
export function readWebhook(text: string): IntakeResult {
  const parsed = parseJsonLossless(text);
  if (!parsed.ok)
    return { ok: false, issues: [{ path: "", message: `body is not valid JSON: ${parsed.message}` }] };

  if (!isJsonObject(parsed.value))
    return { ok: false, issues: [{ path: "", message: "the body must be a JSON object" }] };
  const tooDeep = pathDeeperThan(parsed.value, MAX_DEPTH);
  if (tooDeep !== undefined) {
    return { ok: false, issues: [{ path: tooDeep, message: `nested deeper than ${MAX_DEPTH} levels` }] };
  }
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
  return { ok: true, webhook, entry };
}
