import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, vi } from "vitest";

// The ledger's real schema: migrations/*.sql, as `wrangler d1 migrations apply` runs them.
beforeAll(async () => {
  await applyD1Migrations(env.LEDGER, env.TEST_MIGRATIONS);
});

// Nothing outside this machine is reachable, and no test may try: outbound fetch fails unless a
// test routes it to the Segment stand-in (test/standin.ts).
beforeEach(() => {
  vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("outbound network is disabled in tests"));
});
