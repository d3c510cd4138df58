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
  totalsOf,
} from "../src/console/client/pure";
import { visible } from "../src/visible";

const pure = { visible, fragmentToken, hourSlots, totalsOf, roundUp, stackedBars, byVolume };
const zero = { delivered: 0, deadLettered: 0, dropped: 0, refused: 0 };
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

test("hourSlots: the answer's hours as slots, the last N of them when asked", () => {
  const hours = 168;
  const series = (at: Record<number, number>) => Array.from({ length: hours }, (_, i) => at[i] ?? 0);
  const perHour = {
    start: "2026-11-23T07:00:00.000Z",
    delivered: series({ 0: 9, 150: 7, 167: 5 }),
    deadLettered: series({ 167: 1 }),
    dropped: series({}),
    refused: series({ 144: 2 }),
  };
  const week = pure.hourSlots(perHour);
  assert.equal(week.length, 168);
  assert.equal(new Date(week[0]?.hour ?? 0).toISOString(), "2026-11-23T07:00:00.000Z");
  assert.equal(week[0]?.delivered, 9);
  const day = pure.hourSlots(perHour, 24);
  assert.equal(day.length, 24);
  assert.equal(new Date(day[0]?.hour ?? 0).toISOString(), "2026-11-29T07:00:00.000Z");
  assert.deepEqual(plain(day[23]), {
    hour: Date.parse("2026-11-30T06:00:00.000Z"),
    delivered: 5,
    deadLettered: 1,
    dropped: 0,
    refused: 0,
  });
  assert.equal(day[0]?.refused, 2);
  assert.equal(
    day.reduce((sum, s) => sum + s.delivered, 0),
    12,
  );
});

test("totalsOf: one row per source and event, from the answer's bySource", () => {
  const rows = pure.totalsOf([
    {
      source: "default",
      events: { guideDisplayed: [40, 2, 1, 0, 1_796_000_000_000], "(unknown)": [3, 0, 0, 0, 0] },
    },
    { source: "eu", events: { npsSubmitted: [1, 0, 0, 0, 1_795_000_000_000] } },
  ]);
  assert.deepEqual(plain(rows), [
    {
      source: "default",
      event: "guideDisplayed",
      delivered: 40,
      deadLettered: 2,
      dropped: 1,
      refused: 0,
      lastSeen: 1_796_000_000_000,
    },
    {
      source: "default",
      event: "(unknown)",
      delivered: 3,
      deadLettered: 0,
      dropped: 0,
      refused: 0,
      lastSeen: 0,
    },
    {
      source: "eu",
      event: "npsSubmitted",
      delivered: 1,
      deadLettered: 0,
      dropped: 0,
      refused: 0,
      lastSeen: 1_795_000_000_000,
    },
  ]);
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
    plain(
      pure.stackedBars(
        Array.from({ length: 168 }, (_, hour) => ({ hour, ...zero })),
        700,
        100,
      ),
    ),
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
