import { describe, expect, it } from "vitest";

// The source of each layer, as text: what it imports is what it depends on.
const pendo = import.meta.glob<string>("../src/pendo/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});
const destination = import.meta.glob<string>("../src/destination/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});

const ledger = import.meta.glob<string>("../src/ledger/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});

const r2 = import.meta.glob<string>("../src/r2/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});

const records = import.meta.glob<string>("../src/records/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});

const importsOf = (files: Record<string, string>) =>
  Object.entries(files).flatMap(([file, text]) =>
    [...text.matchAll(/^import[^;]*?from "([^"]+)";/gms)].map((match) => ({
      file,
      from: match[1] as string,
    })),
  );

describe("layers point down (STYLE.md)", () => {
  it.each([
    [
      "pendo/",
      pendo,
      [
        "../delivery/",
        "../http/",
        "../admin/",
        "../console/",
        "../kv/",
        "../queue/",
        "../alerts/",
        "../ledger/",
      ],
    ],
    [
      "destination/",
      destination,
      [
        "../pendo/",
        "../delivery/",
        "../http/",
        "../admin/",
        "../console/",
        "../kv/",
        "../queue/",
        "../ledger/",
      ],
    ],
    // The ledger stores and reads; deciding (alerts), delivering and answering live above it.
    ["ledger/", ledger, ["../delivery/", "../http/", "../admin/", "../console/", "../alerts/", "../cron/"]],
    // The R2 layout and format know nothing of the relay's data: keys and frames only.
    ["r2/", r2, ["../"]],
    // Records are stored and read (R2 and D1); who decides to store them lives above.
    [
      "records/",
      records,
      ["../delivery/", "../http/", "../admin/", "../console/", "../alerts/", "../cron/", "../archive/"],
    ],
  ] as const)("%s imports nothing from the layers above it", (_layer, files, forbidden) => {
    const imports = importsOf(files);
    expect(Object.keys(files).length).toBeGreaterThan(0);
    // A layer that may import nothing of the relay is checked as such; the others must import something.
    if (!(forbidden as readonly string[]).includes("../")) expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter(({ from }) => forbidden.some((prefix) => from.startsWith(prefix)))).toEqual([]);
  });
});
