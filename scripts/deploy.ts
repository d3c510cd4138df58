/**
 * `npm run deploy`: refuse while wrangler.toml still holds a placeholder id (the API would refuse
 * the upload anyway, less clearly), apply pending D1 migrations remotely, then `wrangler deploy`.
 * Migrations go first so the new code never meets an older schema (so a migration must keep the
 * code already running working). Arguments after `--` go to `wrangler deploy`.
 */
import { readFileSync } from "node:fs";
import { D1_BINDING, placeholderBindings } from "./setup/config";
import { wrangler } from "./setup/wrangler";

async function main() {
  const placeholders = placeholderBindings(readFileSync("wrangler.toml", "utf8"));
  if (placeholders.length > 0)
    throw new Error(
      `wrangler.toml still holds a placeholder id for the ${placeholders.join(" and the ")}: run npm run setup first.`,
    );
  console.log(`▸ D1 migrations (${D1_BINDING}, remote)`);
  await wrangler(["d1", "migrations", "apply", D1_BINDING, "--remote"], { inherit: true });
  console.log("\n▸ wrangler deploy");
  await wrangler(["deploy", ...process.argv.slice(2)], { inherit: true });
}

main().catch((error: unknown) => {
  console.error(`\ndeploy stopped: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
