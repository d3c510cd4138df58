/** Renders the chaos run as docs/reliability.md. Pure. */
import type { MachineInfo } from "./environment";

interface ChaosResults {
  machine: MachineInfo;
  outage: {
    webhooks: number;
    requestsSent: number;
    statuses: Record<string, number>;
    outcomes: Record<string, number>;
    failureShare: number;
    segmentRequests: number;
    segmentRequestsByStatus: Record<string, number>;
    expectedCalls: number;
    distinctMessageIdsDelivered: number;
    lost: number;
    deliveredUnderTwoIds: number;
    duplicatesCollapsedBySegment: number;
    poisoned: number;
    deadLettered: number;
    deadLetteredReasons: Record<string, number>;
    deadLettersNotPoisoned: number;
    sendSeconds: number;
    drainSeconds: number;
    timedOut: boolean;
  };
  fuzz: {
    bodies: number;
    validMixedIn: number;
    byKindAndStatus: Record<string, Record<string, number>>;
    serverErrors: number;
    rejected400: number;
    quarantined: number;
    validLost: number;
  };
}

const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const check = (ok: boolean) => (ok ? "yes" : "**NO**");
const list = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([key, value]) => `${key}: ${value.toLocaleString("en-US")}`)
    .join(", ");

export function renderReliability(results: ChaosResults, file: string): string {
  const { machine, outage, fuzz } = results;
  const kinds = Object.entries(fuzz.byKindAndStatus).map(([kind, statuses]) =>
    row([
      kind,
      Object.values(statuses)
        .reduce((a, b) => a + b, 0)
        .toLocaleString("en-US"),
      list(statuses),
    ]),
  );
  return `# Reliability

<!-- Written by \`npm run chaos\`; figures from ${file}. -->

Measured ${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores; Node.js ${machine.node},
wrangler ${machine.wrangler}, workerd ${machine.workerd}. One run of \`npm run chaos\` against
\`wrangler dev\` (local KV and queues) and the Segment stand-in, with short retry settings
(\`RETRY_BASE_SECONDS=1\`, \`RETRY_MAX_SECONDS=4\`, \`SEGMENT_TIMEOUT_MS=2000\`) so the run drains in
minutes; the production schedule is in [operations](operations.md).

## Through a Segment outage

${outage.webhooks.toLocaleString("en-US")} webhooks of every catalog event; a third sent twice (half of those at the same
moment); ${outage.poisoned} poisoned on purpose (half that Segment refuses with a 400, half over 32 KB even after
trimming). The stand-in failed ${outage.failureShare * 100}% of requests, in turn with a 500, a 429 with \`Retry-After: 1\`,
and a hang past the relay's timeout.

| Figure | Count |
| --- | --- |
${row(["Requests sent to the relay", outage.requestsSent.toLocaleString("en-US")])}
${row(["Relay answers", list(outage.statuses)])}
${row(["Outcomes", list(outage.outcomes)])}
${row(["Duplicates filtered at the edge", (outage.outcomes.duplicate ?? 0).toLocaleString("en-US")])}
${row(["Segment requests (by answer)", `${outage.segmentRequests.toLocaleString("en-US")} (${list(outage.segmentRequestsByStatus)})`])}
${row(["Segment calls expected", outage.expectedCalls.toLocaleString("en-US")])}
${row(["Distinct messageIds delivered", outage.distinctMessageIdsDelivered.toLocaleString("en-US")])}
${row(["Concurrent redeliveries collapsed by Segment's messageId dedup", outage.duplicatesCollapsedBySegment])}
${row(["**Lost** (must be 0)", outage.lost])}
${row(["**Delivered twice under different messageIds** (must be 0)", outage.deliveredUnderTwoIds])}
${row(["Dead-lettered", `${outage.deadLettered} (${list(outage.deadLetteredReasons)})`])}
${row(["Dead letters that were not poisoned (must be 0)", outage.deadLettersNotPoisoned])}
${row(["Time to send / to drain after the last send", `${outage.sendSeconds} s / ${outage.drainSeconds} s${outage.timedOut ? " (timed out)" : ""}`])}

Every check holds: ${check(outage.lost === 0 && outage.deliveredUnderTwoIds === 0 && outage.deadLettersNotPoisoned === 0 && outage.deadLettered === outage.poisoned && !outage.timedOut)}.

## Bad input

${fuzz.bodies.toLocaleString("en-US")} bodies drawn by fast-check (seeded) from the kinds below, sent to \`POST /pendo\` with a valid
token, with ${fuzz.validMixedIn} valid webhooks mixed in.

| Kind | Sent | Relay answers |
| --- | --- | --- |
${kinds.join("\n")}

| Figure | Count |
| --- | --- |
${row(["**5xx answers** (must be 0)", fuzz.serverErrors])}
${row(["400 answers", fuzz.rejected400.toLocaleString("en-US")])}
${row(["Quarantined (every authenticated 400 is kept for replay)", fuzz.quarantined.toLocaleString("en-US")])}
${row(["**Valid webhooks lost** (must be 0)", fuzz.validLost])}

Every check holds: ${check(fuzz.serverErrors === 0 && fuzz.validLost === 0 && fuzz.quarantined === fuzz.rejected400)}.
`;
}
