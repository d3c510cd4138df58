/**
 * The ledger's tables as the migrations declare them: each `CREATE TABLE` with the comment lines
 * just above it, and each `CREATE INDEX` with its own. The SQL is the one source of truth; the
 * table in docs/operations.md is rendered from it.
 */
export interface LedgerTable {
  name: string;
  purpose: string;
  indexes: { columns: string; purpose: string }[];
}

/** `migrations`: each file's SQL, in the order they apply. */
export function ledgerTables(migrations: readonly string[]): LedgerTable[] {
  const tables: LedgerTable[] = [];
  for (const sql of migrations) {
    let comments: string[] = [];
    for (const line of sql.split("\n")) {
      const comment = /^--\s?(.*)$/.exec(line);
      if (comment) {
        comments.push(comment[1] as string);
        continue;
      }
      const table = /^CREATE TABLE (\w+)/.exec(line);
      const index = /^CREATE INDEX \w+ ON (\w+) \(([^)]*)\)/.exec(line);
      const dropped = /^DROP TABLE (\w+)/.exec(line);
      const renamed = /^ALTER TABLE (\w+) RENAME TO (\w+)/.exec(line);
      const superseded = comments.map((c) => /^(\w+) is superseded: (.*)$/.exec(c)).find(Boolean);
      if (superseded) {
        const old = tables.find((t) => t.name === superseded[1]);
        if (old) old.purpose = `Superseded: ${superseded[2]}`;
      }
      if (table) tables.push({ name: table[1] as string, purpose: comments.join(" "), indexes: [] });
      else if (dropped) {
        // A table rebuilt under its own name keeps its place in the list.
        const at = tables.findIndex((t) => t.name === dropped[1]);
        if (at >= 0) tables[at] = { name: `\0${dropped[1]}`, purpose: "", indexes: [] };
      } else if (renamed) {
        const from = tables.findIndex((t) => t.name === renamed[1]);
        const place = tables.findIndex((t) => t.name === `\0${renamed[2]}`);
        const moved = tables[from];
        if (moved) {
          moved.name = renamed[2] as string;
          if (place >= 0) {
            tables.splice(from, 1);
            tables[place] = moved;
          }
        }
      } else if (index) {
        tables
          .find((t) => t.name === index[1])
          ?.indexes.push({ columns: `(${index[2]})`, purpose: comments.join(" ") });
      }
      // A comment block belongs to the statement right below it, and to nothing else.
      comments = [];
    }
  }
  return tables.filter((t) => !t.name.startsWith("\0"));
}
