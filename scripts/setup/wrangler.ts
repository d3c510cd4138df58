/**
 * Running the project's wrangler from setup and deploy: every call's exit status is checked, and
 * a failure names the call. WRANGLER_BIN picks another wrangler executable (the sequence test
 * uses it to try a newer wrangler).
 */
import { spawn } from "node:child_process";

export interface WranglerResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class WranglerCallFailed extends Error {
  constructor(
    readonly call: string,
    readonly result: WranglerResult,
  ) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-12).join("\n    ");
    super(`\`${call}\` failed (exit ${result.status})${detail ? `:\n    ${detail}` : ""}`);
  }
}

export interface WranglerCall {
  /** Written to wrangler's stdin, then closed; without it stdin is empty (never the terminal). */
  input?: string;
  /** Let wrangler talk to the terminal (its prompts and tables); nothing is captured. */
  inherit?: boolean;
}

/** Runs wrangler and resolves with what it printed, whatever its exit status. */
export function runWrangler(args: readonly string[], call: WranglerCall = {}): Promise<WranglerResult> {
  const bin = process.env.WRANGLER_BIN || "node_modules/.bin/wrangler";
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: call.inherit ? "inherit" : ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.stdin?.end(call.input ?? "");
    child.on("error", reject);
    child.on("close", (status) => resolve({ status: status ?? 1, stdout, stderr }));
  });
}

/** Runs wrangler and resolves with its stdout; rejects with WranglerCallFailed on any non-zero exit. */
export async function wrangler(args: readonly string[], call: WranglerCall = {}): Promise<string> {
  const result = await runWrangler(args, call);
  if (result.status !== 0) throw new WranglerCallFailed(`wrangler ${args.join(" ")}`, result);
  return result.stdout;
}
