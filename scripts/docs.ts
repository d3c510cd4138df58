import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import guideDisplayed from "../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../src/pendo/examples/visitorCreated.json";
import { renderConsoleAssets } from "./console/render";
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
console.log(
  `rewrote the generated sections of ${Object.keys(GENERATED_FILES).join(", ")} and src/console/assets.generated.ts`,
);
