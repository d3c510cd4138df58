/**
 * Sampled bugs in the workerd modules (issue 27, "Check the rest by sampling"). StrykerJS covers
 * the pure modules in Node (`npm run mutate`); the consumer, the ledger, ingest and admin run only
 * inside workerd, where Stryker's runner does not go. So this plants bugs by hand: each one small
 * edit (a few characters of a line) that breaks one of the README's promises (nothing lost,
 * nothing sent twice, exact counts, the webhook and admin tokens), then runs the test files that
 * cover that module and records whether they fail (killed) or pass (survived).
 *
 *   npx tsx bench/sample-mutants.ts            every bug; writes bench/results/sample-mutants-<date>.json
 *                                              and the `sampled-bugs` section of docs/reliability.md
 *   npx tsx bench/sample-mutants.ts --render bench/results/sample-mutants-<date>.json
 *                                              the docs section again from a results file
 *   npx tsx bench/sample-mutants.ts --check    only checks that each search string matches once and
 *                                              that each planted file still parses; runs no test
 *   npx tsx bench/sample-mutants.ts --only C1,I4   just those bugs; prints, writes nothing
 *   npx tsx bench/sample-mutants.ts --only C1 --all-tests   against every test file, not only the
 *                                              module's (to tell a gap in the suite from one in TESTS)
 *
 * Each bug is applied to the pristine file (identical to git HEAD, checked first), and the file is
 * restored afterwards whatever happens (try/finally, and on SIGINT/SIGTERM), then checked with
 * `git diff --quiet`. Runs one bug at a time: vitest with workerd wants both CPUs.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { transform } from "esbuild";
import { machineInfo } from "./environment";
import { withSection } from "./reliability-report";

type Module = "consumer" | "ledger" | "ingest" | "admin";
type Promised = "nothing lost" | "nothing sent twice" | "exact counts" | "webhook token" | "admin token";

interface Mutant {
  id: string;
  module: Module;
  file: string;
  /** Must occur exactly once in the pristine file. */
  search: string;
  replace: string;
  /** What the planted bug does, in a few words. */
  bug: string;
  promise: Promised;
}

/**
 * The test files that cover each module: the files whose subject it is, and the fault matrix and
 * exactness files that drive it through the worker. test/sampled.test.ts holds the tests written
 * for survivors of an earlier run; a file not there yet is left out of the run.
 */
const TESTS: Record<Module, string[]> = {
  consumer: [
    "test/consumer.test.ts",
    "test/faults.test.ts",
    "test/outage.test.ts",
    "test/exactness.test.ts",
    "test/privacy.test.ts",
    "test/destinations.test.ts",
    "test/sampled.test.ts",
  ],
  ledger: [
    "test/ledger.test.ts",
    "test/records.test.ts",
    "test/exactness.test.ts",
    "test/faults.test.ts",
    "test/overview.test.ts",
    // The drain stores its dead letters through src/records/store.ts, and its retried steps too.
    "test/outage.test.ts",
    "test/sampled.test.ts",
  ],
  ingest: [
    "test/ingest.test.ts",
    "test/hostile-edge.test.ts",
    "test/faults.test.ts",
    "test/operations.test.ts",
    "test/pure.test.ts",
    // src/http/auth.ts's isAdmin guards /admin: its tests are the admin API's.
    "test/admin.test.ts",
    "test/sampled.test.ts",
  ],
  admin: [
    "test/admin.test.ts",
    "test/ledger.test.ts",
    "test/exactness.test.ts",
    "test/faults.test.ts",
    "test/hostile-edge.test.ts",
    "test/console.test.ts",
    "test/sampled.test.ts",
  ],
};

const lines = (...parts: string[]) => parts.join("\n");

