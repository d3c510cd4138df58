import { vi } from "vitest";
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
