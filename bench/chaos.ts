/**
 * `npm run chaos`: the relay under failure, on this machine, against `wrangler dev` and the
 * Segment stand-in. Two parts, one report (docs/reliability.md, bench/results/chaos-<date>.json):
 * 1. Outage: the stand-in fails a share of requests (500, 429 with Retry-After, hangs past the
 *    timeout) while webhooks arrive, a third of them twice (half of those concurrently), with a
 *    few poisoned on purpose. Counts what was lost (must be 0), what arrived under two messageIds
 *    (must be 0), what was dead-lettered (only the poisoned), and how long the backlog took to drain.
 * 2. Bad input: a seeded fast-check fuzzer sends malformed, truncated, oversized, deeply nested,
 *    wrong-typed and hostile bodies, with valid webhooks mixed in. Counts 5xx (must be 0), what
 *    was quarantined, and whether every valid webhook still reached Segment.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import fc from "fast-check";
import {
  LOCAL_ADMIN_TOKEN,
  LOCAL_TOKEN,
  type LocalRelay,
  startLocalRelay,
  waitFor,
} from "../scripts/harness/local-relay";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { CATALOG } from "../src/pendo/catalog";
import type { InjectedAnswer } from "../standin/segment";
import { machineInfo } from "./environment";
import { runOutageMode } from "./outage";
import { renderReliability, withChaosSection } from "./reliability-report";

const OUTAGE_WEBHOOKS = Number(process.env.CHAOS_WEBHOOKS ?? 3_000);
const FUZZ_BODIES = Number(process.env.CHAOS_FUZZ ?? 10_000);
const FAILURE_SHARE = 0.25;
const STORM_WEBHOOKS = Number(process.env.CHAOS_STORM ?? 500);
// Longer than MAX_RETRIES (20) Retry-After waits of 1 s would last: the old behaviour lost events here.
const STORM_SECONDS = 30;
const POISON_MARK = "chaosPoison";

type Body = string | Uint8Array;

async function post(local: LocalRelay, body: Body) {
  const response = await fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

function expectedMessageIds(webhook: Record<string, unknown>): string[] {
  const entry = CATALOG.find((candidate) => candidate.name === webhook.event);
  return ["track", ...(entry?.fanOut ?? [])].map((type) => `pendo:default:${webhook.uniqueId}:${type}`);
}

async function deadLetters(local: LocalRelay) {
  const entries: { id: string; reason: string; eventId?: string }[] = [];
  let cursor: string | null = null;
  do {
    const response = await fetch(
      `${local.url}/admin/dead-letters?limit=500${cursor ? `&cursor=${cursor}` : ""}`,
      {
        headers: { authorization: `Bearer ${LOCAL_ADMIN_TOKEN}` },
      },
    );
    const page = (await response.json()) as {
      entries: { id: string; reason: string; eventId?: string }[];
      cursor: string | null;
    };
    entries.push(...page.entries);
    cursor = page.cursor;
  } while (cursor);
  return entries;
}

async function countRecords(local: LocalRelay, kind: "quarantine" | "dead-letters") {
  let count = 0;
  let cursor: string | null = null;
  do {
    const response = await fetch(`${local.url}/admin/${kind}?limit=500${cursor ? `&cursor=${cursor}` : ""}`, {
      headers: { authorization: `Bearer ${LOCAL_ADMIN_TOKEN}` },
    });
    const page = (await response.json()) as { entries: unknown[]; cursor: string | null };
    count += page.entries.length;
    cursor = page.cursor;
  } while (cursor);
  return count;
}

export async function outage(local: LocalRelay) {
  const standIn = local.standIn.standIn;
  standIn.setFailureShare(FAILURE_SHARE);
  // A 301 to the stand-in's landing page plays a moved endpoint: followed, the POST would become a
  // GET answered 200, and the batch would look delivered.
  const failures: InjectedAnswer[] = [
    500,
    { status: 429, retryAfter: "1" },
    "hang",
    { status: 301, location: `${local.standIn.url}/` },
  ];
  let draw = 0;
  standIn.randomFailure = () => failures[draw++ % failures.length] as InjectedAnswer;
  standIn.rejectEvent = (call) =>
    (call.properties as Record<string, unknown> | undefined)?.[POISON_MARK] === true;

  const webhooks = Array.from({ length: OUTAGE_WEBHOOKS }, (_, i) => {
    const webhook = sampleWebhook(SAMPLE_EVENTS[i % SAMPLE_EVENTS.length] as string);
    const properties = webhook.properties as Record<string, unknown>;
    if (i % 300 === 7) properties[POISON_MARK] = true; // Segment refuses it (400)
    if (i % 300 === 11) properties.blob = "z".repeat(40_000); // over 32 KB even after trimming
    return webhook;
  });
  const refused = new Set(
    webhooks
      .filter((w) => (w.properties as Record<string, unknown>)[POISON_MARK])
      .map((w) => String(w.uniqueId)),
  );
  const oversize = new Set(
    webhooks.filter((w) => (w.properties as Record<string, unknown>).blob).map((w) => String(w.uniqueId)),
  );

  const statuses: Record<string, number> = {};
  const outcome: Record<string, number> = {};
  const count = (result: { status: number; json: Record<string, unknown> }) => {
    statuses[result.status] = (statuses[result.status] ?? 0) + 1;
    const key = String(result.json.status ?? result.json.error);
    outcome[key] = (outcome[key] ?? 0) + 1;
  };
  const started = Date.now();
  let sent = 0;
  await pool(
    webhooks.map((webhook, i) => ({ webhook, i })),
    16,
    async ({ webhook, i }) => {
      const body = JSON.stringify(webhook);
      if (i % 3 !== 0) {
        sent++;
        return count(await post(local, body));
      }
      sent += 2;
      if (i % 2 === 0)
        for (const result of await Promise.all([post(local, body), post(local, body)])) count(result);
      else {
        count(await post(local, body));
        count(await post(local, body));
      }
    },
  );
  const sendSeconds = (Date.now() - started) / 1000;

  const expected = new Set(
    webhooks
      .filter((w) => !refused.has(String(w.uniqueId)) && !oversize.has(String(w.uniqueId)))
      .flatMap((w) => expectedMessageIds(w)),
  );
  let timedOut = false;
  await waitFor(
    "the backlog to drain",
    async () => (expected.size <= standIn.distinctMessageIds ? true : undefined),
    600_000,
    500,
  ).catch(() => {
    timedOut = true;
  });
  const drainSeconds = (Date.now() - started) / 1000 - sendSeconds;
  await waitFor(
    "dead letters",
    async () => ((await deadLetters(local)).length >= refused.size + oversize.size ? true : undefined),
    120_000,
    1_000,
  ).catch(() => undefined);

  const received = new Set(standIn.received.map((event) => String(event.call.messageId)));
  const idsPerCall = new Map<string, Set<string>>();
  for (const { call } of standIn.received) {
    const key = `${(call.context as { pendo: { eventId: string } }).pendo.eventId}:${call.type}`;
    idsPerCall.set(key, (idsPerCall.get(key) ?? new Set()).add(String(call.messageId)));
  }
  const letters = await deadLetters(local);
  const poisoned = new Set([...refused, ...oversize]);
  const letterIds = letters.map((letter) => letter.eventId ?? "");
  const byStatus: Record<string, number> = {};
  for (const request of standIn.requests) {
    const key = request.injected ? `${request.status || "hang"} (injected)` : String(request.status);
    byStatus[key] = (byStatus[key] ?? 0) + 1;
  }
  return {
    webhooks: OUTAGE_WEBHOOKS,
    requestsSent: sent,
    statuses,
    outcomes: outcome,
    failureShare: FAILURE_SHARE,
    segmentRequests: standIn.requests.length,
    segmentRequestsByStatus: byStatus,
    expectedCalls: expected.size,
    distinctMessageIdsDelivered: received.size,
    lost: [...expected].filter((id) => !received.has(id)).length,
    deliveredUnderTwoIds: [...idsPerCall.values()].filter((ids) => ids.size > 1).length,
    duplicatesCollapsedBySegment: standIn.duplicates,
    poisoned: poisoned.size,
    deadLettered: letters.length,
    deadLetteredReasons: Object.fromEntries(
      [...new Set(letters.map((l) => l.reason))].map((reason) => [
        reason,
        letters.filter((l) => l.reason === reason).length,
      ]),
    ),
    deadLettersNotPoisoned: letterIds.filter((id) => !poisoned.has(id)).length,
    sendSeconds: Number(sendSeconds.toFixed(1)),
    drainSeconds: Number(drainSeconds.toFixed(1)),
    timedOut,
  };
}

/**
 * A 429 storm: for STORM_SECONDS every Segment request is answered 429 with `Retry-After: 1`,
 * then Segment recovers. Retries must wait at least their backoff, so none runs out during the
 * storm: nothing lost, nothing dead-lettered.
 */
