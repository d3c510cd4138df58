import { describe, expect, it } from "vitest";
import mapping from "../docs/mapping.md?raw";
import operations from "../docs/operations.md?raw";
import reliability from "../docs/reliability.md?raw";
import readme from "../README.md?raw";
import { GENERATED_FILES, withGeneratedSections } from "../scripts/docs/render";
import { settingDefaults } from "../src/config";
import {
  DLQ_MAX_RETRIES,
  dlqSchedule,
  SHORTEST_QUEUE_RETENTION_SECONDS,
} from "../src/delivery/deadLetterConsumer";
import { CATALOG } from "../src/pendo/catalog";
import wranglerToml from "../wrangler.toml?raw";

// Every migration, in the order wrangler applies them (file name order), as the docs render them.
const MIGRATIONS = Object.entries(
  import.meta.glob<string>("../migrations/*.sql", { query: "?raw", import: "default", eager: true }),
)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([, sql]) => sql);

const FILES: Record<string, string> = {
  "README.md": readme,
  "docs/mapping.md": mapping,
  "docs/operations.md": operations,
  "docs/reliability.md": reliability,
};

describe("generated docs are current (run `npm run docs` when this fails)", () => {
  it.each(Object.keys(GENERATED_FILES))("%s", (file) => {
    const text = FILES[file] as string;
    expect(text).toBe(withGeneratedSections(file, text, { migrations: MIGRATIONS }));
  });

  it("lists every catalog event in docs/mapping.md", () => {
    for (const entry of CATALOG) expect(mapping).toContain(`| \`${entry.name}\` |`);
  });
});

/** The `[[queues.consumers]]` block of one queue in wrangler.toml. */
function consumerBlock(queue: string): string {
  return (
    wranglerToml
      .split("[[queues.consumers]]")
      .slice(1) // the part before the first consumer holds the producer, also on pendo-events
      .find((block) => new RegExp(`^queue = "${queue}"$`, "m").test(block)) ?? ""
  );
}
const maxRetriesOf = (queue: string) => Number(/max_retries = (\d+)/.exec(consumerBlock(queue))?.[1]);

describe("wrangler.toml agrees with the code", () => {
  // Numbers held twice: Queues reads max_retries, the consumers the constants.
  it("MAX_RETRIES equals the pendo-events consumer's max_retries", () => {
    const maxRetries = maxRetriesOf("pendo-events");
    expect(maxRetries).toBe((settingDefaults() as { MAX_RETRIES: number }).MAX_RETRIES);
    expect(wranglerToml).toContain(`MAX_RETRIES = "${maxRetries}"`);
  });

  it("DLQ_MAX_RETRIES equals the dead-letter queue consumer's max_retries, and fits the retention", () => {
    expect(maxRetriesOf("pendo-events-dlq")).toBe(DLQ_MAX_RETRIES);
    expect(dlqSchedule().at(-1)?.cumulativeMax).toBeLessThan(SHORTEST_QUEUE_RETENTION_SECONDS);
  });

  it("declares the bindings the code uses", () => {
    expect(wranglerToml).toMatch(/binding = "DEDUP"/);
    expect(wranglerToml).toMatch(/binding = "EVENTS"\nqueue = "pendo-events"/);
    expect(wranglerToml).toMatch(/dead_letter_queue = "pendo-events-dlq"/);
    expect(wranglerToml).toMatch(/\[observability\]\nenabled = true/);
    expect(wranglerToml).toMatch(/binding = "LEDGER"\ndatabase_name = "pendo-segment-relay-ledger"/);
    expect(wranglerToml).toMatch(/migrations_dir = "migrations"/);
    expect(wranglerToml).toMatch(/crons = \["\*\/5 \* \* \* \*"\]/);
  });
});
