import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests run inside workerd with the KV namespace and queues declared in wrangler.toml. Secrets
// are test values; RETRY_BASE_SECONDS is small so a producer-to-consumer run finishes quickly.
export const TEST_BINDINGS = {
  WEBHOOK_TOKEN: "test-webhook-token-0123456789",
  SEGMENT_WRITE_KEY: "test-write-key-abcdefghij",
  ADMIN_TOKEN: "test-admin-token-0123456789",
  ENVIRONMENT: "test",
  // The queue waits this long before redelivering a failed message: short, so tests can watch it.
  RETRY_BASE_SECONDS: "1",
  RETRY_MAX_SECONDS: "2",
  // A hung Segment is given up on after a second, so outage scenarios drain quickly.
  SEGMENT_TIMEOUT_MS: "1000",
  // Archive replays read up to now: the tests send a webhook and replay it at once.
  ARCHIVE_SETTLE_SECONDS: "0",
};

// The real migrations, applied to the test database by test/setup.ts before any test runs.
const migrations = await readD1Migrations("./migrations");

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: "./src/index.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { ...TEST_BINDINGS, TEST_MIGRATIONS: migrations },
        // Same consumers as wrangler.toml but a 1 s batch window, so producer-to-consumer tests
        // wait one second instead of five.
        queueConsumers: {
          "pendo-events": {
            maxBatchSize: 100,
            maxBatchTimeout: 1,
            maxRetries: 20,
            deadLetterQueue: "pendo-events-dlq",
          },
          "pendo-events-dlq": { maxBatchSize: 1, maxBatchTimeout: 1, maxRetries: 50 },
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    testTimeout: 30_000,
    // The console test reads style.css as text (?raw); without this vitest empties CSS imports.
    css: true,
  },
});