export const MUTANTS: Mutant[] = [
  // The consumer (src/delivery).
  {
    id: "C1",
    module: "consumer",
    file: "src/delivery/settle.ts",
    search: lines("      failure.atLeastSeconds ?? 0,", "    );", "    if (queued.attempts > this.settings"),
    replace: lines(
      "      failure.atLeastSeconds ?? 0,",
      "    );",
      "    if (queued.attempts >= this.settings",
    ),
    bug: "`>=` for `>` in the retry bound: dead-lettered one retry early",
    promise: "nothing lost",
  },
  {
    id: "C2",
    module: "consumer",
    file: "src/delivery/settle.ts",
    search: lines("  store(queued: QueueMessage, input: DeadLetterInput) {", "    this.letters.push("),
    replace: lines(
      "  store(queued: QueueMessage, input: DeadLetterInput) {",
      "    this.ack(queued);",
      "    this.letters.push(",
    ),
    bug: "acks a message before its dead letter is stored",
    promise: "nothing lost",
  },
  {
    id: "C3",
    module: "consumer",
    file: "src/delivery/settle.ts",
    search: lines(
      "    if (queued.attempts > this.settings.MAX_RETRIES || this.wouldExpire(queued, delay)) {",
      "      this.deadLetter(queued, message, failure.reason",
    ),
    replace: lines(
      "    if (queued.attempts > this.settings.MAX_RETRIES) {",
      "      this.deadLetter(queued, message, failure.reason",
    ),
    bug: "drops the retention check: a retry may outlive the queue's retention",
    promise: "nothing lost",
  },
  {
    id: "C4",
    module: "consumer",
    file: "src/delivery/consumer.ts",
    search: lines('        case "failed": {', "          if (nowParking.has(target.id)) {"),
    replace: lines(
      '        case "failed": {',
      '          settle.count(unit.message, "delivered");',
      "          if (nowParking.has(target.id)) {",
    ),
    bug: "counts a failed send as delivered",
    promise: "exact counts",
  },
  {
    id: "C5",
    module: "consumer",
    file: "src/delivery/consumer.ts",
    search: 'settle.count(unit.message, "dropped");',
    replace: 'settle.count(unit.message, "delivered");',
    bug: "counts a do-not-process drop as delivered",
    promise: "exact counts",
  },
  {
    id: "C6",
    module: "consumer",
    file: "src/delivery/consumer.ts",
    search: lines("      if (parked.ok) {", '        log("warn", "parked"'),
    replace: lines("      if (parked) {", '        log("warn", "parked"'),
    bug: "acks a batch whose parking failed",
    promise: "nothing lost",
  },
  {
    id: "C7",
    module: "consumer",
    file: "src/delivery/send.ts",
    search: "const reasons = refused.get(unit) ?? (unattributed.length > 0 ? unattributed : undefined);",
    replace: "const reasons = refused.get(unit);",
    bug: "a lone event refused in a 2xx without a messageId counts as delivered",
    promise: "nothing lost",
  },
  {
    id: "C8",
    module: "consumer",
    file: "src/delivery/deadLetterConsumer.ts",
    search: "queued.retry({ delaySeconds: delayWithinRetention(delay, queued.timestamp, retention, now) });",
    replace: "queued.retry({ delaySeconds: delay });",
    bug: "the dead-letter queue's retry delay is not cut to the retention",
    promise: "nothing lost",
  },
  {
    id: "C9",
    module: "consumer",
    file: "src/delivery/park.ts",
    search: "  if (changes === 0) {",
    replace: "  if (changes < 0) {",
    bug: "a batch parked behind a destination that just opened counts as parked (no row)",
    promise: "nothing lost",
  },
  {
    id: "C10",
    module: "consumer",
    file: "src/delivery/drain.ts",
    search: lines("    if (!stored.ok) {", "      // Nothing is settled that is not stored"),
    replace: lines("    if (!stored) {", "      // Nothing is settled that is not stored"),
    bug: "a drain unparks batches whose dead letters no store took",
    promise: "nothing lost",
  },
  {
    id: "C11",
    module: "consumer",
    file: "src/delivery/drain.ts",
    search:
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal's source text, searched as is
      "            id: parkedLetterId(unit.row, `${safeIdPart(unit.message.eventId)}.${unit.message.calls.length}`),\n",
    replace: "",
    bug: "a drain's dead letters get fresh ids: a step done twice stores them twice",
    promise: "exact counts",
  },
  {
    id: "C12",
    module: "consumer",
    file: "src/delivery/drain.ts",
    search: lines('      outcome: "dropped",', "      at: now,"),
    replace: lines('      outcome: "delivered",', "      at: now,"),
    bug: "a drain counts a do-not-process drop as delivered",
    promise: "exact counts",
  },
  // The ledger (src/ledger, src/records).
  {
    id: "L1",
    module: "ledger",
    file: "src/ledger/records.ts",
    search: "state = 'stored' OR (state = 'replaying' AND claimed_at < ?4)",
    replace: "state != 'deleted' OR (state = 'replaying' AND claimed_at < ?4)",
    bug: "a replay claim takes any record not deleted, a sent one too",
    promise: "nothing sent twice",
  },
  {
    id: "L2",
    module: "ledger",
    file: "src/ledger/records.ts",
    search: "INSERT OR IGNORE INTO records",
    replace: "INSERT OR REPLACE INTO records",
    bug: "a row stored again (a pending/ copy) replaces the tombstone of a replayed record",
    promise: "nothing sent twice",
  },
  {
    id: "L3",
    module: "ledger",
    file: "src/records/store.ts",
    search: '      return { ok: false, store: "r2", error: String(error) };',
    replace: "      console.warn(String(error));",
    bug: "a failed R2 put of the records' bytes is logged and the store reports success",
    promise: "nothing lost",
  },
  {
    id: "L4",
    module: "ledger",
    file: "src/records/store.ts",
    search: "const counted = recordCountStatement(db, rows, true);",
    replace: "const counted = recordCountStatement(db, rows);",
    bug: "a group stored again (a retried step) is counted again",
    promise: "exact counts",
  },
  {
    id: "L5",
    module: "ledger",
    file: "src/records/pending.ts",
    search: "const counted = recordCountStatement(db, rows, true);",
    replace: "const counted = recordCountStatement(db, rows);",
    bug: "a pending/ copy moved twice is counted twice",
    promise: "exact counts",
  },
  {
    id: "L6",
    module: "ledger",
    file: "src/ledger/counts.ts",
    search: "sum(d) AS d, sum(x) AS x,",
    replace: "sum(d) AS d, max(x) AS x,",
    bug: "merging counters keeps the larger dead-letter count instead of the sum",
    promise: "exact counts",
  },
  {
    id: "L7",
    module: "ledger",
    file: "src/records/pending.ts",
    search: "      if (rows.length > 0)\n",
    replace: "      if (rows.length > 1)\n",
    bug: "a pending/ object of one row is deleted without moving its row",
    promise: "nothing lost",
  },
  // Ingest (src/http, src/intake).
  {
    id: "I1",
    module: "ingest",
    file: "src/http/auth.ts",
    search: "if (crypto.subtle.timingSafeEqual(candidate, await configuredDigest(token))) matched = true;",
    replace: "if (presented.startsWith(token)) matched = true;",
    bug: "tokens compared with a prefix check: the token plus anything is accepted",
    promise: "webhook token",
  },
  {
    id: "I2",
    module: "ingest",
    file: "src/http/auth.ts",
    search: "return tokenMatches(bearerToken(request), [adminToken]);",
    replace: "return tokenMatches(presentedToken(request), [adminToken]);",
    bug: "the admin token is accepted in the query string",
    promise: "admin token",
  },
  {
    id: "I3",
    module: "ingest",
    file: "src/http/ingest.ts",
    search: lines("  try {", "    await c.env.EVENTS.send(prepared.encoded"),
    replace: lines("  remember();", "  try {", "    await c.env.EVENTS.send(prepared.encoded"),
    bug: "the dedup marker is written before the enqueue",
    promise: "nothing lost",
  },
  {
    id: "I4",
    module: "ingest",
    file: "src/http/ingest.ts",
    search: "if (seen !== null) return finish(",
    replace: "if (seen === undefined) return finish(",
    bug: "the dedup marker is never honoured (`undefined` for `null`)",
    promise: "nothing sent twice",
  },
  {
    id: "I5",
    module: "ingest",
    file: "src/http/failures.ts",
    search: 'retry later" }, 503, {',
    replace: 'retry later" }, 202, {',
    bug: "a store failure answers 202 instead of 503",
    promise: "nothing lost",
  },
  {
    id: "I6",
    module: "ingest",
    file: "src/http/ingest.ts",
    search: lines("    if (!stored.ok) {", '      log("error", "quarantine-write-failed"'),
    replace: lines(
      '    if (!stored.ok && stored.store === "r2") {',
      '      log("error", "quarantine-write-failed"',
    ),
    bug: "a quarantine the ledger refused is answered 400 as if stored",
    promise: "nothing lost",
  },
  {
    id: "I7",
    module: "ingest",
    file: "src/http/body.ts",
    search: "declared > limit)",
    replace: "declared >= limit)",
    bug: "a body of exactly MAX_BODY_BYTES is refused 413 (never retried)",
    promise: "nothing lost",
  },
  {
    id: "I8",
    module: "ingest",
    file: "src/http/debug.ts",
    search: "const open = settings.ENVIRONMENT === OPEN_DEBUG_ENVIRONMENT;",
    replace: 'const open = settings.ENVIRONMENT !== "production";',
    bug: "/debug/transform open without the admin token outside production",
    promise: "admin token",
  },
  // Admin (src/admin).
  {
    id: "A1",
    module: "admin",
    file: "src/admin/replay.ts",
    search: 'for (const { id } of chunk) fail({ ok: false, id, reason: "queue-unavailable"',
    replace: 'for (const { id } of chunk) results.set(id, { ok: false, id, reason: "queue-unavailable"',
    bug: "a replay the queue refused is not given back: left marked sent, never sent",
    promise: "nothing lost",
  },
  {
    id: "A2",
    module: "admin",
    file: "src/admin/routes.ts",
    search: '{ ...filter, state: "stored", createdUpTo: run.startedAt },',
    replace: '{ ...filter, state: "stored" },',
    bug: "a bulk replay also takes records created after it started (its own new dead letters)",
    promise: "nothing sent twice",
  },
  {
    id: "A3",
    module: "admin",
    file: "src/admin/routes.ts",
    search: 'again: read.query.again === "true",',
    replace: 'again: read.query.again !== "false",',
    bug: "replaying one record resends it when already sent, unless again=false",
    promise: "nothing sent twice",
  },
  {
    id: "A4",
    module: "admin",
    file: "src/admin/routes.ts",
    search: "if (!token) return notFound(c);",
    replace: "if (!token) return next();",
    bug: "every admin route is open while ADMIN_TOKEN is unset",
    promise: "admin token",
  },
  {
    id: "A5",
    module: "admin",
    file: "src/admin/routes.ts",
    search: 'const replayed = results.filter((r) => r.ok && r.status === "replayed").length;',
    replace: "const replayed = results.filter((r) => r.ok).length;",
    bug: "a bulk replay's tally counts dropped records as replayed too",
    promise: "exact counts",
  },
];

