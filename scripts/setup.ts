/**
 * `npm run setup`: create what the relay needs in your Cloudflare account, once. Idempotent:
 * rerun it and it only does what is still missing.
 * 1. the KV namespace DEDUP (its id is written into wrangler.toml);
 * 2. the queues pendo-events and pendo-events-dlq;
 * 3. the secrets WEBHOOK_TOKEN (generated), SEGMENT_WRITE_KEY and ADMIN_TOKEN (prompted).
 * Needs `npx wrangler login` first. Then `npm run deploy`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import {
  createdKvNamespaceId,
  currentKvNamespaceId,
  findKvNamespaceId,
  listedQueues,
  listedSecrets,
  missingSecrets,
  OPTIONAL_SECRETS,
  PLACEHOLDER_KV_ID,
  QUEUES,
  withKvNamespaceId,
} from "./setup/config";

const WORKER = "pendo-segment-relay";
const wrangler = (...args: string[]) =>
  execFileSync("npx", ["wrangler", ...args], { encoding: "utf8", stdio: ["pipe", "pipe", "inherit"] });

function step(text: string) {
  console.log(`\n▸ ${text}`);
}

step("KV namespace DEDUP");
const toml = readFileSync("wrangler.toml", "utf8");
let kvId = currentKvNamespaceId(toml);
if (kvId && kvId !== PLACEHOLDER_KV_ID) {
  console.log(`  already in wrangler.toml: ${kvId}`);
} else {
  kvId = findKvNamespaceId(wrangler("kv", "namespace", "list"), WORKER);
  if (kvId) console.log(`  found in your account: ${kvId}`);
  else {
    kvId = createdKvNamespaceId(wrangler("kv", "namespace", "create", "DEDUP"));
    if (!kvId) throw new Error("could not read the new namespace's id from wrangler's output");
    console.log(`  created: ${kvId}`);
  }
  writeFileSync("wrangler.toml", withKvNamespaceId(toml, kvId));
  console.log("  wrote the id into wrangler.toml (commit it)");
}

step("Queues");
const existing = listedQueues(wrangler("queues", "list"));
for (const queue of QUEUES) {
  if (existing.has(queue)) console.log(`  ${queue}: exists`);
  else {
    wrangler("queues", "create", queue);
    console.log(`  ${queue}: created`);
  }
}

step("Secrets");
let present = new Set<string>();
try {
  present = listedSecrets(wrangler("secret", "list", "--format", "json"));
} catch {
  console.log("  (the Worker is not deployed yet: every secret is new)");
}
let token: string | undefined;
for (const name of missingSecrets(present)) {
  if (name === "WEBHOOK_TOKEN") {
    token = randomBytes(24).toString("hex");
    execFileSync("npx", ["wrangler", "secret", "put", name], {
      input: token,
      stdio: ["pipe", "inherit", "inherit"],
    });
    console.log("  WEBHOOK_TOKEN: generated and stored");
  } else {
    console.log(
      `  ${name}: wrangler will ask for the value${(OPTIONAL_SECRETS as readonly string[]).includes(name) ? " (optional: Ctrl-C to skip)" : ""}`,
    );
    spawnSync("npx", ["wrangler", "secret", "put", name], { stdio: "inherit" });
  }
}
if (missingSecrets(present).length === 0) console.log("  all set");

step("Next");
console.log("  npm run deploy");
console.log("  then in Pendo: Settings > Integrations > Webhooks > Create webhook, type URL:");
console.log(`  https://${WORKER}.<your-subdomain>.workers.dev/pendo?token=${token ?? "<WEBHOOK_TOKEN>"}`);
