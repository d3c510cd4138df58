import { describe, expect, it } from "vitest";
import { parseSettings } from "../src/config";
import {
  delayWithinRetention,
  RETENTION_MARGIN_SECONDS,
  retryDelaySeconds,
  retryWindowSeconds,
} from "../src/delivery/backoff";
import { batchBody, batchBytes, MAX_REQUEST_BYTES, packBatches } from "../src/destination/batch";
import { utf8Length } from "../src/destination/calls";
import { classifySegmentResponse, type SegmentOutcome } from "../src/destination/classify";
import type { SegmentAttempt } from "../src/destination/client";
import { PROFILES, readSuccessBody } from "../src/destination/profiles";
import type { Env } from "../src/env";
import { readBodyLimited } from "../src/http/body";
import { countRows } from "../src/ledger/counts";
import { BATCH_LIMIT, driftRows, NAME_LIMIT } from "../src/ledger/drift";
import { deadLetterOf, newRecordId, RECORD_ID } from "../src/ledger/records";
import type { PendoWebhook } from "../src/pendo/envelope";
import { segmentIdentity } from "../src/pendo/identity";
import { eventTime } from "../src/pendo/time";
import { decodeRelayMessage, encodeRelayMessage, queuedBytes, type RelayMessage } from "../src/queue/message";
import { visible, writtenOut } from "../src/visible";

const NOW = Date.parse("2026-11-28T12:00:00.000Z");
const response = (
  status: number,
  headers: { retryAfter?: string; location?: string } = {},
): SegmentAttempt => ({
  ok: true,
  status,
  body: "answer",
  retryAfter: headers.retryAfter ?? null,
  location: headers.location ?? null,
});

describe("classifySegmentResponse", () => {
  it.each<[string, SegmentAttempt, Partial<SegmentOutcome>]>([
    ["200", response(200), { kind: "delivered", status: 200 }],
    ["204", response(204), { kind: "delivered", status: 204 }],
    [
      "301 is no delivery",
      response(301, { location: "https://x.test/" }),
      { kind: "redirected", status: 301 },
    ],
    ["300 (multiple choices) is no delivery either", response(300), { kind: "redirected", status: 300 }],
    ["302", response(302), { kind: "redirected", status: 302 }],
    ["308", response(308), { kind: "redirected", status: 308 }],
    ["400", response(400), { kind: "rejected", status: 400, detail: "answer" }],
    ["401", response(401), { kind: "refused", status: 401 }],
    ["403", response(403), { kind: "refused", status: 403 }],
    ["404", response(404), { kind: "refused", status: 404 }],
    ["408", response(408), { kind: "transient", status: 408 }],
    ["410", response(410), { kind: "transient", status: 410 }],
    ["413", response(413), { kind: "refused", status: 413 }],
    ["429 without Retry-After", response(429), { kind: "rate-limited", retryAfterSeconds: undefined }],
    [
      "429, Retry-After in seconds",
      response(429, { retryAfter: "7" }),
      { kind: "rate-limited", retryAfterSeconds: 7 },
    ],
    ["429, fractional seconds round up", response(429, { retryAfter: "1.2" }), { retryAfterSeconds: 2 }],
    ["429, Retry-After 0 waits 1 s", response(429, { retryAfter: "0" }), { retryAfterSeconds: 1 }],
    ["429, Retry-After capped at 300 s", response(429, { retryAfter: "86400" }), { retryAfterSeconds: 300 }],
    [
      "429, Retry-After as an HTTP date",
      response(429, { retryAfter: new Date(NOW + 90_000).toUTCString() }),
      { retryAfterSeconds: 90 },
    ],
    [
      "429, a date in the past waits 1 s",
      response(429, { retryAfter: new Date(NOW - 5_000).toUTCString() }),
      { retryAfterSeconds: 1 },
    ],
    ["429, unreadable Retry-After", response(429, { retryAfter: "soon" }), { retryAfterSeconds: undefined }],
    ["460", response(460), { kind: "transient", status: 460 }],
    ["500", response(500), { kind: "transient", status: 500 }],
    ["501", response(501), { kind: "refused", status: 501 }],
    ["503", response(503), { kind: "transient", status: 503 }],
    ["505", response(505), { kind: "refused", status: 505 }],
    ["timeout", { ok: false, reason: "timeout" }, { kind: "transient", status: null, detail: "timed out" }],
    [
      "network error",
      { ok: false, reason: "network", detail: "reset" },
      { kind: "transient", status: null, detail: "reset" },
    ],
  ])("%s", (_name, attempt, expected) => {
    expect(classifySegmentResponse(attempt, NOW)).toMatchObject(expected);
  });

  it("names the Location a redirect points to", () => {
    const outcome = classifySegmentResponse(response(301, { location: "https://segment.com/" }), NOW);
    expect(outcome).toMatchObject({ detail: expect.stringContaining("https://segment.com/") });
  });
});

