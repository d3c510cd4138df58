import type { Context } from "hono";
import * as v from "valibot";
import { type Issue, issuesOf } from "../issues";

/**
 * Query parameters, checked before anything reads them: every number is a whole number in its
 * range, every time a time, or the answer is a 400 naming the parameter (`failureResponse`'s
 * `bad-query`). A value that slipped through as `1.5` or `1e3` once reached D1 as a REAL bound to
 * LIMIT and answered 500. Each route lists its parameters as valibot entries built from the
 * schemas below; an empty value (`?limit=`, what a form sends for a blank field) counts as absent.
 */

// ECMAScript's time values end here (±8.64e15 ms, ECMA-262 "Time Values and Time Range").
export const LATEST_TIME_MS = 8_640_000_000_000_000;

/** A whole number from `min` to `max`, written in decimal digits: no sign, point or exponent. */
export function wholeNumber(min: number, max: number) {
  const message = `must be a whole number from ${min} to ${max}`;
  return v.pipe(
    v.string(),
    v.regex(/^\d{1,16}$/, message),
    v.transform(Number),
    v.minValue(min, message),
    v.maxValue(max, message),
  );
}

// The shapes of ISO 8601 that Date.parse reads the same everywhere; its fallback for anything
// else reads "1.5" as a date in 2001, so nothing else reaches it.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Unix milliseconds, or an ISO 8601 time, read as milliseconds. */
export function epochMs() {
  return v.pipe(
    v.string(),
    v.transform((raw) => (/^\d{1,16}$/.test(raw) ? Number(raw) : ISO_TIME.test(raw) ? Date.parse(raw) : NaN)),
    v.check(
      (ms) => Number.isInteger(ms) && ms >= 0 && ms <= LATEST_TIME_MS,
      `must be Unix milliseconds (a whole number from 0 to ${LATEST_TIME_MS}) or an ISO 8601 time`,
    ),
  );
}

export type QueryRead<T> = { ok: true; query: T } | { ok: false; issues: Issue[] };

/** The request's query read against `entries`; parameters it does not name are ignored. */
export function readQuery<const E extends v.ObjectEntries>(
  c: Context,
  entries: E,
): QueryRead<v.InferOutput<v.ObjectSchema<E, undefined>>> {
  const given = Object.fromEntries(Object.entries(c.req.query()).filter(([, value]) => value !== ""));
  const result = v.safeParse(v.object(entries), given);
  return result.success ? { ok: true, query: result.output } : { ok: false, issues: issuesOf(result.issues) };
}
