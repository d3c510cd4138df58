import { spawnSync } from "node:child_process";

/** The ledger's database name, as wrangler.toml declares it. */
export const LEDGER_DATABASE = "pendo-segment-relay-ledger";

/**
 * Applies migrations/*.sql to the local D1 database that `wrangler dev` will use (the same
 * `--persist-to` folder, or wrangler's default), as `wrangler d1 migrations apply --local` does:
 * pending ones only, recorded in the database. Throws with wrangler's output if it fails.
 */
export function applyLocalMigrations(options: { persistTo?: string; config?: string } = {}): void {
  const args = ["wrangler", "d1", "migrations", "apply", LEDGER_DATABASE, "--local"];
  if (options.persistTo) args.push("--persist-to", options.persistTo);
  if (options.config) args.push("--config", options.config);
  // No terminal on stdin: wrangler applies without asking.
  const result = spawnSync("npx", args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`wrangler d1 migrations apply failed:\n${result.stdout}\n${result.stderr}`);
  }
}
