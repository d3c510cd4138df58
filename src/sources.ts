import type { EventNaming, Settings, TrackEventMode } from "./config";
import { type DestinationName, PROFILES } from "./destination/profiles";
import type { Issue } from "./issues";

/**
 * A relay source: where one Pendo webhook's events go and how they are named. `POST /pendo` is
 * the `default` source, built from the single-source settings.
 */
export interface Source {
  name: string;
  tokens: readonly string[];
  writeKey: string | undefined;
  destination: DestinationName;
  /** Base URL; undefined when neither the settings nor the profile give one (RudderStack, Jitsu). */
  endpoint: string | undefined;
  eventNames: EventNaming;
  trackEvents: TrackEventMode;
  /** Where this source's alerts go; undefined: none. */
  alertWebhookUrl: string | undefined;
}

export const DEFAULT_SOURCE = "default";

export function sourceNames(settings: Settings): string[] {
  return [DEFAULT_SOURCE, ...Object.keys(settings.SOURCES ?? {})];
}

// Sources resolved once per settings object (so once per isolate), not once per request or per
// queue message. Only configured sources are kept: senders cannot grow this with invented names.
const resolved = new WeakMap<Settings, Map<string, Source>>();

/**
 * `default` is built from the single-source settings; any other name must be a key of SOURCES,
 * whose unset options fall back to the single-source ones. A source accepts only its own tokens.
 */
export function resolveSource(settings: Settings, name: string): Source | undefined {
  let sources = resolved.get(settings);
  if (!sources) {
    sources = new Map();
    resolved.set(settings, sources);
  }
  let source = sources.get(name);
  if (!source) {
    source = buildSource(settings, name);
    if (source) sources.set(name, source);
  }
  return source;
}

function buildSource(settings: Settings, name: string): Source | undefined {
  if (name !== DEFAULT_SOURCE) {
    const named = Object.hasOwn(settings.SOURCES ?? {}, name) ? settings.SOURCES?.[name] : undefined;
    if (!named) return undefined;
    const destination = named.destination ?? settings.DESTINATION;
    return {
      name,
      tokens: named.tokens,
      writeKey: named.writeKey,
      destination,
      // A source that names its own destination does not inherit another destination's URL.
      endpoint:
        named.endpoint ??
        (named.destination && named.destination !== settings.DESTINATION
          ? PROFILES[destination].defaultEndpoint
          : globalEndpoint(settings)),
      eventNames: named.eventNames ?? settings.EVENT_NAMES,
      trackEvents: named.trackEvents ?? settings.TRACK_EVENTS,
      alertWebhookUrl: named.alertWebhookUrl ?? settings.ALERT_WEBHOOK_URL,
    };
  }
  return {
    name,
    tokens: settings.WEBHOOK_TOKEN ?? [],
    writeKey: settings.SEGMENT_WRITE_KEY,
    destination: settings.DESTINATION,
    endpoint: globalEndpoint(settings),
    eventNames: settings.EVENT_NAMES,
    trackEvents: settings.TRACK_EVENTS,
    alertWebhookUrl: settings.ALERT_WEBHOOK_URL,
  };
}

/**
 * What a source lacks before its events can be delivered, each issue naming the setting to set
 * (never a value). The edge refuses the source's webhooks with these, 503 so the sender retries,
 * rather than queue events nothing can send; /health reports them.
 */
export function unconfigured(source: Source): Issue[] {
  const named = source.name !== DEFAULT_SOURCE;
  const issues: Issue[] = [];
  // A named source's tokens and write key are required by the SOURCES schema.
  if (source.tokens.length === 0) issues.push({ path: "WEBHOOK_TOKEN", message: "is not set" });
  if (!source.writeKey) issues.push({ path: "SEGMENT_WRITE_KEY", message: "is not set" });
  if (!source.endpoint)
    issues.push({
      path: named ? `SOURCES.${source.name}.endpoint` : "DESTINATION_URL",
      message: `is not set, and ${source.destination} has no default endpoint`,
    });
  return issues;
}

/** DESTINATION_URL, or its older name SEGMENT_ENDPOINT, or the global profile's default. */
function globalEndpoint(settings: Settings): string | undefined {
  return (
    settings.DESTINATION_URL ?? settings.SEGMENT_ENDPOINT ?? PROFILES[settings.DESTINATION].defaultEndpoint
  );
}
