/**
 * scripts/check-leftovers.ts can fail. A process of a run left running, orphaned to init as issue
 * 27 found wrangler, is named and fails the check; once it is gone the check passes. A process of
 * another run, and one with no marker in another session (a `wrangler dev` in another terminal),
 * are never named. Run around a command, as `npm run test:node` runs the node tests, the check
 * also finds an orphan whose environment was built without the marker, by its process group, and
 * kills what it names. The throwaway processes carry run ids of their own, not this test run's:
 * the check around this very run is not what is tested here.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { RUN_MARKER } from "../scripts/check-leftovers";
import { spawnGroup, stopGroup } from "../scripts/harness/process-group";

const TAG = "leftover-selftest";
const IDLE = `node -e "setInterval(() => {}, 1000)" ${TAG}`;
const onLinux = existsSync("/proc/self/environ") ? false : "needs /proc (Linux)";
const { [RUN_MARKER]: _, ...unmarked } = process.env;

/** Starts a group (the check, or a shell) and resolves with its exit status, stdout and stderr. */
async function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  groups: ChildProcess[],
): Promise<{ status: number; stdout: string; stderr: string }> {
  const child = spawnGroup(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  groups.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk));
  const status = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  return { status, stdout, stderr };
}

/** `node -e <idle>` in the background of a shell that exits at once: an orphan, adopted by init. */
async function startOrphan(env: NodeJS.ProcessEnv, groups: ChildProcess[]): Promise<number> {
  const { stdout } = await run("sh", ["-c", `${IDLE} wrangler dev >/dev/null 2>&1 & echo $!`], env, groups);
  return Number(stdout.trim());
}

const check = (args: string[], groups: ChildProcess[]) =>
  run(
    "node_modules/.bin/tsx",
    ["scripts/check-leftovers.ts", "--settle", "1000", ...args],
    process.env,
    groups,
  );

/** Alive and not a zombie (state, proc(5) field 3, is "Z" for one). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

function killAll(pids: number[]): void {
  for (const pid of pids.filter((p) => p > 0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

test("the check names a process of the run left running, and passes once it is gone", {
  skip: onLinux,
  timeout: 60_000,
}, async (t) => {
  const groups: ChildProcess[] = [];
  t.after(() => Promise.all(groups.map((group) => stopGroup(group, 1_000))));
  const id = `selftest-${randomUUID()}`;
  const ours = await startOrphan({ ...unmarked, [RUN_MARKER]: id }, groups);
  const otherRun = await startOrphan({ ...unmarked, [RUN_MARKER]: `another-${id}` }, groups);
  const developers = await startOrphan(unmarked, groups);
  assert.ok(ours > 0 && otherRun > 0 && developers > 0, "three throwaway processes started");

  const failed = await check(["--run", id], groups);
  assert.equal(failed.status, 1, failed.stderr);
  assert.match(failed.stderr, /1 process\(es\) of this run/);
  assert.match(failed.stderr, new RegExp(`pid ${ours} \\(parent \\d+[^)]*; by marker\\): node -e .*${TAG}`));
  assert.doesNotMatch(failed.stderr, new RegExp(`pid (${otherRun}|${developers}) `), "only this run's");

  // The orphan's group is the shell's, which has exited: the orphan is all that is left of it.
  await stopGroup(groups[0] as ChildProcess, 1_000);
  const passed = await check(["--run", id], groups);
  assert.equal(passed.status, 0, passed.stderr);
  assert.equal(passed.stderr, "");
});

test("around a command: names and kills what it left, found by marker or by process group; else its own status", {
  skip: onLinux,
  timeout: 60_000,
}, async (t) => {
  const groups: ChildProcess[] = [];
  const pids: number[] = [];
  t.after(async () => {
    killAll(pids);
    await Promise.all(groups.map((group) => stopGroup(group, 1_000)));
  });
  // Three orphans of the command: one in a session of its own (as `detached: true` makes) with the
  // run's marker; one in the check's process group with its environment cleared (as a test that
  // builds one from scratch would); one in that group with another run's marker.
  const leave = [
    `setsid ${IDLE} detached >/dev/null 2>&1 & echo $!`,
    `env -u ${RUN_MARKER} ${IDLE} scrubbed >/dev/null 2>&1 & echo $!`,
    `env ${RUN_MARKER}=another-run ${IDLE} other >/dev/null 2>&1 & echo $!`,
  ].join("\n");
  const failed = await check(["sh", "-c", leave], groups);
  pids.push(...failed.stdout.trim().split("\n").map(Number));
  const [detached = 0, scrubbed = 0, other = 0] = pids;
  assert.equal(pids.length, 3, failed.stdout);
  assert.equal(failed.status, 1, failed.stderr);
  assert.match(failed.stderr, /FAILED: 2 process\(es\) of this run/);
  assert.match(failed.stderr, new RegExp(`pid ${detached} \\([^)]*by marker\\): node -e .*${TAG} detached`));
  assert.match(
    failed.stderr,
    new RegExp(`pid ${scrubbed} \\([^)]*by process group\\): node -e .*${TAG} scrubbed`),
  );
  assert.doesNotMatch(failed.stderr, new RegExp(`pid ${other} `), "another run's process is not this run's");
  assert.match(failed.stderr, new RegExp(`killed (${detached}, ${scrubbed}|${scrubbed}, ${detached})\\.`));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(
    [running(detached), running(scrubbed), running(other)],
    [false, false, true],
    "the check killed what it named, and only that",
  );

  const clean = await check(["sh", "-c", "exit 3"], groups);
  assert.equal(clean.status, 3, "a command that leaves nothing keeps its own exit status");
  assert.match(clean.stderr, /nothing of this run is left running/);
});
