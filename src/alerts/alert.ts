import { isHidden, writtenOut } from "../visible";

/**
 * What an alert says, as data: pure, no I/O, no clock of its own. The body is JSON that a Slack
 * incoming webhook accepts as it is (`text`) and that a machine can read (`alert`). It never
 * carries a payload body or a secret: event names, uniqueIds, reasons, paths and statuses only.
 */

export const ALERT_KINDS = [
  "dead-letters",
  "invalid-webhooks",
  "unknown-event",
  "delivery-failing",
  "delivery-recovered",
  "record-budget",
] as const;
/** Alerts about a destination (its id in place of a source): outage mode starting and ending. */
export const DESTINATION_ALERT_KINDS = ["outage-started", "outage-drained"] as const;
export type AlertKind = (typeof ALERT_KINDS)[number] | (typeof DESTINATION_ALERT_KINDS)[number];

export interface AlertExample {
  event: string;
  uniqueId: string;
}

/** What happened since the last alert of a kind and source: counts, not payloads. */
export interface AlertTally {
  count: number;
  /** When the first of these happened (ms). */
  since: number;
  examples: AlertExample[];
  /** Dead-letter reasons, issue paths, or statuses, with their counts. */
  breakdown: Record<string, number>;
  /** The unknown event name; the last Segment status for delivery alerts. */
  name?: string;
  lastStatus?: number | null;
  /** The unknown event names of an `unknown-event` alert (listed up to MAX_LISTED_NAMES). */
  names?: string[];
  /** Unknown event names the caller already left out of `names`. */
  moreNames?: number;
  /** Drift entries dropped because the source was at its cap. */
  evicted?: number;
  /** Occurrences counted while alert sends failed (part of `count`). */
  held?: number;
  /** record-budget: bytes kept and the budget; outage-*: what is parked. */
  bytes?: { used: number; budget: number };
  parked?: { batches: number; events: number };
}

export const MAX_EXAMPLES = 5;
/** Each untrusted name (event, uniqueId, issue path, breakdown key) is cut to this many characters. */
export const MAX_NAME_CHARS = 100;
/** Unknown event names and breakdown keys listed at the most; the rest are counted. */
export const MAX_LISTED_NAMES = 20;
/**
 * The whole JSON body, in UTF-8 bytes. Slack truncates a message's text past 40,000 characters
 * and recommends far less; 16 KB keeps an alert readable and any receiver's body limit far away.
 */
export const MAX_ALERT_BYTES = 16 * 1024;

export interface AlertBody {
  text: string;
  alert: {
    kind: AlertKind;
    source: string;
    count: number;
    since: string;
    examples: AlertExample[];
    /** Examples left out to keep the body within MAX_ALERT_BYTES. */
    moreExamples?: number;
    breakdown: Record<string, number>;
    /** Breakdown keys left out (the smallest counts go first). */
    moreBreakdown?: number;
    name?: string;
    names?: string[];
    /** Unknown names left out, including those the caller had already left out. */
    moreNames?: number;
    evicted?: number;
    held?: number;
    lastStatus?: number | null;
    bytes?: { used: number; budget: number };
    parked?: { batches: number; events: number };
    console?: string;
  };
}

// Slack's own markup (api.slack.com, "Formatting text"): every name sits in a code span, inside
// which Slack applies no *bold*, _italic_ or ~strike~; a backtick would end the span early, so it
// is written out, and so is the colon of a scheme ("https://"), so no name becomes a link even
// where a reader does link inside code. Beyond that, `&`, `<` and `>` are escaped as Slack requires.
const SLACK_WRITTEN_OUT = (raw: string, at: number, code: number) =>
  code === 0x60 || (code === 0x3a && raw.startsWith("//", at + 1));

/**
 * An untrusted name as an alert shows it: hidden characters written out (`\u202E`; the table in
 * src/visible.ts, which the console uses too), then what Slack would read as markup, cut to
 * MAX_NAME_CHARS characters (an escape is never split), and `&`, `<`, `>` escaped. The same
 * string goes in `text` (in a code span) and in `alert`; a machine reader decodes the three
 * entities.
 */
export function safeName(raw: string): string {
  let out = "";
  let chars = 0;
  let beforeEllipsis = -1;
  for (let at = 0; at < raw.length; ) {
    const code = raw.codePointAt(at) ?? 0;
    const char = String.fromCodePoint(code);
    const shown = isHidden(code) || SLACK_WRITTEN_OUT(raw, at, code) ? writtenOut(code) : char;
    at += char.length;
    // Characters, not UTF-16 units: an emoji counts one.
    const width = shown === char ? 1 : shown.length;
    if (beforeEllipsis < 0 && chars + width > MAX_NAME_CHARS - 1) beforeEllipsis = out.length;
    if (chars + width > MAX_NAME_CHARS) {
      out = `${out.slice(0, beforeEllipsis)}…`;
      break;
    }
    out += shown;
    chars += width;
  }
  return slackEscaped(out);
}

