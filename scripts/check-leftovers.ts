/**
 * Fails a test run that leaves a process running (issue 27: wrangler processes of the deploy test
 * found alive hours after CI, orphaned to init, waiting on a Cloudflare API stand-in that was gone).
 *
 *   tsx scripts/check-leftovers.ts [--settle <ms>] <command…>
 *       Runs the command (`npm run test:node` runs `tsx --test test-node/*.test.ts` this way) with
 *       RELAY_TEST_RUN=<a fresh id> in its environment, then looks for the run's processes still
 *       alive. Any found are named and killed, and the exit status is 1; else it is the command's.
 *   tsx scripts/check-leftovers.ts --run <id> [--settle <ms>]
 *       Only looks, for processes carrying RELAY_TEST_RUN=<id>, and exits 1 naming them.
 *
 * Which processes are the run's, read from /proc (no dependency), either of:
 *   1. Its environment (/proc/<pid>/environ) holds RELAY_TEST_RUN=<id>. Every process inherits its
 *      parent's environment, so everything the tests start (npm, tsx, wrangler, workerd, Chromium)
 *      carries the id, and keeps it when orphaned: reparented to init it has no ancestry to the run
 *      left, and `detached: true` gave it a session of its own, so neither the parent chain nor the
 *      session could find it. The id is random per run: a `wrangler dev` in another terminal (no
 *      marker) or another checkout's CI run at the same time (another id) is never this run's. A
 *      process can only carry the id by descending from the run, so no start-time test is needed
 *      (and none could tell a developer's wrangler started mid-run from the run's own).
 *   2. Command mode only, a backstop for a test that builds a child's environment from scratch
 *      and so drops the marker (tests should pass it on: markedEnv): it is in this process's
 *      process group, which a child not started `detached` keeps when orphaned; it started after
 *      this process (/proc/<pid>/stat: pgrp, and starttime in ticks since boot, compared as they
 *      are); it carries no other run's id; and it is an orphan: its parent chain reaches init
 *      without passing this process or an ancestor. That rules out this process's own helpers
 *      (tsx's esbuild service) and what the shell around `npm test` starts beside it in the same
 *      group (a `sleep`, a `tee`). Another terminal's processes are in another session, so in
 *      another group. An orphan adopted by a subreaper among the ancestors is missed. Without this
 *      rule, the deploy test as it was before issue 27 (its environment built from scratch, its npm
 *      killed alone) left `wrangler kv namespace list`, `d1 list` and `queues info` orphaned and
 *      the check saw nothing; with it, the check names all eight processes.
 * Every such process counts, whatever its name: a leftover tsx or Chromium leaks as a leftover
 * wrangler or workerd does. This process and its ancestors are never counted (they may carry the
 * marker). Linux only; without /proc the check says so and passes.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** The environment variable that marks every process of a test run. */
export const RUN_MARKER = "RELAY_TEST_RUN";

/** The marker of the current run, for a child given an environment built from scratch. */
export function markedEnv(): Record<string, string> {
  const run = process.env[RUN_MARKER];
  return run ? { [RUN_MARKER]: run } : {};
}

/** What makes a process the run's: its marker, and in command mode the runner's group too. */
export interface RunScope {
  run: string;
  group?: { pgrp: number; sinceTicks: number };
}

export interface Leftover {
  pid: number;
  ppid: number;
  /** Why it is the run's. */
  by: "marker" | "process group";
  command: string;
}

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  startTicks: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch {
    // Gone meanwhile (ENOENT, ESRCH) or another user's (EACCES): not this run's either way.
    return undefined;
  }
}

/** /proc/<pid>/stat (proc(5)): `pid (comm) state ppid pgrp session … starttime …`; comm may hold ")". */
function procStat(pid: number | "self"): ProcStat | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // Fields 3, 4, 5 and 22 of proc(5), counted from 1 at pid.
  return {
    state: fields[0] ?? "",
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTicks: Number(fields[19]),
  };
}

/** This process and its ancestors: the check itself may carry the marker it looks for. */
function ancestry(pid: number): Set<number> {
  const chain = new Set<number>();
  for (let current = pid; current > 1 && !chain.has(current); current = procStat(current)?.ppid ?? 0)
    chain.add(current);
  return chain;
}

/**
 * Whether `pid` was orphaned: its parent chain reaches init without passing this process or one of
 * its ancestors. The command has exited by now, so what still hangs below this process is its own
 * (tsx's esbuild service), and what hangs below an ancestor was started beside it.
 */
function orphaned(pid: number, ancestors: Set<number>): boolean {
  const seen = new Set<number>();
  for (let current = pid; !seen.has(current); ) {
    seen.add(current);
    const parent = procStat(current)?.ppid ?? 0;
    if (ancestors.has(parent)) return false;
    if (parent <= 1) return true;
    current = parent;
  }
  return false;
}

