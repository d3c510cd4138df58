/**
 * RECORD_BUDGET_BYTES: what one source may keep in R2 for the records a sender's input alone can
 * make (quarantined webhooks, events too large to deliver). The ledger keeps each source's bytes
 * exact (`record_bytes`, kept by triggers as rows come and go). Past the budget a new record keeps
 * its row (what, when, why, at most 8 KB) but not its bytes; nothing stored is ever deleted to
 * make room. Two stores at once may both fit under the last few bytes: the budget can be passed
 * by at most what is in flight, never silently by a whole store's worth.
 */
export interface BudgetCheck {
  keep: boolean;
  /** Bytes the source keeps now (before this record). */
  used: number;
  budget: number;
}

/** The share of the budget at which the alert fires. */
export const BUDGET_ALERT_SHARE = 0.8;

export async function checkBudget(
  db: D1Database,
  source: string,
  adding: number,
  budget: number,
): Promise<BudgetCheck> {
  const row = await db
    .prepare("SELECT bytes FROM record_bytes WHERE source = ?")
    .bind(source)
    .first<{ bytes: number }>();
  const used = row?.bytes ?? 0;
  return { keep: used + adding <= budget, used, budget };
}

/** Whether storing `adding` more bytes takes the source to the alert's share of its budget. */
export const nearBudget = (check: BudgetCheck, adding: number) =>
  check.used + (check.keep ? adding : 0) >= check.budget * BUDGET_ALERT_SHARE;