/** The three characters Slack reads as control characters, as the entities it requires. */
const slackEscaped = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A name made safe by `safeName`, as `text` shows it: in a code span. */
const code = (name: string) => `\`${name}\``;

const andMore = (n: number) => (n > 0 ? ` (and ${n} more)` : "");
const listed = (names: readonly string[]) => names.map(code).join(", ");

/** How much of each list the body shows; shrunk until the body fits MAX_ALERT_BYTES. */
interface Room {
  examples: number;
  names: number;
  breakdown: number;
}

/** A tally's untrusted parts made safe once, in the order they are shown. */
interface SafeTally {
  count: number;
  since: string;
  examples: AlertExample[];
  /** Examples in the tally, shown or not. */
  examplesAll: number;
  breakdown: [string, number][];
  /** Breakdown keys in the tally, shown or not. */
  breakdownAll: number;
  names: string[];
  /** Names beyond `names`, counted. */
  namesCut: number;
  name?: string;
  lastStatus?: number | null;
  evicted: number;
  held: number;
  bytes?: { used: number; budget: number };
  parked?: { batches: number; events: number };
}

function safeTally(tally: AlertTally): SafeTally {
  const listed = tally.names ?? (tally.name === undefined ? [] : [tally.name]);
  // Sorted by count before anything is cut, so the largest reasons are the ones shown.
  const breakdown = Object.entries(tally.breakdown)
    .sort((a, b) => b[1] - a[1])
    .slice(0, MAX_LISTED_NAMES)
    .map(([key, count]): [string, number] => [safeName(key), count]);
  return {
    count: tally.count,
    since: new Date(tally.since).toISOString(),
    examples: tally.examples
      .slice(0, MAX_EXAMPLES)
      .map((e) => ({ event: safeName(e.event), uniqueId: safeName(e.uniqueId) })),
    examplesAll: tally.examples.length,
    breakdown,
    breakdownAll: Object.keys(tally.breakdown).length,
    names: listed.slice(0, MAX_LISTED_NAMES).map(safeName),
    namesCut: Math.max(0, listed.length - MAX_LISTED_NAMES) + (tally.moreNames ?? 0),
    ...(tally.name !== undefined && { name: safeName(tally.name) }),
    ...(tally.lastStatus !== undefined && { lastStatus: tally.lastStatus }),
    evicted: tally.evicted ?? 0,
    held: tally.held ?? 0,
    ...(tally.bytes && { bytes: tally.bytes }),
    ...(tally.parked && { parked: tally.parked }),
  };
}

type Summary = (source: string, t: SafeTally, room: Room) => string;

const breakdownText = (t: SafeTally, room: Room) =>
  t.breakdown
    .slice(0, room.breakdown)
    .map(([key, count]) => `${code(key)} ×${count}`)
    .join(", ") + andMore(breakdownCut(t, room));

const SUMMARY: Record<AlertKind, Summary> = {
  "dead-letters": (source, t, room) =>
    `${t.count} event(s) of source ${code(source)} could not be delivered and were kept as dead letters (${breakdownText(t, room)}). Replay them once the cause is fixed.`,
  "invalid-webhooks": (source, t, room) =>
    `${t.count} webhook(s) to source ${code(source)} could not be mapped and were quarantined (${breakdownText(t, room)}).`,
  "unknown-event": (source, t, room) =>
    `Source ${code(source)} received ${t.names.length + t.namesCut} event name(s) the relay does not know: ${listed(t.names.slice(0, room.names))}${andMore(namesCut(t, room))}. They are forwarded as unmapped tracks; Pendo may have added them.`,
  "delivery-failing": (source, t) =>
    `Segment has answered nothing but failures for source ${code(source)} since ${t.since} (last status ${t.lastStatus ?? "none: no answer"}). Events wait on the queue and are retried.`,
  "delivery-recovered": (source, t) =>
    `Segment delivers again for source ${code(source)} (failing since ${t.since}).`,
  "record-budget": (source, t) =>
    `Source ${code(source)} keeps ${megabytes(t.bytes?.used)} of its ${megabytes(t.bytes?.budget)} budget for quarantined webhooks and events too large to deliver (RECORD_BUDGET_BYTES). Past it, new records keep their row but not their bytes; nothing stored is deleted.`,
  "outage-started": (destination, t) =>
    `Destination ${code(destination)} has failed every batch since ${t.since} (last status ${t.lastStatus ?? "none: no answer"}): outage mode. Arriving batches are parked in R2 instead of spending retries, and one probe goes out per interval.`,
  "outage-drained": (destination, t) =>
    `Destination ${code(destination)} is back: every parked batch has been sent (outage since ${t.since}).`,
};

