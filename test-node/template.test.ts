/**
 * What the Deploy to Cloudflare button (developers.cloudflare.com/workers/platform/deploy-buttons)
 * and `npm create cloudflare -- --template <repo>` need of this repository, checked on the files
 * themselves. That deploy and setup then work is test-node/setup-deploy.test.ts's to prove.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { experimental_readRawConfig } from "wrangler";
import { cloudflareBlock } from "../scripts/docs/cloudflare";
import { REQUIRED_SECRETS } from "../scripts/setup/config";
import { projectOf } from "../scripts/setup/project";
import { SETTINGS_DOC } from "../src/config";

const ROOT = resolve(import.meta.dirname, "..");
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");
const { rawConfig } = experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") });
const pkg = JSON.parse(read("package.json")) as {
  name: string;
  scripts: Record<string, string>;
  cloudflare?: unknown;
};

test("the button: every queue, the dead-letter queue too, is named explicitly (cloudflare/templates#788)", () => {
  const { producers = [], consumers = [] } = rawConfig.queues ?? {};
  assert.ok(producers.length > 0 && consumers.length > 0);
  for (const producer of producers) assert.match(producer.queue ?? "", /^[a-z0-9-]+$/, producer.binding);
  for (const consumer of consumers) {
    assert.match(consumer.queue ?? "", /^[a-z0-9-]+$/);
    if (consumer.dead_letter_queue !== undefined) assert.match(consumer.dead_letter_queue, /^[a-z0-9-]+$/);
  }
  assert.ok(projectOf(rawConfig).ok, "and every D1 database and R2 bucket by name");
});

test("the button: .dev.vars.example lists every secret, asks for the required ones, and holds no value", () => {
  const lines = read(".dev.vars.example").split("\n");
  const entries = lines.flatMap((line) => {
    const match = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    return match ? [{ name: match[2] as string, asked: !match[1], value: match[3] as string }] : [];
  });
  const secrets = Object.entries(SETTINGS_DOC)
    .filter(([, doc]) => doc.kind === "secret")
    .map(([name]) => name);
  assert.deepEqual(entries.map((entry) => entry.name).sort(), [...secrets].sort());
  assert.deepEqual(
    entries.filter((entry) => entry.asked).map((entry) => entry.name),
    [...REQUIRED_SECRETS],
  );
  // A value here would become the secret of every deployment that accepts the button's default.
  assert.deepEqual(
    entries.filter((entry) => entry.value !== ""),
    [],
  );
});

test("the button: package.json's cloudflare block has a label, the products and a description for each binding, var and secret", () => {
  const block = cloudflareBlock(rawConfig);
  assert.deepEqual(pkg.cloudflare, block, "run npm run docs");
  assert.ok(block.label.length > 0);
  assert.deepEqual(block.products, ["Workers", "KV", "D1", "R2", "Queues"]);
  const described = Object.keys(block.bindings);
  const expected: string[] = [
    ...(rawConfig.kv_namespaces ?? []).map((kv: { binding: string }) => kv.binding),
    ...(rawConfig.d1_databases ?? []).map((db: { binding: string }) => db.binding),
    ...(rawConfig.r2_buckets ?? []).map((r2: { binding: string }) => r2.binding),
    ...(rawConfig.queues?.producers ?? []).map((producer: { binding: string }) => producer.binding),
    ...Object.keys(rawConfig.vars ?? {}),
    ...REQUIRED_SECRETS,
  ];
  for (const name of expected) assert.ok(described.includes(name), name);
  for (const [name, { description }] of Object.entries(block.bindings))
    assert.ok(description.length > 20, name);
});

test("the button: its deploy command migrates by binding before the upload, and the README links it", () => {
  // npm run deploy is what the button's build runs; scripts/deploy.ts applies the migrations by
  // binding name, then checks them, before wrangler deploy (proved in setup-deploy.test.ts).
  assert.equal(pkg.scripts.deploy, "tsx scripts/deploy.ts");
  assert.match(read("scripts/deploy.ts"), /"d1", "migrations", "apply", db\.binding, "--remote"/);
  assert.equal(pkg.scripts.predeploy, undefined, "nothing runs before it that could fail on a fresh account");
  const button =
    /\[!\[Deploy to Cloudflare\]\(https:\/\/deploy\.workers\.cloudflare\.com\/button\)\]\((https:\/\/deploy\.workers\.cloudflare\.com\/\?url=[^)]+)\)/.exec(
      read("README.md"),
    );
  assert.ok(button, "the README has the button");
  const repo = new URL(button[1] as string).searchParams.get("url");
  assert.match(repo ?? "", new RegExp(`^https://github\\.com/[^/]+/${pkg.name}$`));
});

test("npm create cloudflare: the template's layout, and a config it rewrote still deploys", () => {
  // C3 copies a remote template's root unless it has js/ or ts/ (then one of those), and refuses
  // one without a wrangler config or a package.json (workers-sdk create-cloudflare templates.ts).
  for (const file of ["wrangler.toml", "package.json"]) assert.ok(existsSync(join(ROOT, file)), file);
  for (const variant of ["js", "ts"]) assert.ok(!existsSync(join(ROOT, variant)), `no ${variant}/ folder`);
  // It then rewrites wrangler.toml (comments gone) under the project's name: the deploy path reads
  // the config through wrangler's reader and names the namespace after the Worker.
  const renamed = projectOf({ ...rawConfig, name: "my-relay" });
  assert.ok(renamed.ok);
  assert.equal(renamed.project.worker, "my-relay");
  assert.equal(renamed.project.namespaces[0]?.title, "my-relay-dedup");
  assert.deepEqual(
    Object.keys(cloudflareBlock({ ...rawConfig, name: "my-relay" }).bindings),
    Object.keys(cloudflareBlock(rawConfig).bindings),
  );
});
