import { spawnGroup, stopGroup } from "./process-group";

/** The ledger's database name, as wrangler.toml declares it. */
export const LEDGER_DATABASE = "pendo-segment-relay-ledger";

/** A local apply takes seconds; one still running after two minutes is hung, not slow. */
const MIGRATIONS_TIMEOUT_MS = 120_000;

/**
 * Applies migrations/*.sql to the local D1 database that `wrangler dev` will use (the same
 * `--persist-to` folder, or wrangler's default), as `wrangler d1 migrations apply --local` does:
 * pending ones only, recorded in the database. Rejects with wrangler's output if it fails.
 * npx and the wrangler under it run as one process group, ended as a whole on a timeout or when
 * this process ends (a synchronous spawn could be neither timed out by a test nor cleaned up).
 */
export async function applyLocalMigrations(
  options: { persistTo?: string; config?: string } = {},
): Promise<void> {
  const args = ["wrangler", "d1", "migrations", "apply", LEDGER_DATABASE, "--local"];
  if (options.persistTo) args.push("--persist-to", options.persistTo);
  if (options.config) args.push("--config", options.config);
  // No terminal on stdin: wrangler applies without asking.
  const child = spawnGroup("npx", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk));
  const timer = setTimeout(() => void stopGroup(child), MIGRATIONS_TIMEOUT_MS);
  const status = await new Promise<number | string>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? signal ?? 1));
  }).finally(() => clearTimeout(timer));
  // npx has exited; anything it left in its group goes with it.
  await stopGroup(child, 1_000);
  if (status !== 0) throw new Error(`wrangler d1 migrations apply failed (${status}):\n${output}`);
}
