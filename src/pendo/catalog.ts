/**
 * The event catalog: the one list of Pendo events the relay knows. Validation, the transform,
 * `docs/mapping.md` and the fixture test all read it; nothing else lists event names.
 *
 * Sources: Segment's catalog page for the Pendo source (39 names, 2019 edition) and Pendo's
 * "Webhooks" article (the names URL webhooks send today, 2020 on). Where Pendo renamed an event,
 * the webhook entry names its catalog counterpart in `legacyName`.
 */

export type EventFamily =
  | "visitor"
  | "account"
  | "track"
  | "page"
  | "feature"
  | "guide"
  | "poll"
  | "nps"
  | "goal"
  | "path"
  | "funnel"
  | "user"
  | "email";

/** Who an event is about: a visitor's action in the app, or a Pendo admin's change to settings. */
export type Subject = "visitor" | "admin";
/** Calls emitted besides the `track` every event gets. */
export type FanOut = "identify" | "group";
/** Where the name comes from: Segment's catalog, Pendo's URL webhooks, or both. */
export type Origin = "segment-catalog" | "url-webhook" | "both";

export interface CatalogEntry {
  name: string;
  family: EventFamily;
  subject: Subject;
  fanOut: readonly FanOut[];
  origin: Origin;
  /** For today's webhook names: the Segment-catalog name of the same event. */
  legacyName?: string;
  note?: string;
}

/** The event that sets or clears a visitor's do-not-process flag. */
export const DO_NOT_PROCESS_EVENT = "visitorDoNotProcessUpdated";

/**
 * The flag of a do-not-process event when it is recognisable (`true`/`false`, or those words as
 * strings); undefined otherwise, and the event is forwarded with the flag left as it was.
 */
export function doNotProcessFlag(
  properties: Record<string, unknown> | null | undefined,
): boolean | undefined {
  const value = properties?.doNotProcess;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  return undefined;
}

const visitor = (name: string, family: EventFamily, origin: Origin, extra: Partial<CatalogEntry> = {}) =>
  ({ name, family, subject: "visitor", fanOut: [], origin, ...extra }) as CatalogEntry;
const admin = (name: string, family: EventFamily) =>
  ({ name, family, subject: "admin", fanOut: [], origin: "segment-catalog" }) as CatalogEntry;
const crud = (object: string, family: EventFamily, verbs: readonly string[]) =>
  verbs.map((verb) => admin(`${object}${verb}`, family));

export const CATALOG: readonly CatalogEntry[] = [
  visitor("visitorCreated", "visitor", "both", { fanOut: ["identify"] }),
  visitor("visitorMetadataUpdated", "visitor", "segment-catalog", { fanOut: ["identify"] }),
  visitor(DO_NOT_PROCESS_EVENT, "visitor", "segment-catalog", {
    fanOut: ["identify"],
    note: "Sets or clears do-not-process; see Privacy in docs/mapping.md.",
  }),
  visitor("accountCreated", "account", "both", { fanOut: ["group"] }),
  visitor("accountMetadataUpdated", "account", "segment-catalog", { fanOut: ["group"] }),
  visitor("trackEventReceived", "track", "both", {
    note: "TRACK_EVENTS=unwrap emits properties.name as the event.",
  }),
  visitor("pageLoaded", "page", "url-webhook", { note: "Name not published by Pendo; assumed." }),
  visitor("featureClicked", "feature", "both"),
  visitor("guideSeen", "guide", "segment-catalog"),
  visitor("guideDisplayed", "guide", "url-webhook", { legacyName: "guideSeen" }),
  visitor("pollSeen", "poll", "segment-catalog"),
  visitor("pollDisplayed", "poll", "url-webhook", { legacyName: "pollSeen" }),
  visitor("pollSubmitted", "poll", "both"),
  visitor("NPSSeen", "nps", "segment-catalog"),
  visitor("NPSSubmitted", "nps", "segment-catalog"),
  visitor("npsDisplayed", "nps", "url-webhook", { legacyName: "NPSSeen" }),
  visitor("npsSubmitted", "nps", "url-webhook", { legacyName: "NPSSubmitted" }),
  visitor("emailUnsubscribed", "email", "url-webhook", {
    note: "Orchestrate email unsubscribe. Name not published by Pendo; assumed.",
  }),
  ...crud("page", "page", ["Tagged", "Updated", "Deleted"]),
  ...crud("feature", "feature", ["Tagged", "Updated", "Deleted"]),
  ...crud("goal", "goal", ["Created", "Updated", "Deleted", "StatusChanged"]),
  ...crud("NPS", "nps", ["Created", "Updated", "Deleted", "StatusChanged"]),
  ...crud("poll", "poll", ["Created", "Updated", "Deleted"]),
  ...crud("path", "path", ["Created", "Updated", "Deleted"]),
  ...crud("funnel", "funnel", ["Created", "Updated", "Deleted"]),
  ...crud("user", "user", ["Invited", "Added", "Updated", "Deleted"]),
];

/**
 * The top-level property keys of each family whose payload Pendo publishes (support.pendo.io,
 * "Example Webhook Responses"; NPS and poll answers as the URL-webhook article describes them).
 * A key outside these is drift: Pendo may have added a field the warehouse has no column for.
 * Families Pendo publishes nothing for are not watched (every key would be "new").
 */
export const KNOWN_PROPERTY_KEYS: Partial<Record<EventFamily, ReadonlySet<string>>> = {
  visitor: new Set(["browserName", "browserVersion", "sampleGroup", "metadata", "doNotProcess"]),
  account: new Set(["metadata"]),
  track: new Set(["name", "source", "eventProperties"]),
  guide: new Set(["guideId", "guideProperties", "guideStepId", "language"]),
  poll: new Set(["guideId", "guideProperties", "guideStepId", "language", "pollId", "pollResponse"]),
  nps: new Set(["guideId", "guideProperties", "guideStepId", "language", "nps"]),
};

/** Keys of `properties` the catalog does not know for this event's family (none if unwatched). */
export function unknownPropertyKeys(
  entry: CatalogEntry | undefined,
  properties: Record<string, unknown> | null | undefined,
): string[] {
  const known = entry && KNOWN_PROPERTY_KEYS[entry.family];
  if (!known || !properties) return [];
  return Object.keys(properties).filter((key) => !known.has(key));
}

const byName = new Map(CATALOG.map((entry) => [entry.name, entry]));
// The modern (URL-webhook) name of each renamed catalog event, for Segment-style naming.
const modernName = new Map(
  CATALOG.flatMap((entry) => (entry.legacyName ? [[entry.legacyName, entry.name] as const] : [])),
);

export function catalogEntry(name: string): CatalogEntry | undefined {
  return byName.get(name);
}

export function modernNameOf(name: string): string {
  return modernName.get(name) ?? name;
}
