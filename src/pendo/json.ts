/**
 * JSON.parse that never silently rounds, and that refuses absurd nesting. Pendo ids are integers
 * and can exceed 2^53; a plain JSON.parse turns 12345678901234567891 into 12345678901234567000.
 * Unsafe integers (and literals that overflow to Infinity) are kept as their raw digits, as
 * strings.
 *
 * Cost, on the hot path: one plain JSON.parse and one walk of the result, which both bounds the
 * nesting and looks for numbers that cannot be exact (measured cheaper, in workerd, than a
 * regular expression over the text). Only a body holding one is parsed again, with a reviver
 * that reads each literal's source, several times slower.
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
  /** A number may not be what its literal said: parse again with the reviver. */
  inexact: boolean;
}

/**
 * One walk of the parsed body: the path (outermost first) at which it nests deeper than `limit`,
 * or undefined; on the way, whether any number is an unsafe integer or overflowed.
 */
function walk(value: object, depth: number, limit: number, state: Walk): string[] | undefined {
  if (depth >= limit) return [];
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (typeof child === "number") {
      if (!Number.isSafeInteger(child) && (Number.isInteger(child) || !Number.isFinite(child)))
        state.inexact = true;
    } else if (child !== null && typeof child === "object") {
      const path = walk(child, depth + 1, limit, state);
      if (path) {
        path.unshift(key);
        return path;
      }
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
  if (value === null || typeof value !== "object") return { ok: true, value };
  const state: Walk = { inexact: false };
  const tooDeep = walk(value, 0, maxDepth, state);
  if (tooDeep)
    return { ok: false, path: tooDeep.join("."), message: `nested deeper than ${maxDepth} levels` };
  if (state.inexact) value = JSON.parse(text, keepRawNumbers as (key: string, value: unknown) => unknown);
  return { ok: true, value };
}
