/**
 * Segment efficiency: webhooks sent into the running relay at a sustained rate, delivered to the
 * stand-in. Counts Segment requests and bytes per webhook, and the time from the relay's 202 to
 * the call's arrival at the stand-in.
 */
import type { LocalRelay } from "../scripts/harness/local-relay";
import { LOCAL_TOKEN, waitFor } from "../scripts/harness/local-relay";
import { sampleWebhook } from "../scripts/samples";

export interface DeliveryFigures {
  webhooks: number;
  calls: number;
  /** Calls still missing when the wait ended (0 unless something was lost or stuck). */
  undelivered: number;
  segmentRequests: number;
  requestsPerWebhook: number;
  bytesPerWebhook: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencies: number[];
  sendSeconds: number;
  drainSeconds: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export async function benchDelivery(
  local: LocalRelay,
  webhooks = 10_000,
  concurrency = 32,
): Promise<DeliveryFigures> {
  const standIn = local.standIn.standIn;
  const arrivals = new Map<string, number>();
  standIn.onEvent = (event) => arrivals.set(String(event.call.messageId), Date.now());
  const requestsBefore = standIn.requests.length;
  const accepted = new Map<string, number>();
  let next = 0;
  const started = Date.now();
  async function worker() {
    while (next < webhooks) {
      next++;
      const webhook = sampleWebhook("guideDisplayed");
      const response = await fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(webhook),
      });
      const body = (await response.json()) as { calls?: { messageId: string }[] };
      if (response.status !== 202) throw new Error(`webhook answered ${response.status}`);
      for (const call of body.calls ?? []) accepted.set(call.messageId, Date.now());
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const sent = Date.now();
  await waitFor(
    "every call to arrive",
    async () => ([...accepted.keys()].every((id) => arrivals.has(id)) ? true : undefined),
    180_000,
    500,
  );
  const drained = Date.now();
  const latencies = [...accepted]
    .filter(([id]) => arrivals.has(id))
    .map(([id, at]) => (arrivals.get(id) as number) - at)
    .sort((a, b) => a - b);
  const requests = standIn.requests.slice(requestsBefore);
  const bytes = requests.reduce((sum, r) => sum + r.bytes, 0);
  return {
    webhooks,
    calls: accepted.size,
    undelivered: [...accepted.keys()].filter((id) => !arrivals.has(id)).length,
    segmentRequests: requests.length,
    requestsPerWebhook: Number((requests.length / webhooks).toFixed(4)),
    bytesPerWebhook: Math.round(bytes / webhooks),
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    latencies,
    sendSeconds: Number(((sent - started) / 1000).toFixed(1)),
    drainSeconds: Number(((drained - sent) / 1000).toFixed(1)),
  };
}
