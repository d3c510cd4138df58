/**
 * Builds the deployable bundle (`wrangler deploy --dry-run`, minified as deployed) and reports its
 * size, raw and gzip. Fails above 72 KiB gzip, operator console included: a small bundle is a
 * fast cold start, and the free plan's 3 MB is far away. The budget was 48 KiB until the relay
 * took on R2 records, outage mode, the archive and its replay jobs (about 15 KiB of it, measured
 * with the Archive section in the console: 63.3 KiB); it still catches a dependency or an asset
 * pulled in by mistake, which is what a budget is for.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export const BUNDLE_BUDGET_GZIP = 72 * 1024;

export function measureBundle(): { raw: number; gzip: number } {
  const outdir = mkdtempSync(join(tmpdir(), "relay-bundle-"));
  try {
    execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], { stdio: "pipe" });
    const code = readFileSync(join(outdir, "index.js"));
    return { raw: code.length, gzip: gzipSync(code, { level: 9 }).length };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("bundle-size.ts")) {
  const { raw, gzip } = measureBundle();
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(
    `bundle: ${kib(raw)} raw, ${kib(gzip)} gzip (budget ${kib(BUNDLE_BUDGET_GZIP)} gzip; free plan 3 MB)`,
  );
  if (gzip > BUNDLE_BUDGET_GZIP) process.exit(1);
}
