import * as v from "valibot";
import { DESTINATIONS } from "./destination/profiles";
import type { Env } from "./env";
import { type Issue, issuesOf } from "./issues";
import { type LogLevel, log, setLogLevel } from "./log";

/**
 * Every setting the relay reads, with its default, in one schema. Docs and the README's
 * configuration table are generated from `SETTINGS_DOC`, which must name every key here.
 */

const EVENT_NAMING_VALUES = ["pendo", "legacy", "segment"] as const;
const TRACK_EVENT_VALUES = ["wrapped", "unwrap"] as const;
const DEDUP_MODE_VALUES = ["kv", "off"] as const;
const LOG_LEVEL_VALUES = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];
export const ARCHIVE_MODE_VALUES = ["off", "failures", "all"] as const;
export type ArchiveMode = (typeof ARCHIVE_MODE_VALUES)[number];
export type EventNaming = (typeof EVENT_NAMING_VALUES)[number];
export type TrackEventMode = (typeof TRACK_EVENT_VALUES)[number];

const integer = (fallback: number, min: number, max: number) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.transform((raw) => Number(raw.trim())),
    v.number(),
    v.integer("must be a whole number"),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const tokenList = v.pipe(
  v.string(),
  v.transform((raw) =>
    raw
      .split(",")
      .map((token) => token.trim())
      .filter((token) => token.length > 0),
  ),
  v.minLength(1, "must hold at least one token"),
  v.check((tokens) => tokens.every((t) => t.length >= 16), "each token must be at least 16 characters long"),
);

// Plain http only reaches this machine: a local Segment stand-in, never the internet.
const LOCAL_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);
const isSegmentEndpoint = (url: string) => {
  try {
    const { protocol, hostname } = new URL(url);
    return protocol === "https:" || (protocol === "http:" && LOCAL_HOSTS.has(hostname));
  } catch {
    return false; // not a URL at all: v.url already said so
  }
};

const httpsUrl = v.pipe(
  v.string(),
  v.url("must be a URL such as https://api.segment.io"),
  v.check(isSegmentEndpoint, "must start with https:// (http:// only for localhost or 127.0.0.1)"),
  v.transform((url) => url.replace(/\/+$/, "")),
);

const flag = (fallback: boolean) =>
  v.pipe(
    v.optional(v.picklist(["true", "false"], "must be true or false"), fallback ? "true" : "false"),
    v.transform((raw) => raw === "true"),
  );

/** A named source's name: part of messageIds and KV keys, so short and plain. */
export const SOURCE_NAME_MAX = 24;
export const SOURCE_NAME = new RegExp(`^[a-z0-9][a-z0-9_-]{0,${SOURCE_NAME_MAX - 1}}$`);

// Messages never quote the received value: this JSON holds write keys and tokens.
const SourceSchema = v.strictObject(
  {
    writeKey: v.pipe(v.string("writeKey must be a string"), v.minLength(1, "writeKey must not be empty")),
    tokens: v.pipe(
      v.array(v.string("each token must be a string"), "tokens must be a list of strings"),
      v.minLength(1, "tokens must hold at least one token"),
      v.check(
        (tokens) => tokens.every((t) => t.length >= 16),
        "each token must be at least 16 characters long",
      ),
    ),
    endpoint: v.optional(httpsUrl),
    destination: v.optional(
      v.picklist(DESTINATIONS, `destination must be one of ${DESTINATIONS.join(", ")}`),
    ),
    eventNames: v.optional(
      v.picklist(EVENT_NAMING_VALUES, "eventNames must be one of pendo, legacy, segment"),
    ),
    trackEvents: v.optional(v.picklist(TRACK_EVENT_VALUES, "trackEvents must be wrapped or unwrap")),
    alertWebhookUrl: v.optional(httpsUrl),
  },
  "each source must be an object with writeKey and tokens (and optionally endpoint, destination, eventNames, trackEvents, alertWebhookUrl)",
);

