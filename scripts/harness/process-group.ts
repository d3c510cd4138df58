/**
 * Child processes that end with whoever started them. `npm run x` and `npx wrangler` are not the
 * process that does the work: npm starts a shell, tsx a second node, wrangler a third and workerd
 * under it. Killing the direct child leaves those running, orphaned to init (issue 27: `wrangler
 * kv namespace list` still waiting hours later on a Cloudflare API stand-in that was gone). So a
 * child is started as the leader of its own process group (`detached: true` makes it one), and
 * the whole group is signalled: SIGTERM, then SIGKILL to what is left after a grace period.
 *
 * Every group started here is also killed when this process exits, or is ended by SIGINT, SIGTERM
 * or SIGHUP, so a test file that times out or is cancelled leaves nothing behind either.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";

/** Process group ids (the leaders' pids) still to be ended. */
const groups = new Set<number>();
let hooked = false;

/** Starts `command` as the leader of a new process group, ended by stopGroup or when this process ends. */
export function spawnGroup(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  hookExit();
  const child = spawn(command, args, { ...options, detached: true });
  // Forgotten only by stopGroup: the leader exiting does not end its group (npm may go before
  // wrangler does), and forgetting the group then would let a grandchild outlive the test.
  if (child.pid !== undefined) groups.add(child.pid);
  return child;
}

/** True while any process of the group exists (a zombie waiting to be reaped counts). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    // EPERM: something of the group is alive but not ours to signal; still alive.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

async function waitGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/**
 * Ends the child's whole process group: SIGTERM, up to `graceMs` for it to go (workerd flushes
 * its local state on SIGTERM), then SIGKILL. Resolves when the group is gone, or 2 s after the
 * SIGKILL (a zombie orphan waits on init, which this process cannot hurry).
 */
export async function stopGroup(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.pid !== undefined) await stopPgid(child.pid, graceMs);
}

async function stopPgid(pgid: number, graceMs: number): Promise<void> {
  signalGroup(pgid, "SIGTERM");
  if (!(await waitGone(pgid, graceMs))) {
    signalGroup(pgid, "SIGKILL");
    await waitGone(pgid, 2_000);
  }
  groups.delete(pgid);
}

/** Stops every group this process started and has not stopped yet. */
export async function stopAllGroups(graceMs = 5_000): Promise<void> {
  await Promise.all([...groups].map((pgid) => stopPgid(pgid, graceMs)));
}

function killAllNow(): void {
  for (const pgid of groups) signalGroup(pgid, "SIGKILL");
  groups.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // 'exit' handlers must be synchronous: no grace period, SIGKILL at once.
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAllNow();
      // Alone, this listener has taken the signal's default away: give it back by raising the
      // signal again. With other listeners (node's test runner has some), they decide.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
