/**
 * package.json's `cloudflare` block, which the Deploy to Cloudflare button reads
 * (developers.cloudflare.com/workers/platform/deploy-buttons): a label, the products, and a
 * description beside each binding, var and secret it shows. A setting is described by
 * SETTINGS_DOC, the one source of its meaning; a binding by the table below. `npm run docs`
 * writes the block; test-node/template.test.ts fails when package.json differs from it.
 */
import type { Unstable_RawConfig } from "wrangler";
import { SETTINGS_DOC } from "../../src/config";

export const LABEL = "Pendo to Segment relay";

/** What each binding in wrangler.toml holds, for the button's setup page. */
export const BINDING_DESCRIPTIONS: Record<string, string> = {
  DEDUP:
    "KV namespace for the edge's dedup markers (one per Pendo uniqueId) and the dead letters D1 could not take. Created as <worker name>-dedup.",
  LEDGER:
    "D1 database: dead letters, quarantined webhooks, do-not-process flags, drift, alerts and hourly counters. npm run deploy applies migrations/ before the code that needs them.",
  ARCHIVE:
    "R2 bucket for the bytes of dead letters, quarantined webhooks, parked batches and the archive. Lifecycle rules expire archive/ after ARCHIVE_DAYS.",
  EVENTS:
    "Queue the edge puts each accepted webhook on; its consumer delivers in batches. Its dead-letter queue is named in wrangler.toml too.",
};

export interface CloudflareBlock {
  label: string;
  products: string[];
  bindings: Record<string, { description: string }>;
}

/** The block for this wrangler.toml: its bindings and vars, and every secret of the settings schema. */
export function cloudflareBlock(raw: Unstable_RawConfig): CloudflareBlock {
  // Each product the button provisions, with the bindings that use it.
  const byProduct: Record<string, { binding: string }[]> = {
    KV: raw.kv_namespaces ?? [],
    D1: raw.d1_databases ?? [],
    R2: raw.r2_buckets ?? [],
    Queues: raw.queues?.producers ?? [],
  };
  const secrets = Object.entries(SETTINGS_DOC).filter(([, doc]) => doc.kind === "secret");
  const described: [string, string | undefined][] = [
    ...Object.values(byProduct)
      .flat()
      .map(({ binding }): [string, string | undefined] => [binding, BINDING_DESCRIPTIONS[binding]]),
    ...[...Object.keys(raw.vars ?? {}), ...secrets.map(([name]) => name)].map(
      (name): [string, string | undefined] => [
        name,
        SETTINGS_DOC[name as keyof typeof SETTINGS_DOC]?.description,
      ],
    ),
  ];
  const undescribed = described.filter(([, description]) => !description).map(([name]) => name);
  if (undescribed.length > 0) throw new Error(`no description for ${undescribed.join(", ")}`);
  return {
    label: LABEL,
    products: ["Workers", ...Object.keys(byProduct).filter((product) => byProduct[product]?.length)],
    bindings: Object.fromEntries(
      described.map(([name, description]) => [name, { description: description ?? "" }]),
    ),
  };
}

/** package.json with its `cloudflare` block replaced (in place, or added after `engines`). */
export function withCloudflareBlock(packageJson: string, block: CloudflareBlock): string {
  const entries = Object.entries(JSON.parse(packageJson) as Record<string, unknown>).filter(
    ([key]) => key !== "cloudflare",
  );
  const at = Object.keys(JSON.parse(packageJson)).indexOf("cloudflare");
  const index = at >= 0 ? at : entries.findIndex(([key]) => key === "engines") + 1;
  entries.splice(index, 0, ["cloudflare", block]);
  return `${JSON.stringify(Object.fromEntries(entries), null, 2)}\n`;
}
