import * as v from "valibot";
import { COUNTS_KEPT_DAYS } from "../cron/scheduled";
import { epochMs, wholeNumber } from "../http/query";
import { LISTED_STATES, RECORD_ID } from "../ledger/records";

/**
 * The admin routes' query parameters, as valibot entries for `readQuery` (src/http/query.ts):
 * a route lists what it takes, and a value out of shape or range is a 400 naming it.
 */

const CURSOR_MESSAGE = "must be a cursor this relay returned";
const TIME = epochMs();

/** The filter of every record listing, count and bulk replay: names as given, times as ms. */
export const RECORD_FILTER = {
  reason: v.optional(v.string()),
  event: v.optional(v.string()),
  source: v.optional(v.string()),
  from: v.optional(TIME),
  to: v.optional(TIME),
  /** Which records: those waiting (stored, the default), the tombstones, or all. */
  state: v.optional(v.picklist(LISTED_STATES, `must be one of ${LISTED_STATES.join(", ")}`)),
};

/** A page of a listing: `limit` entries (default 50) after `cursor`, the last id of the page before. */
export const RECORD_PAGE = {
  limit: v.optional(wholeNumber(1, 500), "50"),
  cursor: v.optional(v.pipe(v.string(), v.regex(RECORD_ID, CURSOR_MESSAGE))),
};

/** `<startedAt>.<last id>`: a bulk replay run, continued. Without one, a call starts a run now. */
export const RUN_CURSOR = v.pipe(
  v.string(),
  v.transform((raw) => {
    const dot = raw.indexOf(".");
    return { startedAt: raw.slice(0, dot), after: raw.slice(dot + 1) };
  }),
  v.check(({ startedAt, after }) => v.is(TIME, startedAt) && RECORD_ID.test(after), CURSOR_MESSAGE),
  v.transform(({ startedAt, after }) => ({ startedAt: Number(startedAt), after })),
);

/** The overview's range: whole hours, at most the 90 days the counters are kept (default a day). */
export const OVERVIEW_HOURS = v.optional(wholeNumber(1, COUNTS_KEPT_DAYS * 24), "24");
