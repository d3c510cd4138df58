import { describe, expect, it } from "vitest";
import {
  ALERT_KINDS,
  type AlertKind,
  type AlertTally,
  alertBody,
  MAX_ALERT_BYTES,
  MAX_NAME_CHARS,
  safeName,
  signatureHeaders,
} from "../src/alerts/alert";

const SINCE = Date.parse("2026-11-28T12:00:00.000Z");
const ATTACK =
  "ops: <!channel> token expired, re-authenticate at <https://evil.example/login|https://relay.example.com/console>";
const RLO = "\u202e";
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
// C0/C1 controls as raw characters; JSON writes C0 as \u escapes, so the parsed body is checked.
const hasControl = (text: string) =>
  [...text].some((char) => {
    const code = char.codePointAt(0) ?? 0;
    return code !== 0x0a && (code <= 0x1f || (code >= 0x7f && code <= 0x9f));
  });

const tally = (over: Partial<AlertTally> = {}): AlertTally => ({
  count: 1,
  since: SINCE,
  examples: [],
  breakdown: {},
  ...over,
});
const bytes = (text: string) => new TextEncoder().encode(text).length;
const everyString = (value: unknown): string[] =>
  typeof value === "string"
    ? [value]
    : value && typeof value === "object"
      ? Object.entries(value).flatMap(([key, inner]) => [key, ...everyString(inner)])
      : [];

describe("safeName", () => {
  it.each([
    ["plain", "guideSnoozed", "guideSnoozed"],
    ["Slack's three characters", "a<b>&c", "a&lt;b&gt;&amp;c"],
    ["a mention", "<!channel>", "&lt;!channel&gt;"],
    ["a right-to-left override", `evil${RLO}txt.exe`, "evil\\u202Etxt.exe"],
    ["isolates and marks", "\u2066a\u2069\u200e\u200f\u061c", "\\u2066a\\u2069\\u200E\\u200F\\u061C"],
    ["C0, DEL and C1 controls", "a\nb\u0000c\u007fd\u0085", "a\\u000Ab\\u0000c\\u007Fd\\u0085"],
    ["a lone surrogate", "x\ud800y", "x\\uD800y"],
    ["zero-width space and BOM", "a\u200bb\ufeffc", "a\\u200Bb\\uFEFFc"],
    ["line and paragraph separators", "a\u2028b\u2029c", "a\\u2028b\\u2029c"],
    ["tag characters", "flag\u{e0067}\u{e0062}\u{e007f}", "flag\\u{E0067}\\u{E0062}\\u{E007F}"],
    ["a soft hyphen and a word joiner", "pay\u00adpal\u2060", "pay\\u00ADpal\\u2060"],
    [
      "joiners that scripts and emoji need are kept",
      "👩\u200d💻 \u0645\u200c\u06cc",
      "👩\u200d💻 \u0645\u200c\u06cc",
    ],
    ["a backtick, which would end the name's code span", "a`b", "a\\u0060b"],
    ["a URL's scheme, which Slack would link", "https://evil.example/x", "https\\u003A//evil.example/x"],
    ["an emoji counts one character", "😀".repeat(MAX_NAME_CHARS), "😀".repeat(MAX_NAME_CHARS)],
    [
      "a long name, cut with an ellipsis",
      "x".repeat(MAX_NAME_CHARS + 1),
      `${"x".repeat(MAX_NAME_CHARS - 1)}…`,
    ],
    ["an escape is never split", `${"x".repeat(97)}${RLO}`, `${"x".repeat(97)}…`],
  ])("%s", (_, raw, shown) => {
    expect(safeName(raw)).toBe(shown);
  });

  it("reads no further than it shows: a 1 MB name is cut at once", () => {
    const huge = "<".repeat(1_000_000);
    expect(safeName(huge)).toBe(`${"&lt;".repeat(MAX_NAME_CHARS - 1)}…`);
  });
});

