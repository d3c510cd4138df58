import { readFileSync, writeFileSync } from "node:fs";
import { renderMapping, renderOperations, withConfigTable } from "./docs/render";

writeFileSync("docs/mapping.md", renderMapping());
writeFileSync("docs/operations.md", renderOperations());
writeFileSync("README.md", withConfigTable(readFileSync("README.md", "utf8")));
console.log("wrote docs/mapping.md, docs/operations.md and the configuration table in README.md");
