import { readFileSync, writeFileSync } from "node:fs";
import { GENERATED_FILES, withGeneratedSections } from "./docs/render";

for (const file of Object.keys(GENERATED_FILES)) {
  writeFileSync(file, withGeneratedSections(file, readFileSync(file, "utf8")));
}
console.log(`rewrote the generated sections of ${Object.keys(GENERATED_FILES).join(", ")}`);