const SourcesSchema = v.pipe(
  v.string(),
  v.parseJson(undefined, "SOURCES must be valid JSON"),
  v.record(
    v.pipe(
      v.string(),
      v.regex(
        SOURCE_NAME,
        `source names must be 1-${SOURCE_NAME_MAX} lower-case letters, digits, '-' or '_'`,
      ),
      v.notValue("default", "the source name 'default' is reserved for POST /pendo"),
    ),
    SourceSchema,
    "SOURCES must be a JSON object of sources",
  ),
);

export const SettingsSchema = v.object({
  SOURCES: v.optional(SourcesSchema),
  WEBHOOK_TOKEN: v.optional(tokenList),
  SEGMENT_WRITE_KEY: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty"))),
  DESTINATION: v.optional(v.picklist(DESTINATIONS, `must be one of ${DESTINATIONS.join(", ")}`), "segment"),
  // DESTINATION_URL and SEGMENT_ENDPOINT are one setting under two names (DESTINATION_URL wins);
  // unset, the destination profile's own default applies (sources.ts).
  DESTINATION_URL: v.optional(httpsUrl),
  SEGMENT_ENDPOINT: v.optional(httpsUrl),
  ADMIN_TOKEN: v.optional(v.pipe(v.string(), v.minLength(16, "must be at least 16 characters long"))),
  ENVIRONMENT: v.optional(v.string(), "production"),
  EVENT_NAMES: v.optional(v.picklist(EVENT_NAMING_VALUES, "must be one of pendo, legacy, segment"), "pendo"),
  TRACK_EVENTS: v.optional(v.picklist(TRACK_EVENT_VALUES, "must be wrapped or unwrap"), "wrapped"),
  HONOR_DO_NOT_PROCESS: flag(true),
  DEDUP_MODE: v.optional(v.picklist(DEDUP_MODE_VALUES, "must be kv or off"), "kv"),
  LOG_LEVEL: v.optional(v.picklist(LOG_LEVEL_VALUES, "must be one of debug, info, warn, error"), "info"),
  // 7 days: Pendo does not document its redelivery window; a week covers any plausible one.
  DEDUP_TTL_SECONDS: integer(604_800, 60, 31_536_000),
  DEAD_LETTER_TTL_SECONDS: integer(1_209_600, 3_600, 31_536_000),
  MAX_BODY_BYTES: integer(262_144, 1_024, 1_048_576),
  SEGMENT_TIMEOUT_MS: integer(10_000, 100, 60_000),
  RETRY_BASE_SECONDS: integer(30, 1, 3_600),
  // Cloudflare Queues caps a retry delay at 24 hours (86,400 s), raised from 12 hours in 2026
  // (developers.cloudflare.com/queues/configuration/batching-retries; cloudflare-docs PRs 28335,
  // 28737); miniflare's local queue broker enforces the same 86,400 s maximum.
  RETRY_MAX_SECONDS: integer(21_600, 1, 86_400),
  // Must equal `max_retries` of the pendo-events consumer in wrangler.toml (a test holds them together).
  MAX_RETRIES: integer(20, 0, 100),
  // Queues deletes a message older than its retention, retried or not: the Workers Free plan keeps
  // messages 24 hours, Paid 4 days unless set otherwise (developers.cloudflare.com/queues/platform).
  QUEUE_RETENTION_SECONDS: integer(86_400, 60, 1_209_600),
  // The Workers Free plan allows 50 subrequests per invocation
  // (developers.cloudflare.com/workers/platform/limits); 40 leaves room for the rest.
  SEGMENT_REQUEST_BUDGET: integer(40, 1, 1_000),
  ALERT_WEBHOOK_URL: v.optional(httpsUrl),
  // Standard Webhooks secrets are "whsec_" and a base64 key (standardwebhooks.com).
  ALERT_SECRET: v.optional(
    v.pipe(
      v.string(),
      v.regex(
        /^whsec_[A-Za-z0-9+/]{16,}={0,2}$/,
        "must be whsec_ followed by a base64 key of at least 12 bytes",
      ),
    ),
  ),
  ALERT_INTERVAL_SECONDS: integer(3_600, 60, 604_800),
  ALERT_FAILING_SECONDS: integer(600, 60, 86_400),
  // `all` by default: history cannot be switched on after the incident that needs it, and one R2
  // put per queue batch costs about $0.045 per million webhooks (docs/benchmarks.md, cost table).
  ARCHIVE_MODE: v.optional(v.picklist(ARCHIVE_MODE_VALUES, "must be one of off, failures, all"), "all"),
  // R2 lifecycle rules count in whole days (developers.cloudflare.com/r2/buckets/object-lifecycles).
  ARCHIVE_DAYS: integer(7, 1, 365),
  // Webhooks are archived seconds after they arrive; ten minutes covers a consumer batch's wait
  // and a short backlog.
  ARCHIVE_SETTLE_SECONDS: integer(600, 0, 86_400),
  // One gibibyte per source: the Free plan's 10 GB of R2 holds the archive and ten sources' worth.
  RECORD_BUDGET_BYTES: integer(1_073_741_824, 1_048_576, 1_099_511_627_776),
  OUTAGE_AFTER_SECONDS: integer(300, 60, 86_400),
  OUTAGE_PROBE_SECONDS: integer(60, 10, 3_600),
  PUBLIC_URL: v.optional(
    v.pipe(
      v.string(),
      v.url("must be a URL such as https://relay.example.com"),
      v.transform((url) => url.replace(/\/+$/, "")),
    ),
  ),
});

