/**
 * The console script's pure parts (src/console/client/pure.ts) and the table of hidden
 * characters it shows a sender's string through (src/visible.ts, which alerts use too).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import {
  byVolume,
  fragmentToken,
  hourSlots,
  roundUp,
  type Slot,
  stackedBars,
} from "../src/console/client/pure";
import { visible } from "../src/visible";

const pure = { visible, fragmentToken, hourSlots, roundUp, stackedBars, byVolume };
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value));

test("visible: hidden characters are written out, everything else is kept", () => {
  const cases: [string, string][] = [
    ["guideSnoozed", "guideSnoozed"],
    ["evil\u202etxt.exe", "evil\\u202Etxt.exe"],
    ["\u2066a\u2069 \u200e\u200f \u061c", "\\u2066a\\u2069 \\u200E\\u200F \\u061C"],
    ["line\nnext\ttab", "line\\u000Anext\\u0009tab"],
    ["nul\u0000 cr\r del\u007f c1\u0085", "nul\\u0000 cr\\u000D del\\u007F c1\\u0085"],
    ["Zoë 😀 日本", "Zoë 😀 日本"],
    ["lone \ud800 surrogate", "lone \\uD800 surrogate"],
    ["<b>&amp;</b>", "<b>&amp;</b>"], // text nodes, never markup: nothing to escape
    ["zero\u200bwidth\ufeff", "zero\\u200Bwidth\\uFEFF"],
    ["line\u2028para\u2029", "line\\u2028para\\u2029"],
    ["tag\u{e0041}\u{e007f}", "tag\\u{E0041}\\u{E007F}"],
  ];
  for (const [raw, shown] of cases) assert.equal(pure.visible(raw), shown, JSON.stringify(raw));
  // A raw body in a <pre> keeps the tabs and line feeds that lay it out.
  assert.equal(pure.visible('{\n\t"a": "\u202e"\r\n}', true), '{\n\t"a": "\\u202E"\\u000D\n}');
});

test("the console's sources set text in one place only, through visible()", () => {
  // dom.ts's textOf is the one maker of text nodes; nothing else writes text into the page.
  const dir = new URL("../src/console/client/", import.meta.url);
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((name) =>
    name.endsWith(".ts"),
  );
  assert.ok(files.length >= 5, files.join(", "));
  for (const name of files) {
    const source = readFileSync(new URL(name, dir), "utf8");
    const allowed = name === "dom.ts" ? 1 : 0;
    assert.ok((source.match(/createTextNode\(/g) ?? []).length <= allowed, `${name}: createTextNode`);
    const writes =
      name === "dom.ts"
        ? /\.(innerText|innerHTML|outerHTML)\s*=[^=]/
        : /\.(textContent|innerText|innerHTML|outerHTML)\s*=[^=]/;
    assert.doesNotMatch(source, writes, name);
    assert.doesNotMatch(source, /0x202[aA]|0x2066|\\u202[eE]/, `${name} keeps no copy of the table`);
  }
});

test("fragmentToken: a token, an unreadable one, or none", () => {
  assert.deepEqual(plain(pure.fragmentToken("#token=abc%2B123")), { token: "abc+123" });
  assert.deepEqual(plain(pure.fragmentToken("#x=1&token=abc")), { token: "abc" });
  assert.deepEqual(plain(pure.fragmentToken("#token=%E0%A4%A")), {
    error: "That link's token could not be read.",
  });
  assert.deepEqual(plain(pure.fragmentToken("#token=")), { error: "That link's token could not be read." });
  assert.equal(pure.fragmentToken("#status"), null);
  assert.equal(pure.fragmentToken(""), null);
});

test("hourSlots: one slot per hour ending at the hour of `to`, rows summed, missing hours zero", () => {
  const to = "2026-11-30T06:20:00.000Z";
  const from = "2026-11-29T06:20:00.000Z";
  const row = (hour: string, source: string, delivered: number, deadLettered = 0) => ({
    hour,
    source,
    event: "guideDisplayed",
    delivered,
    deadLettered,
    dropped: 0,
    refused: 0,
  });
  const slots = pure.hourSlots(
    [
      row("2026-11-30T06:00:00.000Z", "default", 3, 1),
      row("2026-11-30T06:00:00.000Z", "eu", 2),
      row("2026-11-30T01:00:00.000Z", "default", 7),
      row("2026-11-29T06:00:00.000Z", "default", 100), // the partial hour before the window
      row("2026-11-30T07:00:00.000Z", "default", 100), // after it
    ],
    from,
    to,
  );
  assert.equal(slots.length, 24);
  assert.equal(new Date(slots[0]?.hour ?? 0).toISOString(), "2026-11-29T07:00:00.000Z");
  assert.equal(new Date(slots[23]?.hour ?? 0).toISOString(), "2026-11-30T06:00:00.000Z");
  assert.deepEqual(plain(slots[23]), {
    hour: Date.parse("2026-11-30T06:00:00.000Z"),
    delivered: 5,
    deadLettered: 1,
    dropped: 0,
    refused: 0,
  });
  assert.equal(slots[18]?.delivered, 7);
  assert.equal(
    slots.reduce((sum, s) => sum + s.delivered, 0),
    12,
  );
  assert.equal(pure.hourSlots(undefined, "2026-11-23T06:20:00.000Z", to).length, 168);
});

test("roundUp: 1, 2 or 5 times a power of ten", () => {
  const cases: [number, number][] = [
    [0, 1],
    [1, 1],
    [3, 5],
    [7, 10],
    [12, 20],
    [100, 100],
    [101, 200],
    [4_999, 5_000],
  ];
  for (const [n, top] of cases) assert.equal(pure.roundUp(n), top, String(n));
});

test("stackedBars: outcomes stacked bottom-up inside the box, zeros drawn not at all", () => {
  const slot = (hour: number, delivered: number, deadLettered: number): Slot => ({
    hour,
    delivered,
    deadLettered,
    dropped: 0,
    refused: 0,
  });
  const { top, bars } = pure.stackedBars([slot(0, 6, 2), slot(1, 0, 0), slot(2, 3, 0)], 300, 100);
  assert.equal(top, 10);
  assert.deepEqual(
    plain(bars).map((b) => [b.outcome, b.hour, b.value, b.x, b.y, b.width, b.height]),
    [
      ["delivered", 0, 6, 10, 40, 80, 60],
      ["deadLettered", 0, 2, 10, 20, 80, 20],
      ["delivered", 2, 3, 210, 70, 80, 30],
    ],
  );
  for (const bar of bars) {
    assert.ok(bar.y >= 0 && bar.y + bar.height <= 100.01 && bar.x + bar.width <= 300, JSON.stringify(bar));
  }
  // 168 slots of no traffic: a box with a top of 1 and nothing in it.
  assert.deepEqual(
    plain(pure.stackedBars(pure.hourSlots([], "1970-01-01T00:00:00Z", "1970-01-08T00:00:00Z"), 700, 100)),
    {
      top: 1,
      bars: [],
    },
  );
});

test("byVolume: the busiest source and event first", () => {
  const total = (event: string, delivered: number, deadLettered = 0) => ({
    source: "default",
    event,
    delivered,
    deadLettered,
    dropped: 0,
    refused: 0,
  });
  const sorted = pure.byVolume([total("b", 1), total("a", 5), total("c", 2, 4), total("aa", 1)]);
  assert.deepEqual(plain(sorted.map((t) => t.event)), ["c", "a", "aa", "b"]);
});
