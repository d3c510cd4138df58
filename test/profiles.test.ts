import { describe, expect, it } from "vitest";
import { classifySegmentResponse } from "../src/destination/classify";
import {
  authHeaders,
  DESTINATIONS,
  PROFILES,
  readSuccessBody,
  shortIdKey,
} from "../src/destination/profiles";
import { messageIdFor } from "../src/pendo/transform";
import { jitsuMessageId } from "../standin/segment";

/**
 * The destination profiles' rules that need no Worker runtime (run in Node too, for
 * `npm run mutate`): how the write key travels, short ids, and how a 2xx body reads. The
 * profiles against their stand-ins, end to end, are in test/destinations.test.ts.
 */

describe("how the write key travels", () => {
  it("is HTTP Basic with the key as the user and no password, except where the profile says x-write-key", () => {
    for (const name of DESTINATIONS) {
      const headers = authHeaders(PROFILES[name], "wk-123");
      if (name === "jitsu") expect(headers).toEqual({ "x-write-key": "wk-123" });
      else expect(headers).toEqual({ authorization: `Basic ${btoa("wk-123:")}` });
    }
  });
});

describe("short ids", () => {
  it("are 40 hex characters, the same for one event, different for another source or event", async () => {
    const key = await shortIdKey("default", "f9610795860d89fe29491846fe297bcc922e460b");
    expect(key).toMatch(/^[0-9a-f]{40}$/);
    expect(await shortIdKey("default", "f9610795860d89fe29491846fe297bcc922e460b")).toBe(key);
    expect(await shortIdKey("other", "f9610795860d89fe29491846fe297bcc922e460b")).not.toBe(key);
    expect(await shortIdKey("default", "0000000000000000000000000000000000000000")).not.toBe(key);
    // SHA-256 of "default:<id>", its first 40 hex characters.
    const digest = new Uint8Array(
      await crypto.subtle.digest(
        "SHA-256",
        new TextEncoder().encode("default:f9610795860d89fe29491846fe297bcc922e460b"),
      ),
    );
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    expect(key).toBe(hex.slice(0, 40));
  });
});

describe("a 2xx body that tells nothing", () => {
  it.each([
    ["an empty body", "  "],
    ["plain text", "OK"],
    ["JSON that is not an object", "true"],
    ["null", "null"],
    ["an object that says nothing of failure", '{"success":true}'],
  ])("%s is accepted", (_, body) => {
    expect(readSuccessBody(PROFILES.segment, body)).toEqual({ kind: "accepted" });
  });

  it("a refusal with no message gives the whole body as its detail", () => {
    expect(readSuccessBody(PROFILES.segment, '{"success":false}')).toEqual({
      kind: "refused",
      detail: '{"success":false}',
    });
    expect(readSuccessBody(PROFILES.jitsu, '{"ok":false}')).toEqual({
      kind: "refused",
      detail: '{"ok":false}',
    });
  });

  it("names each refused event by messageId where the answer does, and keeps the rest of its words", () => {
    const body = JSON.stringify({
      errors: [
        "Message ID: p.a.track: bad",
        "no id here",
        { messageId: "p.b.track", message: "too big" },
        { messageId: "p.c.track", error: "refused" },
        { messageId: 7 },
        42,
      ],
    });
    expect(readSuccessBody(PROFILES.jitsu, body)).toEqual({
      kind: "partial",
      rejected: [
        { messageId: "p.a.track", detail: "bad" },
        { messageId: undefined, detail: "no id here" },
        { messageId: "p.b.track", detail: "too big" },
        { messageId: "p.c.track", detail: "refused" },
        { messageId: undefined, detail: '{"messageId":7}' },
        { messageId: undefined, detail: "42" },
      ],
    });
  });

  it("is not read at all where the profile says a 2xx body tells nothing", () => {
    expect(readSuccessBody(PROFILES.rudderstack, '{"success":false,"errors":["x"]}')).toEqual({
      kind: "accepted",
    });
  });
});

describe("why short ids: Jitsu's rewriting of the long form", () => {
  it("cuts every call of a webhook to the same 64 characters once the source name has 17", () => {
    const uniqueId = "f9610795860d89fe29491846fe297bcc922e460b";
    const cut = (["track", "identify", "group"] as const).map((call) =>
      jitsuMessageId(messageIdFor("seventeen-chars-x", uniqueId, call)),
    );
    expect(new Set(cut).size).toBe(1);
    const short = (["track", "identify", "group"] as const).map((call) =>
      messageIdFor("seventeen-chars-x", uniqueId, call, "0".repeat(40)),
    );
    expect(new Set(short.map(jitsuMessageId)).size).toBe(3);
  });
});

describe("reading a 2xx", () => {
  it("reads Jitsu's errors by messageId, Segment's success: false as a refusal, RudderStack's OK as accepted", () => {
    const jitsu = JSON.stringify({
      ok: false,
      errors: ["Message ID: p.abc.track: invalid event"],
      receivedEvents: 2,
      okEvents: 1,
    });
    expect(readSuccessBody(PROFILES.jitsu, jitsu)).toEqual({
      kind: "partial",
      rejected: [{ messageId: "p.abc.track", detail: "invalid event" }],
    });
    expect(readSuccessBody(PROFILES.jitsu, '{"ok":true,"receivedEvents":2,"okEvents":2}')).toEqual({
      kind: "accepted",
    });
    expect(readSuccessBody(PROFILES.segment, '{"success":true}')).toEqual({ kind: "accepted" });
    expect(readSuccessBody(PROFILES.segment, '{"success":false,"message":"bad"}')).toEqual({
      kind: "refused",
      detail: "bad",
    });
    expect(readSuccessBody(PROFILES.rudderstack, "OK")).toEqual({ kind: "accepted" });
    const attempt = { ok: true as const, status: 200, body: jitsu, retryAfter: null, location: null };
    expect(classifySegmentResponse(attempt, Date.now(), PROFILES.jitsu).kind).toBe("partial");
    expect(classifySegmentResponse(attempt, Date.now(), PROFILES.rudderstack).kind).toBe("delivered");
  });
});
