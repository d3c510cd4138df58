import { type AlertScope, alertSoon } from "../alerts/notify";
import { type CountDelta, countStatement } from "../ledger/counts";
import { type DeliveryRound, deliveryStatement } from "../ledger/delivery";
import { successStatement } from "../ledger/destinations";
import { type DriftItem, driftRows, driftStatement, evictionStatements } from "../ledger/drift";
import { log } from "../log";
import type { RelayMessage } from "../queue/message";

/**
 * Counters, drift, each source's delivery status and each destination's recovery, for a whole
 * invocation in one round trip after delivery. Bookkeeping, not delivery: a failure is logged
 * and never touches the events (which are settled already).
 */
export async function recordLedger(
  scope: AlertScope,
  input: {
    messages: readonly RelayMessage[];
    counts: readonly CountDelta[];
    rounds: ReadonlyMap<string, DeliveryRound>;
    /** Destinations that delivered in this invocation. */
    recovered: readonly string[];
  },
): Promise<void> {
  const { db, now } = scope;
  const drift: DriftItem[] = [];
  for (const message of input.messages) {
    if (message.unmapped) drift.push({ source: message.source, kind: "event", event: message.event });
    for (const key of message.drift ?? []) {
      drift.push({ source: message.source, kind: "property", event: message.event, key });
    }
  }
  const rows = driftRows(drift);
  const counted = countStatement(db, input.counts);
  const rounds = [...input.rounds];
  const statements = [
    ...rounds.map(([source, round]) => deliveryStatement(db, source, round, now)),
    ...(rows.length > 0 ? [driftStatement(db, rows)] : []),
    ...(counted ? [counted] : []),
    ...input.recovered.map((id) => successStatement(db, id, now)),
  ];
  if (statements.length === 0) return;
  try {
    const results = await db.batch(statements);
    rounds.forEach(([source, round], i) => {
      const status = results[i]?.results[0] as { recovered: number; failingSince: number | null } | undefined;
      // Only a change of state asks the ledger whether to alert: steady delivery asks nothing.
      if (status?.recovered) alertSoon(scope, source, "delivery-recovered");
      else if (round.failed && !round.delivered) alertSoon(scope, source, "delivery-failing");
    });
    type Fresh = { source: string; kind: string; event: string; key: string; fresh: number };
    const fresh =
      rows.length > 0 ? ((results[rounds.length]?.results ?? []) as Fresh[]).filter((r) => r.fresh) : [];
    if (fresh.length === 0) return;
    for (const row of fresh) {
      log("warn", "drift", {
        source: row.source,
        kind: row.kind,
        event: row.event,
        key: row.key || undefined,
      });
    }
    const sources = new Set(fresh.map((row) => row.source));
    await db.batch([...sources].flatMap((source) => evictionStatements(db, source)));
    for (const source of new Set(fresh.filter((row) => row.kind === "event").map((row) => row.source))) {
      alertSoon(scope, source, "unknown-event");
    }
  } catch (error) {
    log("warn", "ledger-write-failed", { record: "counts", error: String(error) });
  }
}
