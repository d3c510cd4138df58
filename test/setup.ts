import { beforeEach, vi } from "vitest";

// Nothing outside this machine is reachable, and no test may try: outbound fetch fails unless a
// test routes it to the Segment stand-in (test/standin.ts).
beforeEach(() => {
  vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("outbound network is disabled in tests"));
});
