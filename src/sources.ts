import type { EventNaming, Settings, TrackEventMode } from "./config";

/**
 * A relay source: where one Pendo webhook's events go and how they are named. `POST /pendo` is
 * the `default` source, built from the single-source settings.
 */
export interface Source {
  name: string;
  tokens: readonly string[];
  writeKey: string | undefined;
  endpoint: string;
  eventNames: EventNaming;
  trackEvents: TrackEventMode;
}

export const DEFAULT_SOURCE = "default";

export function resolveSource(settings: Settings, name: string): Source | undefined {
  if (name !== DEFAULT_SOURCE) return undefined;
  return {
    name,
    tokens: settings.WEBHOOK_TOKEN ?? [],
    writeKey: settings.SEGMENT_WRITE_KEY,
    endpoint: settings.SEGMENT_ENDPOINT,
    eventNames: settings.EVENT_NAMES,
    trackEvents: settings.TRACK_EVENTS,
  };
}
