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
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

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
  /** unknown-event: the new names (the renderer caps the list). */
  names?: string[];
  /** Names the caller already left out. */
  moreNames?: number;
  /** Drift entries that gave way to newer ones since the last alert. */
  evicted?: number;
  /** Occurrences counted while sends failed. */
  held?: number;
}

export const MAX_EXAMPLES = 5;

export interface AlertBody {
  text: string;
  alert: {
    kind: AlertKind;
    source: string;
    count: number;
    since: string;
    examples: AlertExample[];
    breakdown: Record<string, number>;
    name?: string;
    lastStatus?: number | null;
    console?: string;
  };
}

const breakdownText = (breakdown: Record<string, number>) =>
  Object.entries(breakdown)
    .sort((a, b) => b[1] - a[1])
    .map(([key, count]) => `${key} ×${count}`)
    .join(", ");

const SUMMARY: Record<AlertKind, (source: string, tally: AlertTally) => string> = {
  "dead-letters": (source, t) =>
    `${t.count} event(s) of source "${source}" could not be delivered and were kept as dead letters (${breakdownText(t.breakdown)}). Replay them once the cause is fixed.`,
  "invalid-webhooks": (source, t) =>
    `${t.count} webhook(s) to source "${source}" could not be mapped and were quarantined (${breakdownText(t.breakdown)}).`,
  "unknown-event": (source, t) =>
    `Source "${source}" received ${t.count} event name(s) the relay does not know: ${(t.names ?? []).join(", ")}${t.moreNames ? ` (and ${t.moreNames} more)` : ""}. They are forwarded as unmapped tracks; Pendo may have added them.`,
  "delivery-failing": (source, t) =>
    `Segment has answered nothing but failures for source "${source}" since ${new Date(t.since).toISOString()} (last status ${t.lastStatus ?? "none: no answer"}). Events wait on the queue and are retried.`,
  "delivery-recovered": (source, t) =>
    `Segment delivers again for source "${source}" (failing since ${new Date(t.since).toISOString()}).`,
};

export function alertBody(kind: AlertKind, source: string, tally: AlertTally, publicUrl?: string): AlertBody {
  const consoleUrl = publicUrl ? `${publicUrl}/console` : undefined;
  const lines = [`[pendo-segment-relay] ${kind}: ${SUMMARY[kind](source, tally)}`];
  if (tally.examples.length > 0) {
    lines.push(`Examples: ${tally.examples.map((e) => `${e.event} ${e.uniqueId}`).join("; ")}`);
  }
  if (consoleUrl) lines.push(`Console: ${consoleUrl}`);
  const alert: AlertBody["alert"] = {
    kind,
    source,
    count: tally.count,
    since: new Date(tally.since).toISOString(),
    examples: tally.examples,
    breakdown: tally.breakdown,
  };
  if (tally.name !== undefined) alert.name = tally.name;
  if (tally.lastStatus !== undefined) alert.lastStatus = tally.lastStatus;
  if (consoleUrl) alert.console = consoleUrl;
  return { text: lines.join("\n"), alert };
}

/** Adds one occurrence to a tally (or starts one). */
export function tallied(
  tally: AlertTally | undefined,
  now: number,
  example: AlertExample | undefined,
  keys: readonly string[],
): AlertTally {
  const next: AlertTally = tally ?? { count: 0, since: now, examples: [], breakdown: {} };
  next.count++;
  if (example && next.examples.length < MAX_EXAMPLES) next.examples.push(example);
  for (const key of keys) next.breakdown[key] = (next.breakdown[key] ?? 0) + 1;
  return next;
}

/** Two tallies as one: an alert that could not be sent is counted in the next. */
export function mergeTallies(older: AlertTally, newer: AlertTally | undefined): AlertTally {
  if (!newer) return older;
  const breakdown = { ...older.breakdown };
  for (const [key, count] of Object.entries(newer.breakdown)) breakdown[key] = (breakdown[key] ?? 0) + count;
  return {
    ...newer,
    count: older.count + newer.count,
    since: Math.min(older.since, newer.since),
    examples: [...older.examples, ...newer.examples].slice(0, MAX_EXAMPLES),
    breakdown,
  };
}

const encoder = new TextEncoder();

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