describe("retryDelaySeconds", () => {
  it.each([
    // attempt, base, max, random, expected
    [1, 30, 21_600, 0, 15],
    [1, 30, 21_600, 0.999_999, 30],
    [2, 30, 21_600, 0, 30],
    [5, 30, 21_600, 0.5, 360],
    [15, 30, 21_600, 0, 10_800],
    [15, 30, 21_600, 0.999_999, 21_600],
    [1, 1, 2, 0, 1],
    [100, 60, 3_600, 0, 1_800],
  ])("attempt %i, base %i, cap %i, random %f: %i s", (attempt, base, max, random, expected) => {
    expect(retryDelaySeconds(attempt, base, max, () => random)).toBe(expected);
  });

  it("never exceeds the window, never drops below half of it", () => {
    for (let attempt = 1; attempt <= 30; attempt++) {
      const window = retryWindowSeconds(attempt, 30, 21_600);
      for (const random of [0, 0.25, 0.5, 0.75, 0.999]) {
        const delay = retryDelaySeconds(attempt, 30, 21_600, () => random);
        expect(delay).toBeGreaterThanOrEqual(Math.round(window / 2));
        expect(delay).toBeLessThanOrEqual(window);
      }
    }
  });
});

describe("packBatches", () => {
  const unit = (bytes: number, calls = 1) => ({
    calls: Array.from({ length: calls }, () => "x".repeat(bytes / calls)),
    bytes,
  });
  const envelope = batchBytes([]) + 1; // the empty body: `{"batch":[],"sentAt":"…"}`

  it("fills a request exactly to the byte limit, and starts a new one a byte past it", () => {
    // Each unit costs its bytes plus one comma; the last comma is not written.
    const fits = [unit(1_000), unit(MAX_REQUEST_BYTES - envelope - 1_000 - 2)];
    expect(packBatches(fits)).toHaveLength(1);
    expect(batchBytes(fits)).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    const over = [unit(1_000), unit(MAX_REQUEST_BYTES - envelope - 1_000 - 1)];
    expect(packBatches(over)).toHaveLength(2);
  });

  it("measures the body it describes", () => {
    const units = [unit(10), unit(20, 2), unit(30)];
    expect(batchBytes(units)).toBe(utf8Length(batchBody(units, new Date(NOW).toISOString())));
  });

  it("splits at the event limit (tested with a limit of 5)", () => {
    const units = [unit(10, 2), unit(10, 2), unit(10, 1), unit(10, 3)];
    expect(packBatches(units, MAX_REQUEST_BYTES, 5).map((request) => request.length)).toEqual([3, 1]);
  });

  it("counts the arriving unit's own calls against the event limit", () => {
    // 4 calls, then a unit of 2: together 6, past a limit of 5, so two requests.
    expect(packBatches([unit(10, 4), unit(10, 2)], MAX_REQUEST_BYTES, 5).map((r) => r.length)).toEqual([
      1, 1,
    ]);
    // Exactly at the limit they share one.
    expect(packBatches([unit(10, 3), unit(10, 2)], MAX_REQUEST_BYTES, 5).map((r) => r.length)).toEqual([2]);
  });

  it("keeps a unit's calls together and sends an oversized unit alone", () => {
    const big = unit(MAX_REQUEST_BYTES + 10);
    expect(packBatches([unit(10), big, unit(10)]).map((request) => request.length)).toEqual([1, 1, 1]);
  });

  it("packs nothing into no request", () => {
    expect(packBatches([])).toEqual([]);
  });
});