/** The run's processes alive now (see the top of this file), this process's ancestry aside. */
export function runProcesses({ run, group }: RunScope): Leftover[] {
  const marker = `${RUN_MARKER}=${run}`;
  const excluded = ancestry(process.pid);
  const found: Leftover[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (excluded.has(pid)) continue;
    const stat = procStat(pid);
    // A zombie has ended already; only its parent's wait() is missing.
    if (!stat || stat.state === "Z") continue;
    const runMarker = read(`/proc/${pid}/environ`)
      ?.split("\0")
      .find((variable) => variable.startsWith(`${RUN_MARKER}=`));
    const marked = runMarker === marker;
    // Another run's marker: that run's, even in this group (two runs started side by side by a
    // script without job control share one).
    const grouped =
      runMarker === undefined &&
      group !== undefined &&
      stat.pgrp === group.pgrp &&
      stat.startTicks >= group.sinceTicks &&
      orphaned(pid, excluded);
    if (!marked && !grouped) continue;
    const command = (read(`/proc/${pid}/cmdline`) ?? "").split("\0").filter(Boolean).join(" ");
    found.push({ pid, ppid: stat.ppid, by: marked ? "marker" : "process group", command });
  }
  return found;
}

/**
 * The run's processes still alive after up to `settleMs`: a group sent SIGTERM as the last test
 * ended may need a moment to go (workerd flushes its state), and is not a leak.
 */
export async function leftovers(scope: RunScope, settleMs: number): Promise<Leftover[]> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const found = runProcesses(scope);
    if (found.length === 0 || Date.now() >= deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export function describeLeftovers(run: string, found: readonly Leftover[]): string {
  const lines = found.map(
    ({ pid, ppid, by, command }) =>
      `  pid ${pid} (parent ${ppid}${ppid === 1 ? ", orphaned" : ""}; by ${by}): ${command.slice(0, 300)}`,
  );
  return [`${found.length} process(es) of this run (${RUN_MARKER}=${run}) still running:`, ...lines].join(
    "\n",
  );
}

/** The harness gives workerd 10 s to flush and exit after SIGTERM; this waits a little longer. */
const SETTLE_MS = 12_000;
const USAGE = "usage: check-leftovers.ts [--settle <ms>] <command…> | --run <id> [--settle <ms>]";

async function main(argv: string[]): Promise<number> {
  let settleMs = SETTLE_MS;
  let run: string | undefined;
  while (argv[0] === "--settle" || argv[0] === "--run") {
    const [option, value] = argv.splice(0, 2);
    if (value === undefined) throw new Error(USAGE);
    if (option === "--settle") settleMs = Number(value);
    else run = value;
  }
  const procAvailable = existsSync("/proc/self/environ");

  if (run !== undefined) {
    if (!procAvailable) return 0;
    const found = await leftovers({ run }, settleMs);
    if (found.length === 0) return 0;
    console.error(`check-leftovers: ${describeLeftovers(run, found)}`);
    return 1;
  }

  const [command, ...args] = argv;
  if (!command) throw new Error(USAGE);
  run = randomUUID();
  const self = procStat("self");
  const child = spawn(command, args, { stdio: "inherit", env: { ...process.env, [RUN_MARKER]: run } });
  // Ctrl-C reaches the child from the terminal; a signal sent to this process alone is passed on.
  // Either way this process stays, to check what the child leaves.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => child.kill(signal));
  const status = await new Promise<number>((resolve) => {
    child.on("error", (error) => {
      console.error(`check-leftovers: could not run ${command}: ${error.message}`);
      resolve(1);
    });
    child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  if (!procAvailable || !self) {
    console.error("check-leftovers: no /proc here, so no check for processes left running.");
    return status;
  }
  const scope = { run, group: { pgrp: self.pgrp, sinceTicks: self.startTicks } };
  const found = await leftovers(scope, settleMs);
  if (found.length === 0) {
    console.error("check-leftovers: nothing of this run is left running.");
    return status;
  }
  console.error(`\ncheck-leftovers: FAILED: ${describeLeftovers(run, found)}`);
  // Named, now ended, so that no machine keeps them for hours (issue 27's were found the next
  // day); the run still fails.
  for (const { pid } of found) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  console.error(`check-leftovers: killed ${found.map(({ pid }) => pid).join(", ")}.`);
  console.error("check-leftovers: a test or harness did not end what it started.");
  return 1;
}

if (process.argv[1]?.endsWith("check-leftovers.ts")) process.exitCode = await main(process.argv.slice(2));
