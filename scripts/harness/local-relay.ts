/**
 * Starts what `npm start` starts, for tests, benchmarks and the chaos run: the Segment stand-in
 * server and the real `wrangler dev` (local KV and queues, fresh state in a temp folder) pointed
 * at it, on free loopback ports. `stop()` ends both and removes the state.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DestinationName } from "../../src/destination/profiles";
import { type RunningStandIn, startStandInServer } from "../../standin/server";
import { applyLocalMigrations } from "./migrations";
import { spawnGroup, stopGroup } from "./process-group";

export const LOCAL_TOKEN = "local-harness-token-0123456789";
export const LOCAL_ADMIN_TOKEN = "local-harness-admin-0123456789";
export const LOCAL_WRITE_KEY = "local-harness-write-key";

export interface LocalRelay {
  url: string;
  standIn: RunningStandIn;
  output: () => string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export interface LocalRelayOptions {
  /** Another entry module for the same bindings (the benchmark's counting wrapper). */
  main?: string;
  /** The pendo-events consumer's max_batch_timeout, if not wrangler.toml's. */
  maxBatchTimeout?: number;
  /** The destination profile the stand-in plays and the relay is configured for (default segment). */
  destination?: DestinationName;
}

export async function startLocalRelay(
  vars: Record<string, string> = {},
  options: LocalRelayOptions = {},
): Promise<LocalRelay> {
  const destination = options.destination ?? "segment";
  const standIn = await startStandInServer({
    writeKeys: [LOCAL_WRITE_KEY],
    print: false,
    keep: 20_000,
    destination,
  });
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "relay-local-"));
  const allVars = {
    WEBHOOK_TOKEN: LOCAL_TOKEN,
    ADMIN_TOKEN: LOCAL_ADMIN_TOKEN,
    SEGMENT_WRITE_KEY: LOCAL_WRITE_KEY,
    DESTINATION: destination,
    DESTINATION_URL: standIn.url,
    ENVIRONMENT: "local-harness",
    ...vars,
  };
  const args = ["wrangler", "dev", ...(options.main ? [options.main] : [])];
  args.push("--ip", "127.0.0.1", "--port", String(port), "--persist-to", state);
  let config: string | undefined;
  if (options.maxBatchTimeout !== undefined) {
    // A copy of wrangler.toml beside it (paths in it are relative to it), with the window changed.
    config = `.wrangler-bench-${port}.toml`;
    const toml = readFileSync("wrangler.toml", "utf8").replace(
      /(queue = "pendo-events"\nmax_batch_size = \d+\nmax_batch_timeout = )\d+/,
      `$1${options.maxBatchTimeout}`,
    );
    writeFileSync(config, toml);
    args.push("--config", config);
  }
  args.push("--show-interactive-dev-session=false");
  // The ledger's schema, in the same local state wrangler dev is about to use.
  try {
    await applyLocalMigrations({ persistTo: state, config });
  } catch (error) {
    await standIn.close();
    rmSync(state, { recursive: true, force: true });
    if (config) rmSync(config, { force: true });
    throw error;
  }
  for (const [key, value] of Object.entries(allVars)) args.push("--var", `${key}:${value}`);
  // npx, wrangler and workerd as one process group: stop() ends all of them, not just npx.
  const wrangler = spawnGroup("npx", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  // Bounded: a long run logs a lot, and only the tail helps when something fails.
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  wrangler.stdout?.on("data", keep);
  wrangler.stderr?.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    // The whole group, even when npx has gone already (its workerd may not have). workerd may
    // still be flushing KV writes: it gets 10 s to exit before SIGKILL and before its state is removed.
    await stopGroup(wrangler, 10_000);
    await standIn.close();
    rmSync(state, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    if (config) rmSync(config, { force: true });
  };
  try {
    await waitFor(
      "wrangler dev to answer /health",
      async () => ((await fetch(`${url}/health`)).ok ? true : undefined),
      90_000,
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${output.slice(-3_000)}`);
  }
  return { url, standIn, output: () => output, stop };
}