describe("eventTime", () => {
  const received = NOW;
  it.each<[string, unknown, string, string | undefined]>([
    ["seconds", 1_626_805_076, "2021-07-20T18:17:56.000Z", undefined],
    ["milliseconds", 1_626_805_076_123, "2021-07-20T18:17:56.123Z", undefined],
    ["fractional seconds", 1_626_805_076.5, "2021-07-20T18:17:56.500Z", undefined],
    [
      "the 1e11 boundary reads as milliseconds (1973): before 2000",
      1e11,
      new Date(NOW).toISOString(),
      "before-2000",
    ],
    ["missing", undefined, new Date(NOW).toISOString(), "missing"],
    ["null", null, new Date(NOW).toISOString(), "missing"],
    ["zero", 0, new Date(NOW).toISOString(), "before-2000"],
    ["negative", -5, new Date(NOW).toISOString(), "before-2000"],
    ["a day and a second ahead", NOW / 1000 + 86_401, new Date(NOW).toISOString(), "in-future"],
    [
      "a day ahead exactly is accepted",
      NOW / 1000 + 86_400,
      new Date(NOW + 86_400_000).toISOString(),
      undefined,
    ],
    ["digits past 2^53", "123456789012345678901", new Date(NOW).toISOString(), "in-future"],
    ["text", "yesterday", new Date(NOW).toISOString(), "unreadable"],
    ["an object", { at: 1 }, new Date(NOW).toISOString(), "unreadable"],
  ])("%s", (_name, raw, iso, reason) => {
    const time = eventTime(raw, received);
    expect(time.iso).toBe(iso);
    expect(time.fallback?.reason).toBe(reason);
  });
});

describe("readBodyLimited", () => {
  const request = (bytes: number) =>
    new Request("https://relay.test/", { method: "POST", body: "a".repeat(bytes) });
  const streamed = (bytes: number) =>
    new Request("https://relay.test/", {
      method: "POST",
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("a".repeat(bytes)));
          controller.close();
        },
      }),
      // @ts-expect-error duplex is required by the fetch spec for a streamed body
      duplex: "half",
    });

  const declared = (bytes: number) =>
    new Request("https://relay.test/", {
      method: "POST",
      headers: { "content-length": String(bytes) },
      body: "a".repeat(bytes),
    });

  it.each([
    ["declared, exactly at the limit", () => declared(1_024), true],
    ["declared, a byte over", () => declared(1_025), false],
    ["exactly at the limit", () => request(1_024), true],
    ["a byte over", () => request(1_025), false],
    ["streamed, exactly at the limit", () => streamed(1_024), true],
    ["streamed, a byte over", () => streamed(1_025), false],
  ])("%s", async (_name, make, ok) => {
    const result = await readBodyLimited(make(), 1_024);
    expect(result.ok).toBe(ok);
    if (result.ok) expect(result.text).toHaveLength(1_024);
    else expect(result.reason).toBe("too-large");
  });

  it("refuses bytes that are not UTF-8, and keeps them as received", async () => {
    const bad = new Request("https://relay.test/", { method: "POST", body: new Uint8Array([0xff, 0xfe]) });
    expect(await readBodyLimited(bad, 1_024)).toEqual({
      ok: false,
      reason: "not-utf8",
      bytes: new Uint8Array([0xff, 0xfe]),
    });
  });
});

describe("queue message encoding", () => {
  const message: RelayMessage = {
    source: "default",
    eventId: "abc",
    event: "Zoë's event",
    receivedAt: NOW,
    calls: ['{"type":"track","event":"\\"quoted\\""}', '{"type":"identify","traits":{"name":"Zoë"}}'],
    bytes: 0,
  };
  message.bytes = message.calls.reduce((sum, call) => sum + utf8Length(call), 0);

  it("round-trips, calls untouched", () => {
    const encoded = encodeRelayMessage(message);
    expect(decodeRelayMessage(encoded)).toEqual({ ok: true, message });
    expect(queuedBytes(message, encoded)).toBe(utf8Length(encoded));
  });

  it("reads the previous version's JSON object", () => {
    expect(decodeRelayMessage({ v: 1, ...message })).toEqual({ ok: true, message });
  });

  it.each([
    ["not JSON", "{oops\n{}"],
    ["a header of another version", '{"v":3,"source":"s"}'],
    ["an object without calls", { v: 1, source: "s" }],
    ["a number", 42],
  ])("calls %s malformed, naming what is wrong", (_name, body) => {
    const decoded = decodeRelayMessage(body);
    expect(decoded).toMatchObject({ ok: false, reason: "malformed-message" });
  });
});

