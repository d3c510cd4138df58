import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { CONSOLE_ASSETS_FILE, currentConsoleAssets } from "./console/bundle";
import { GENERATED_FILES, withGeneratedSections } from "./docs/render";

const migrations = readdirSync("migrations")
  .filter((name) => name.endsWith(".sql"))
  .sort()
  .map((name) => readFileSync(`migrations/${name}`, "utf8"));
for (const file of Object.keys(GENERATED_FILES)) {
  writeFileSync(file, withGeneratedSections(file, readFileSync(file, "utf8"), { migrations }));
}
writeFileSync(CONSOLE_ASSETS_FILE, currentConsoleAssets());
console.log(
  `rewrote the generated sections of ${Object.keys(GENERATED_FILES).join(", ")} and ${CONSOLE_ASSETS_FILE}`,
);
