import { digestHex } from "../hash";

/**
 * Every destination that accepts Segment's /v1/batch format, and where each one's rules differ:
 * one table that drives the client (path, auth, headers), packing (size caps), the reading of a
 * 2xx answer, the messageId form, the local stand-in and the README's table of profiles.
 * Each number cites the destination's public source.
 */

export const DESTINATIONS = ["segment", "rudderstack", "jitsu", "customerio", "hightouch"] as const;
export type DestinationName = (typeof DESTINATIONS)[number];

/** One event a destination refused inside a 2xx answer. `messageId` as the destination names it. */
export interface RejectedEvent {
  messageId: string | undefined;
  detail: string;
}

/**
 * How a 2xx answer reads: everything accepted, some events refused (by messageId), or the whole
 * request refused although the status says success.
 */
export type SuccessReading =
  | { kind: "accepted" }
  | { kind: "partial"; rejected: RejectedEvent[] }
  | { kind: "refused"; detail: string };

export interface DestinationProfile {
  name: DestinationName;
  label: string;
  /** Base URL when none is configured; undefined: each customer has their own (a data plane). */
  defaultEndpoint: string | undefined;
  /** Other documented bases (regions), for the docs. */
  otherEndpoints: readonly string[];
  path: "/v1/batch";
  /** How the write key travels. */
  auth: "basic" | "x-write-key";
  /** Headers every request carries. */
  headers: Readonly<Record<string, string>>;
  /** The destination's own cap on one request, and what the relay packs to (headroom kept). */
  maxRequestBytes: number;
  packRequestBytes: number;
  maxRequestEvents: number;
  /** The destination's own cap on one event; the transform's 32 KB is the floor for all. */
  maxEventBytes: number;
  /** Ids the destination rewrites or cuts: the relay sends short ids it would keep as they are. */
  messageIds: "long" | "short";
  /** Whether one event without userId and anonymousId makes it refuse the whole batch. */
  refusesWholeBatch: boolean;
  /** Whether the success body is read at all (a plain "OK" tells nothing). */
  readsSuccessBody: boolean;
  /** Partial-failure form, for the docs. */
  partialFailure: string;
  /** The public source of these rules. */
  source: string;
}

const KB = 1024;
// analytics-node packs Segment batches to 480 KB for a 500 KB cap; the same 4 % headroom elsewhere.
const SEGMENT_CAPS = {
  maxRequestBytes: 500 * KB,
  packRequestBytes: 480 * KB,
  maxRequestEvents: 2_500,
  maxEventBytes: 32 * KB,
} as const;

/** Segment's rules, which the others copy except where their profile says otherwise. */
const SEGMENT_RULES = {
  path: "/v1/batch",
  auth: "basic",
  headers: {},
  ...SEGMENT_CAPS,
  messageIds: "long",
  refusesWholeBatch: false,
  readsSuccessBody: true,
} as const;

