/**
 * JSON.parse that never silently rounds. Pendo ids are integers and can exceed 2^53; a plain
 * JSON.parse would turn 12345678901234567891 into 12345678901234567000. Unsafe integers (and
 * literals that overflow to Infinity) are kept as their raw digits, as strings.
 *
 * Cost: the reviver path is several times slower than plain JSON.parse, so a cheap scan of the
 * text decides whether it is needed at all. Most webhooks hold only safe integers and take the
 * plain path. The scan can report false positives (digits inside a string); those only cost speed.
 */

// A number literal of 16+ digits, or one with a 3-digit exponent, after a JSON value separator.
const SUSPECT_NUMBER = /[:,[]\s*-?(\d{16,}|\d[\d.]*[eE][+-]?\d{3,})/g;
const INTEGER_LITERAL = /^-?\d+$/;
const MAX_SAFE_DIGITS = String(Number.MAX_SAFE_INTEGER); // "9007199254740991", 16 digits

function isUnsafeLiteral(literal: string): boolean {
  if (/[eE.]/.test(literal)) return true; // exponent overflow checks are cheaper done by the reviver
  if (literal.length !== MAX_SAFE_DIGITS.length) return literal.length > MAX_SAFE_DIGITS.length;
  return literal > MAX_SAFE_DIGITS;
}

function needsReviver(text: string): boolean {
  SUSPECT_NUMBER.lastIndex = 0;
  for (let match = SUSPECT_NUMBER.exec(text); match; match = SUSPECT_NUMBER.exec(text)) {
    if (isUnsafeLiteral(match[1] ?? "")) return true;
  }
  return false;
}

interface ReviverContext {
  source?: string;
}

// JSON.parse source text access (TC39 stage 4, in V8 and so in workerd): the reviver's third
// argument carries the literal as written.
function keepRawNumbers(this: unknown, _key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value !== "number" || context?.source === undefined) return value;
  // Overflow to Infinity would serialize as null: keep the literal.
  if (!Number.isFinite(value)) return context.source;
  // Only an integer's own digits are kept; 1e+100 or 0.1 are already the value their literal says.
  if (!Number.isSafeInteger(value) && INTEGER_LITERAL.test(context.source)) return context.source;
  return value;
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; message: string };

export function parseJsonLossless(text: string): JsonParseResult {
  try {
    const value = needsReviver(text)
      ? JSON.parse(text, keepRawNumbers as (key: string, value: unknown) => unknown)
      : JSON.parse(text);
    return { ok: true, value };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : "not valid JSON" };
  }
}
