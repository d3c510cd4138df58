import { isJsonObject } from "../json";

/**
 * Bulky fields the relay may shrink, in order, when a track call exceeds Segment's 32 KB event
 * limit. Each step works on Pendo's `properties` as received, before `TRACK_EVENTS=unwrap`
 * reshapes them, so both modes trim alike. Listed in docs/mapping.md from this table; what was
 * trimmed is recorded in `context.pendo.trimmed`, so a warehouse row says it is incomplete.
 */
export const TRIM_STEPS: readonly {
  path: string;
  effect: string;
  apply: (properties: Record<string, unknown>) => boolean;
}[] = [
  {
    path: "properties.guideProperties.steps",
    effect: "replaced by properties.guideProperties.stepCount",
    apply: (properties) => {
      const guide = properties.guideProperties;
      if (!isJsonObject(guide) || !Array.isArray(guide.steps)) return false;
      const { steps, ...rest } = guide;
      properties.guideProperties = { ...rest, stepCount: steps.length };
      return true;
    },
  },
  {
    path: "properties.guideProperties",
    effect: "reduced to its id and name",
    apply: (properties) => {
      const guide = properties.guideProperties;
      if (!isJsonObject(guide)) return false;
      properties.guideProperties = { id: guide.id, name: guide.name };
      return true;
    },
  },
  {
    path: "properties.eventProperties",
    effect: "dropped (trackEventReceived; with TRACK_EVENTS=unwrap the event is sent with no properties)",
    apply: (properties) => {
      if (!("eventProperties" in properties)) return false;
      delete properties.eventProperties;
      return true;
    },
  },
];
