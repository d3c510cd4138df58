import type { EventNaming, TrackEventMode } from "../config";
import {
  type EncodedCall,
  encodeCall,
  MAX_EVENT_BYTES,
  type SegmentCall,
  type SegmentContext,
  type SegmentTrack,
} from "../destination/calls";
import type { Issue } from "../issues";
import { isJsonObject } from "../json";
import { RELAY_NAME, RELAY_VERSION } from "../version";
import { type CatalogEntry, catalogEntry, DO_NOT_PROCESS_EVENT, doNotProcessFlag } from "./catalog";
import { ENVELOPE_KEYS, type PendoWebhook } from "./envelope";
import { segmentIdentity, visitorOf } from "./identity";
import { segmentEventName } from "./names";
import { setOwn } from "./own";
import { eventTime } from "./time";
import { TRIM_STEPS } from "./trim";

export interface TransformOptions {
  /** Relay source name (the `:source` of the route, `default` for POST /pendo). */
  source: string;
  eventNames: EventNaming;
  trackEvents: TrackEventMode;
  /** Pendo's uniqueId, or a hash of the raw body when Pendo sent none. */
  eventId: string;
  /**
   * Set for a destination that cuts long messageIds (Jitsu): ids are then `p.<idKey>.<call>`,
   * where idKey is `shortIdKey(source, eventId)`. Unset: `pendo:<source>:<eventId>:<call>`.
   */
  idKey?: string;
  /** The clock: when the relay received the webhook, in ms. */
  receivedAt: number;
  /**
   * The raw body held no non-ASCII character and no \u escape (readWebhook tells), so every call
   * is ASCII and its UTF-8 length is its length. Unset: lengths are measured.
   */
  asciiOnly?: boolean;
  /** Doubts intake already found; the transform adds its own. */
  warnings?: readonly Issue[];
  /** Values intake moved out of the webhook because their type was unusable. */
  invalid?: Record<string, unknown> | undefined;
}

export type TransformResult =
  | {
      ok: true;
      entry: CatalogEntry | undefined;
      calls: SegmentCall[];
      encoded: EncodedCall[];
      warnings: Issue[];
    }
  | { ok: false; reason: "event-too-large"; callType: SegmentCall["type"]; bytes: number };

/**
 * Segment dedups on messageId for ~24 h across workspaces, hence a relay-specific prefix. With an
 * `idKey` (a destination that keeps only 64 characters of [A-Za-z0-9._-]), the short form: at most
 * 51 characters, still distinct per call and the same on every redelivery; the uniqueId stays
 * findable in `context.pendo.eventId` and in the dead letter.
 */
export function messageIdFor(
  source: string,
  eventId: string,
  type: SegmentCall["type"],
  idKey?: string,
): string {
  return idKey === undefined ? `pendo:${source}:${eventId}:${type}` : `p.${idKey}.${type}`;
}

/**
 * Pure: the Segment calls for one checked Pendo webhook. No I/O, no clock of its own. Whatever it
 * cannot map as Pendo documents it is still forwarded, and listed in `context.pendo.warnings`.
 */
