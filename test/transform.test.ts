import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_EVENT_BYTES, utf8Length } from "../src/destination/calls";
import { CATALOG } from "../src/pendo/catalog";
import { readWebhook } from "../src/pendo/intake";
import { titleCase } from "../src/pendo/names";
import { type TransformOptions, transformWebhook } from "../src/pendo/transform";
import { PUBLISHED, withUniqueId } from "./fixtures";

const RECEIVED = Date.parse("2026-11-28T12:00:00.000Z");
const options = (overrides: Partial<TransformOptions> = {}): TransformOptions => ({
  source: "default",
  eventNames: "pendo",
  trackEvents: "wrapped",
  eventId: "f9610795860d89fe29491846fe297bcc922e460b",
  receivedAt: RECEIVED,
  ...overrides,
});

function transform(webhook: object, overrides: Partial<TransformOptions> = {}) {
  const intake = readWebhook(JSON.stringify(webhook));
  if (!intake.ok) throw new Error(JSON.stringify(intake.issues));
  return transformWebhook(intake.webhook, options(overrides));
}

describe("size", () => {
  it("trims guide steps first when a track is over 32 KB, and records it", () => {
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    const guide = webhook.properties.guideProperties as { steps: unknown[] };
    guide.steps = Array.from({ length: 400 }, () => ({ ...(guide.steps[0] as object) }));
    const result = transform(webhook);
    if (!result.ok) throw new Error("expected the trimmed event to fit");
    const track = JSON.parse(result.encoded[0]?.json as string);
    expect(track.properties.guideProperties.stepCount).toBe(400);
    expect(track.properties.guideProperties.steps).toBeUndefined();
    expect(track.properties.guideProperties.name).toBe("Poll 1 - Test");
    expect(track.context.pendo.trimmed).toEqual(["properties.guideProperties.steps"]);
    expect(result.encoded[0]?.bytes).toBeLessThanOrEqual(MAX_EVENT_BYTES);
  });

  it.each(["wrapped", "unwrap"] as const)(
    "trims an oversized track event alike in %s mode",
    (trackEvents) => {
      const webhook = withUniqueId(PUBLISHED.trackEventReceived);
      (webhook.properties as Record<string, unknown>).eventProperties = { notes: "n".repeat(40_000) };
      const result = transform(webhook, { trackEvents });
      if (!result.ok) throw new Error("expected the trimmed event to fit");
      const track = JSON.parse(result.encoded[0]?.json as string);
      expect(track.context.pendo.trimmed).toEqual(["properties.eventProperties"]);
      expect(JSON.stringify(track.properties)).not.toContain("nnnn");
      expect(track.event).toBe(trackEvents === "unwrap" ? "Account Upgraded" : "trackEventReceived");
    },
  );

  it("refuses an event still over 32 KB after trimming, naming the call", () => {
    const webhook = withUniqueId(PUBLISHED.visitorCreated);
    (webhook.properties as Record<string, unknown>).bio = "b".repeat(40_000);
    const result = transform(webhook);
    expect(result).toMatchObject({ ok: false, reason: "event-too-large", callType: "track" });
  });

  it("counts exact UTF-8 bytes whether the body is ASCII, raw UTF-8 or \\u-escaped", async () => {
    const { prepareEvent } = await import("../src/intake/prepare");
    const source = {
      name: "default",
      tokens: [],
      writeKey: "k",
      destination: "segment",
      endpoint: "",
      eventNames: "pendo",
      trackEvents: "wrapped",
      alertWebhookUrl: undefined,
    } as const;
    const base = { ...PUBLISHED.guideDisplayed, uniqueId: "f9610795860d89fe29491846fe297bcc922e460b" };
    for (const text of [
      JSON.stringify(base),
      JSON.stringify({ ...base, visitorId: "Zoë 😀" }),
      JSON.stringify(base).replace('"Webhook Visitor"', '"Zo\\u00eb"'),
    ]) {
      const prepared = await prepareEvent(text, source, RECEIVED);
      if (!prepared.ok) throw new Error("expected a valid event");
      const measured = prepared.message.calls.reduce(
        (sum, call) => sum + new TextEncoder().encode(call).length,
        0,
      );
      expect(prepared.message.bytes).toBe(measured);
    }
  });

  it("measures UTF-8 bytes, not UTF-16 units", () => {
    for (const text of ["abc", "é", "€", "😀", "a\u{10FFFF}b", "\ud800", "\udc00x"]) {
      const wellFormed = JSON.stringify(text); // JSON escapes lone surrogates
      expect(utf8Length(wellFormed)).toBe(new TextEncoder().encode(wellFormed).length);
    }
    expect(utf8Length("\ud800")).toBe(new TextEncoder().encode("\ud800").length);
  });
});

