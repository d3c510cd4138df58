import { vi } from "vitest";
import type { AlertBody } from "../src/alerts/alert";
import { SegmentStandIn } from "../standin/segment";
import { WRITE_KEY } from "./helpers";

/** Routes the Worker's outbound fetch to a Segment stand-in; nothing else is reachable. */
export function useSegmentStandIn(standIn = new SegmentStandIn([WRITE_KEY])) {
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init);
    const url = new URL(request.url);
    if (url.origin !== "https://api.segment.io") throw new TypeError(`unexpected fetch to ${url.origin}`);
    return standIn.handle(request);
  });
  return { standIn, spy };
}

/** An alert as its receiver got it. */
export interface ReceivedAlert {
  headers: Headers;
  raw: string;
  body: AlertBody;
}

/**
 * Segment is the stand-in; the alert receiver at `url` records what it is sent and answers
 * `receiver.status` (or fails to connect, with "down"). Anything else is unreachable.
 */
export function useAlertReceiver(
  url: string,
  receiverStatus: number | "down" = 200,
  standIn = new SegmentStandIn([WRITE_KEY]),
) {
  const alerts: ReceivedAlert[] = [];
  const receiver = { status: receiverStatus };
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init);
    if (request.url === url) {
      if (receiver.status === "down") throw new TypeError("connection refused");
      const raw = await request.text();
      alerts.push({ headers: request.headers, raw, body: JSON.parse(raw) });
      return new Response("ok", { status: receiver.status });
    }
    if (new URL(request.url).origin === "https://api.segment.io") return standIn.handle(request);
    throw new TypeError(`unexpected fetch to ${request.url}`);
  });
  return { standIn, alerts, receiver };
}
