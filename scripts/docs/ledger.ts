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
      if (table) tables.push({ name: table[1] as string, purpose: comments.join(" "), indexes: [] });
      else if (index) {
        tables
          .find((t) => t.name === index[1])
          ?.indexes.push({ columns: `(${index[2]})`, purpose: comments.join(" ") });
      }
      // A comment block belongs to the statement right below it, and to nothing else.
      comments = [];
    }
  }
  return tables;
}
