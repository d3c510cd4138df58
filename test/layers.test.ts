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
  ] as const)("%s imports nothing from the layers above it", (_layer, files, forbidden) => {
    const imports = importsOf(files);
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter(({ from }) => forbidden.some((prefix) => from.startsWith(prefix)))).toEqual([]);
  });
});
