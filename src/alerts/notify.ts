import type { Settings } from "../config";
import { digestHex } from "../hash";
import { isolateState } from "../kv/isolateState";
import { alertKey, KEY_PREFIX } from "../kv/keys";
import { capForJson } from "../kv/records";
import { log } from "../log";
import { DEFAULT_SOURCE, resolveSource } from "../sources";
import {
  type AlertExample,
  type AlertKind,
  type AlertTally,
  alertBody,
  mergeTallies,
  signatureHeaders,
  tallied,
} from "./alert";

/**
 * Raising alerts without slowing or blocking anything. Occurrences are tallied in this isolate's
 * memory; at most one alert per kind and source goes out per ALERT_INTERVAL_SECONDS (an unknown
 * event name: once per name per day), carrying the count of everything held back since the last.
 * Across isolates the limit is a KV key written once per alert sent (never per occurrence) and
 * read only when this isolate would send. Sending happens in `waitUntil`, with a short timeout; a
 * failed send is logged and its tally rides on the next alert, never retried in a loop.
 */

export interface AlertScope {
  kv: KVNamespace;
  settings: Settings;
  waitUntil: (promise: Promise<unknown>) => void;
  now: number;
}

export interface Occurrence {
  example?: AlertExample;
  /** Reasons, issue paths or statuses to count in the alert's breakdown. */
  keys?: readonly string[];
  name?: string;
  lastStatus?: number | null;
  /** When the condition began, if before now (delivery-failing). */
  since?: number;
}

const SEND_TIMEOUT_MS = 5_000;
const DAY_SECONDS = 86_400;

interface AlertState {
  tally?: AlertTally;
  nextAllowedAt: number;
  sending: boolean;
}

const stateOf = isolateState<AlertState>(() => ({ nextAllowedAt: 0, sending: false }));
const MAX_NAMED_STATES = 200;
const named = new Set<string>();

/** Counts one occurrence and, when the limit allows, sends the alert in the background. */
export function raiseAlert(
  scope: AlertScope,
  source: string,
  kind: AlertKind,
  occurrence: Occurrence = {},
): void {
  // A source no longer configured (or "unknown", for a malformed message) alerts the default URL.
  const url = (resolveSource(scope.settings, source) ?? resolveSource(scope.settings, DEFAULT_SOURCE))
    ?.alertWebhookUrl;
  if (!url) return;
  const id = `${source}\n${kind}\n${occurrence.name ?? ""}`;
  // One state per unknown event name: bounded, whatever names a sender invents.
  if (occurrence.name !== undefined && !named.has(id)) {
    if (named.size >= MAX_NAMED_STATES) return;
    named.add(id);
  }
  const state = stateOf(scope.kv, id);
  const tally = tallied(
    state.tally,
    occurrence.since ?? scope.now,
    occurrence.example,
    occurrence.keys ?? [],
  );
  if (occurrence.name !== undefined) tally.name = occurrence.name;
  if (occurrence.lastStatus !== undefined) tally.lastStatus = occurrence.lastStatus;
  state.tally = tally;
  if (state.sending || scope.now < state.nextAllowedAt) return;
  state.sending = true;
  scope.waitUntil(
    flush(scope, url, source, kind, occurrence.name, state)
      .catch((error) => log("error", "alert-failed", { kind, source, error: String(error) }))
      .finally(() => {
        state.sending = false;
      }),
  );
}

async function flush(
  scope: AlertScope,
  url: string,
  source: string,
  kind: AlertKind,
  name: string | undefined,
  state: AlertState,
): Promise<void> {
  const interval = kind === "unknown-event" ? DAY_SECONDS : scope.settings.ALERT_INTERVAL_SECONDS;
  const key = alertKey(
    source,
    kind,
    name === undefined ? undefined : (await digestHex("SHA-256", name)).slice(0, 32),
  );
  const last = await scope.kv.get<{ sentAt: number }>(key, "json");
  if (last && scope.now - last.sentAt < interval * 1000) {
    // Another isolate sent one: hold this tally until the interval is over.
    state.nextAllowedAt = last.sentAt + interval * 1000;
    return;
  }
  const tally = state.tally;
  if (!tally) return;
  state.tally = undefined;
  const body = alertBody(kind, source, tally, scope.settings.PUBLIC_URL);
  const text = JSON.stringify(body);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "pendo-segment-relay",
  };
  if (scope.settings.ALERT_SECRET) {
    const id = `alert_${crypto.randomUUID()}`;
    Object.assign(
      headers,
      await signatureHeaders(scope.settings.ALERT_SECRET, id, Math.floor(scope.now / 1000), text),
    );
  }
  let status: number | null = null;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: text,
      redirect: "manual",
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    status = response.status;
    await response.body?.cancel();
  } catch (error) {
    log("error", "alert-failed", { kind, source, count: tally.count, error: String(error) });
  }
  if (status === null || status < 200 || status >= 300) {
    if (status !== null) log("error", "alert-failed", { kind, source, count: tally.count, status });
    state.tally = mergeTallies(tally, state.tally);
    return;
  }
  state.nextAllowedAt = scope.now + interval * 1000;
  log("info", "alert", { kind, source, count: tally.count });
  const sent: SentAlert = {
    kind,
    source,
    count: tally.count,
    sentAt: scope.now,
    text: capForJson(body.text, 600),
  };
  await scope.kv
    .put(key, JSON.stringify(sent), { expirationTtl: interval, metadata: { ...sent, text: undefined } })
    .catch((error) => log("warn", "kv-write-failed", { kind, source, error: String(error) }));
}

/** What the `alert:` key of the last alert sent holds (its listing metadata: all but the text). */
export interface SentAlert {
  kind: AlertKind;
  source: string;
  count: number;
  sentAt: number;
  text?: string;
}

/** The alerts sent within their interval, newest first, from listing metadata alone. */
export async function recentAlerts(kv: KVNamespace): Promise<SentAlert[]> {
  const page = await kv.list<SentAlert>({ prefix: KEY_PREFIX.alert, limit: 1_000 });
  return page.keys.flatMap((key) => (key.metadata ? [key.metadata] : [])).sort((a, b) => b.sentAt - a.sentAt);
}
