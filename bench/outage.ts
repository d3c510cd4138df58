/**
 * `npm run chaos -- --only outage-mode` (part of `npm run chaos`): a destination outage at volume,
 * against `wrangler dev` running the counting worker (every billed operation counted) and the
 * Segment stand-in.
 * 1. Baseline: OUTAGE_WEBHOOKS webhooks with Segment healthy; the time from the first send until
 *    the last event arrives.
 * 2. Outage: as many webhooks again while every request is answered 503, long enough for outage
 *    mode to start (OUTAGE_AFTER_SECONDS) and every webhook to be parked; then Segment recovers.
 *    Reported: events lost (0), delivered under two messageIds (0), D1 rows written per event and
 *    R2 operations during the outage, D1 bytes per stored event, the queue backlog when the outage
 *    ends, and the time to drain after recovery, beside the baseline's time.
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import {
  LOCAL_ADMIN_TOKEN,
  LOCAL_TOKEN,
  type LocalRelay,
  startLocalRelay,
  waitFor,
} from "../scripts/harness/local-relay";
import { SAMPLE_EVENTS, sampleWebhook } from "../scripts/samples";
import { CATALOG } from "../src/pendo/catalog";
import { type MachineInfo, machineInfo } from "./environment";
import { withSection } from "./reliability-report";

export const OUTAGE_MODE_WEBHOOKS = Number(process.env.OUTAGE_WEBHOOKS ?? 5_000);
/**
 * The settings the run uses: the shortest outage window the relay allows and fast probes, with
 * the production retry schedule (wrangler.toml's defaults), so the retries spent before outage
 * mode starts are what a deployment would spend in its first minute.
 */
export const OUTAGE_MODE_VARS = {
  OUTAGE_AFTER_SECONDS: "60",
  OUTAGE_PROBE_SECONDS: "10",
};

interface Counts {
  d1: { rowsWritten: number; rowsRead: number };
  r2: {
    classA: number;
    classB: number;
    deletes: number;
    bytesPut: number;
    puts: Record<string, number>;
    bytesByPrefix: Record<string, number>;
  };
  queue: { writes: number; reads: number; retries: number; messages: number };
  fetches: { segment: number };
}

async function counts(local: LocalRelay): Promise<Counts> {
  return (await (await fetch(`${local.url}/__bench/counts`)).json()) as Counts;
}

async function admin<T>(local: LocalRelay, path: string): Promise<T> {
  const response = await fetch(`${local.url}/admin${path}`, {
    headers: { authorization: `Bearer ${LOCAL_ADMIN_TOKEN}` },
  });
  return (await response.json()) as T;
}

const idsOf = (webhook: Record<string, unknown>) => {
  const entry = CATALOG.find((candidate) => candidate.name === webhook.event);
  return ["track", ...(entry?.fanOut ?? [])].map((type) => `pendo:default:${webhook.uniqueId}:${type}`);
};

async function send(local: LocalRelay, webhooks: Record<string, unknown>[]) {
  let next = 0;
  const statuses: Record<number, number> = {};
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < webhooks.length) {
        const webhook = webhooks[next++];
        const response = await fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(webhook),
        });
        await response.arrayBuffer();
        statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

function webhooksFor(n: number, salt: string) {
  // Visitors flagged do-not-process are left out: every event here must arrive.
  const events = SAMPLE_EVENTS.filter((name) => name !== "visitorDoNotProcessUpdated");
  return Array.from({ length: n }, (_, i) => {
    const webhook = sampleWebhook(events[i % events.length] as string);
    webhook.uniqueId = `${salt}${String(i).padStart(8, "0")}`.padEnd(40, "0").slice(0, 40);
    return webhook;
  });
}

type Destinations = {
  entries: { name: string; state: string; parked: { events: number; batches: number } }[];
};

