import type { Issue } from "../issues";
import { isJsonObject } from "../json";
import { type CatalogEntry, catalogEntry } from "./catalog";
import { checkEnvelope, type PendoWebhook } from "./envelope";
import { parseJsonLossless } from "./json";

/**
 * Pendo's deepest published field (guideProperties.steps[].id) is 4 levels down. Far deeper bodies
 * are no Pendo event; accepted, they could make Segment or a warehouse fail on a whole batch.
 */
export const MAX_DEPTH = 32;

// Without non-ASCII characters or \u escapes in the body, every call built from it is ASCII.
const MAYBE_NON_ASCII = /[\u0080-\uffff]|\\u/;

export type IntakeResult =
  | {
      ok: true;
      webhook: PendoWebhook;
      entry: CatalogEntry | undefined;
      ascii: boolean;
      /** Doubts about fields the relay forwards anyway, each with its path. */
      warnings: Issue[];
      /** Values of unusable type, moved out of the webhook, forwarded in context.pendo.invalid. */
      invalid: Record<string, unknown> | undefined;
    }
  | { ok: false; reason: "invalid"; issues: Issue[] };

/**
 * Raw body -> checked webhook. Refused only when it cannot be mapped at all (see envelope.ts);
 * every issue is reported at once, each with the path a sender can fix.
 */
export function readWebhook(text: string): IntakeResult {
  const parsed = parseJsonLossless(text, MAX_DEPTH);
  if (!parsed.ok)
    return { ok: false, reason: "invalid", issues: [{ path: parsed.path, message: parsed.message }] };
  if (!isJsonObject(parsed.value)) {
    return {
      ok: false,
      reason: "invalid",
      issues: [{ path: "", message: "the body must be a JSON object" }],
    };
  }
  const envelope = checkEnvelope(parsed.value);
  if (!envelope.ok) return envelope;
  return {
    ok: true,
    webhook: envelope.webhook,
    entry: catalogEntry(envelope.webhook.event),
    ascii: !MAYBE_NON_ASCII.test(text),
    warnings: envelope.warnings,
    invalid: envelope.invalid,
  };
}

// Sticky: tried only where indexOf found the key, not at every position of the body.
const UNIQUE_ID = /"uniqueId"\s*:\s*"([A-Za-z0-9_-]{1,48})"/y;

/**
 * The uniqueId a raw body names, read before parsing, so the dedup read can start early. Only a
 * hint: the caller compares it with the id intake settles on, and reads again if they differ.
 */
export function uniqueIdHint(text: string): string | undefined {
  for (let at = text.indexOf('"uniqueId"'); at >= 0; at = text.indexOf('"uniqueId"', at + 1)) {
    UNIQUE_ID.lastIndex = at;
    const match = UNIQUE_ID.exec(text);
    if (match) return match[1];
  }
  return undefined;
}

const EVENT_NAME = /"event"\s*:\s*"([^"\\]{1,200})"/;

/** The event name an invalid body names, if it can be read cheaply: for filters and counts. */
export function eventNameHint(text: string): string | undefined {
  return EVENT_NAME.exec(text)?.[1];
}
