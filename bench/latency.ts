/**
 * Accept-to-Segment latency against the queue's batch window: for each `max_batch_timeout`, a
 * trickle (one webhook a second) and a burst, each reporting p50/p99 from the relay's 202 to the
 * call's arrival at the Segment stand-in, and Segment requests per webhook.
 */
import { LOCAL_TOKEN, startLocalRelay } from "../scripts/harness/local-relay";
import { sampleWebhook } from "../scripts/samples";
import { benchDelivery, percentile } from "./delivery";

export interface LatencyFigures {
  maxBatchTimeout: number;
  load: "1 webhook/s" | "burst";
  webhooks: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerWebhook: number;
}

async function trickle(
  url: string,
  standIn: Awaited<ReturnType<typeof startLocalRelay>>["standIn"],
  count: number,
) {
  const arrivals = new Map<string, number>();
  standIn.standIn.onEvent = (event) => arrivals.set(String(event.call.messageId), Date.now());
  const requestsBefore = standIn.standIn.requests.length;
  const accepted = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    const response = await fetch(`${url}/pendo?token=${LOCAL_TOKEN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(sampleWebhook("guideDisplayed")),
    });
    const body = (await response.json()) as { calls?: { messageId: string }[] };
    for (const call of body.calls ?? []) accepted.set(call.messageId, Date.now());
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_000 - (Date.now() - started))));
  }
  const deadline = Date.now() + 30_000;
  while ([...accepted.keys()].some((id) => !arrivals.has(id)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const latencies = [...accepted]
    .filter(([id]) => arrivals.has(id))
    .map(([id, at]) => (arrivals.get(id) as number) - at)
    .sort((a, b) => a - b);
  return {
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    requestsPerWebhook: Number(((standIn.standIn.requests.length - requestsBefore) / count).toFixed(3)),
  };
}

export async function benchLatency(
  timeouts = [1, 2, 5],
  trickleCount = 20,
  burst = 2_000,
): Promise<LatencyFigures[]> {
  const figures: LatencyFigures[] = [];
  for (const maxBatchTimeout of timeouts) {
    const local = await startLocalRelay({}, { maxBatchTimeout });
    try {
      const slow = await trickle(local.url, local.standIn, trickleCount);
      figures.push({ maxBatchTimeout, load: "1 webhook/s", webhooks: trickleCount, ...slow });
      const fast = await benchDelivery(local, burst);
      figures.push({
        maxBatchTimeout,
        load: "burst",
        webhooks: burst,
        p50Ms: fast.latencyP50Ms,
        p99Ms: fast.latencyP99Ms,
        requestsPerWebhook: fast.requestsPerWebhook,
      });
    } finally {
      await local.stop();
    }
  }
  return figures;
}
