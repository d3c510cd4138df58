import { env, exports } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOUR_MS, hourOf } from "../src/ledger/text";
import { CATALOG } from "../src/pendo/catalog";
import { ADMIN_TOKEN } from "./helpers";

// The counters at their largest: 90 days (what the cron keeps) of every hour, six sources, and
// 46 event names in every row (45 catalog names and the unknown ones counted together).
const DAYS = 90;
const SOURCES = ["ov-a", "ov-b", "ov-c", "ov-d", "ov-e", "ov-f"];
const EVENTS = [...CATALOG.map((entry) => entry.name).slice(0, 45), "(unknown)"];
// Per event and hour: [delivered, deadLettered, dropped, refused, lastSeen].
const PER_EVENT = [1234, 5, 2, 1];

const overview = async (hours: number) => {
  const response = await exports.default.fetch(
    new Request(`https://relay.test/admin/overview?hours=${hours}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }),
  );
  const text = await response.text();
  return { status: response.status, bytes: new TextEncoder().encode(text).length, json: JSON.parse(text) };
};

interface Answer {
  from: string;
  to: string;
  perHour: {
    start: string;
    delivered: number[];
    deadLettered: number[];
    dropped: number[];
    refused: number[];
  };
  bySource: { source: string; events: Record<string, number[]> }[];
}

describe("the overview at 90 days, six sources, 46 event names", () => {
  const now = hourOf(Date.now());
  // Seeded one hour either side, so any range of whole days ending this hour or the next (should
  // the hour turn during the test) holds exactly as many seeded hours as it is long.
  const first = now - DAYS * 24;
  const last = now + 1;
  const lastHourOf = (answer: Answer) => hourOf(Date.parse(answer.to));

  beforeAll(async () => {
    const lastSeen = (now - 1) * HOUR_MS;
    const events = JSON.stringify(
      Object.fromEntries(EVENTS.map((event) => [event, [...PER_EVENT, lastSeen]])),
    );
    // 12,960 rows, generated inside SQLite: one statement, every (hour, source) of the range.
    await env.LEDGER.prepare(
      `INSERT INTO counts (hour, source, events)
       WITH RECURSIVE hours(hour) AS (SELECT ?1 UNION ALL SELECT hour + 1 FROM hours WHERE hour < ?2)
       SELECT hour, sources.value, ?3 FROM hours, json_each(?4) AS sources WHERE true
       ON CONFLICT (hour, source) DO UPDATE SET events = excluded.events`,
    )
      .bind(first, last, events, JSON.stringify(SOURCES))
      .run();
  });

  afterAll(async () => {
    await env.LEDGER.prepare("DELETE FROM counts WHERE source IN (SELECT value FROM json_each(?))")
      .bind(JSON.stringify(SOURCES))
      .run();
  });

  it("answers any range within 100 KB, summed in SQL: per hour by outcome, per source and event", async () => {
    const { status, bytes, json } = await overview(DAYS * 24);
    expect(status).toBe(200);
    // Was 81 MB: one row per hour, source and event.
    expect(bytes).toBeLessThanOrEqual(100_000);
    const answer = json as Answer;
    expect(answer.perHour.start).toBe(new Date((lastHourOf(answer) - DAYS * 24 + 1) * HOUR_MS).toISOString());
    for (const outcome of ["delivered", "deadLettered", "dropped", "refused"] as const)
      expect(answer.perHour[outcome]).toHaveLength(DAYS * 24);
    // Every seeded hour holds at least the seeded traffic (other tests may add a little).
    const seededHour = SOURCES.length * EVENTS.length * (PER_EVENT[0] as number);
    expect(Math.min(...answer.perHour.delivered)).toBeGreaterThanOrEqual(seededHour);
    const mine = answer.bySource.filter((row) => SOURCES.includes(row.source));
    expect(mine.map((row) => row.source)).toEqual(SOURCES);
    for (const row of mine) expect(Object.keys(row.events).sort()).toEqual([...EVENTS].sort());
    const hours = DAYS * 24;
    expect(mine[2]?.events.guideDisplayed).toEqual([
      hours * 1234,
      hours * 5,
      hours * 2,
      hours * 1,
      (now - 1) * HOUR_MS,
    ]);
  });

  it("counts the hour now as the last of the range, and only the hours asked for", async () => {
    const { bytes, json } = await overview(24);
    const answer = json as Answer;
    expect(bytes).toBeLessThanOrEqual(100_000);
    expect(answer.perHour.start).toBe(new Date((lastHourOf(answer) - 23) * HOUR_MS).toISOString());
    expect(answer.perHour.delivered).toHaveLength(24);
    const row = answer.bySource.find((t) => t.source === "ov-a");
    expect(row?.events.npsSubmitted?.[0]).toBe(24 * 1234);
  });
});