export function transformWebhook(webhook: PendoWebhook, options: TransformOptions): TransformResult {
  const entry = catalogEntry(webhook.event);
  const warnings: Issue[] = [...(options.warnings ?? [])];
  // Pendo's properties as they are: a copy is made only to add pendoUser, or to trim (below).
  const received = webhook.properties ?? {};
  const properties: Record<string, unknown> = webhook.user === undefined ? received : { ...received };
  const time = eventTime(webhook.timestamp, options.receivedAt);
  const visitorId = visitorOf(webhook);
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
  if (webhook.visitorId && !visitorId) pendo.visitorId = webhook.visitorId;
  if (time.fallback) pendo.timestampFallback = time.fallback;
  if (!entry) pendo.unmapped = true;
  const extra = extraFields(webhook);
  if (extra) pendo.extra = extra;
  if (options.invalid) pendo.invalid = options.invalid;
  // The acting Pendo user of an admin event: top-level `user`, kept with the event.
  if (webhook.user !== undefined) properties.pendoUser = webhook.user;

  const context: SegmentContext = { library: { name: RELAY_NAME, version: RELAY_VERSION }, pendo };
  if (webhook.userAgent) context.userAgent = webhook.userAgent;
  if (accountId) context.groupId = accountId;

  const identity = segmentIdentity(webhook, options.source);
  const base = (type: SegmentCall["type"]) => ({
    messageId: messageIdFor(options.source, options.eventId, type, options.idKey),
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
  const unwrap = webhook.event === "trackEventReceived" && options.trackEvents === "unwrap";
  warnings.push(...shapeTrack(track, properties, unwrap, pendo));

  const calls: SegmentCall[] = [track];
  for (const fanOut of entry?.fanOut ?? []) {
    if (fanOut === "identify") {
      // Without the visitor it describes, an identify would merge traits into a shared profile.
      if (!visitorId) warnings.push({ path: "visitorId", message: "missing: no identify was sent" });
      else calls.push({ type: "identify", traits: visitorTraits(webhook, warnings), ...base("identify") });
    } else if (!accountId) {
      warnings.push({ path: "accountId", message: "missing: no group was sent" });
    } else {
      const traits = metadataTraits(webhook.properties, warnings);
      calls.push({ type: "group", groupId: accountId, traits, ...base("group") });
    }
  }
  if (warnings.length > 0) pendo.warnings = warnings;
  return fitToSegment(calls, properties, unwrap, entry, pendo, warnings, options.asciiOnly === true);
}

/**
 * The track's properties from Pendo's: as received, or with TRACK_EVENTS=unwrap the Pendo track
 * event itself (its name, its own properties). A customer property wins over Pendo's of the same
 * name; Pendo's other properties go to `context.pendo.properties`. Returns its doubts.
 */
function shapeTrack(
  track: SegmentTrack,
  properties: Record<string, unknown>,
  unwrap: boolean,
  pendo: Record<string, unknown>,
): Issue[] {
  track.properties = properties;
  if (!unwrap) return [];
  const { name, eventProperties, source, ...rest } = properties;
  if (typeof name !== "string" || name.trim() === "") {
    return [
      { path: "properties.name", message: "missing or not a string: sent wrapped, as trackEventReceived" },
    ];
  }
  const warnings: Issue[] = [];
  let own: Record<string, unknown> = {};
  if (isJsonObject(eventProperties)) own = eventProperties;
  else if (eventProperties !== undefined && eventProperties !== null) {
    rest.eventProperties = eventProperties;
    warnings.push({
      path: "properties.eventProperties",
      message: "not a JSON object: kept in context.pendo.properties",
    });
  }
  const unwrapped: Record<string, unknown> = {};
  if (source !== undefined) {
    if (Object.hasOwn(own, "source")) rest.source = source;
    else unwrapped.source = source;
  }
  for (const key of Object.keys(own)) setOwn(unwrapped, key, own[key]);
  track.event = name;
  track.properties = unwrapped;
  if (Object.keys(rest).length > 0) pendo.properties = rest;
  else delete pendo.properties;
  return warnings;
}

/**
 * Pendo groups visitor and account metadata by origin (agent, custom, salesforce, ...). Traits
 * are flat for destinations, so a `metadata` object of groups is flattened in order. Nothing is
 * lost: a key an earlier trait already holds with another value is sent as `<group>_<key>`, and a
 * group that is not an object as the trait `<group>`; each such case is a warning.
 */
function metadataTraits(properties: PendoWebhook["properties"], warnings: Issue[]): Record<string, unknown> {
  const { metadata, ...traits } = properties ?? {};
  if (metadata === undefined) return traits;
  if (!isJsonObject(metadata)) {
    traits.metadata = metadata;
    return traits;
  }
  for (const group of Object.keys(metadata)) {
    const values = metadata[group];
    if (!isJsonObject(values)) {
      const name = place(traits, group, values, `metadata_${group}`);
      warnings.push({
        path: `properties.metadata.${group}`,
        message: `not an object: sent as the trait "${name}"`,
      });
      continue;
    }
    for (const key of Object.keys(values)) {
      const name = place(traits, key, values[key], `${group}_${key}`);
      if (name !== key) {
        warnings.push({
          path: `properties.metadata.${group}.${key}`,
          message: `an earlier trait "${key}" holds another value: sent as "${name}"`,
        });
      }
    }
  }
  return traits;
}

/** Sets `key`, or `alias` (then `alias_2`, ...) when `key` already holds a different value. */
function place(traits: Record<string, unknown>, key: string, value: unknown, alias: string): string {
  let name = key;
  for (let n = 1; Object.hasOwn(traits, name) && !sameValue(traits[name], value); n++) {
    name = n === 1 ? alias : `${alias}_${n}`;
  }
  setOwn(traits, name, value);
  return name;
}

function sameValue(a: unknown, b: unknown): boolean {
  return (
    a === b || (typeof a === "object" && typeof b === "object" && JSON.stringify(a) === JSON.stringify(b))
  );
}

function visitorTraits(webhook: PendoWebhook, warnings: Issue[]): Record<string, unknown> {
  const traits = metadataTraits(webhook.properties, warnings);
  if (webhook.event === DO_NOT_PROCESS_EVENT) {
    const flag = doNotProcessFlag(webhook.properties);
    if (flag === undefined) {
      warnings.push({
        path: "properties.doNotProcess",
        message: "not true or false: forwarded, and the visitor's flag was left as it was",
      });
    } else traits.doNotProcess = flag;
  }
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
  properties: Record<string, unknown>,
  unwrap: boolean,
  entry: CatalogEntry | undefined,
  pendo: Record<string, unknown>,
  warnings: Issue[],
  asciiOnly: boolean,
): TransformResult {
  const encode = (call: SegmentCall) => encodeCall(call, asciiOnly);
  // Intake bounds nesting (MAX_DEPTH), so serializing cannot run out of stack here.
  const encoded = calls.map(encode);
  const [track] = calls as [SegmentTrack];
  const trimmed: string[] = [];
  // Trimming replaces fields: on a copy, so the webhook stays as received and the transform pure.
  const trimmable = (encoded[0] as EncodedCall).bytes > MAX_EVENT_BYTES ? { ...properties } : properties;
  for (const step of TRIM_STEPS) {
    if ((encoded[0] as EncodedCall).bytes <= MAX_EVENT_BYTES) break;
    if (!step.apply(trimmable)) continue;
    trimmed.push(step.path);
    pendo.trimmed = trimmed;
    shapeTrack(track, trimmable, unwrap, pendo);
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
  return { ok: true, entry, calls, encoded, warnings };
}