type Status = "killed" | "survived" | "timeout" | "error";

interface Result {
  id: string;
  module: Module;
  file: string;
  line: number;
  bug: string;
  promise: Promised;
  search: string;
  replace: string;
  tests: string[];
  status: Status;
  seconds: number;
  /** Test files with a failing test, and the first failing tests' names. */
  killedBy: string[];
  failing: string[];
}

const TIMEOUT_MS = 5 * 60_000;
const root = process.cwd();

function occurrences(text: string, search: string): number {
  let count = 0;
  for (let at = text.indexOf(search); at >= 0; at = text.indexOf(search, at + 1)) count++;
  return count;
}

/** The file as git HEAD has it: a bug is only ever planted in a pristine file. */
function assertPristine(file: string) {
  try {
    execFileSync("git", ["diff", "--quiet", "HEAD", "--", file], { stdio: "ignore" });
  } catch {
    throw new Error(`${file} differs from git HEAD: refusing to plant a bug in it (or it was not restored)`);
  }
}

/** Checks every bug before any test runs: one match each, and the planted file still parses. */
async function checkMutants(mutants: readonly Mutant[]) {
  const ids = new Set<string>();
  for (const mutant of mutants) {
    if (ids.has(mutant.id)) throw new Error(`duplicate bug id ${mutant.id}`);
    ids.add(mutant.id);
    const text = readFileSync(mutant.file, "utf8");
    const found = occurrences(text, mutant.search);
    if (found !== 1)
      throw new Error(
        `${mutant.id}: the search string occurs ${found} times in ${mutant.file}, not once: ${JSON.stringify(mutant.search)}`,
      );
    if (mutant.search === mutant.replace) throw new Error(`${mutant.id}: the replacement changes nothing`);
    const planted = text.replace(mutant.search, () => mutant.replace);
    try {
      await transform(planted, { loader: "ts", sourcefile: mutant.file });
    } catch (error) {
      throw new Error(`${mutant.id}: the planted ${mutant.file} does not parse: ${String(error)}`);
    }
  }
}

