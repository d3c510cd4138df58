/**
 * Runs inside workerd for the transform benchmark. POST /load {payloads} keeps the bodies;
 * POST /run?kind=relay|baseline&iterations=N processes every body N times and returns a checksum
 * (so neither loop can be optimised away). Timing is done by the caller: workerd's clock does
 * not advance during pure CPU work.
 */
import { readWebhook } from "../src/pendo/intake";
import { transformWebhook } from "../src/pendo/transform";

let payloads: string[] = [];

function relay(text: string): number {
  const intake = readWebhook(text);
  if (!intake.ok) throw new Error(`invalid payload: ${JSON.stringify(intake.issues)}`);
  const result = transformWebhook(intake.webhook, {
    source: "default",
    eventNames: "pendo",
    trackEvents: "wrapped",
    eventId: intake.webhook.uniqueId ?? "bench",
    receivedAt: 1_700_000_000_000,
    asciiOnly: intake.ascii,
    warnings: intake.warnings,
    invalid: intake.invalid,
  });
  if (!result.ok) throw new Error(result.reason);
  return result.encoded.reduce((sum, call) => sum + call.bytes, 0);
}

function baseline(text: string): number {
  return JSON.stringify(JSON.parse(text)).length;
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/load") {
      payloads = ((await request.json()) as { payloads: string[] }).payloads;
      return new Response("ok");
    }
    const work = url.searchParams.get("kind") === "relay" ? relay : baseline;
    const iterations = Number(url.searchParams.get("iterations") ?? 1);
    let checksum = 0;
    for (let i = 0; i < iterations; i++) for (const payload of payloads) checksum += work(payload);
    return new Response(String(checksum));
  },
};
