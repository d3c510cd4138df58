/**
 * `npm start`: the relay on `wrangler dev` with local KV, queues and D1 (the ledger's migrations
 * applied first), and the cron fired on its schedule, which `wrangler dev` does not do by itself.
 * The first run writes a .dev.vars with local-only tokens (.dev.vars.example lists the secrets
 * with empty values, for the Deploy button). Without a SEGMENT_WRITE_KEY in .dev.vars, a local
 * Segment stand-in (standin/server.ts) receives the events and prints each one, and the alerts
 * too; with a key, the relay sends to the real Segment.
 * `npm start -- --destination jitsu` (or DESTINATION in .dev.vars) makes the stand-in play that
 * destination's profile (src/destination/profiles.ts), rules included, and points the relay at it.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { DESTINATIONS, type DestinationName } from "../src/destination/profiles";
import { startStandInServer } from "../standin/server";
import { applyLocalMigrations } from "./harness/migrations";
import { devVars } from "./send";

const STANDIN_PORT = Number(process.env.STANDIN_PORT ?? 8788);
const STANDIN_WRITE_KEY = "local-standin-write-key";

// Known values, fine on this machine only: .dev.vars is never committed nor deployed.
const LOCAL_DEV_VARS = `# Local secrets for npm start (wrangler dev); never committed. Secret names: .dev.vars.example.
WEBHOOK_TOKEN=local-dev-token-0123456789
ADMIN_TOKEN=local-admin-token-0123456789
ENVIRONMENT=development
# Unset, events go to the local stand-in; set, to Segment.
# SEGMENT_WRITE_KEY=
`;

if (!existsSync(".dev.vars")) {
  writeFileSync(".dev.vars", LOCAL_DEV_VARS);
  console.log("Created .dev.vars with local values (local token: local-dev-token-0123456789).");
}

console.log("Applying the ledger's migrations to the local D1 database…");
await applyLocalMigrations();

// `--test-scheduled` exposes the scheduled handler at /__scheduled; this script calls it on the
// period wrangler.toml's cron names (every N minutes), as the platform would.
const { destination, rest } = destinationArgument(process.argv.slice(2));
const args = ["wrangler", "dev", "--test-scheduled", ...rest];
let standIn: Awaited<ReturnType<typeof startStandInServer>> | undefined;
if (!devVars().SEGMENT_WRITE_KEY) {
  standIn = await startStandInServer({ port: STANDIN_PORT, writeKeys: [STANDIN_WRITE_KEY], destination });
  console.log(
    `No SEGMENT_WRITE_KEY in .dev.vars: events go to the local stand-in at ${standIn.url}, playing ${destination}`,
  );
  console.log(`  (inspect: curl ${standIn.url}/events, curl ${standIn.url}/stats)`);
  args.push("--var", `DESTINATION:${destination}`, "--var", `DESTINATION_URL:${standIn.url}`);
  args.push("--var", `SEGMENT_WRITE_KEY:${STANDIN_WRITE_KEY}`);
  // Alerts go to the stand-in too, which prints them (unless .dev.vars names a receiver).
  if (!devVars().ALERT_WEBHOOK_URL) args.push("--var", `ALERT_WEBHOOK_URL:${standIn.url}/alerts`);
} else {
  console.log("SEGMENT_WRITE_KEY is set in .dev.vars: events go to the real Segment.");
}

const port = Number(/--port[= ](\d+)/.exec(process.argv.slice(2).join(" "))?.[1] ?? 8787);
const adminToken = devVars().ADMIN_TOKEN;
if (adminToken) {
  // The token rides in the fragment: the browser keeps it, no server (or log) ever sees it.
  console.log(`Operator console: http://localhost:${port}/console#token=${encodeURIComponent(adminToken)}`);
}

const cronMinutes = Number(/crons = \["\*\/(\d+) /.exec(readFileSync("wrangler.toml", "utf8"))?.[1] ?? 5);
const cron = setInterval(() => {
  fetch(`http://localhost:${port}/__scheduled?cron=${encodeURIComponent(`*/${cronMinutes} * * * *`)}`).catch(
    (error) => console.error(`[cron] could not fire the scheduled handler: ${error}`),
  );
}, cronMinutes * 60_000);
console.log(
  `The cron (alerts, purge) fires every ${cronMinutes} minutes; by hand: curl "http://localhost:${port}/__scheduled"`,
);

const wrangler = spawn("npx", args, { stdio: "inherit" });
wrangler.on("exit", async (code) => {
  clearInterval(cron);
  await standIn?.close();
  process.exit(code ?? 0);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => wrangler.kill(signal));

/** `--destination <name>` (or `--destination=<name>`), else DESTINATION in .dev.vars, else segment. */
function destinationArgument(argv: string[]): { destination: DestinationName; rest: string[] } {
  const rest: string[] = [];
  let chosen = devVars().DESTINATION ?? "segment";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--destination") chosen = argv[++i] ?? "";
    else if (arg.startsWith("--destination=")) chosen = arg.slice("--destination=".length);
    else rest.push(arg);
  }
  if (!(DESTINATIONS as readonly string[]).includes(chosen)) {
    console.error(`--destination must be one of ${DESTINATIONS.join(", ")}`);
    process.exit(2);
  }
  return { destination: chosen as DestinationName, rest };
}