const lineOf = (text: string, search: string) => text.slice(0, text.indexOf(search)).split("\n").length;

interface VitestJson {
  numFailedTests: number;
  numPassedTests: number;
  testResults: { name: string; status: string; assertionResults: { fullName: string; status: string }[] }[];
}

/** Runs vitest on the files; its JSON report, or what went wrong. */
function runVitest(
  files: readonly string[],
): Promise<{ code: number | null; timedOut: boolean; report?: VitestJson; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), "sample-mutants-"));
  const reportFile = join(dir, "report.json");
  return new Promise((resolve) => {
    const child = spawn("npx", ["vitest", "run", ...files, "--reporter=json", `--outputFile=${reportFile}`], {
      cwd: root,
      detached: true, // its own process group, so a timeout ends workerd too
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CI: "1" },
    });
    running = child.pid;
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    }, TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      running = undefined;
      let report: VitestJson | undefined;
      if (existsSync(reportFile)) report = JSON.parse(readFileSync(reportFile, "utf8")) as VitestJson;
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, timedOut, report, output });
    });
  });
}

let running: number | undefined;
/** The file a bug is planted in right now, with its pristine text: restored on any way out. */
let planted: { file: string; text: string } | undefined;

function restore() {
  if (!planted) return;
  writeFileSync(planted.file, planted.text);
  const { file } = planted;
  planted = undefined;
  assertPristine(file);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (running) process.kill(-running, "SIGKILL");
    restore();
    process.exit(130);
  });
}

