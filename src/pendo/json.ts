/**
 * JSON.parse that never silently rounds, and that refuses absurd nesting. Pendo ids are integers
 * and can exceed 2^53; a plain JSON.parse turns 12345678901234567891 into 12345678901234567000.
 * Unsafe integers (and literals that overflow to Infinity) are kept as their raw digits, as
 * strings.
 *
 * Cost, on the hot path: one plain JSON.parse and one scan of the text (its nesting depth, and
 * whether any literal could be inexact). Only a body that holds 16 digits in a row or a
 * three-digit exponent is parsed again, with a reviver that reads each literal's source (several
 * times slower); only a body nested too deep is walked, to name where.
 */

// An integer past 2^53 has at least 16 digits; a literal past 1e308 has a three-digit exponent.
// Matches inside strings too: that only costs the slower parse, never a lost digit.
const MAYBE_INEXACT = /\d{16}|[eE][+-]?\d{3}/;

const INTEGER_LITERAL = /^-?\d+$/;

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

/** The deepest nesting of objects and arrays in a JSON text (which is valid: it just parsed). */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 0x5c)
        i++; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
  return deepest;
}

/** The path (outermost first) at which `value` nests deeper than `limit`, or undefined. */
function pathTooDeep(value: unknown, depth: number, limit: number): string[] | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (depth >= limit) return [];
  for (const key of Object.keys(value)) {
    const path = pathTooDeep((value as Record<string, unknown>)[key], depth + 1, limit);
    if (path) {
      path.unshift(key);
      return path;
    }
  }
  return undefined;
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; message: string; path: string };

export function parseJsonLossless(text: string, maxDepth: number): JsonParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      path: "",
      message: `body is not valid JSON: ${error instanceof Error ? error.message : "?"}`,
    };
  }
  if (nestingDepth(text) > maxDepth) {
    const path = pathTooDeep(value, 0, maxDepth) ?? [];
    return { ok: false, path: path.join("."), message: `nested deeper than ${maxDepth} levels` };
  }
  if (MAYBE_INEXACT.test(text))
    value = JSON.parse(text, keepRawNumbers as (key: string, value: unknown) => unknown);
  return { ok: true, value };
}