/** Tallies a sender can force, one per kind where it matters. */
const HOSTILE: [string, AlertKind, AlertTally][] = [
  [
    "the attack string everywhere",
    "dead-letters",
    tally({
      count: 3,
      examples: [{ event: ATTACK, uniqueId: `${RLO}${ATTACK}` }],
      breakdown: { [ATTACK]: 2, [`${RLO}&amp;`]: 1 },
    }),
  ],
  [
    "an attack as the unknown name",
    "unknown-event",
    tally({ name: ATTACK, examples: [{ event: ATTACK, uniqueId: "u" }] }),
  ],
  [
    "a 1 MB event name",
    "unknown-event",
    tally({ name: `${"<".repeat(1_000_000)}`, examples: [{ event: "é".repeat(1_000_000), uniqueId: "1" }] }),
  ],
  [
    "10,000 breakdown keys",
    "invalid-webhooks",
    tally({
      count: 10_000,
      breakdown: Object.fromEntries(
        Array.from({ length: 10_000 }, (_, i) => [`${"<&>".repeat(40)}${i}${RLO}`, i + 1]),
      ),
      examples: Array.from({ length: 50 }, (_, i) => ({
        event: ATTACK + i,
        uniqueId: `${"&".repeat(200)}${i}`,
      })),
    }),
  ],
  [
    // Each 4 bytes in UTF-8 but 2 UTF-16 units: a cap counted in string length lets through twice the bytes.
    "5,000 names and 50 examples of 100 emoji each",
    "unknown-event",
    tally({
      count: 5_000,
      names: Array.from({ length: 5_000 }, (_, i) => `${"\u{1F4A5}".repeat(100)}${i}`),
      examples: Array.from({ length: 50 }, (_, i) => ({
        event: "\u{1F4A5}".repeat(100),
        uniqueId: `${"\u{1F600}".repeat(100)}${i}`,
      })),
      breakdown: Object.fromEntries(
        Array.from({ length: 5_000 }, (_, i) => [`${"\u{1F4A5}".repeat(100)}${i}`, i + 1]),
      ),
    }),
  ],
  [
    "5,000 unknown names of 100 escaped characters",
    "unknown-event",
    tally({
      count: 5_000,
      names: Array.from({ length: 5_000 }, (_, i) => `${"&".repeat(100)}${i}`),
      moreNames: 7,
    }),
  ],
];

describe("alertBody with hostile input", () => {
  it.each(HOSTILE)("%s: at most 16 KB, no markup, no reordering, no control character", (_, kind, t) => {
    const body = alertBody(kind, "default", t, "https://relay.example.com");
    const json = JSON.stringify(body);
    expect(bytes(json)).toBeLessThanOrEqual(MAX_ALERT_BYTES);
    // The only < > in the whole body would be Slack markup; none may come from the input.
    expect(json).not.toMatch(/[<>]/);
    // Every & is an entity this function wrote.
    expect(json.replaceAll(/&(amp|lt|gt);/g, "")).not.toContain("&");
    for (const text of everyString(body)) {
      expect(text).not.toMatch(BIDI);
      expect(hasControl(text), text.slice(0, 40)).toBe(false);
    }
    for (const text of everyString(body.alert.examples))
      expect(text.length).toBeLessThanOrEqual(5 * MAX_NAME_CHARS);
  });

  it("shows the attack string as text: the mention and the link are inert", () => {
    const body = alertBody(
      "dead-letters",
      "default",
      tally({ examples: [{ event: ATTACK, uniqueId: `x${RLO}y` }], breakdown: { "segment-refused": 1 } }),
    );
    // 110 characters: cut at 100, and what is left shows its brackets as text.
    // The scheme's colon is written out (5 characters for 1), so the cut comes sooner.
    const shown =
      "ops: &lt;!channel&gt; token expired, re-authenticate at &lt;https\\u003A//evil.example/login|https\\u003A//rel…";
    expect(body.text).toContain(`Examples: \`${shown}\` \`x\\u202Ey\``);
    expect(body.alert.examples).toEqual([{ event: shown, uniqueId: "x\\u202Ey" }]);
  });

  it("cuts 10,000 breakdown keys to the largest, saying how many more", () => {
    const breakdown = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`path${i}`, i + 1]));
    const body = alertBody("invalid-webhooks", "default", tally({ count: 10_000, breakdown }));
    const shown = Object.keys(body.alert.breakdown);
    expect(shown[0]).toBe("path9999");
    expect(body.alert.moreBreakdown).toBe(10_000 - shown.length);
    expect(body.text).toContain("`path9999` ×10000, `path9998` ×9999");
    expect(body.text).toContain(`(and ${10_000 - shown.length} more)`);
  });

  it("cuts examples past five, saying how many more", () => {
    const examples = Array.from({ length: 8 }, (_, i) => ({ event: `e${i}`, uniqueId: `u${i}` }));
    const few = alertBody("dead-letters", "default", tally({ examples, breakdown: { x: 8 } }));
    expect(few.alert.examples).toHaveLength(5);
    expect(few.alert.moreExamples).toBe(3);
    expect(few.text).toContain("`e4` `u4` (and 3 more)");
    const wide = alertBody("dead-letters", "default", tally({ examples: [{ event: "e", uniqueId: "u" }] }));
    expect(wide.alert.moreExamples).toBeUndefined();
  });
});

