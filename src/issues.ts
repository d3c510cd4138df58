import * as v from "valibot";

/**
 * What is wrong with an input, as a sender or operator can act on it: a dotted path and a
 * sentence. Webhook validation, settings and stored records all report issues in this shape.
 */
export interface Issue {
  path: string;
  message: string;
}

/** valibot issues flattened to `Issue`s. */
export function issuesOf(issues: readonly v.BaseIssue<unknown>[]): Issue[] {
  return issues.map((issue) => ({ path: v.getDotPath(issue) ?? "", message: issue.message }));
}
