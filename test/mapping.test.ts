import { describe, expect, it } from "vitest";
import type { EventNaming, TrackEventMode } from "../src/config";
import { CATALOG } from "../src/pendo/catalog";
import { readWebhook } from "../src/pendo/intake";
import { transformWebhook } from "../src/pendo/transform";

interface FixtureCase {
  name: string;
  receivedAt: string;
  options?: { eventNames?: EventNaming; trackEvents?: TrackEventMode };
  input?: unknown;
  /** A raw body, for inputs a JSON file cannot hold as parsed values (integers past 2^53). */
  raw?: string;
  expected: unknown[];
}

// Adding an event family means adding a data file in src/pendo/fixtures, not a test.
const files = import.meta.glob<{ family: string; cases: FixtureCase[] }>("../src/pendo/fixtures/*.json", {
  eager: true,
  import: "default",
});
const families = Object.values(files);

describe.each(families.map((file) => [file.family, file.cases] as const))(
  "mapping fixtures: %s",
  (_family, cases) => {
    it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, fixture) => {
      const intake = readWebhook(fixture.raw ?? JSON.stringify(fixture.input));
      if (!intake.ok) throw new Error(`fixture input is invalid: ${JSON.stringify(intake.issues)}`);
      const result = transformWebhook(intake.webhook, {
        source: "default",
        eventNames: fixture.options?.eventNames ?? "pendo",
        trackEvents: fixture.options?.trackEvents ?? "wrapped",
        eventId: intake.webhook.uniqueId as string,
        receivedAt: Date.parse(fixture.receivedAt),
        warnings: intake.warnings,
        invalid: intake.invalid,
      });
      if (!result.ok) throw new Error(`transform refused the fixture: ${result.reason}`);
      expect(result.calls).toEqual(fixture.expected);
      // What is queued is exactly what is compared: the one-time serialization of those calls.
      expect(result.encoded.map((call) => JSON.parse(call.json))).toEqual(fixture.expected);
    });
  },
);

describe("fixture coverage", () => {
  it("has a fixture for every catalog family", () => {
    const covered = new Set(
      families.flatMap((file) =>
        file.cases.map(
          (c) =>
            ((c.input as { event?: string } | undefined)?.event ?? JSON.parse(c.raw ?? "{}").event) as string,
        ),
      ),
    );
    const familiesCovered = new Set(
      CATALOG.filter((entry) => covered.has(entry.name)).map((entry) => entry.family),
    );
    const allFamilies = new Set(CATALOG.map((entry) => entry.family));
    expect([...allFamilies].filter((family) => !familiesCovered.has(family))).toEqual([]);
  });

  it("lists the 39 Segment-catalog names and today's URL-webhook names", () => {
    const segmentCatalog = CATALOG.filter((entry) => entry.origin !== "url-webhook");
    expect(segmentCatalog).toHaveLength(39);
    const webhook = CATALOG.filter((entry) => entry.origin !== "segment-catalog").map((entry) => entry.name);
    for (const name of ["guideDisplayed", "pollDisplayed", "pollSubmitted", "npsDisplayed", "npsSubmitted"]) {
      expect(webhook).toContain(name);
    }
    expect(new Set(CATALOG.map((entry) => entry.name)).size).toBe(CATALOG.length);
  });
});