export async function outageMode(local: LocalRelay) {
  const standIn = local.standIn.standIn;
  standIn.setFailureShare(0);
  standIn.rejectEvent = () => false;

  // 1. Baseline: the same number of events with nothing failing.
  const baseline = webhooksFor(OUTAGE_MODE_WEBHOOKS, "b");
  const baselineIds = baseline.flatMap(idsOf);
  const t0 = Date.now();
  await send(local, baseline);
  await waitFor(
    "the baseline to arrive",
    async () => {
      const seen = new Set(standIn.messageIds);
      return baselineIds.every((id) => seen.has(id)) ? true : undefined;
    },
    600_000,
    250,
  );
  const baselineSeconds = (Date.now() - t0) / 1000;

  // 2. The outage: every request answered 503 until outage mode has parked every webhook.
  standIn.randomFailure = () => 503;
  standIn.setFailureShare(1);
  const before = await counts(local);
  const outageStart = Date.now();
  const webhooks = webhooksFor(OUTAGE_MODE_WEBHOOKS, "o");
  const ids = webhooks.flatMap(idsOf);
  const statuses = await send(local, webhooks);
  const sendSeconds = (Date.now() - outageStart) / 1000;
  // Until outage mode holds all of them parked (retried messages come back and are parked too).
  const parked = await waitFor(
    "every webhook parked",
    async () => {
      const { entries } = await admin<Destinations>(local, "/destinations");
      const events = entries.reduce((sum, entry) => sum + entry.parked.events, 0);
      return events >= ids.length ? entries : undefined;
    },
    900_000,
    1_000,
  ).catch(() => undefined);
  const during = await counts(local);
  // What the ledger holds for the parked batches, read before they drain.
  const ledger = (await (await fetch(`${local.url}/__bench/ledger`)).json()) as Record<
    string,
    { rows: number; bytes: number }
  >;
  const outageSeconds = (Date.now() - outageStart) / 1000;
  const parkedEvents = (parked ?? []).reduce((sum, entry) => sum + entry.parked.events, 0);
  const parkedBatches = (parked ?? []).reduce((sum, entry) => sum + entry.parked.batches, 0);
  // What is not parked is still on the queue (in retry): the backlog when the outage ends.
  const backlogEvents = Math.max(
    0,
    ids.length - parkedEvents - standIn.messageIds.filter((id) => id.includes(":o")).length,
  );

  // 3. Recovery: time until every event has arrived.
  standIn.setFailureShare(0);
  const recovered = Date.now();
  let timedOut = false;
  await waitFor(
    "the parked batches to drain",
    async () => {
      const seen = new Set(standIn.messageIds);
      return ids.every((id) => seen.has(id)) ? true : undefined;
    },
    900_000,
    250,
  ).catch(() => {
    timedOut = true;
  });
  const drainSeconds = (Date.now() - recovered) / 1000;
  const after = await counts(local);
  const seen = new Set(standIn.messageIds);
  const idsPerCall = new Map<string, Set<string>>();
  for (const { call } of standIn.received) {
    const key = `${(call.context as { pendo: { eventId: string } }).pendo.eventId}:${call.type}`;
    idsPerCall.set(key, (idsPerCall.get(key) ?? new Set()).add(String(call.messageId)));
  }
  const rowsWritten = during.d1.rowsWritten - before.d1.rowsWritten;
  const parkedBytes = (during.r2.bytesByPrefix["parked/"] ?? 0) - (before.r2.bytesByPrefix["parked/"] ?? 0);
  return {
    webhooks: OUTAGE_MODE_WEBHOOKS,
    events: ids.length,
    settings: OUTAGE_MODE_VARS,
    statuses,
    lost: ids.filter((id) => !seen.has(id)).length,
    deliveredUnderTwoIds: [...idsPerCall.values()].filter((set) => set.size > 1).length,
    duplicatesSeenBySegment: standIn.duplicates,
    timedOut,
    outage: {
      seconds: Math.round(outageSeconds),
      sendSeconds: Math.round(sendSeconds),
      parkedBatches,
      parkedEvents,
      backlogEventsAtEnd: backlogEvents,
      d1RowsWritten: rowsWritten,
      d1RowsWrittenPerEvent: round(rowsWritten / ids.length, 4),
      r2: {
        classA: during.r2.classA - before.r2.classA,
        classB: during.r2.classB - before.r2.classB,
        bytesPut: during.r2.bytesPut - before.r2.bytesPut,
        putsByPrefix: diff(during.r2.puts, before.r2.puts),
      },
      queueRetries: during.queue.retries - before.queue.retries,
      d1ParkedRows: ledger.parked?.rows ?? 0,
      d1BytesPerParkedBatch: ledger.parked?.rows ? round(ledger.parked.bytes / ledger.parked.rows, 1) : null,
      d1BytesPerStoredEvent: parkedEvents > 0 ? round((ledger.parked?.bytes ?? 0) / parkedEvents, 2) : null,
      r2BytesPerParkedEvent: parkedEvents > 0 ? round(parkedBytes / parkedEvents, 0) : null,
      r2BytesPerArchivedEvent: round(
        ((during.r2.bytesByPrefix["archive/"] ?? 0) - (before.r2.bytesByPrefix["archive/"] ?? 0)) /
          (ids.length > 0 ? webhooks.length : 1),
        0,
      ),
    },
    drain: {
      seconds: round(drainSeconds, 1),
      baselineSeconds: round(baselineSeconds, 1),
      ratioToBaseline: round(drainSeconds / baselineSeconds, 2),
      r2: { classB: after.r2.classB - during.r2.classB, deletes: after.r2.deletes - during.r2.deletes },
      segmentRequests: after.fetches.segment - during.fetches.segment,
    },
  };
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

function diff(a: Record<string, number>, b: Record<string, number>) {
  return Object.fromEntries(Object.entries(a).map(([key, value]) => [key, value - (b[key] ?? 0)]));
}

export type OutageFigures = Awaited<ReturnType<typeof outageMode>>;

const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const fmt = (n: number) => n.toLocaleString("en-US");

/** The run as the outage-mode section of docs/reliability.md. Pure. */
export function renderOutageMode(figures: OutageFigures, machine: MachineInfo, file: string): string {
  const { outage, drain } = figures;
  const met = (ok: boolean) => (ok ? "met" : "**not met**");
  return `<!-- Written by \`npm run chaos\` (or \`npx tsx bench/outage.ts\`); figures from ${file}. -->

Measured ${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores; Node.js ${machine.node}, wrangler
${machine.wrangler}. ${fmt(figures.webhooks)} webhooks (${fmt(figures.events)} Segment calls) sent while the Segment stand-in
answered 503 to every request, through \`wrangler dev\` running the counting worker (every billed
operation counted), with \`OUTAGE_AFTER_SECONDS=${figures.settings.OUTAGE_AFTER_SECONDS}\` (the least allowed),
\`OUTAGE_PROBE_SECONDS=${figures.settings.OUTAGE_PROBE_SECONDS}\` and the production retry schedule; then it recovered.

| What | Figure | Target | |
| --- | --- | --- | --- |
${row(["Events lost", figures.lost, "0", met(figures.lost === 0)])}
${row(["Events delivered twice under different messageIds", figures.deliveredUnderTwoIds, "0", met(figures.deliveredUnderTwoIds === 0)])}
${row(["D1 rows written per event during the outage", outage.d1RowsWrittenPerEvent, "at most 0.02", met(outage.d1RowsWrittenPerEvent <= 0.02)])}
${row(["D1 bytes per stored (parked) event", outage.d1BytesPerStoredEvent ?? "-", "reported", ""])}
${row(["R2 bytes per parked event (the queue message as it was)", outage.r2BytesPerParkedEvent ?? "-", "reported", ""])}
${row(["Queue backlog when the outage ended", `${fmt(outage.backlogEventsAtEnd)} events`, "reported", ""])}
${row(["Time to drain after recovery", `${drain.seconds} s`, "reported", ""])}
${row(["The same events with no outage (first send to last arrival)", `${drain.baselineSeconds} s`, "baseline", ""])}
${row(["Drain / no-outage", drain.ratioToBaseline, "reported", ""])}

The outage lasted ${outage.seconds} s (sending took ${outage.sendSeconds} s). ${fmt(outage.parkedEvents)} events were parked in
${fmt(outage.parkedBatches)} batches: ${fmt(outage.d1RowsWritten)} D1 rows written in all (parked rows, each source's and the
destination's failing status at most once a minute), ${fmt(outage.r2.classA)} R2 puts (${Object.entries(
    outage.r2.putsByPrefix,
  )
    .map(([prefix, n]) => `${fmt(n)} under \`${prefix}\``)
    .join(", ")}; the archive is \`ARCHIVE_MODE=all\`'s), and ${fmt(outage.queueRetries)} queue retries spent
before outage mode began. The drain read each parked batch once (${fmt(drain.r2.classB)} R2 gets) and sent them in
${fmt(drain.segmentRequests)} requests; the time to drain includes waiting for the next probe (up to
\`OUTAGE_PROBE_SECONDS\`). Segment saw ${fmt(figures.duplicatesSeenBySegment)} duplicate messageIds.`;
}

if (process.argv[1]?.endsWith("outage.ts")) {
  console.log(`starting wrangler dev (counting worker) for an outage of ${OUTAGE_MODE_WEBHOOKS} webhooks…`);
  const figures = await runOutageMode();
  console.log(JSON.stringify(figures, null, 2));
}

/** Runs the outage against its own wrangler dev, writes its result file and its docs section. */
export async function runOutageMode(): Promise<OutageFigures> {
  const local = await startLocalRelay(OUTAGE_MODE_VARS, { main: "bench/counting-worker.ts" });
  try {
    const figures = await outageMode(local);
    const machine = machineInfo();
    const file = `bench/results/outage-${machine.date.slice(0, 10)}.json`;
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(file, `${JSON.stringify({ machine, ...figures }, null, 2)}\n`);
    const doc = readFileSync("docs/reliability.md", "utf8");
    writeFileSync(
      "docs/reliability.md",
      withSection(doc, "outage-mode", renderOutageMode(figures, machine, file)),
    );
    console.log(`wrote ${file} and docs/reliability.md`);
    return figures;
  } catch (error) {
    console.error(local.output().slice(-6_000));
    throw error;
  } finally {
    await local.stop();
  }
}
