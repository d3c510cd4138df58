/**
 * Generates the tables of the documentation from the code that defines each fact: the event
 * catalog, the trim steps, the settings schema, the KV layout, the retry schedules and the fault
 * matrix. Only tables (and the few sentences that quote a derived number) are generated, between
 * `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` markers; the prose around them lives in
 * the Markdown files and is edited there. `npm run docs` rewrites the sections, and
 * test/docs.test.ts fails when a committed file differs from what this renders.
 */
import { ALERT_KINDS, type AlertKind, DESTINATION_ALERT_KINDS } from "../../src/alerts/alert";
import { SETTINGS_DOC, settingDefaults } from "../../src/config";
import { type RetryStep, retrySchedule } from "../../src/delivery/backoff";
import { DLQ_MAX_RETRIES, dlqSchedule } from "../../src/delivery/deadLetterConsumer";
import { DESTINATIONS, PROFILES } from "../../src/destination/profiles";
import { KV_LAYOUT } from "../../src/kv/keys";
import { DEAD_LETTER_REASONS } from "../../src/ledger/records";
import { CATALOG } from "../../src/pendo/catalog";
import { segmentEventName } from "../../src/pendo/names";
import { TRIM_STEPS } from "../../src/pendo/trim";
import { lifecycleRules, R2_LAYOUT } from "../../src/r2/keys";
import { FAULT_MATRIX } from "../../test/fault-matrix";
import { ledgerTables } from "./ledger";

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

const code = (text: string) => `\`${text}\``;

const duration = (seconds: number) =>
  seconds < 120
    ? `${seconds} s`
    : seconds < 7_200
      ? `${Math.round(seconds / 60)} min`
      : `${(seconds / 3_600).toFixed(1)} h`;

function scheduleTable(schedule: RetryStep[]): string {
  return table(
    ["Retry", "Waits at least", "Waits at most", "Earliest since first try", "Latest since first try"],
    schedule.map((step) => [
      String(step.attempt),
      duration(step.minSeconds),
      duration(step.maxSeconds),
      duration(step.cumulativeMin),
      duration(step.cumulativeMax),
    ]),
  );
}

function defaults() {
  return settingDefaults() as {
    MAX_RETRIES: number;
    RETRY_BASE_SECONDS: number;
    RETRY_MAX_SECONDS: number;
    QUEUE_RETENTION_SECONDS: number;
  };
}

/** What a section renders from besides the code: the migrations' SQL, read by the caller. */
export interface DocInputs {
  migrations: readonly string[];
}

const kb = (bytes: number) => `${(bytes / 1024).toLocaleString("en-US")} KB`;

