/**
 * The console's script as served: src/console/client/main.ts and what it imports (the table of
 * hidden characters in src/visible.ts among them) bundled by esbuild into one minified script, so
 * no build step runs at deploy. `npm run docs` writes it into src/console/assets.generated.ts
 * with the page and style; test-node/console-assets.test.ts fails when the committed file differs.
 */
import { readFileSync } from "node:fs";
import { buildSync } from "esbuild";
import guideDisplayed from "../../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../../src/pendo/examples/visitorCreated.json";
import { renderConsoleAssets } from "./render";

export const CONSOLE_ENTRY = "src/console/client/main.ts";

export function bundleConsoleScript(): string {
  const result = buildSync({
    entryPoints: [CONSOLE_ENTRY],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    // Browsers that have <dialog> and showModal() (2022): the page needs them anyway.
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error(`esbuild wrote nothing for ${CONSOLE_ENTRY}`);
  return output.text.trimEnd();
}

export const CONSOLE_ASSETS_FILE = "src/console/assets.generated.ts";

/** src/console/assets.generated.ts as the console's sources make it now. */
export function currentConsoleAssets(): string {
  const read = (name: string) => readFileSync(`src/console/${name}`, "utf8");
  return renderConsoleAssets({
    html: read("page.html"),
    style: read("style.css"),
    script: bundleConsoleScript(),
    examples: { guideDisplayed, visitorCreated, trackEventReceived },
  });
}
