import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { experimental_readRawConfig } from "wrangler";
import { CONSOLE_ASSETS_FILE, currentConsoleAssets } from "./console/bundle";
import { cloudflareBlock, withCloudflareBlock } from "./docs/cloudflare";
import { GENERATED_FILES, withGeneratedSections } from "./docs/render";

const migrations = readdirSync("migrations")
  .filter((name) => name.endsWith(".sql"))
  .sort()
  .map((name) => readFileSync(`migrations/${name}`, "utf8"));
for (const file of Object.keys(GENERATED_FILES)) {
  writeFileSync(file, withGeneratedSections(file, readFileSync(file, "utf8"), { migrations }));
}
writeFileSync(CONSOLE_ASSETS_FILE, currentConsoleAssets());
// The Deploy to Cloudflare button's descriptions, from wrangler.toml as wrangler reads it.
const { rawConfig } = experimental_readRawConfig({ config: "wrangler.toml" });
writeFileSync(
  "package.json",
  withCloudflareBlock(readFileSync("package.json", "utf8"), cloudflareBlock(rawConfig)),
);
console.log(
  `rewrote the generated sections of ${Object.keys(GENERATED_FILES).join(", ")}, ${CONSOLE_ASSETS_FILE} and package.json's cloudflare block`,
);