export type Settings = v.InferOutput<typeof SettingsSchema>;
/** Every setting's name: the string-valued part of `Env` is derived from this. */
export type SettingName = keyof typeof SettingsSchema.entries;

export type ConfigResult =
  | { ok: true; settings: Settings }
  | { ok: false; reason: "misconfigured"; issues: Issue[] };

/** Only the string-valued keys of Env are settings; bindings are checked where they are used. */
function settingInputs(env: Env): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(SettingsSchema.entries) as SettingName[]) {
    const value = env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  return input;
}

export function parseSettings(env: Env): ConfigResult {
  const result = v.safeParse(SettingsSchema, settingInputs(env));
  if (result.success) return { ok: true, settings: result.output };
  // One issue per setting, all its messages joined. No message echoes a value: several of
  // these settings are secrets.
  const bySetting = new Map<string, string[]>();
  for (const issue of issuesOf(result.issues)) {
    const path = issue.path || "(settings)";
    bySetting.set(path, [...(bySetting.get(path) ?? []), issue.message]);
  }
  return {
    ok: false,
    reason: "misconfigured",
    issues: [...bySetting].map(([path, messages]) => ({ path, message: messages.join("; ") })),
  };
}

// Checked once per isolate: env objects are stable for an isolate's life, so a WeakMap keyed
// on them caches the parse without leaking across test environments that swap env.
const cache = new WeakMap<Env, ConfigResult>();

export function loadSettings(env: Env): ConfigResult {
  let result = cache.get(env);
  if (!result) {
    result = parseSettings(env);
    cache.set(env, result);
    if (!result.ok) log("error", "config-invalid", { issues: result.issues });
  }
  // Per call, not per parse: tests and isolates that swap env get their own level.
  if (result.ok) setLogLevel(result.settings.LOG_LEVEL);
  return result;
}

export interface SettingDoc {
  kind: "secret" | "var";
  description: string;
}

