import { describe, expect, it } from "vitest";
import mapping from "../docs/mapping.md?raw";
import operations from "../docs/operations.md?raw";
import readme from "../README.md?raw";
import { renderMapping, renderOperations, withConfigTable } from "../scripts/docs/render";
import { settingDefaults } from "../src/config";
import { CATALOG } from "../src/pendo/catalog";
import wranglerToml from "../wrangler.toml?raw";

describe("generated docs are current (run `npm run docs` when this fails)", () => {
  it("docs/mapping.md matches the event catalog", () => {
    expect(mapping).toBe(renderMapping());
  });
  it("docs/operations.md matches the retry schedule and KV layout", () => {
    expect(operations).toBe(renderOperations());
  });
  it("README.md's configuration table matches the settings schema", () => {
    expect(readme).toBe(withConfigTable(readme));
  });
  it("lists every catalog event in docs/mapping.md", () => {
    for (const entry of CATALOG) expect(mapping).toContain(`| \`${entry.name}\` |`);
  });
});

describe("wrangler.toml agrees with the code", () => {
  // The one place a number is held twice: Queues reads max_retries, the consumer MAX_RETRIES.
  it("MAX_RETRIES equals the pendo-events consumer's max_retries", () => {
    const consumer = wranglerToml
      .split("[[queues.consumers]]")
      .slice(1) // the part before the first consumer holds the producer, also on pendo-events
      .find((block) => /queue = "pendo-events"\n/.test(block));
    const maxRetries = Number(/max_retries = (\d+)/.exec(consumer ?? "")?.[1]);
    expect(maxRetries).toBe((settingDefaults() as { MAX_RETRIES: number }).MAX_RETRIES);
    expect(wranglerToml).toContain(`MAX_RETRIES = "${maxRetries}"`);
  });

  it("declares the bindings the code uses", () => {
    expect(wranglerToml).toMatch(/binding = "DEDUP"/);
    expect(wranglerToml).toMatch(/binding = "EVENTS"\nqueue = "pendo-events"/);
    expect(wranglerToml).toMatch(/dead_letter_queue = "pendo-events-dlq"/);
    expect(wranglerToml).toMatch(/\[observability\]\nenabled = true/);
  });
});