describe("Slack markup from a sender", () => {
  const MARKUP = "*urgent* _act now_ ~ignore~ `code` see https://evil.example/login or www.evil.example";

  it("is shown inside code spans only, which Slack formats and links nothing in", () => {
    const body = alertBody(
      "dead-letters",
      "default",
      tally({ examples: [{ event: MARKUP, uniqueId: "_u_" }], breakdown: { [MARKUP]: 1 } }),
      "https://relay.example.com",
    );
    const spans = body.text.match(/`[^`]*`/g) ?? [];
    expect(spans).toContain(
      "`*urgent* _act now_ ~ignore~ \\u0060code\\u0060 see https\\u003A//evil.example/login or www.evil.example`",
    );
    expect(spans).toContain("`_u_`");
    // Outside the spans: the relay's own words, the counts and its own console link, nothing else.
    const outside = body.text.replaceAll(/`[^`]*`/g, "").replace("https://relay.example.com/console", "");
    expect(outside).not.toMatch(/[*_~`]|:\/\/|www\./);
  });

  it("lists unknown names as code, not quoted text", () => {
    const body = alertBody("unknown-event", "prod", tally({ names: ["_a_", "*b*"] }));
    expect(body.text).toContain("the relay does not know: `_a_`, `*b*`.");
  });
});

describe("one table for the console and for alerts", () => {
  it("writes out every character of the table the same way in both", async () => {
    const { HIDDEN_CHARACTERS, visible } = await import("../src/visible");
    for (const [low, high] of HIDDEN_CHARACTERS) {
      for (const code of new Set([low, high, Math.floor((low + high) / 2)])) {
        const char = String.fromCodePoint(code);
        expect(visible(char), code.toString(16)).toMatch(/^\\u/);
        expect(safeName(char)).toBe(visible(char));
      }
    }
  });
});

describe("alertBody for unknown event names", () => {
  it("lists several names, capped at 20, with those the caller left out", () => {
    const names = Array.from({ length: 23 }, (_, i) => `name${i}`);
    const body = alertBody("unknown-event", "prod", tally({ count: 40, names, moreNames: 5 }));
    expect(body.text).toContain(
      "Source `prod` received 28 event name(s) the relay does not know: `name0`, `name1`,",
    );
    expect(body.text).toContain("`name19` (and 8 more). They are forwarded as unmapped tracks");
    expect(body.text).not.toContain("name20");
    expect(body.alert.names).toHaveLength(20);
    expect(body.alert.moreNames).toBe(8);
  });

  it("reads a single `name` as a list of one", () => {
    const body = alertBody("unknown-event", "prod", tally({ name: "guideSnoozed", count: 2 }));
    expect(body.text).toContain("received 1 event name(s) the relay does not know: `guideSnoozed`. They");
    expect(body.alert).toMatchObject({ name: "guideSnoozed", names: ["guideSnoozed"] });
    expect(body.alert.moreNames).toBeUndefined();
  });

  it("says how many drift entries gave way and how many were counted while sends failed", () => {
    const body = alertBody("unknown-event", "prod", tally({ names: ["a"], count: 9, evicted: 4, held: 6 }));
    expect(body.text).toContain("4 older entries gave way");
    expect(body.text).toContain("6 of these were counted while alert sends failed.");
    expect(body.alert).toMatchObject({ evicted: 4, held: 6 });
    const plain = alertBody("unknown-event", "prod", tally({ names: ["a"] }));
    expect(plain.text).not.toMatch(/gave way|sends failed/);
    expect(plain.alert).not.toHaveProperty("evicted");
    expect(plain.alert).not.toHaveProperty("held");
  });
});

