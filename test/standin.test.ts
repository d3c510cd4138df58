import { describe, expect, it } from "vitest";
import { SEGMENT_LIMITS, SegmentStandIn } from "../standin/segment";

const KEY = "standin-write-key";
const auth = (key = KEY) => `Basic ${btoa(`${key}:`)}`;
const track = (id: string, extra: Record<string, unknown> = {}) => ({
  type: "track",
  event: "E",
  userId: "u",
  messageId: id,
  ...extra,
});

function post(
  standIn: SegmentStandIn,
  body: unknown,
  init: { authorization?: string | null; path?: string } = {},
) {
  const headers = new Headers({ "content-type": "application/json" });
  const authorization = init.authorization === undefined ? auth() : init.authorization;
  if (authorization) headers.set("authorization", authorization);
  return standIn.handle(
    new Request(`https://api.segment.io${init.path ?? "/v1/batch"}`, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

describe("Segment stand-in behaves as Segment's HTTP API is documented to", () => {
  it("requires Basic auth with a known write key", async () => {
    const standIn = new SegmentStandIn([KEY]);
    const batch = { batch: [track("a")] };
    expect((await post(standIn, batch, { authorization: null })).status).toBe(401);
    expect((await post(standIn, batch, { authorization: auth("other") })).status).toBe(401);
    expect((await post(standIn, batch, { authorization: `Bearer ${KEY}` })).status).toBe(401);
    expect((await post(standIn, batch)).status).toBe(200);
    expect(standIn.received).toHaveLength(1);
  });

  it("answers 400 to invalid JSON, a request over 500 KB and an event over 32 KB", async () => {
    const standIn = new SegmentStandIn([KEY]);
    expect((await post(standIn, "{nope")).status).toBe(400);
    const fat = "x".repeat(20_000);
    const big = { batch: Array.from({ length: 30 }, (_, i) => track(`big-${i}`, { properties: { fat } })) };
    expect(JSON.stringify(big).length).toBeGreaterThan(SEGMENT_LIMITS.requestBytes);
    expect((await post(standIn, big)).status).toBe(400);
    const oversized = {
      batch: [track("huge", { properties: { fat: "y".repeat(SEGMENT_LIMITS.eventBytes) } })],
    };
    expect((await post(standIn, oversized)).status).toBe(400);
    expect(standIn.received).toEqual([]);
  });

  it("answers 200 but drops a batch over 2,500 events, and calls without identity or event", async () => {
    const standIn = new SegmentStandIn([KEY]);
    const many = { batch: Array.from({ length: 2_501 }, (_, i) => track(`m-${i}`)) };
    expect((await post(standIn, many)).status).toBe(200);
    expect(standIn.received).toEqual([]);
    const anonymousless = {
      batch: [{ type: "track", event: "E", messageId: "n" }, track("e", { event: "" })],
    };
    expect((await post(standIn, anonymousless)).status).toBe(200);
    expect(standIn.received).toEqual([]);
    expect(standIn.dropped.map((drop) => drop.reason)).toContain("no userId or anonymousId");
    expect(standIn.dropped.map((drop) => drop.reason)).toContain("track without event");
  });

  it("dedups on messageId", async () => {
    const standIn = new SegmentStandIn([KEY]);
    await post(standIn, { batch: [track("same"), track("same")] });
    expect(standIn.received).toHaveLength(1);
    expect(standIn.duplicates).toBe(1);
  });

  it("serves only POST /v1/batch", async () => {
    const standIn = new SegmentStandIn([KEY]);
    expect((await post(standIn, { batch: [] }, { path: "/v1/track" })).status).toBe(404);
  });

  it("plays injected failures in order, including a 429 with Retry-After", async () => {
    const standIn = new SegmentStandIn([KEY]);
    standIn.failNext(503, { status: 429, retryAfter: "7" });
    expect((await post(standIn, { batch: [track("r")] })).status).toBe(503);
    const limited = await post(standIn, { batch: [track("r")] });
    expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "7"]);
    expect((await post(standIn, { batch: [track("r")] })).status).toBe(200);
  });
});