const megabytes = (bytes: number | undefined) => `${((bytes ?? 0) / 1_048_576).toFixed(1)} MB`;

const breakdownCut = (t: SafeTally, room: Room) =>
  t.breakdownAll - Math.min(room.breakdown, t.breakdown.length);
const namesCut = (t: SafeTally, room: Room) =>
  t.namesCut + t.names.length - Math.min(room.names, t.names.length);

function render(kind: AlertKind, source: string, t: SafeTally, room: Room, consoleUrl?: string) {
  const lines = [`[pendo-segment-relay] ${kind}: ${SUMMARY[kind](source, t, room)}`];
  const examples = t.examples.slice(0, room.examples);
  const moreExamples = t.examplesAll - examples.length;
  if (examples.length > 0) {
    lines.push(
      `Examples: ${examples.map((e) => `${code(e.event)} ${code(e.uniqueId)}`).join("; ")}${andMore(moreExamples)}`,
    );
  }
  if (t.held > 0) lines.push(`${t.held} of these were counted while alert sends failed.`);
  if (t.evicted > 0)
    lines.push(`${t.evicted} older entries gave way: the source's drift list is at its cap.`);
  if (consoleUrl) lines.push(`Console: ${consoleUrl}`);
  const alert: AlertBody["alert"] = {
    kind,
    source,
    count: t.count,
    since: t.since,
    examples,
    breakdown: Object.fromEntries(t.breakdown.slice(0, room.breakdown)),
  };
  if (moreExamples > 0) alert.moreExamples = moreExamples;
  const moreBreakdown = breakdownCut(t, room);
  if (moreBreakdown > 0) alert.moreBreakdown = moreBreakdown;
  if (t.name !== undefined) alert.name = t.name;
  if (kind === "unknown-event") {
    alert.names = t.names.slice(0, room.names);
    const more = namesCut(t, room);
    if (more > 0) alert.moreNames = more;
  }
  if (t.evicted > 0) alert.evicted = t.evicted;
  if (t.held > 0) alert.held = t.held;
  if (t.lastStatus !== undefined) alert.lastStatus = t.lastStatus;
  if (t.bytes) alert.bytes = t.bytes;
  if (t.parked) alert.parked = t.parked;
  if (consoleUrl) alert.console = consoleUrl;
  return { text: lines.join("\n"), alert };
}

const encoder = new TextEncoder();
const bodyBytes = (body: AlertBody) => encoder.encode(JSON.stringify(body)).length;

/**
 * The alert for a tally. Every name in it is untrusted (a sender chooses event names and
 * uniqueIds): each passes through `safeName`, lists are cut with "and N more", and the JSON body
 * stays within MAX_ALERT_BYTES whatever the tally holds.
 */
export function alertBody(kind: AlertKind, source: string, tally: AlertTally, publicUrl?: string): AlertBody {
  // The operator's own address, meant as a link: only Slack's three characters escaped.
  const consoleUrl = publicUrl ? slackEscaped(`${publicUrl}/console`) : undefined;
  const t = safeTally(tally);
  const room: Room = { examples: t.examples.length, names: t.names.length, breakdown: t.breakdown.length };
  let body = render(kind, safeName(source), t, room, consoleUrl);
  // At most 5 + 20 + 20 names of at most ~600 bytes each: a few dozen renders at worst.
  while (bodyBytes(body) > MAX_ALERT_BYTES) {
    if (room.breakdown > 1) room.breakdown--;
    else if (room.names > 1) room.names--;
    else if (room.examples > 0) room.examples--;
    else if (room.breakdown > 0) room.breakdown--;
    else if (room.names > 0) room.names--;
    else break;
    body = render(kind, safeName(source), t, room, consoleUrl);
  }
  return body;
}

/**
 * Standard Webhooks signing (standardwebhooks.com): the key is the base64 part of `whsec_…`, the
 * signed content `${id}.${timestamp}.${body}`, the header `v1,<base64 HMAC-SHA256>`.
 */
export async function signatureHeaders(secret: string, id: string, timestamp: number, body: string) {
  const raw = Uint8Array.from(atob(secret.slice("whsec_".length)), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, encoder.encode(`${id}.${timestamp}.${body}`)),
  );
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${btoa(String.fromCharCode(...mac))}`,
  };
}
