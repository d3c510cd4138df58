import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RELAY_VERSION } from "../src/version";
import { PUBLISHED, TOKEN, WRITE_KEY, withUniqueId } from "./helpers";
import { useSegmentStandIn } from "./standin";

afterEach(() => {
  vi.restoreAllMocks();
});

/** Through the Worker's real entry point: the real queue binding carries it to the consumer. */
function send(body: unknown) {
  return exports.default.fetch(
    new Request(`https://relay.test/pendo?token=${TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

const context = (webhook: { uniqueId: string; event: string }) => ({
  library: { name: "pendo-segment-relay", version: RELAY_VERSION },
  userAgent: PUBLISHED.guideDisplayed.userAgent,
  groupId: "Webhook Account",
  pendo: {
    event: webhook.event,
    eventId: webhook.uniqueId,
    source: "default",
    uniqueId: webhook.uniqueId,
    app: { id: -323232, name: "test_application", platform: "web" },
    subscription: {
      id: (webhook as { subscription?: { id: number } }).subscription?.id,
      name: "test_application",
    },
  },
});

describe("published examples, webhook to Segment", () => {
  it("delivers guideDisplayed, visitorCreated and trackEventReceived as the exact Segment calls", async () => {
    const { standIn, spy } = useSegmentStandIn();
    const guide = withUniqueId(PUBLISHED.guideDisplayed);
    const visitor = withUniqueId(PUBLISHED.visitorCreated);
    const track = withUniqueId(PUBLISHED.trackEventReceived);
    for (const webhook of [guide, visitor, track]) expect((await send(webhook)).status).toBe(202);

    await vi.waitUntil(() => standIn.received.length >= 4, { timeout: 20_000, interval: 50 });
    const user = { userId: "Webhook Visitor" };
    const expected = [
      {
        type: "track",
        event: "guideDisplayed",
        properties: PUBLISHED.guideDisplayed.properties,
        messageId: `pendo:default:${guide.uniqueId}:track`,
        timestamp: "2021-07-20T17:57:56.000Z",
        ...user,
        context: context(guide),
      },
      {
        type: "track",
        event: "visitorCreated",
        properties: PUBLISHED.visitorCreated.properties,
        messageId: `pendo:default:${visitor.uniqueId}:track`,
        timestamp: "2021-07-20T17:57:55.000Z",
        ...user,
        context: context(visitor),
      },
      {
        type: "identify",
        traits: { browserName: "Chrome", browserVersion: "91.0.4472", sampleGroup: 17 },
        messageId: `pendo:default:${visitor.uniqueId}:identify`,
        timestamp: "2021-07-20T17:57:55.000Z",
        ...user,
        context: context(visitor),
      },
      {
        type: "track",
        event: "trackEventReceived",
        properties: {
          eventProperties: { fromTier: "basic", toTier: "pro" },
          name: "Account Upgraded",
          source: "web",
        },
        messageId: `pendo:default:${track.uniqueId}:track`,
        timestamp: "2021-07-20T18:02:24.000Z",
        ...user,
        context: context(track),
      },
    ];
    const byMessageId = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      String(a.messageId).localeCompare(String(b.messageId));
    expect(standIn.received.map((event) => event.call).sort(byMessageId)).toEqual(expected.sort(byMessageId));
    // The queue batched all three webhooks into one Segment request (one consumer batch).
    expect(standIn.requests).toHaveLength(1);
    const init = spy.mock.calls[0]?.[1] as RequestInit;
    expect(new Headers(init.headers).get("authorization")).toBe(`Basic ${btoa(`${WRITE_KEY}:`)}`);
    expect(standIn.received.every((event) => event.writeKey === WRITE_KEY)).toBe(true);
  });

  it("delivers a webhook sent twice as one Segment event", async () => {
    const { standIn } = useSegmentStandIn();
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    expect((await send(webhook)).status).toBe(202);
    expect((await send(webhook)).status).toBe(200);
    await vi.waitUntil(() => standIn.received.length >= 1, { timeout: 20_000, interval: 50 });
    // Give a second delivery, if there were one, the time of another consumer batch.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(standIn.received.map((event) => event.call.messageId)).toEqual([
      `pendo:default:${webhook.uniqueId}:track`,
    ]);
    expect(standIn.duplicates).toBe(0);
  });

  it("retries through the real queue after a Segment outage", async () => {
    const { standIn } = useSegmentStandIn();
    standIn.failNext(503);
    const webhook = withUniqueId(PUBLISHED.guideDisplayed);
    // A 1 s base keeps the queue's retry delay short enough to wait for here.
    const response = await send(webhook);
    expect(response.status).toBe(202);
    await vi.waitUntil(() => standIn.requests.length >= 1, { timeout: 20_000, interval: 50 });
    expect(standIn.requests[0]?.status).toBe(503);
    expect(env.RETRY_BASE_SECONDS).toBe("1");
    await vi.waitUntil(() => standIn.received.length >= 1, { timeout: 20_000, interval: 100 });
    expect(standIn.received[0]?.call.messageId).toBe(`pendo:default:${webhook.uniqueId}:track`);
  });
});