describe("alertBody for every kind", () => {
  it.each(ALERT_KINDS)("%s: pure (the same tally gives the same body) and dated from `since`", (kind) => {
    const t = tally({ lastStatus: 401, breakdown: { "segment-refused": 1 } });
    const body = alertBody(kind, "default", t, "https://relay.example.com");
    expect(alertBody(kind, "default", t, "https://relay.example.com")).toEqual(body);
    expect(body.alert.since).toBe("2026-11-28T12:00:00.000Z");
    expect(body.alert.console).toBe("https://relay.example.com/console");
    expect(body.text).toMatch(/^\[pendo-segment-relay\] /);
  });
});

describe("what each alert says", () => {
  const body = (kind: AlertKind, over: Partial<AlertTally> = {}, url?: string) =>
    alertBody(kind, "prod", tally(over), url);

  it.each<[AlertKind, Partial<AlertTally>, string]>([
    [
      "dead-letters",
      { count: 3, breakdown: { "segment-refused": 1, "retries-exhausted": 2 } },
      "3 event(s) of source `prod` could not be delivered and were kept as dead letters (`retries-exhausted` ×2, `segment-refused` ×1). Replay them once the cause is fixed.",
    ],
    [
      "invalid-webhooks",
      { count: 2, breakdown: { "event: missing": 2 } },
      "2 webhook(s) to source `prod` could not be mapped and were quarantined (`event: missing` ×2).",
    ],
    [
      "unknown-event",
      { names: ["newThing", "other"], moreNames: 3 },
      "Source `prod` received 5 event name(s) the relay does not know: `newThing`, `other` (and 3 more). They are forwarded as unmapped tracks; Pendo may have added them.",
    ],
    [
      "delivery-failing",
      { lastStatus: null },
      "Segment has answered nothing but failures for source `prod` since 2026-11-28T12:00:00.000Z (last status none: no answer). Events wait on the queue and are retried.",
    ],
    [
      "delivery-recovered",
      {},
      "Segment delivers again for source `prod` (failing since 2026-11-28T12:00:00.000Z).",
    ],
    [
      "record-budget",
      { bytes: { used: 1_572_864, budget: 2_097_152 } },
      "Source `prod` keeps 1.5 MB of its 2.0 MB budget for quarantined webhooks and events too large to deliver (RECORD_BUDGET_BYTES). Past it, new records keep their row but not their bytes; nothing stored is deleted.",
    ],
    [
      "outage-started",
      { lastStatus: 503 },
      "Destination `prod` has failed every batch since 2026-11-28T12:00:00.000Z (last status 503): outage mode. Arriving batches are parked in R2 instead of spending retries, and one probe goes out per interval.",
    ],
    [
      "outage-drained",
      { parked: { batches: 2, events: 7 } },
      "Destination `prod` is back: every parked batch has been sent (outage since 2026-11-28T12:00:00.000Z).",
    ],
  ])("%s", (kind, over, summary) => {
    const { text, alert } = body(kind, over);
    expect(text).toBe(`[pendo-segment-relay] ${kind}: ${summary}`);
    expect(alert).toMatchObject({ kind, source: "prod", since: "2026-11-28T12:00:00.000Z" });
    if (over.lastStatus !== undefined) expect(alert.lastStatus).toBe(over.lastStatus);
    else expect(alert).not.toHaveProperty("lastStatus");
    if (over.bytes) expect(alert.bytes).toEqual(over.bytes);
    else expect(alert).not.toHaveProperty("bytes");
    if (over.parked) expect(alert.parked).toEqual(over.parked);
    else expect(alert).not.toHaveProperty("parked");
  });

  it("lists examples, what was held and evicted, and the console, each on its own line", () => {
    const examples = Array.from({ length: 7 }, (_, i) => ({ event: `e${i}`, uniqueId: `u${i}` }));
    const { text, alert } = body(
      "dead-letters",
      { count: 7, examples, breakdown: { r: 7 }, held: 4, evicted: 2 },
      "https://relay.example.com",
    );
    expect(text.split("\n")).toEqual([
      "[pendo-segment-relay] dead-letters: 7 event(s) of source `prod` could not be delivered and were kept as dead letters (`r` ×7). Replay them once the cause is fixed.",
      "Examples: `e0` `u0`; `e1` `u1`; `e2` `u2`; `e3` `u3`; `e4` `u4` (and 2 more)",
      "4 of these were counted while alert sends failed.",
      "2 older entries gave way: the source's drift list is at its cap.",
      "Console: https://relay.example.com/console",
    ]);
    expect(alert).toMatchObject({ count: 7, moreExamples: 2, held: 4, evicted: 2, breakdown: { r: 7 } });
    expect(alert.examples).toHaveLength(5);
    expect(alert.console).toBe("https://relay.example.com/console");
    // None of those when there is nothing to say.
    const plain = body("dead-letters", { breakdown: { r: 1 } });
    expect(plain.text.split("\n")).toHaveLength(1);
    for (const key of ["moreExamples", "held", "evicted", "console", "moreBreakdown", "names", "name"])
      expect(plain.alert).not.toHaveProperty(key);
  });

  it("keeps the largest reasons when it must cut the breakdown, and says how many it left out", () => {
    const breakdown = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`r${i}`, i + 1]));
    const { text, alert } = body("dead-letters", { count: 325, breakdown });
    const shown = Object.keys(alert.breakdown);
    expect(shown).toHaveLength(20);
    expect(shown[0]).toBe("r24");
    expect(shown).not.toContain("r0");
    expect(alert.moreBreakdown).toBe(5);
    expect(text).toContain("`r24` ×25, `r23` ×24");
    expect(text).toContain("(and 5 more)");
  });

  it("names an unknown event and lists at most twenty names, counting the rest", () => {
    const names = Array.from({ length: 23 }, (_, i) => `n${i}`);
    const { alert } = body("unknown-event", { names, moreNames: 2 });
    expect(alert.names).toEqual(names.slice(0, 20));
    expect(alert.moreNames).toBe(5);
    const one = body("unknown-event", { name: "solo" });
    expect(one.alert).toMatchObject({ name: "solo", names: ["solo"] });
    expect(one.alert).not.toHaveProperty("moreNames");
    expect(one.text).toContain("received 1 event name(s) the relay does not know: `solo`.");
  });

  it("shrinks the breakdown first, then the names, then the examples, until it fits", () => {
    const long = (i: number) => `${"w".repeat(95)}${i}`;
    const { alert } = body("unknown-event", {
      names: Array.from({ length: 20 }, (_, i) => long(i)),
      examples: Array.from({ length: 5 }, (_, i) => ({ event: long(i), uniqueId: long(i) })),
      breakdown: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [long(i), i])),
    });
    expect(bytes(JSON.stringify(alert))).toBeLessThanOrEqual(MAX_ALERT_BYTES);
    // 20 + 20 + 10 names of ~100 bytes, twice each (text and alert): about 10 KB, it fits whole.
    expect(alert.names).toHaveLength(20);
    expect(alert.examples).toHaveLength(5);
    expect(Object.keys(alert.breakdown)).toHaveLength(20);
    const big = (i: number) => `${"&".repeat(99)}${i}`; // each & written as &amp;: ~500 bytes
    const cut = body("unknown-event", {
      names: Array.from({ length: 20 }, (_, i) => big(i)),
      examples: Array.from({ length: 5 }, (_, i) => ({ event: big(i), uniqueId: big(i) })),
      breakdown: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [big(i), i])),
    });
    expect(bytes(JSON.stringify(cut))).toBeLessThanOrEqual(MAX_ALERT_BYTES);
    const kept = Object.keys(cut.alert.breakdown).length;
    // The breakdown gives way before anything else: down to one before a name goes.
    if ((cut.alert.names ?? []).length < 20) expect(kept).toBe(1);
    expect(kept).toBeLessThan(20);
  });
});

describe("signatureHeaders (Standard Webhooks)", () => {
  it("signs id.timestamp.body with HMAC-SHA256 under the secret's base64 key", async () => {
    const raw = new TextEncoder().encode("a-32-byte-secret-for-the-test!!!");
    const secret = `whsec_${btoa(String.fromCharCode(...raw))}`;
    const headers = await signatureHeaders(secret, "msg_1", 1_700_000_000, '{"a":1}');
    const hmac = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    const mac = await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode('msg_1.1700000000.{"a":1}'));
    const expected = btoa(String.fromCharCode(...new Uint8Array(mac)));
    expect(headers).toEqual({
      "webhook-id": "msg_1",
      "webhook-timestamp": "1700000000",
      "webhook-signature": `v1,${expected}`,
    });
  });
});
