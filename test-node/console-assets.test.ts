/**
 * src/console/assets.generated.ts is what the console's sources make now: the page, the style,
 * and the script as esbuild bundles src/console/client/ (run `npm run docs` when this fails).
 * Here rather than in test/docs.test.ts because esbuild runs in Node, not in workerd.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { CONSOLE_ASSETS_FILE, currentConsoleAssets } from "../scripts/console/bundle";

test("src/console/assets.generated.ts holds the console's current sources, bundled", () => {
  assert.equal(readFileSync(CONSOLE_ASSETS_FILE, "utf8"), currentConsoleAssets());
});
