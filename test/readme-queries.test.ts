import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import readme from "../README.md?raw";
import { countStatement } from "../src/ledger/counts";
import { deadLetterOf } from "../src/ledger/records";
import { storeRecords } from "../src/records/store";

// In workerd, against the real D1 binding (test/docs.test.ts, which needs no runtime, runs in Node too).
describe("the README's ledger queries", () => {
  const queries = [
    ...readme.matchAll(/wrangler d1 execute pendo-segment-relay-ledger --remote --command "([^"]+)"/g),
  ].map((match) => match[1] as string);

  it("are three, as the README promises", () => {
    expect(queries).toHaveLength(3);
  });

  // Run against the real schema, with rows they must find: a query that no longer fits the
  // migrations fails here, not in an operator's terminal.
  it.each(queries.map((sql) => [sql.slice(0, 60), sql] as const))(
    "%s… runs and finds its rows",
    async (_name, sql) => {
      const now = Date.now();
      const letter = deadLetterOf(
        {
          reason: "segment-refused",
          source: "docs",
          eventId: "f961ab36-0000-uniqueId",
          event: "guideDisplayed",
          attempts: 1,
          lastStatus: 401,
          detail: "seeded",
          receivedAt: now,
        },
        now,
      );
      await storeRecords(env.ARCHIVE, env.LEDGER, [letter], { now });
      const yesterday = now - 86_400_000;
      await countStatement(env.LEDGER, [
        { source: "docs", event: "guideDisplayed", outcome: "delivered", at: yesterday },
      ])?.run();
      const { results } = await env.LEDGER.prepare(sql).all();
      expect(results.length).toBeGreaterThan(0);
    },
  );
});
