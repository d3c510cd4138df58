import type { SegmentTrack } from "../segment/calls";

/**
 * Bulky fields the relay may shrink, in order, when a track call exceeds Segment's 32 KB event
 * limit. Listed in docs/mapping.md from this table; what was trimmed is recorded in
 * `context.pendo.trimmed`, so a warehouse row says it is incomplete.
 */
export const TRIM_STEPS: readonly {
  path: string;
  effect: string;
  apply: (track: SegmentTrack) => boolean;
}[] = [
  {
    path: "properties.guideProperties.steps",
    effect: "replaced by properties.guideProperties.stepCount",
    apply: (track) => {
      const guide = asObject(track.properties.guideProperties);
      if (!guide || !Array.isArray(guide.steps)) return false;
      const { steps, ...rest } = guide;
      track.properties.guideProperties = { ...rest, stepCount: steps.length };
      return true;
    },
  },
  {
    path: "properties.guideProperties",
    effect: "reduced to its id and name",
    apply: (track) => {
      const guide = asObject(track.properties.guideProperties);
      if (!guide) return false;
      track.properties.guideProperties = { id: guide.id, name: guide.name };
      return true;
    },
  },
  {
    path: "properties.eventProperties",
    effect: "dropped (trackEventReceived with TRACK_EVENTS=wrapped)",
    apply: (track) => {
      if (!("eventProperties" in track.properties)) return false;
      delete track.properties.eventProperties;
      return true;
    },
  },
];

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