describe("dead-letter records", () => {
  it("give the same event refused in two sources in one millisecond two ids", () => {
    const input = {
      reason: "segment-rejected" as const,
      eventId: "e1",
      event: "x",
      attempts: 1,
      lastStatus: 400,
      detail: "",
      receivedAt: NOW,
    };
    const a = deadLetterOf({ ...input, source: "prod" }, NOW);
    const b = deadLetterOf({ ...input, source: "staging" }, NOW);
    const c = deadLetterOf({ ...input, source: "prod" }, NOW);
    expect(new Set([a.id, b.id, c.id]).size).toBe(3);
    for (const id of [a.id, b.id, c.id]) expect(id).toMatch(RECORD_ID);
  });

  it("cut hostile names to what a ledger column keeps", () => {
    const letter = deadLetterOf(
      {
        reason: "segment-rejected",
        source: "default",
        eventId: "f".repeat(5_000),
        event: "x".repeat(10_000),
        attempts: 1,
        lastStatus: 400,
        detail: "",
        receivedAt: NOW,
      },
      NOW,
    );
    expect(letter.event.length).toBe(200);
    expect(letter.eventId.length).toBe(200);
    expect(letter.event.endsWith("…")).toBe(true);
  });

  it("make ids KV keys can hold", () => {
    expect(newRecordId(NOW, "default", "../../etc")).toMatch(RECORD_ID);
  });
});

describe("ledger rows", () => {
  it("count one row per hour and source, summing each event's outcomes", () => {
    const hour = 3_600_000;
    const rows = countRows([
      { source: "a", event: "e", outcome: "delivered", at: 10 * hour + 1 },
      { source: "a", event: "e", outcome: "delivered", at: 10 * hour + 2 },
      { source: "a", event: "e", outcome: "dropped", at: 10 * hour + 3 },
      { source: "a", event: "e", outcome: "delivered", at: 11 * hour },
      { source: "b", event: "e", outcome: "refused", at: 10 * hour },
    ]);
    expect(rows.map(([h, source, events]) => [h, source, JSON.parse(events)])).toEqual([
      [10, "a", { e: [2, 0, 1, 0, 10 * hour + 3] }],
      [11, "a", { e: [1, 0, 0, 0, 11 * hour] }],
      [10, "b", { e: [0, 0, 0, 1, 10 * hour] }],
    ]);
  });

  it("bound drift per batch and per name, keeping the newest items", () => {
    const items = Array.from({ length: 2_000 }, (_, i) => ({
      source: "s",
      kind: "property" as const,
      event: "guideSeen",
      key: `k${i}-${"z".repeat(300)}`,
    }));
    const rows = driftRows([...items, { source: "s", kind: "event", event: "guideSnoozed" }]);
    expect(rows).toHaveLength(BATCH_LIMIT);
    expect(rows.every((row) => row[3].length <= NAME_LIMIT)).toBe(true);
    // The newest (last) items are the ones kept: a real new name after junk is never lost.
    expect(rows.map((row) => row[2])).toContain("guideSnoozed");
    expect(rows.some((row) => row[3].startsWith("k1999-"))).toBe(true);
    expect(rows.some((row) => row[3].startsWith("k0-"))).toBe(false);
  });

  it("count repeats of one drift item instead of listing them", () => {
    const item = { source: "s", kind: "event" as const, event: "x" };
    expect(driftRows([item, item, item])).toEqual([["s", "event", "x", "", 3]]);
  });
});

describe("settings", () => {
  const endpoint = (SEGMENT_ENDPOINT: string) => parseSettings({ SEGMENT_ENDPOINT } as Env);
  it.each([
    ["https://api.segment.io", true],
    ["https://events.eu1.segmentapis.com/", true],
    ["http://127.0.0.1:8788", true],
    ["http://localhost:8788", true],
    ["http://api.segment.io", false],
    ["ftp://api.segment.io", false],
    ["not a url", false],
  ])("SEGMENT_ENDPOINT %s: accepted %s", (url, ok) => {
    const result = endpoint(url);
    expect(result.ok).toBe(ok);
    if (!result.ok) expect(result.issues.map((issue) => issue.path)).toEqual(["SEGMENT_ENDPOINT"]);
  });
});

describe("cutting names", () => {
  it("never leaves half a surrogate pair", async () => {
    const { cutText } = await import("../src/ledger/text");
    const cut = cutText(`${"x".repeat(98)}😀😀😀`, 100);
    expect(cut.endsWith("…")).toBe(true);
    expect(() => encodeURIComponent(cut)).not.toThrow();
    expect(cut.length).toBeLessThanOrEqual(100);
  });
});

