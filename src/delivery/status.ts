import type { AlertScope } from "../alerts/notify";
import { raiseAlert } from "../alerts/notify";
import { isolateState } from "../kv/isolateState";
import { deliveryStatusKey } from "../kv/keys";
import { log } from "../log";

/**
 * How Segment has been answering, per source: the last success, the last failure and its status,
 * and since when it has answered nothing but failures. Kept by the consumer in memory and in KV
 * (`status:<source>`), written every ten minutes per source, on a change of state at most once a
 * minute, and when an alert changes it.
 * It is what turns "every request failed for ALERT_FAILING_SECONDS" into one `delivery-failing`
 * alert, and the next success into one `delivery-recovered`.
 */
export interface DeliveryStatus {
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastStatus: number | null;
  failingSince: number | null;
  failingAlertedAt: number | null;
}

/** What one consumer invocation saw of a source. */
export interface DeliveryRound {
  delivered: boolean;
  failed: boolean;
  lastStatus: number | null;
}

// A quiet record: the Free plan allows 1,000 KV writes a day, so the periodic write comes every
// ten minutes (144 a day per source), and a change of state (failing, recovered) at most once a
// minute. Reads refresh this isolate's copy as often as it would write.
const WRITE_EVERY_MS = 600_000;
const CHANGE_AT_MOST_EVERY_MS = 60_000;
const EMPTY: DeliveryStatus = {
  lastSuccessAt: null,
  lastFailureAt: null,
  lastStatus: null,
  failingSince: null,
  failingAlertedAt: null,
};

interface Cached {
  status: DeliveryStatus;
  loadedAt: number;
  writtenAt: number;
}
const cachedOf = isolateState<Cached>(() => ({
  status: EMPTY,
  loadedAt: Number.NEGATIVE_INFINITY,
  writtenAt: 0,
}));

/** Pure: the status after a round, and which alert (if any) it calls for. */
export function nextStatus(
  status: DeliveryStatus,
  round: DeliveryRound,
  now: number,
  failingMs: number,
): { status: DeliveryStatus; alert?: "delivery-failing" | "delivery-recovered" } {
  if (round.delivered) {
    const next = { ...status, lastSuccessAt: now, failingSince: null, failingAlertedAt: null };
    return status.failingAlertedAt !== null
      ? { status: next, alert: "delivery-recovered" }
      : { status: next };
  }
  if (!round.failed) return { status };
  const failingSince = status.failingSince ?? now;
  const next = { ...status, lastFailureAt: now, lastStatus: round.lastStatus, failingSince };
  if (status.failingAlertedAt === null && now - failingSince >= failingMs) {
    return { status: { ...next, failingAlertedAt: now }, alert: "delivery-failing" };
  }
  return { status: next };
}

export async function recordDeliveryRounds(
  scope: AlertScope,
  rounds: ReadonlyMap<string, DeliveryRound>,
): Promise<void> {
  for (const [source, round] of rounds) {
    try {
      const cached = cachedOf(scope.kv, source);
      if (scope.now - cached.loadedAt > WRITE_EVERY_MS) {
        // Another isolate may have written since: its record wins over this memory.
        const stored = await scope.kv.get<DeliveryStatus>(deliveryStatusKey(source), "json");
        if (stored) cached.status = { ...EMPTY, ...stored };
        cached.loadedAt = scope.now;
      }
      const before = cached.status;
      const { status, alert } = nextStatus(
        before,
        round,
        scope.now,
        scope.settings.ALERT_FAILING_SECONDS * 1000,
      );
      cached.status = status;
      if (alert === "delivery-failing") {
        raiseAlert(scope, source, alert, {
          lastStatus: status.lastStatus,
          since: status.failingSince ?? scope.now,
          keys: [String(status.lastStatus ?? "no answer")],
        });
      } else if (alert === "delivery-recovered") {
        raiseAlert(scope, source, alert, { since: before.failingSince ?? scope.now });
      }
      const changed =
        (before.failingSince === null) !== (status.failingSince === null) || alert !== undefined;
      const since = scope.now - cached.writtenAt;
      if (since >= WRITE_EVERY_MS || (changed && since >= CHANGE_AT_MOST_EVERY_MS) || alert) {
        cached.writtenAt = scope.now;
        await scope.kv.put(deliveryStatusKey(source), JSON.stringify(status));
      }
    } catch (error) {
      // Status is a report, not a delivery: its failure never touches the events.
      log("warn", "delivery-status-failed", { source, error: String(error) });
    }
  }
}

/** The stored status of a source, for /health and the console. */
export async function deliveryStatusOf(kv: KVNamespace, source: string): Promise<DeliveryStatus> {
  return { ...EMPTY, ...(await kv.get<DeliveryStatus>(deliveryStatusKey(source), "json")) };
}
