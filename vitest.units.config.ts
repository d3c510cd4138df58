import { defineConfig } from "vitest/config";

// The pure tests, in Node rather than workerd: what `npm run mutate` (stryker.config.json) runs
// against each mutant, fast enough to try every one. `npm test` runs them in workerd with the rest.
export default defineConfig({
  test: {
    include: [
      "test/units.test.ts",
      "test/pure.test.ts",
      "test/transform.test.ts",
      "test/mapping.test.ts",
      "test/alert-text.test.ts",
      "test/json.test.ts",
      "test/docs.test.ts",
      "test/profiles.test.ts",
      "test/standin.test.ts",
    ],
    environment: "node",
  },
});