describe("delayWithinRetention", () => {
  const enqueued = new Date(NOW);
  const day = 86_400;
  it("keeps the wanted delay while the retention leaves room for it", () => {
    expect(delayWithinRetention(60, enqueued, day, NOW)).toBe(60);
  });
  it("cuts a delay that would outlive the queue's retention to what is left, less the margin", () => {
    const now = NOW + (day - RETENTION_MARGIN_SECONDS - 100) * 1000;
    expect(delayWithinRetention(3_600, enqueued, day, now)).toBe(100);
  });
  it("never answers a negative delay once the retention is (nearly) over", () => {
    expect(delayWithinRetention(3_600, enqueued, day, NOW + day * 1000)).toBe(0);
  });
});

describe("a 2xx body that lists errors", () => {
  it("is a partial delivery by the documented rule, whether or not it also says ok: false", () => {
    const errors = [{ messageId: "p.abc.track", message: "invalid event" }];
    for (const body of [{ errors }, { ok: true, errors }, { ok: false, errors }])
      expect(readSuccessBody(PROFILES.jitsu, JSON.stringify(body))).toEqual({
        kind: "partial",
        rejected: [{ messageId: "p.abc.track", detail: "invalid event" }],
      });
    // An empty list is no refusal.
    expect(readSuccessBody(PROFILES.jitsu, JSON.stringify({ errors: [] }))).toEqual({ kind: "accepted" });
  });
});

describe("visible: hidden characters written out", () => {
  it("writes out a hidden character in a line, keeps tab and newline in a block only", () => {
    expect(visible("a\tb\nc\u202E")).toBe("a\\u0009b\\u000Ac\\u202E");
    expect(visible("a\tb\nc\u202E", true)).toBe("a\tb\nc\\u202E");
    // Plain text comes back as it is, in either form.
    expect(visible("plain text")).toBe("plain text");
    expect(visible("a\tb", true)).toBe("a\tb");
    // Beyond U+FFFF in braces, up to it in four digits (U+FFFF itself is no character to hide).
    expect(visible("x\u{E0041}")).toBe("x\\u{E0041}");
    expect(writtenOut(0xffff)).toBe("\\uFFFF");
    expect(writtenOut(0x10000)).toBe("\\u{10000}");
    // A block still writes out the other controls, and a carriage return.
    expect(visible("a\rb\u0000", true)).toBe("a\\u000Db\\u0000");
  });
});

describe("segmentIdentity without a visitor", () => {
  const base = { event: "guideDisplayed", timestamp: 1 } as const;
  it.each<[string, object, string]>([
    ["a numeric subscription id", { subscription: { id: 42 } }, "pendo-subscription-42"],
    ["a subscription id of 0", { subscription: { id: 0 } }, "pendo-subscription-0"],
    [
      "an empty subscription id falls to the app",
      { subscription: { id: "" }, app: { id: "a1" } },
      "pendo-app-a1",
    ],
    ["a non-finite id falls through", { subscription: { id: Number.NaN }, app: { id: 7 } }, "pendo-app-7"],
    ["an object id is no id", { subscription: { id: { x: 1 } }, app: { id: "" } }, "pendo-source-default"],
    ["a boolean id is no id", { app: { id: true } }, "pendo-source-default"],
    ["nothing at all", {}, "pendo-source-default"],
  ])("%s", (_, extra, anonymousId) => {
    expect(segmentIdentity({ ...base, ...extra } as unknown as PendoWebhook, "default")).toEqual({
      anonymousId,
    });
  });
});

describe("eventTime at its edges", () => {
  const received = Date.UTC(2026, 10, 28);
  it.each<[string, unknown, string | undefined]>([
    ["a string of digits, as milliseconds", "1764331200000", undefined],
    ["digits with a tail are unreadable", "1764331200000x", "unreadable"],
    ["a tail before the digits too", "x1764331200000", "unreadable"],
    ["a number that is not finite", Number.POSITIVE_INFINITY, "unreadable"],
    ["exactly 2000-01-01 is in range", Date.UTC(2000, 0, 1), undefined],
    ["a millisecond before it is not", Date.UTC(2000, 0, 1) - 1, "before-2000"],
  ])("%s", (_, raw, reason) => {
    const time = eventTime(raw, received);
    expect(time.fallback?.reason).toBe(reason);
    if (!reason) expect(time.iso).toBe(new Date(Number(raw)).toISOString());
  });
});