export const PROFILES: Readonly<Record<DestinationName, DestinationProfile>> = {
  segment: {
    name: "segment",
    label: "Segment",
    defaultEndpoint: "https://api.segment.io",
    otherEndpoints: ["https://events.eu1.segmentapis.com"],
    ...SEGMENT_RULES,
    partialFailure:
      "400 for a malformed batch (bisected); a 200 whose JSON says `success: false` or lists `errors` is not a delivery",
    source: "segment.com/docs/connections/sources/catalog/libraries/server/http-api",
  },
  rudderstack: {
    name: "rudderstack",
    label: "RudderStack",
    defaultEndpoint: undefined,
    otherEndpoints: [],
    path: "/v1/batch",
    auth: "basic",
    headers: {},
    // rudder-server gateway: 4,000 KB per request, else 413; no documented per-event cap below it.
    maxRequestBytes: 4_000 * KB,
    packRequestBytes: 3_840 * KB,
    maxRequestEvents: 2_500,
    maxEventBytes: 32 * KB,
    messageIds: "long",
    refusesWholeBatch: true,
    readsSuccessBody: false,
    partialFailure:
      "400 for the whole batch when one event lacks both userId and anonymousId (bisected to that event); success is plain text `OK`",
    source: "github.com/rudderlabs/rudder-server gateway/handle.go",
  },
  jitsu: {
    name: "jitsu",
    label: "Jitsu",
    defaultEndpoint: undefined,
    otherEndpoints: [],
    // Jitsu allows about 1 MB per event; the relay keeps Segment's caps, which Jitsu accepts.
    ...SEGMENT_RULES,
    auth: "x-write-key",
    messageIds: "short",
    partialFailure:
      'always 200: `{ok: false, errors: ["Message ID: <id>: <reason>"], okEvents}` names each refused event; ids outside `[A-Za-z0-9._-]` or over 64 characters are rewritten',
    source: "github.com/jitsucom/bulker ingest/router_batch_handler.go",
  },
  customerio: {
    name: "customerio",
    label: "Customer.io Data Pipelines",
    defaultEndpoint: "https://cdp.customer.io",
    otherEndpoints: ["https://cdp-eu.customer.io"],
    ...SEGMENT_RULES,
    // Without strict mode Customer.io answers 200 for everything, valid or not.
    headers: { "x-strict-mode": "1" },
    partialFailure: "`X-Strict-Mode: 1` turns silent drops into 400 with errors (bisected)",
    source: "docs.customer.io/integrations/api/cdp/ (Data Pipelines API, strict mode)",
  },
  hightouch: {
    name: "hightouch",
    label: "Hightouch Events",
    defaultEndpoint: "https://us-east-1.hightouch-events.com",
    otherEndpoints: [],
    ...SEGMENT_RULES,
    partialFailure: "as Segment",
    source: "hightouch.com/docs/events/api (HTTP API)",
  },
};

/** The request headers that carry the write key, as the profile's destination expects them. */
export function authHeaders(profile: DestinationProfile, writeKey: string): Record<string, string> {
  return profile.auth === "x-write-key"
    ? { "x-write-key": writeKey }
    : { authorization: `Basic ${btoa(`${writeKey}:`)}` };
}

/** What Jitsu keeps of a messageId as it is: 64 characters of [A-Za-z0-9._-]. */
export const SHORT_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The key of a short messageId: 40 hex characters of SHA-256(source:eventId). Deterministic, so a
 * redelivery gets the same id; `p.<key>.<call>` is at most 51 characters.
 */
export async function shortIdKey(source: string, eventId: string): Promise<string> {
  return (await digestHex("SHA-256", `${source}:${eventId}`)).slice(0, 40);
}

/** Reads a 2xx body by the profile's documented form. Unreadable or unknown bodies count as accepted. */
export function readSuccessBody(profile: DestinationProfile, body: string): SuccessReading {
  if (!profile.readsSuccessBody || body.trim() === "") return { kind: "accepted" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { kind: "accepted" };
  }
  if (typeof parsed !== "object" || parsed === null) return { kind: "accepted" };
  const answer = parsed as { ok?: unknown; success?: unknown; errors?: unknown; message?: unknown };
  const errors = Array.isArray(answer.errors) ? answer.errors : [];
  const failed = answer.ok === false || answer.success === false || errors.length > 0;
  if (!failed) return { kind: "accepted" };
  if (errors.length === 0) {
    return { kind: "refused", detail: typeof answer.message === "string" ? answer.message : body };
  }
  return { kind: "partial", rejected: errors.map(rejectedEvent) };
}

// Jitsu: "Message ID: <id>: <reason>". Others: {messageId, message} objects where given.
const JITSU_ERROR = /^Message ID: ([A-Za-z0-9._-]+): ([\s\S]*)$/;

function rejectedEvent(error: unknown): RejectedEvent {
  if (typeof error === "string") {
    const match = JITSU_ERROR.exec(error);
    return match
      ? { messageId: match[1], detail: match[2] ?? error }
      : { messageId: undefined, detail: error };
  }
  if (typeof error === "object" && error !== null) {
    const { messageId, message, error: text } = error as Record<string, unknown>;
    const detail =
      typeof message === "string" ? message : typeof text === "string" ? text : JSON.stringify(error);
    return { messageId: typeof messageId === "string" ? messageId : undefined, detail };
  }
  return { messageId: undefined, detail: JSON.stringify(error) };
}
