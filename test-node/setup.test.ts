import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  createdKvNamespaceId,
  currentKvNamespaceId,
  findKvNamespaceId,
  listedQueues,
  listedSecrets,
  missingSecrets,
  PLACEHOLDER_KV_ID,
  withKvNamespaceId,
} from "../scripts/setup/config";

const ID = "0123456789abcdef0123456789abcdef";

test("setup writes the KV id into the DEDUP block of the real wrangler.toml, and only there", () => {
  const toml = readFileSync("wrangler.toml", "utf8");
  assert.equal(currentKvNamespaceId(toml), PLACEHOLDER_KV_ID);
  const updated = withKvNamespaceId(toml, ID);
  assert.equal(currentKvNamespaceId(updated), ID);
  assert.equal(updated.replace(ID, PLACEHOLDER_KV_ID), toml);
  assert.equal(withKvNamespaceId(updated, ID), updated, "idempotent");
  assert.throws(() => withKvNamespaceId(toml, "not-an-id"));
});

test("setup recognises the namespace under wrangler 3 and 4 titles", () => {
  const list = (title: string) =>
    JSON.stringify([
      { id: "f".repeat(32), title: "other" },
      { id: ID, title },
    ]);
  assert.equal(findKvNamespaceId(list("DEDUP"), "pendo-segment-relay"), ID);
  assert.equal(findKvNamespaceId(list("pendo-segment-relay-DEDUP"), "pendo-segment-relay"), ID);
  assert.equal(findKvNamespaceId(list("SOMETHING"), "pendo-segment-relay"), undefined);
});

test("setup reads the id wrangler prints on create, as TOML or JSON", () => {
  assert.equal(createdKvNamespaceId(`[[kv_namespaces]]\nbinding = "DEDUP"\nid = "${ID}"`), ID);
  assert.equal(createdKvNamespaceId(`{ "binding": "DEDUP", "id": "${ID}" }`), ID);
  assert.equal(createdKvNamespaceId("error"), undefined);
});

test("setup finds existing queues in wrangler's table and asks only for missing secrets", () => {
  const table = "┌──┬──┐\n│ id │ name │\n│ 1 │ pendo-events │\n│ 2 │ other-queue │\n";
  assert.deepEqual(listedQueues(table), new Set(["pendo-events"]));
  assert.deepEqual(missingSecrets(listedSecrets('[{"name":"WEBHOOK_TOKEN","type":"secret_text"}]')), [
    "SEGMENT_WRITE_KEY",
    "ADMIN_TOKEN",
    "ALERT_WEBHOOK_URL",
  ]);
});
