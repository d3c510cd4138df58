import type { EventNaming, TrackEventMode } from "../config";
import {
  type EncodedCall,
  encodeCall,
  MAX_EVENT_BYTES,
  type SegmentCall,
  type SegmentContext,
  type SegmentTrack,
} from "../segment/calls";
import { RELAY_NAME, RELAY_VERSION } from "../version";
import { type CatalogEntry, catalogEntry } from "./catalog";
import { ENVELOPE_KEYS, type PendoWebhook } from "./envelope";
import { segmentIdentity } from "./identity";
import { segmentEventName } from "./names";
import { assignOwn, setOwn } from "./own";
import { eventTime } from "./time";
import { TRIM_STEPS } from "./trim";

export interface TransformOptions {
  /** Relay source name (the `:source` of the route, `default` for POST /pendo). */
  source: string;
  eventNames: EventNaming;
  trackEvents: TrackEventMode;
  /** Pendo's uniqueId, or a hash of the raw body when Pendo sent none. */
  eventId: string;
  /** The clock: when the relay received the webhook, in ms. */
  receivedAt: number;
  /**
   * The raw body held no non-ASCII character and no \u escape (readWebhook tells), so every call
   * is ASCII and its UTF-8 length is its length. Unset: lengths are measured.
   */
  asciiOnly?: boolean;
}

export type TransformResult =
  | { ok: true; entry: CatalogEntry | undefined; calls: SegmentCall[]; encoded: EncodedCall[] }
  | { ok: false; reason: "event-too-large"; callType: SegmentCall["type"]; bytes: number };

/** Segment dedups on messageId for ~24 h across workspaces, hence a relay-specific prefix. */
export function messageIdFor(source: string, eventId: string, type: SegmentCall["type"]): string {
  return `pendo:${source}:${eventId}:${type}`;
}

/** Pure: the Segment calls for one validated Pendo webhook. No I/O, no clock of its own. */
export function transformWebhook(webhook: PendoWebhook, options: TransformOptions): TransformResult {
  const entry = catalogEntry(webhook.event);
  const properties = { ...(webhook.properties ?? {}) };
  const time = eventTime(webhook.timestamp, options.receivedAt);
  const identity = segmentIdentity(webhook, options.source);
  const accountId = webhook.accountId?.trim() || undefined;

  const pendo: Record<string, unknown> = {
    event: webhook.event,
    eventId: options.eventId,
    source: options.source,
  };
  if (webhook.uniqueId) pendo.uniqueId = webhook.uniqueId;
  else pendo.eventIdFrom = "body-hash";
  if (webhook.app) pendo.app = webhook.app;
  if (webhook.subscription) pendo.subscription = webhook.subscription;
  if (webhook.visitorId && !webhook.visitorId.trim()) pendo.visitorId = webhook.visitorId;
  if (time.fallback) pendo.timestampFallback = time.fallback;
  if (!entry) pendo.unmapped = true;
  const extra = extraFields(webhook);
  if (extra) pendo.extra = extra;
  // The acting Pendo user of an admin event: top-level `user`, kept with the event.
  if (webhook.user !== undefined) properties.pendoUser = webhook.user;

  const context: SegmentContext = { library: { name: RELAY_NAME, version: RELAY_VERSION }, pendo };
  if (webhook.userAgent) context.userAgent = webhook.userAgent;
  if (accountId) context.groupId = accountId;

  const base = (type: SegmentCall["type"]) => ({
    messageId: messageIdFor(options.source, options.eventId, type),
    timestamp: time.iso,
    ...identity,
    context,
  });

  const track: SegmentTrack = {
    type: "track",
    event: segmentEventName(webhook.event, options.eventNames),
    properties,
    ...base("track"),
  };
  if (webhook.event === "trackEventReceived" && options.trackEvents === "unwrap")
    unwrapTrackEvent(track, pendo);

  const calls: SegmentCall[] = [track];
  for (const fanOut of entry?.fanOut ?? []) {
    if (fanOut === "identify") {
      calls.push({ type: "identify", traits: visitorTraits(webhook), ...base("identify") });
    } else if (accountId) {
      // An account event without an accountId cannot be a group call; its track still goes.
      calls.push({
        type: "group",
        groupId: accountId,
        traits: metadataTraits(webhook.properties),
        ...base("group"),
      });
    }
  }
  return fitToSegment(calls, entry, pendo, options.asciiOnly === true);
}

/** TRACK_EVENTS=unwrap: the Pendo track event itself becomes the Segment event. */
function unwrapTrackEvent(track: SegmentTrack, pendo: Record<string, unknown>): void {
  const { name, eventProperties, source, ...rest } = track.properties;
  if (typeof name !== "string" || name === "") return;
  track.event = name;
  track.properties = { ...(isObject(eventProperties) ? eventProperties : {}), source };
  if (Object.keys(rest).length > 0) pendo.properties = rest;
}

/**
 * Pendo groups visitor and account metadata by origin (agent, custom, salesforce, ...). Traits
 * are flat for destinations, so a `metadata` object of groups is flattened in that order; every
 * other property is a trait as sent.
 */
function metadataTraits(properties: PendoWebhook["properties"]): Record<string, unknown> {
  const { metadata, ...traits } = properties ?? {};
  if (!isObject(metadata)) return metadata === undefined ? traits : { ...traits, metadata };
  for (const group of Object.values(metadata)) {
    if (isObject(group)) assignOwn(traits, group);
  }
  return traits;
}

function visitorTraits(webhook: PendoWebhook): Record<string, unknown> {
  const traits = metadataTraits(webhook.properties);
  if (webhook.event === "visitorDoNotProcessUpdated")
    traits.doNotProcess = webhook.properties?.doNotProcess === true;
  return traits;
}

function extraFields(webhook: PendoWebhook): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  for (const key of Object.keys(webhook)) {
    if (ENVELOPE_KEYS.has(key)) continue;
    extra ??= {};
    setOwn(extra, key, webhook[key]);
  }
  return extra;
}

/** Serialize each call once; shrink documented bulky fields of the track if it is over 32 KB. */
function fitToSegment(
  calls: SegmentCall[],
  entry: CatalogEntry | undefined,
  pendo: Record<string, unknown>,
  asciiOnly: boolean,
): TransformResult {
  const encode = (call: SegmentCall) => encodeCall(call, asciiOnly);
  // Intake bounds nesting (MAX_DEPTH), so serializing cannot run out of stack here.
  const encoded = calls.map(encode);
  const [track] = calls as [SegmentTrack];
  const trimmed: string[] = [];
  for (const step of TRIM_STEPS) {
    if ((encoded[0] as EncodedCall).bytes <= MAX_EVENT_BYTES) break;
    if (!step.apply(track)) continue;
    trimmed.push(step.path);
    pendo.trimmed = trimmed;
    // context.pendo is shared: every call's encoding now records what was trimmed.
    for (let i = 0; i < calls.length; i++) encoded[i] = encode(calls[i] as SegmentCall);
  }
  const tooLarge = encoded.findIndex((call) => call.bytes > MAX_EVENT_BYTES);
  if (tooLarge >= 0) {
    return {
      ok: false,
      reason: "event-too-large",
      callType: (calls[tooLarge] as SegmentCall).type,
      bytes: (encoded[tooLarge] as EncodedCall).bytes,
    };
  }
  return { ok: true, entry, calls, encoded };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