const SECTIONS: Record<string, (inputs: DocInputs) => string> = {
  destinations: () =>
    table(
      [
        "`DESTINATION`",
        "Endpoint",
        "Auth",
        "Limits (relay packs to)",
        "messageIds",
        "Refused events",
        "Source",
      ],
      DESTINATIONS.map((name) => {
        const p = PROFILES[name];
        const bases = p.defaultEndpoint ? [p.defaultEndpoint, ...p.otherEndpoints] : ["<your URL>"];
        const headers = Object.entries(p.headers).map(([key, value]) => `, \`${key}: ${value}\``);
        return [
          `${code(name)} (${p.label})`,
          bases.map((base) => code(`${base}${p.path}`)).join(", "),
          `${p.auth === "basic" ? "Basic `writeKey:`" : "`X-Write-Key: writeKey`"}${headers.join("")}`,
          `${kb(p.maxRequestBytes)} / request (${kb(p.packRequestBytes)}), ${kb(p.maxEventBytes)} / event, ${p.maxRequestEvents.toLocaleString("en-US")} events`,
          p.messageIds === "short"
            ? "`p.<40 hex>.<call>` (≤ 64 of `[A-Za-z0-9._-]`)"
            : "`pendo:<source>:<uniqueId>:<call>`",
          p.partialFailure,
          p.source,
        ];
      }),
    ),
  "ledger-tables": (inputs) =>
    table(
      ["Table", "Holds", "Indexes (and the query each serves)"],
      ledgerTables(inputs.migrations).map((t) => [
        code(t.name),
        t.purpose,
        t.indexes.map((index) => `${code(index.columns)}: ${index.purpose}`).join("<br>") ||
          "primary key only",
      ]),
    ),
  "catalog-counts": () =>
    `${CATALOG.length} names are known: ${CATALOG.filter((e) => e.origin !== "url-webhook").length} from Segment's catalog for the Pendo source, ${CATALOG.filter((e) => e.origin !== "segment-catalog").length} sent by Pendo's URL webhooks today (some are both).`,
  events: () =>
    table(
      [
        "Pendo event",
        "Family",
        "About",
        "Segment calls",
        "Origin",
        "EVENT_NAMES=legacy",
        "EVENT_NAMES=segment",
        "Note",
      ],
      CATALOG.map((entry) => [
        code(entry.name),
        entry.family,
        entry.subject,
        ["track", ...entry.fanOut].join(" + "),
        entry.origin,
        code(segmentEventName(entry.name, "legacy")),
        code(segmentEventName(entry.name, "segment")),
        entry.note ?? "",
      ]),
    ),
  trims: () =>
    table(
      ["Order", "Field", "Effect"],
      TRIM_STEPS.map((step, index) => [String(index + 1), code(step.path), step.effect]),
    ),
  "retry-summary": () => {
    const d = defaults();
    const last = retrySchedule(d.MAX_RETRIES, d.RETRY_BASE_SECONDS, d.RETRY_MAX_SECONDS).at(-1);
    return `With the defaults (\`RETRY_BASE_SECONDS=${d.RETRY_BASE_SECONDS}\`, \`RETRY_MAX_SECONDS=${d.RETRY_MAX_SECONDS}\`, \`MAX_RETRIES=${d.MAX_RETRIES}\`) retries would span ${duration(last?.cumulativeMin ?? 0)} to ${duration(last?.cumulativeMax ?? 0)}; a retry that would outlive the queue's retention (\`QUEUE_RETENTION_SECONDS\`, default ${duration(d.QUEUE_RETENTION_SECONDS)}, the Free plan's) is not made, and the event becomes a dead letter instead of expiring. On a Paid plan whose queues keep messages 4 days, set \`QUEUE_RETENTION_SECONDS=345600\` to use the whole schedule:`;
  },
  retries: () => {
    const d = defaults();
    return scheduleTable(retrySchedule(d.MAX_RETRIES, d.RETRY_BASE_SECONDS, d.RETRY_MAX_SECONDS));
  },
  "dlq-summary": () => {
    const last = dlqSchedule().at(-1);
    return `The dead-letter queue's consumer retries a failed store ${DLQ_MAX_RETRIES} times, over ${duration(last?.cumulativeMin ?? 0)} to ${duration(last?.cumulativeMax ?? 0)}, so its last attempt comes before even the Free plan's 24-hour retention could expire the message.`;
  },
  "dead-letter-reasons": () =>
    table(
      ["Reason", "When"],
      DEAD_LETTER_REASONS.map((reason) => [code(reason), DEAD_LETTER_REASON_DOC[reason]]),
    ),
  "alert-kinds": () =>
    table(
      ["Kind", "Fires when", "What to do"],
      [...ALERT_KINDS, ...DESTINATION_ALERT_KINDS].map((kind) => [
        code(kind),
        ALERT_KIND_DOC[kind].when,
        ALERT_KIND_DOC[kind].action,
      ]),
    ),
  "r2-layout": () =>
    [
      table(
        ["Key", "Holds", "Until", "Purpose"],
        R2_LAYOUT.map((entry) => [code(entry.key), entry.value, entry.expiry, entry.purpose]),
      ),
      "",
      `Lifecycle rules (\`npm run setup\` puts them on the bucket): ${lifecycleRules(
        Number(settingDefaults().ARCHIVE_DAYS),
      )
        .map(
          (rule) =>
            `${code(rule.prefix)} after ${rule.id === "archive-expiry" ? "`ARCHIVE_DAYS` (default " : ""}${rule.expireDays} days${rule.id === "archive-expiry" ? ")" : ""}`,
        )
        .join("; ")}.`,
    ].join("\n"),
  "kv-layout": () =>
    table(
      ["Key", "Value", "TTL", "Purpose"],
      KV_LAYOUT.map((entry) => [code(entry.key), entry.value, entry.ttl, entry.purpose]),
    ),
  config: () => {
    const values = settingDefaults();
    return table(
      ["Setting", "Kind", "Default", "What it does"],
      (Object.keys(SETTINGS_DOC) as (keyof typeof SETTINGS_DOC)[]).map((key) => {
        const value = values[key];
        const shown =
          value === undefined ? "unset" : code(Array.isArray(value) ? value.join(",") : String(value));
        return [code(key), SETTINGS_DOC[key].kind, shown, SETTINGS_DOC[key].description];
      }),
    );
  },
  "fault-matrix": () =>
    table(
      ["Stage", "Fault", "Sender gets", "The event ends"],
      FAULT_MATRIX.map((cell) => [cell.stage, cell.fault, cell.answer, cell.ends]),
    ),
};