/** What each setting is for, for the generated configuration table. Keyed by the schema's keys. */
export const SETTINGS_DOC: Record<keyof Settings, SettingDoc> = {
  SOURCES: {
    kind: "secret",
    description:
      'Named sources for `POST /pendo/<name>`, as JSON: `{"prod": {"writeKey": "…", "tokens": ["current", "previous"], "endpoint"?, "destination"?, "eventNames"?, "trackEvents"?, "alertWebhookUrl"?}}`. Unset options fall back to the single-source settings.',
  },
  WEBHOOK_TOKEN: {
    kind: "secret",
    description:
      "Token Pendo must present (`?token=` or `Authorization: Bearer`). Two tokens separated by a comma during rotation. At least 16 characters each (`openssl rand -hex 24` makes one).",
  },
  SEGMENT_WRITE_KEY: {
    kind: "secret",
    description:
      "Write key of the Segment source (the RudderStack or Hightouch write key, the Jitsu write key, the Customer.io API key). Unset: webhooks are answered 503 `misconfigured` naming it, so Pendo retries until it is set, and `/health` says so; events queued before it went missing stay queued and are retried, and the consumer logs why.",
  },
  DESTINATION: {
    kind: "var",
    description:
      'Which Segment-compatible destination receives the events: `segment`, `rudderstack`, `jitsu`, `customerio` or `hightouch` (see "Destinations"). Sets the request path, auth, size caps, messageId form and how a 2xx is read. A source\'s `destination` in `SOURCES` overrides it.',
  },
  DESTINATION_URL: {
    kind: "var",
    description:
      "The destination's base URL, `https://` (plain `http://` only for localhost). Unset: the profile's default (Segment US, Customer.io US, Hightouch us-east-1); RudderStack and Jitsu have no default. Segment EU: `https://events.eu1.segmentapis.com` (an EU key sent to the US is lost).",
  },
  SEGMENT_ENDPOINT: {
    kind: "var",
    description:
      "The same setting as `DESTINATION_URL`, under its older name (`DESTINATION_URL` wins when both are set).",
  },
  ADMIN_TOKEN: {
    kind: "secret",
    description:
      "Bearer token for `/admin/*`, `/health` details and `/debug/transform`. Unset: the admin routes answer 404.",
  },
  ENVIRONMENT: {
    kind: "var",
    description:
      "Deployment name, reported in logs. `development` (what `npm start` sets) opens `/debug/transform` without a token.",
  },
  EVENT_NAMES: {
    kind: "var",
    description:
      "`pendo` (as received), `legacy` (Segment-catalog names) or `segment` (Object Action Title Case).",
  },
  TRACK_EVENTS: {
    kind: "var",
    description:
      "`wrapped` keeps `trackEventReceived`; `unwrap` emits the Pendo track event under its own name.",
  },
  HONOR_DO_NOT_PROCESS: {
    kind: "var",
    description:
      "Drop a visitor's events after `visitorDoNotProcessUpdated` sets the flag, until it is cleared. Flags live in the ledger, ordered by Pendo's event time, and the consumer applies them to every batch: a change takes effect from the next batch, in every isolate.",
  },
  DEDUP_MODE: {
    kind: "var",
    description:
      "`kv`: a KV marker per event filters redeliveries at the edge for `DEDUP_TTL_SECONDS` (one read and one write per webhook). `off`: no KV on the hot path; Segment's messageId dedup (about 24 h) still drops redeliveries. See the cost table in docs/benchmarks.md.",
  },
  LOG_LEVEL: {
    kind: "var",
    description:
      "`info`: one `webhook` line per request and one `segment-request` line per Segment request, plus warnings and errors. `warn` (or `error`): only warnings and errors, which are always written; a healthy webhook then writes no line of its own. `debug`: as `info` today. Each line is a billed Workers Logs event: see *Logs and what they cost* below.",
  },
  DEDUP_TTL_SECONDS: {
    kind: "var",
    description: "How long the edge remembers an event id (`DEDUP_MODE=kv`).",
  },
  DEAD_LETTER_TTL_SECONDS: {
    kind: "var",
    description: "How long dead letters and quarantined webhooks are kept (the cron purges older ones).",
  },
  MAX_BODY_BYTES: {
    kind: "var",
    description: "Largest webhook body accepted; larger answers 413 before parsing.",
  },
  SEGMENT_TIMEOUT_MS: {
    kind: "var",
    description: "Time allowed for one Segment request before it counts as failed.",
  },
  RETRY_BASE_SECONDS: {
    kind: "var",
    description: "Backoff base: the first retry waits between half of it and all of it.",
  },
  RETRY_MAX_SECONDS: { kind: "var", description: "Backoff cap (Queues allows at most 86,400 s, 24 h)." },
  MAX_RETRIES: {
    kind: "var",
    description: "Retries before an event becomes a dead letter. Must equal `max_retries` in wrangler.toml.",
  },
  QUEUE_RETENTION_SECONDS: {
    kind: "var",
    description:
      "The queues' message retention (Free plan: 24 h; Paid: 4 days unless configured). A retry that would outlive it is not made: the event becomes a dead letter instead of expiring.",
  },
  ALERT_WEBHOOK_URL: {
    kind: "secret",
    description:
      "Where alerts go (a Slack incoming webhook accepts them as they are). Unset: no alerts. A source's `alertWebhookUrl` in `SOURCES` overrides it.",
  },
  ALERT_SECRET: {
    kind: "secret",
    description:
      "`whsec_…` key: alerts are signed as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
  },
  ALERT_INTERVAL_SECONDS: {
    kind: "var",
    description:
      "At most one alert per kind and source this often, across all isolates (the ledger decides); what is held back is counted in the next. A failed send is retried after a minute, doubling up to this.",
  },
  ALERT_FAILING_SECONDS: {
    kind: "var",
    description:
      "How long Segment must answer nothing but failures, while events wait, before `delivery-failing` is sent.",
  },
  ARCHIVE_MODE: {
    kind: "var",
    description:
      "`all`: every accepted webhook's bytes are kept in R2 (`ARCHIVE`) for `ARCHIVE_DAYS`, one object per queue batch, so any time range can be sent again (`POST /admin/archive/replay`). `failures`: the webhook's bytes travel with it, so a dead letter or a parked batch is mapped again by today's code when replayed, but delivered batches are not kept. `off`: only the Segment calls travel; dead letters, quarantine and parked batches are still kept. See *Outages and the archive*.",
  },
  ARCHIVE_DAYS: {
    kind: "var",
    description:
      "How long the archive keeps a webhook (`ARCHIVE_MODE=all`): an R2 lifecycle rule on `archive/`, set by `npm run deploy` (and `npm run setup`).",
  },
  ARCHIVE_SETTLE_SECONDS: {
    kind: "var",
    description:
      "An archive replay reads its range only up to this long ago (webhooks are archived as the consumer takes them, seconds after they arrive, longer behind a backlog), so a job does not finish before the archive holds its range's end. The range a job runs over is in its answer.",
  },
  RECORD_BUDGET_BYTES: {
    kind: "var",
    description:
      "Bytes of quarantined webhooks and too-large dead letters one source may keep in R2. An alert fires at 80%. Past it, a new record keeps its row (what, when, why) but not its bytes, and the Overview counts it; nothing already stored is deleted before `DEAD_LETTER_TTL_SECONDS`.",
  },
  OUTAGE_AFTER_SECONDS: {
    kind: "var",
    description:
      "How long every batch to a destination must fail before outage mode: arriving batches are then parked in R2 and acked instead of spending retries, one probe goes out every `OUTAGE_PROBE_SECONDS`, and the parked batches are sent in arrival order once a probe succeeds.",
  },
  OUTAGE_PROBE_SECONDS: {
    kind: "var",
    description: "In outage mode, how often one parked batch is sent to see whether the destination is back.",
  },
  PUBLIC_URL: {
    kind: "var",
    description: "The relay's public address, for links in alerts.",
  },
  SEGMENT_REQUEST_BUDGET: {
    kind: "var",
    description:
      "Segment requests one consumer invocation may make (bisecting a 400 can need many); the rest wait for the next. Fits the Free plan's 50 subrequests.",
  },
};

/** Every setting's default, as the schema applies it to an empty environment. */
export function settingDefaults(): Record<string, unknown> {
  return v.parse(SettingsSchema, {});
}