describe("names", () => {
  it("title-cases camelCase and acronyms the way Segment recommends", () => {
    expect(titleCase("npsSubmitted")).toBe("NPS Submitted");
    expect(titleCase("NPSSubmitted")).toBe("NPS Submitted");
    expect(titleCase("visitorDoNotProcessUpdated")).toBe("Visitor Do Not Process Updated");
    expect(titleCase("my_custom-event")).toBe("My Custom Event");
  });

  it("gives every catalog event a distinct Segment name per family alias only", () => {
    const names = new Map<string, string[]>();
    for (const entry of CATALOG) {
      const webhook = { ...withUniqueId(PUBLISHED.guideDisplayed), event: entry.name };
      const result = transform(webhook, { eventNames: "segment" });
      if (!result.ok) throw new Error(entry.name);
      const name = (result.calls[0] as { event: string }).event;
      names.set(name, [...(names.get(name) ?? []), entry.name]);
    }
    // Only a catalog name and its webhook rename share a Segment name.
    for (const [, sources] of names) {
      if (sources.length > 1)
        expect(CATALOG.some((e) => e.legacyName && sources.includes(e.legacyName))).toBe(true);
    }
  });
});

// Generated envelopes: any event name, visitor, time, properties Pendo could plausibly send.
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const envelope = fc.record(
  {
    event: fc.oneof(
      fc.constantFrom(...CATALOG.map((entry) => entry.name)),
      fc.string({ minLength: 1, maxLength: 40 }),
    ),
    visitorId: fc.option(fc.oneof(fc.string({ maxLength: 60 }), fc.constant("_PENDO_T_abc")), {
      nil: undefined,
    }),
    accountId: fc.option(fc.string({ maxLength: 60 }), { nil: undefined }),
    timestamp: fc.option(
      fc.oneof(fc.integer({ min: -1e13, max: 4e12 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
      {
        nil: undefined,
      },
    ),
    properties: fc.dictionary(fc.string({ maxLength: 20 }), jsonValue, { maxKeys: 8 }),
    subscription: fc.option(fc.record({ id: fc.integer(), name: fc.string({ maxLength: 20 }) }), {
      nil: undefined,
    }),
    app: fc.option(fc.record({ id: fc.integer(), name: fc.string({ maxLength: 20 }) }), { nil: undefined }),
    user: fc.option(fc.record({ username: fc.string({ maxLength: 20 }) }), { nil: undefined }),
    extra: fc.option(jsonValue, { nil: undefined }),
  },
  { requiredKeys: ["event", "properties"] },
);
const naming = fc.record({
  eventNames: fc.constantFrom("pendo" as const, "legacy" as const, "segment" as const),
  trackEvents: fc.constantFrom("wrapped" as const, "unwrap" as const),
});

describe("transform properties (fast-check)", () => {
  it("never throws, always identifies, is deterministic and stays under 32 KB", () => {
    fc.assert(
      fc.property(envelope, naming, (generated, modes) => {
        const intake = readWebhook(JSON.stringify(generated));
        if (!intake.ok) return; // refused at the edge with a 400: not the transform's input
        const first = transformWebhook(intake.webhook, options(modes));
        const second = transformWebhook(intake.webhook, options(modes));
        expect(second).toEqual(first);
        if (!first.ok) {
          expect(first.reason).toBe("event-too-large");
          return;
        }
        const ids = first.calls.map((call) => call.messageId);
        expect(new Set(ids).size).toBe(ids.length);
        for (const [index, call] of first.calls.entries()) {
          expect(Boolean(call.userId) || Boolean(call.anonymousId)).toBe(true);
          expect(call.messageId.length).toBeLessThan(100);
          expect(Number.isNaN(Date.parse(call.timestamp))).toBe(false);
          expect(first.encoded[index]?.bytes).toBeLessThanOrEqual(MAX_EVENT_BYTES);
          if (call.type === "track") expect(call.event.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("never emits a time before 2000 or more than a day past receipt", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (timestamp) => {
        const result = transform({ ...PUBLISHED.guideDisplayed, timestamp });
        if (!result.ok) throw new Error("unexpected");
        const time = Date.parse(result.calls[0]?.timestamp as string);
        expect(time).toBeGreaterThanOrEqual(Date.UTC(2000, 0, 1));
        expect(time).toBeLessThanOrEqual(RECEIVED + 86_400_000);
      }),
      { numRuns: 300 },
    );
  });
});

describe("identity from what Pendo sent", () => {
  it("sends no identify for a visitorId of only whitespace, and no group for such an accountId", () => {
    const webhook = { ...withUniqueId(PUBLISHED.visitorCreated), visitorId: " \t " };
    const result = transform(webhook);
    if (!result.ok) throw new Error("expected a mapping");
    expect(result.calls.map((call) => call.type)).toEqual(["track"]);
    expect(result.warnings.map((w) => w.path)).toContain("visitorId");
    // The track still goes, under an anonymous identity rather than a blank user.
    const track = result.calls[0] as { userId?: string; anonymousId?: string };
    expect(track.userId).toBeUndefined();
    expect(track.anonymousId).toEqual(expect.any(String));
    // What arrived is kept for whoever looks: the blank id, as sent.
    expect((result.calls[0] as { context: { pendo: { visitorId?: string } } }).context.pendo.visitorId).toBe(
      " \t ",
    );

    const account = { ...withUniqueId(PUBLISHED.visitorCreated), event: "accountCreated", accountId: "  " };
    const grouped = transform(account);
    if (!grouped.ok) throw new Error("expected a mapping");
    expect(grouped.calls.map((call) => call.type)).toEqual(["track"]);
    expect(grouped.warnings.map((w) => w.path)).toContain("accountId");
    // And with one, each is sent.
    const both = transform({ ...account, accountId: "acme" });
    expect(both.ok && both.calls.map((call) => call.type)).toEqual(["track", "group"]);
  });
});
