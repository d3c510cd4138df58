import type { EventNaming } from "../config";
import { catalogEntry, modernNameOf } from "./catalog";

// Words Segment's "Object Action" convention keeps upper-case.
const ACRONYMS: Readonly<Record<string, string>> = { nps: "NPS", url: "URL", api: "API", id: "ID" };

/** "npsSubmitted" -> "NPS Submitted", "visitorDoNotProcessUpdated" -> "Visitor Do Not Process Updated". */
export function titleCase(name: string): string {
  const words = name.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g) ?? [name];
  return words
    .map((word) => ACRONYMS[word.toLowerCase()] ?? word.charAt(0).toUpperCase() + word.slice(1))
    .join(" ");
}

/**
 * The Segment event name for a Pendo event name under EVENT_NAMES:
 * - pendo: as received;
 * - legacy: today's webhook names turned into the Segment catalog's (guideDisplayed -> guideSeen);
 * - segment: Segment's recommended Object Action Title Case, from the modern name, so that the
 *   catalog name and today's name of one event land in one warehouse table.
 */
export function segmentEventName(name: string, naming: EventNaming): string {
  switch (naming) {
    case "pendo":
      return name;
    case "legacy":
      return catalogEntry(name)?.legacyName ?? name;
    case "segment":
      return titleCase(modernNameOf(name));
  }
}
