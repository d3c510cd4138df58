import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { experimental_readRawConfig } from "wrangler";
import guideDisplayed from "../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../src/pendo/examples/visitorCreated.json";
import { renderConsoleAssets } from "./console/render";
import { cloudflareBlock, withCloudflareBlock } from "./docs/cloudflare";
import { GENERATED_FILES, withGeneratedSections } from "./docs/render";

const migrations = readdirSync("migrations")
  .filter((name) => name.endsWith(".sql"))
  .sort()
  .map((name) => readFileSync(`migrations/${name}`, "utf8"));
for (const file of Object.keys(GENERATED_FILES)) {
  writeFileSync(file, withGeneratedSections(file, readFileSync(file, "utf8"), { migrations }));
}
const read = (name: string) => readFileSync(`src/console/${name}`, "utf8");
writeFileSync(
  "src/console/assets.generated.ts",
  renderConsoleAssets({
    html: read("page.html"),
    style: read("style.css"),
    script: read("client.js"),
    examples: { guideDisplayed, visitorCreated, trackEventReceived },
  }),
);
// The Deploy to Cloudflare button's descriptions, from wrangler.toml as wrangler reads it.
const { rawConfig } = experimental_readRawConfig({ config: "wrangler.toml" });
writeFileSync(
  "package.json",
  withCloudflareBlock(readFileSync("package.json", "utf8"), cloudflareBlock(rawConfig)),
);
console.log(
  `rewrote the generated sections of ${Object.keys(GENERATED_FILES).join(", ")}, src/console/assets.generated.ts and package.json's cloudflare block`,
);
