import { defineConfig } from "vitest/config";

// The pure tests, in Node rather than workerd: what `npm run mutate` (stryker.config.json) runs
// against each mutant, fast enough to try every one. `npm test` runs them in workerd with the rest.
export default defineConfig({
  test: {
    include: ["test/units.test.ts", "test/pure.test.ts"],
    environment: "node",
  },
});