let allTests = false;
const testsOf = (mutant: Mutant) =>
  allTests
    ? readdirSync("test")
        .filter((name) => name.endsWith(".test.ts"))
        .map((name) => `test/${name}`)
        .sort()
    : TESTS[mutant.module].filter((file) => existsSync(file));
const relative = (path: string) => (path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path);

async function runMutant(mutant: Mutant): Promise<Result> {
  assertPristine(mutant.file);
  const text = readFileSync(mutant.file, "utf8");
  if (occurrences(text, mutant.search) !== 1)
    throw new Error(`${mutant.id}: the search string must match once`);
  const tests = testsOf(mutant);
  const started = Date.now();
  let run: Awaited<ReturnType<typeof runVitest>>;
  try {
    planted = { file: mutant.file, text };
    writeFileSync(
      mutant.file,
      text.replace(mutant.search, () => mutant.replace),
    );
    run = await runVitest(tests);
  } finally {
    restore();
  }
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  const failedFiles = (run.report?.testResults ?? []).filter((file) => file.status !== "passed");
  const failing = failedFiles.flatMap((file) =>
    file.assertionResults
      .filter((test) => test.status === "failed")
      .map((test) => `${relative(file.name)}: ${test.fullName}`),
  );
  let status: Status;
  if (run.timedOut) status = "timeout";
  else if (run.code === 0 && run.report && run.report.numFailedTests === 0) status = "survived";
  else if (run.report && failedFiles.length > 0) status = "killed";
  else status = "error";
  if (status === "error") console.error(run.output.slice(-4_000));
  return {
    id: mutant.id,
    module: mutant.module,
    file: mutant.file,
    line: lineOf(text, mutant.search),
    bug: mutant.bug,
    promise: mutant.promise,
    search: mutant.search,
    replace: mutant.replace,
    tests,
    status,
    seconds,
    killedBy: failedFiles.map((file) => relative(file.name)),
    failing: failing.slice(0, 5),
  };
}

