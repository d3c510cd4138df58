/**
 * JSON.parse that never silently rounds, and that refuses absurd nesting. Pendo ids are integers
 * and can exceed 2^53; a plain JSON.parse turns 12345678901234567891 into 12345678901234567000.
 * Unsafe integers (and literals that overflow to Infinity) are kept as their raw digits, as
 * strings.
 *
 * Cost: the text is parsed plainly, then one walk of the result both bounds the nesting and looks
 * for numbers that cannot be exact. Only then (rarely) is it parsed again with a reviver that
 * reads each literal's source, which is several times slower than the plain parse.
 */

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

interface Walk {
  /** Some number may not be what its literal said: parse again with the reviver. */
  inexact: boolean;
}

/** The path (outermost first) at which `value` nests deeper than `limit`, or undefined. */
function walk(value: unknown, depth: number, limit: number, state: Walk): string[] | undefined {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) && (Number.isInteger(value) || !Number.isFinite(value)))
      state.inexact = true;
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  if (depth >= limit) return [];
  for (const key of Object.keys(value)) {
    const path = walk((value as Record<string, unknown>)[key], depth + 1, limit, state);
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
  const state: Walk = { inexact: false };
  const tooDeep = walk(value, 0, maxDepth, state);
  if (tooDeep)
    return { ok: false, path: tooDeep.join("."), message: `nested deeper than ${maxDepth} levels` };
  if (state.inexact) value = JSON.parse(text, keepRawNumbers as (key: string, value: unknown) => unknown);
  return { ok: true, value };
}
