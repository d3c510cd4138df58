import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  createdD1DatabaseId,
  createdKvNamespaceId,
  currentD1DatabaseId,
  currentKvNamespaceId,
  findD1DatabaseId,
  findKvNamespaceId,
  isWorkerNotFound,
  listedQueues,
  listedSecrets,
  PLACEHOLDER_D1_ID,
  PLACEHOLDER_KV_ID,
  parseSetupArgs,
  placeholderBindings,
  secretPlan,
  withD1DatabaseId,
  withKvNamespaceId,
} from "../scripts/setup/config";

const ID = "0123456789abcdef0123456789abcdef";
const UUID = "01234567-89ab-cdef-0123-456789abcdef";

test("setup writes the KV and D1 ids into their blocks of the real wrangler.toml, and only there", () => {
  const toml = readFileSync("wrangler.toml", "utf8");
  assert.equal(currentKvNamespaceId(toml), PLACEHOLDER_KV_ID);
  assert.equal(currentD1DatabaseId(toml), PLACEHOLDER_D1_ID);
  assert.deepEqual(placeholderBindings(toml), ["KV namespace DEDUP", "D1 database LEDGER"]);
  const updated = withD1DatabaseId(withKvNamespaceId(toml, ID), UUID);
  assert.equal(currentKvNamespaceId(updated), ID);
  assert.equal(currentD1DatabaseId(updated), UUID);
  assert.deepEqual(placeholderBindings(updated), []);
  assert.equal(updated.replace(ID, PLACEHOLDER_KV_ID).replace(UUID, PLACEHOLDER_D1_ID), toml);
  assert.equal(withD1DatabaseId(withKvNamespaceId(updated, ID), UUID), updated, "idempotent");
  assert.throws(() => withKvNamespaceId(toml, "not-an-id"));
  assert.throws(() => withD1DatabaseId(toml, ID));
});

test("setup adopts a KV namespace or D1 database only under this project's exact name", () => {
  const namespaces = (title: string) =>
    JSON.stringify([
      { id: "f".repeat(32), title: "other" },
      { id: ID, title },
    ]);
  assert.equal(findKvNamespaceId(namespaces("pendo-segment-relay-dedup")), ID);
  assert.equal(findKvNamespaceId(namespaces("DEDUP")), undefined, "another Worker's DEDUP is not ours");
  assert.equal(findKvNamespaceId(namespaces("pendo-segment-relay-DEDUP")), undefined);
  const databases = (name: string) => JSON.stringify([{ uuid: UUID, name, version: "production" }]);
  assert.equal(findD1DatabaseId(databases("pendo-segment-relay-ledger")), UUID);
  assert.equal(findD1DatabaseId(databases("ledger")), undefined);
});

test("setup reads the ids wrangler prints on create, as TOML or JSON", () => {
  assert.equal(createdKvNamespaceId(`[[kv_namespaces]]\nbinding = "DEDUP"\nid = "${ID}"`), ID);
  assert.equal(createdKvNamespaceId(`{ "binding": "DEDUP", "id": "${ID}" }`), ID);
  assert.equal(createdKvNamespaceId("error"), undefined);
  assert.equal(createdD1DatabaseId(`database_name = "x"\ndatabase_id = "${UUID}"`), UUID);
  assert.equal(createdD1DatabaseId(`{ "database_id": "${UUID}" }`), UUID);
});

test("setup reads queue names from one page of wrangler's table, and an empty page as the end", () => {
  const table = [
    "┌────┬──────────────┬────────────┐",
    "│ id │ name         │ created_on │",
    "├────┼──────────────┼────────────┤",
    "│ 1  │ pendo-events │ 2026       │",
    "├────┼──────────────┼────────────┤",
    "│ 2  │ other-queue  │ 2026       │",
    "└────┴──────────────┴────────────┘",
  ].join("\n");
  assert.deepEqual(listedQueues(table), ["pendo-events", "other-queue"]);
  assert.deepEqual(listedQueues(" ⛅️ wrangler 4.86.0\n──────\n"), []);
});

test("setup replaces a set secret only when asked to, and counts only code 10007 as not deployed", () => {
  const present = listedSecrets('[{"name":"WEBHOOK_TOKEN","type":"secret_text"}]');
  assert.deepEqual(
    secretPlan(present, []).map(({ name, action }) => `${name}:${action}`),
    ["WEBHOOK_TOKEN:keep", "SEGMENT_WRITE_KEY:set", "ADMIN_TOKEN:set", "ALERT_WEBHOOK_URL:set"],
  );
  assert.equal(secretPlan(present, ["WEBHOOK_TOKEN"])[0]?.action, "rotate");
  assert.ok(isWorkerNotFound('✘ [ERROR] Worker "pendo-segment-relay" not found.'));
  assert.ok(isWorkerNotFound("This Worker does not exist on your account. [code: 10007]"));
  assert.ok(!isWorkerNotFound("An unknown error has occurred [code: 10013]"));
});

test("setup's command line: --rotate NAME, --non-interactive, and CI", () => {
  assert.deepEqual(parseSetupArgs([], {}), { rotate: [], nonInteractive: false });
  assert.deepEqual(parseSetupArgs([], { CI: "true" }), { rotate: [], nonInteractive: true });
  assert.deepEqual(
    parseSetupArgs(["--rotate", "WEBHOOK_TOKEN", "--rotate=ADMIN_TOKEN", "--non-interactive"], {}),
    {
      rotate: ["WEBHOOK_TOKEN", "ADMIN_TOKEN"],
      nonInteractive: true,
    },
  );
  assert.throws(() => parseSetupArgs(["--rotate", "NOPE"], {}), /--rotate takes one of/);
  assert.throws(() => parseSetupArgs(["--force"], {}), /unknown option/);
});
