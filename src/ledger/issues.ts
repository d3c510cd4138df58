import type { Issue } from "../issues";

/** Issues a list shows per quarantined record; the record itself has them all (up to 50). */
export const LISTED_ISSUES = 3;
/** Characters of a path or message a list shows: a path names the sender's keys, any length. */
export const LISTED_ISSUE_CHARS = 200;

export interface IssueSummary {
  issues: Issue[];
  issueCount: number;
}

/**
 * The first issues of each quarantined record, cut, and how many it has: what the console's list
 * shows without reading a record (its body can be up to MAX_BODY_BYTES). Read in SQL for all of
 * a page's ids at once, one statement, the ids as one JSON parameter.
 */
export async function issueSummaries(
  db: D1Database,
  ids: readonly string[],
): Promise<Map<string, IssueSummary>> {
  if (ids.length === 0) return new Map();
  const { results } = await db
    .prepare(
      `SELECT r.id AS id, coalesce(json_array_length(r.issues), 0) AS issueCount,
         (SELECT json_group_array(json_object('path', substr(i.value ->> 'path', 1, ?2),
                                              'message', substr(i.value ->> 'message', 1, ?2)))
          FROM json_each(r.issues) AS i WHERE i.key < ?3) AS issues
       FROM records AS r WHERE r.kind = 'quarantine' AND r.id IN (SELECT value FROM json_each(?1))`,
    )
    .bind(JSON.stringify(ids), LISTED_ISSUE_CHARS, LISTED_ISSUES)
    .all<{ id: string; issueCount: number; issues: string }>();
  return new Map(
    results.map((row) => [row.id, { issues: JSON.parse(row.issues) as Issue[], issueCount: row.issueCount }]),
  );
}