const cell = (text: string) => text.replace(/\|/g, "\\|");
const shortTest = (file: string) => file.replace(/^test\//, "");

export function renderTable(results: readonly Result[]): string {
  const rows = results.map((r) => {
    const by =
      r.status === "killed"
        ? r.killedBy.map((file) => `\`${shortTest(file)}\``).join(", ")
        : `**${r.status}**`;
    return `| ${r.id} | \`${r.file}:${r.line}\` | ${cell(r.bug)} | ${r.promise} | ${by} |`;
  });
  return [
    "| # | Where | Planted bug | Promise it breaks | Killed by |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

function totals(results: readonly Result[]) {
  const count = (status: Status) => results.filter((r) => r.status === status).length;
  return {
    planted: results.length,
    killed: count("killed"),
    survived: count("survived"),
    timeout: count("timeout"),
    error: count("error"),
  };
}

function renderDocs(results: readonly Result[], file: string, minutes: number, date: string): string {
  const t = totals(results);
  const byModule = (["consumer", "ledger", "ingest", "admin"] as const)
    .map((module) => {
      const some = results.filter((r) => r.module === module);
      return `${module} ${some.filter((r) => r.status === "killed").length}/${some.length}`;
    })
    .join(", ");
  const seconds = results.map((r) => r.seconds);
  const other = t.timeout + t.error > 0 ? `, ${t.timeout} timed out, ${t.error} errors` : "";
  return `<!-- Written by \`npx tsx bench/sample-mutants.ts\`; figures from ${file}. -->

Run ${date}: ${t.planted} bugs planted, **${t.killed} killed**, ${t.survived} survived${other}
(${byModule}). The run took ${minutes} minutes on ${machineInfo().cores} cores, each bug
running only the test files of its module (${Math.round(Math.min(...seconds))} to ${Math.round(Math.max(...seconds))} s each).

${renderTable(results)}`;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes("--render")) {
    // The docs section again from a results file, running nothing.
    const file = args[args.indexOf("--render") + 1] ?? "";
    const saved = JSON.parse(readFileSync(file, "utf8")) as {
      machine: { date: string };
      minutes: number;
      results: Result[];
    };
    const section = renderDocs(saved.results, file, saved.minutes, saved.machine.date.slice(0, 10));
    writeFileSync(
      "docs/reliability.md",
      withSection(readFileSync("docs/reliability.md", "utf8"), "sampled-bugs", section),
    );
    console.log(`wrote the sampled-bugs section of docs/reliability.md from ${file}`);
    return;
  }
  const only = args.includes("--only") ? (args[args.indexOf("--only") + 1] ?? "").split(",") : undefined;
  const mutants = only ? MUTANTS.filter((m) => only.includes(m.id)) : MUTANTS;
  if (only && mutants.length !== only.length) throw new Error(`unknown bug id in ${only.join(",")}`);
  allTests = args.includes("--all-tests");
  if (allTests && !only) throw new Error("--all-tests goes with --only: it runs every test file per bug");
  await checkMutants(MUTANTS);
  console.log(`${MUTANTS.length} bugs: every search string matches once, every planted file parses`);
  if (args.includes("--check")) return;

  const started = Date.now();
  const results: Result[] = [];
  for (const mutant of mutants) {
    process.stdout.write(`${mutant.id} ${mutant.file}: ${mutant.bug} … `);
    const result = await runMutant(mutant);
    results.push(result);
    console.log(
      `${result.status} in ${result.seconds} s${result.killedBy.length ? ` (${result.killedBy.map(shortTest).join(", ")})` : ""}`,
    );
    for (const test of result.failing) console.log(`    failed: ${test}`);
  }
  const minutes = Math.round((Date.now() - started) / 6_000) / 10;
  const t = totals(results);
  console.log(`\n${renderTable(results)}\n`);
  console.log(
    `${t.planted} planted, ${t.killed} killed, ${t.survived} survived, ${t.timeout} timed out, ${t.error} errors, in ${minutes} min`,
  );
  if (only) return;

  const machine = machineInfo();
  const date = machine.date.slice(0, 10);
  const file = `bench/results/sample-mutants-${date}.json`;
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(file, `${JSON.stringify({ machine, minutes, tests: TESTS, totals: t, results }, null, 2)}\n`);
  const doc = readFileSync("docs/reliability.md", "utf8");
  writeFileSync(
    "docs/reliability.md",
    withSection(doc, "sampled-bugs", renderDocs(results, file, minutes, date)),
  );
  console.log(`wrote ${file} and the sampled-bugs section of docs/reliability.md`);
}

await main();