const DEAD_LETTER_REASON_DOC: Record<(typeof DEAD_LETTER_REASONS)[number], string> = {
  "segment-rejected":
    "The destination refused this event: a 400 for it alone (after its batch was split in halves until it stood alone), or a 2xx that names it as refused (Jitsu's `errors`); the detail holds the destination's reason.",
  "segment-refused":
    "Segment answered a status retrying cannot fix: other 4xx (401 revoked key, 403, 413), 501, 505.",
  "retries-exhausted":
    "Still failing (5xx, 429, timeout, network, 3xx) after `MAX_RETRIES`; kept with the last status.",
  "queue-exhausted":
    "The queue gave up on the message without the consumer settling it (`pendo-events-dlq`).",
  "event-too-large":
    "Over Segment's 32 KB even after trimming; stored at the edge (answered 202) and never sent.",
  "no-write-key": "No Segment write key was configured for the source until the event's retries ran out.",
  "malformed-message":
    "A queue message this relay could not read; its bytes are kept, and replay reads them again (a message a later deploy understands is sent).",
};

const ALERT_KIND_DOC: Record<AlertKind, { when: string; action: string }> = {
  "dead-letters": {
    when: "Events were stored as dead letters (any reason); the alert counts them by reason.",
    action:
      "Find them by reason in `/admin/dead-letters`, fix the cause (write key, endpoint, mapping), then replay.",
  },
  "invalid-webhooks": {
    when: "Webhooks were refused (400) and quarantined; the alert counts them by issue path.",
    action: "Read the issues in `/admin/quarantine`; if the relay should accept them, fix it and replay.",
  },
  "unknown-event": {
    when: "Event names the catalog does not know arrived (one alert per source per interval, listing the new names). They were forwarded as unmapped `track`s.",
    action:
      "Check Pendo's release notes; add the event to `src/pendo/catalog.ts` with a fixture, or leave it unmapped.",
  },
  "delivery-failing": {
    when: "Segment answered nothing but failures for `ALERT_FAILING_SECONDS` while events waited (the last status says why: 401 for a revoked write key, 3xx for a moved endpoint, 5xx or none for an outage).",
    action:
      "Fix the key or endpoint (`wrangler secret put`); an outage needs nothing: events wait on the queue and are retried.",
  },
  "delivery-recovered": {
    when: "The first successful delivery after a `delivery-failing` alert.",
    action: "Nothing; replay any dead letters the failure left behind.",
  },
  "record-budget": {
    when: "A source keeps at least 80% of `RECORD_BUDGET_BYTES` in R2 for its quarantined webhooks and events too large to deliver (once per interval while it does).",
    action:
      "Replay or delete what can go (space returns when the retention purges it), raise the budget, or find who sends the junk; past the budget new records keep only their row.",
  },
  "outage-started": {
    when: "A destination failed every batch for `OUTAGE_AFTER_SECONDS`: outage mode. Batches are parked in R2 and acked; one probe per `OUTAGE_PROBE_SECONDS`. Sent per destination (to its first source's alert URL).",
    action:
      "Fix the cause if it is yours (key, endpoint); an outage of theirs needs nothing. Hold it from the console to stop the probes.",
  },
  "outage-drained": {
    when: "A probe got through and every parked batch of the destination has been sent, in arrival order.",
    action: "Nothing; the Overview's `parked` for it is back to zero.",
  },
};

/** The files that hold generated sections, each with the sections it must hold. */
export const GENERATED_FILES: Record<string, readonly string[]> = {
  "README.md": ["destinations", "config"],
  "docs/mapping.md": ["catalog-counts", "events", "trims"],
  "docs/operations.md": [
    "retry-summary",
    "retries",
    "dlq-summary",
    "dead-letter-reasons",
    "alert-kinds",
    "kv-layout",
    "r2-layout",
    "ledger-tables",
  ],
  "docs/reliability.md": ["fault-matrix"],
};

/** `text` with every generated section it holds rendered afresh; a missing marker is an error. */
export function withGeneratedSections(file: string, text: string, inputs: DocInputs): string {
  let out = text;
  for (const name of GENERATED_FILES[file] ?? []) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from)
      throw new Error(`${file} lacks the markers of the generated section "${name}"`);
    const render = SECTIONS[name];
    if (!render) throw new Error(`no renderer for section "${name}"`);
    out = `${out.slice(0, from + start.length)}\n${render(inputs)}\n${out.slice(to)}`;
  }
  return out;
}
