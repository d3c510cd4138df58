import type { LedgerRecord } from "../ledger/records";

/**
 * Reads records' bytes back from R2, byte for byte: for each object one ranged get covering the
 * slices its records need (records of one group usually sit side by side), so a page of records
 * costs one get per group, not one per record. Rows from before migration 0002 carry their bytes
 * already; a row over its source's budget has none.
 */

export type BytesProblem = { id: string; reason: "missing-object" | "unreadable-object"; detail: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Fills `body` or `message` of each record; returns the records whose bytes could not be read. */
export async function loadRecordBytes(
  bucket: R2Bucket,
  records: readonly LedgerRecord[],
): Promise<BytesProblem[]> {
  const byObject = new Map<string, LedgerRecord[]>();
  const problems: BytesProblem[] = [];
  for (const record of records) {
    if (record.holds === "legacy" || record.holds === "none") continue;
    if (!record.object) {
      problems.push({ id: record.id, reason: "missing-object", detail: "the row names no R2 object" });
      continue;
    }
    byObject.set(record.object.key, [...(byObject.get(record.object.key) ?? []), record]);
  }
  await Promise.all(
    [...byObject].map(async ([key, group]) => {
      const start = Math.min(...group.map((r) => r.object?.offset ?? 0));
      const end = Math.max(...group.map((r) => (r.object?.offset ?? 0) + (r.object?.length ?? 0)));
      const fail = (reason: BytesProblem["reason"], detail: string) => {
        for (const record of group) problems.push({ id: record.id, reason, detail });
      };
      let data = new Uint8Array(0);
      // Every slice empty (an empty body): nothing to read, and R2 refuses a zero-length range.
      if (end > start)
        try {
          const object = await bucket.get(key, { range: { offset: start, length: end - start } });
          if (!object) return fail("missing-object", `R2 has no object ${key}`);
          data = new Uint8Array(await object.arrayBuffer());
        } catch (error) {
          return fail("unreadable-object", `R2 could not read ${key}: ${String(error)}`);
        }
      for (const record of group) {
        const { offset, length } = record.object as { offset: number; length: number };
        const bytes = data.slice(offset - start, offset - start + length);
        if (bytes.length !== length) {
          problems.push({
            id: record.id,
            reason: "unreadable-object",
            detail: `${key} is shorter than its index says`,
          });
          continue;
        }
        if (record.holds === "body") record.body = bytes;
        else {
          try {
            record.message = utf8.decode(bytes);
          } catch {
            problems.push({
              id: record.id,
              reason: "unreadable-object",
              detail: `${key}: the message is not UTF-8`,
            });
          }
        }
      }
    }),
  );
  return problems;
}