export async function storm(local: LocalRelay) {
  const standIn = local.standIn.standIn;
  standIn.rejectEvent = () => false;
  standIn.randomFailure = () => ({ status: 429, retryAfter: "1" });
  standIn.setFailureShare(1);
  const lettersBefore = (await deadLetters(local)).length;
  const requestsBefore = standIn.requests.length;
  const webhooks = Array.from({ length: STORM_WEBHOOKS }, (_, i) =>
    sampleWebhook(SAMPLE_EVENTS[i % SAMPLE_EVENTS.length] as string),
  );
  const statuses: Record<string, number> = {};
  await pool(webhooks, 8, async (webhook) => {
    const { status } = await post(local, JSON.stringify(webhook));
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  await new Promise((resolve) => setTimeout(resolve, STORM_SECONDS * 1000));
  const limitedDuringStorm = standIn.requests.slice(requestsBefore).filter((r) => r.status === 429).length;
  standIn.setFailureShare(0);
  const expected = new Set(webhooks.flatMap((webhook) => expectedMessageIds(webhook)));
  const received = () => new Set(standIn.received.map((event) => String(event.call.messageId)));
  await waitFor(
    "the storm's backlog",
    async () => ([...expected].every((id) => received().has(id)) ? true : undefined),
    300_000,
    500,
  ).catch(() => undefined);
  const arrived = received();
  return {
    webhooks: STORM_WEBHOOKS,
    stormSeconds: STORM_SECONDS,
    statuses,
    rateLimitedRequests: limitedDuringStorm,
    expectedCalls: expected.size,
    lost: [...expected].filter((id) => !arrived.has(id)).length,
    deadLettered: (await deadLetters(local)).length - lettersBefore,
  };
}

/** Bodies a careless or hostile sender could post, drawn by fast-check with a fixed seed. */
function fuzzBodies(count: number): { body: Body; kind: string }[] {
  const valid = () =>
    sampleWebhook(SAMPLE_EVENTS[Math.floor(Math.random() * SAMPLE_EVENTS.length)] as string);
  const kinds: [string, fc.Arbitrary<Body>][] = [
    ["truncated", fc.integer({ min: 0, max: 400 }).map((cut) => JSON.stringify(valid()).slice(0, cut))],
    ["random text", fc.string({ maxLength: 300 })],
    ["any JSON", fc.jsonValue().map((value) => JSON.stringify(value) ?? "null")],
    [
      "wrong types",
      fc
        .record({
          event: fc.anything(),
          visitorId: fc.anything(),
          timestamp: fc.anything(),
          properties: fc.anything(),
          uniqueId: fc.anything(),
        })
        .map((v) => JSON.stringify(v) ?? "{}"),
    ],
    [
      "invalid UTF-8",
      fc
        .uint8Array({ minLength: 1, maxLength: 200 })
        .map((bytes) => new Uint8Array([0x7b, 0xff, ...bytes, 0xc3])),
    ],
    [
      "deep nesting",
      fc
        .integer({ min: 100, max: 50_000 })
        .map((depth) =>
          JSON.stringify({ ...valid(), properties: {} }).replace(
            '"properties":{}',
            `"properties":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
          ),
        ),
    ],
    [
      "__proto__ keys",
      fc
        .constantFrom(
          '{"__proto__":{"admin":true},"event":"guideDisplayed","visitorId":"v"}',
          '{"constructor":{"prototype":{"x":1}},"event":"x"}',
        )
        .map((s) => s),
    ],
    [
      "huge numbers",
      fc
        .constantFrom("1e400", "-1e400", "123456789012345678901234567890", "9007199254740993")
        .map((n) => JSON.stringify(valid()).replace(/"timestamp":\d+/, `"timestamp":${n}`)),
    ],
    ["oversized", fc.constant(0).map(() => JSON.stringify({ ...valid(), padding: "p".repeat(300_000) }))],
    [
      "bad envelope values",
      fc
        .record({
          event: fc.constantFrom("", " ", "x".repeat(300)),
          uniqueId: fc.constantFrom("../../etc", "x".repeat(100), "a b"),
        })
        .map((v) => JSON.stringify({ ...valid(), ...v })),
    ],
  ];
  const weights = [20, 10, 15, 15, 8, 6, 4, 6, 1, 15];
  const arbitrary = fc.oneof(
    ...kinds.map(([kind, arb], i) => ({
      weight: weights[i] as number,
      arbitrary: arb.map((body) => ({ body, kind })),
    })),
  );
  return fc.sample(arbitrary, { numRuns: count, seed: 20261128 });
}

export async function fuzz(local: LocalRelay) {
  const standIn = local.standIn.standIn;
  standIn.setFailureShare(0);
  standIn.rejectEvent = () => false;
  const quarantinedBefore = await countRecords(local, "quarantine");
  const bodies = fuzzBodies(FUZZ_BODIES);
  // Every 20th request is a valid webhook: none of them may be lost among the garbage.
  const valid: Record<string, unknown>[] = [];
  const plan: { body: Body; kind: string }[] = [];
  for (const [i, item] of bodies.entries()) {
    plan.push(item);
    if (i % 20 === 0) {
      const webhook = sampleWebhook(SAMPLE_EVENTS[i % SAMPLE_EVENTS.length] as string);
      valid.push(webhook);
      plan.push({ body: JSON.stringify(webhook), kind: "valid" });
    }
  }
  const statuses: Record<string, Record<string, number>> = {};
  let serverErrors = 0;
  let rejected400 = 0;
  await pool(plan, 16, async ({ body, kind }) => {
    const { status } = await post(local, body);
    statuses[kind] ??= {};
    (statuses[kind] as Record<string, number>)[status] =
      ((statuses[kind] as Record<string, number>)[status] ?? 0) + 1;
    if (status >= 500) serverErrors++;
    if (status === 400) rejected400++;
  });
  const expected = valid.flatMap((webhook) => expectedMessageIds(webhook));
  const received = () => new Set(standIn.received.map((event) => String(event.call.messageId)));
  await waitFor(
    "valid webhooks to arrive",
    async () => (expected.every((id) => received().has(id)) ? true : undefined),
    120_000,
    500,
  ).catch(() => undefined);
  const arrived = received();
  return {
    bodies: bodies.length,
    validMixedIn: valid.length,
    byKindAndStatus: statuses,
    serverErrors,
    rejected400,
    quarantined: (await countRecords(local, "quarantine")) - quarantinedBefore,
    validLost: expected.filter((id) => !arrived.has(id)).length,
  };
}

// `npm run chaos -- --only outage-mode` runs the outage at volume alone (bench/outage.ts).
const onlyOutageMode = process.argv.includes("--only") && process.argv.includes("outage-mode");

if (process.argv[1]?.endsWith("chaos.ts") && onlyOutageMode) {
  const figures = await runOutageMode();
  process.exitCode = figures.lost > 0 || figures.deliveredUnderTwoIds > 0 ? 1 : 0;
} else if (process.argv[1]?.endsWith("chaos.ts")) {
  console.log("starting wrangler dev with the Segment stand-in (short retries for the run)…");
  const local = await startLocalRelay({
    RETRY_BASE_SECONDS: "1",
    RETRY_MAX_SECONDS: "4",
    SEGMENT_TIMEOUT_MS: "2000",
  });
  try {
    console.log(`outage: ${OUTAGE_WEBHOOKS} webhooks, ${FAILURE_SHARE * 100}% of Segment requests failing…`);
    const outageFigures = await outage(local);
    console.log(JSON.stringify(outageFigures, null, 2));
    console.log(`429 storm: ${STORM_WEBHOOKS} webhooks, every request limited for ${STORM_SECONDS} s…`);
    const stormFigures = await storm(local);
    console.log(JSON.stringify(stormFigures, null, 2));
    console.log(`fuzz: ${FUZZ_BODIES} hostile bodies…`);
    const fuzzFigures = await fuzz(local);
    console.log(JSON.stringify(fuzzFigures, null, 2));
    const results = { machine: machineInfo(), outage: outageFigures, storm: stormFigures, fuzz: fuzzFigures };
    const file = `bench/results/chaos-${results.machine.date.slice(0, 10)}.json`;
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    const doc = readFileSync("docs/reliability.md", "utf8");
    writeFileSync("docs/reliability.md", withChaosSection(doc, renderReliability(results, file)));
    console.log(`wrote ${file} and docs/reliability.md`);
    const failed =
      outageFigures.lost > 0 ||
      outageFigures.deliveredUnderTwoIds > 0 ||
      stormFigures.lost > 0 ||
      stormFigures.deadLettered > 0 ||
      fuzzFigures.serverErrors > 0 ||
      fuzzFigures.validLost > 0;
    process.exitCode = failed ? 1 : 0;
  } catch (error) {
    // What wrangler dev said last is the first thing to read when a run fails.
    console.error(local.output().slice(-6_000));
    throw error;
  } finally {
    await local.stop();
  }
  // The outage at volume needs its own wrangler dev (the counting worker, outage settings).
  console.log("outage mode: an outage at volume, against the counting worker…");
  const outageModeFigures = await runOutageMode();
  if (outageModeFigures.lost > 0 || outageModeFigures.deliveredUnderTwoIds > 0) process.exitCode = 1;
}
