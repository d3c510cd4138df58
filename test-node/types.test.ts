/**
 * worker-configuration.d.ts is what `npm run cf-typegen` (`wrangler types`) writes from
 * wrangler.toml today: regenerated in a copy of the project, it must come out byte for byte the
 * same. The copy holds a .dev.vars and a .env with secrets, which must not reach the types
 * (secrets are typed from the settings schema, src/env.ts), so the file is the same on every
 * machine whatever local files it has.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { spawnGroup, stopGroup } from "../scripts/harness/process-group";

const ROOT = resolve(import.meta.dirname, "..");
const GENERATED = "worker-configuration.d.ts";

const running = new Set<ChildProcess>();

function npmRun(cwd: string, script: string): Promise<{ status: number; output: string }> {
  return new Promise((done, fail) => {
    const env = {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      npm_config_registry: "http://127.0.0.1:9/",
    };
    // npm, its shell and wrangler as one group, ended as a whole however the test ends.
    const child = spawnGroup("npm", ["run", "--silent", script], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk));
    child.on("error", fail);
    child.on("close", async (status) => {
      await stopGroup(child, 1_000);
      running.delete(child);
      done({ status: status ?? 1, output });
    });
  });
}

test(`${GENERATED} is current: run npm run cf-typegen when this fails`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relay-types-"));
  t.after(async () => {
    await Promise.all([...running].map((child) => stopGroup(child)));
    rmSync(dir, { recursive: true, force: true });
  });
  for (const entry of ["src", "wrangler.toml", "package.json", "tsconfig.json"])
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, ".dev.vars"), "WEBHOOK_TOKEN=local-only-token-0123456789\n");
  writeFileSync(join(dir, ".env"), "SEGMENT_WRITE_KEY=local-only-key\n");

  const run = await npmRun(dir, "cf-typegen");
  assert.equal(run.status, 0, run.output);
  const generated = readFileSync(join(dir, GENERATED), "utf8");
  assert.equal(readFileSync(join(ROOT, GENERATED), "utf8"), generated);
  assert.doesNotMatch(generated, /WEBHOOK_TOKEN|SEGMENT_WRITE_KEY/, "no local secret file reaches the types");
  assert.match(generated, /interface __BaseEnv_WranglerEnv \{[^}]*DEDUP: KVNamespace;/);
});
