/**
 * A stand-in for the part of the Cloudflare v4 API (api.cloudflare.com/client/v4) that
 * `npm run setup` and `npm run deploy` reach through wrangler, its resource provisioning
 * included: KV namespaces, D1 databases (by id or by name) and queries, R2 buckets and their
 * lifecycle rules, queues and their consumers, Worker settings and secrets, the script upload,
 * cron schedules and the workers.dev subdomain. Point wrangler at it with
 * CLOUDFLARE_API_BASE_URL=<url>/client/v4.
 *
 * Like the Segment stand-in, it refuses what a real account refuses, with the real error codes
 * where they are known: a binding to a KV namespace, D1 database or queue the account does not
 * have (10042, 10181, 11000), a consumer on a missing queue, a second resource with a taken name
 * (KV 10014, D1 7502, R2 409 10073, queue 11009), a bucket or database that does not exist (R2
 * 10006, D1 7404, which wrangler's provisioning reads as "create it"), secrets of a Worker that
 * does not exist (10007, which wrangler reads as "not deployed yet"). R2's codes are those of
 * developers.cloudflare.com/r2/api/error-codes. It records every request; a failure can be
 * injected for the next matching request, and a D1 query can be made to report `success: false`.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  injected: boolean;
}

export interface InjectedFailure {
  method: string;
  /** Matched against the path after /client/v4, e.g. /workers/scripts/[^/]+/secrets$ */
  path: RegExp;
  status: number;
  /** How many matching requests fail; then the failure is spent. */
  times: number;
}

/** One uploaded version of a Worker: its metadata part and the names of its module parts. */
export interface Upload {
  id: string;
  metadata: WorkerMetadata;
  modules: string[];
}

export interface WorkerMetadata {
  main_module?: string;
  bindings?: { type: string; name: string; [key: string]: unknown }[];
  compatibility_date?: string;
  keep_bindings?: string[];
  [key: string]: unknown;
}

/** A consumer as the API lists it: the Worker under `script`, though it is posted as `script_name`. */
export interface QueueConsumer {
  consumer_id: string;
  script: string;
  type: "worker";
  dead_letter_queue?: string;
  settings: Record<string, unknown>;
}

interface Queue {
  queue_id: string;
  queue_name: string;
  created_on: string;
  modified_on: string;
  consumers: QueueConsumer[];
}

/** A lifecycle rule as the R2 API takes and returns it (only what this project sets is checked). */
export interface LifecycleRule {
  id: string;
  enabled: boolean;
  conditions: { prefix?: string };
  deleteObjectsTransition?: { condition: { type: "Age"; maxAge: number } | { type: "Date"; date: string } };
  [key: string]: unknown;
}

interface Bucket {
  name: string;
  creation_date: string;
  location: string;
  lifecycle: LifecycleRule[];
}

interface Database {
  uuid: string;
  name: string;
  created_at: string;
  version: "production";
  /** Migrations recorded in d1_migrations, in order. */
  migrations: string[];
  /** Every statement batch run against it. */
  queries: string[];
}

interface Script {
  /** Secret values by name, as stored; the API never shows them, the test may. */
  secrets: Map<string, string>;
  /** Every version uploaded, oldest first. */
  uploads: Upload[];
  /** Version ids deployed, oldest first; the last one serves. */
  deployments: string[];
  schedules: { cron: string }[];
  subdomain: { enabled: boolean; previews_enabled: boolean };
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const API_PREFIX = "/client/v4";

export class CloudflareStandIn {
  readonly requests: RecordedRequest[] = [];
  readonly kvNamespaces = new Map<string, { id: string; title: string }>();
  readonly databases = new Map<string, Database>();
  readonly queues = new Map<string, Queue>();
  readonly buckets = new Map<string, Bucket>();
  readonly scripts = new Map<string, Script>();
  readonly failures: InjectedFailure[] = [];
  /** SQL patterns whose next query is answered 200 with `success: false`, changing nothing. */
  readonly unsuccessfulQueries: RegExp[] = [];
  subdomain = "relay-test";
  private serial = 0;

  constructor(readonly accountId: string) {}

  /** The next `times` requests matching method and path are answered `status` with an API error. */
  injectFailure(failure: Partial<InjectedFailure> & Pick<InjectedFailure, "path">): void {
    this.failures.push({ method: "GET", status: 500, times: 1, ...failure });
  }

  /**
   * The next D1 query whose SQL matches is answered 200 with a result that says `success: false`
   * and records nothing, as a statement that did not run; `wrangler d1 migrations apply` then
   * marks the migration failed and still exits 0.
   */
  injectUnsuccessfulQuery(sql: RegExp): void {
    this.unsuccessfulQueries.push(sql);
  }

  /** A resource an operator made by hand, under any title, as found in a real account. */
  addKvNamespace(title: string): string {
    const id = this.newId(32);
    this.kvNamespaces.set(id, { id, title });
    return id;
  }

  /** A database made by hand, as found in a real account. */
  addDatabase(name: string): string {
    return this.createDatabase({ name }).uuid;
  }

  /** A bucket made by hand, as found in a real account. */
  addBucket(name: string): void {
    this.createBucket({ name });
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.startsWith(API_PREFIX) ? url.pathname.slice(API_PREFIX.length) : url.pathname;
    const record: RecordedRequest = {
      method: request.method,
      path: path + url.search,
      status: 200,
      injected: false,
    };
    this.requests.push(record);
    const failure = this.failures.find(
      (f) => f.times > 0 && f.method === request.method && f.path.test(path),
    );
    if (failure) {
      failure.times -= 1;
      record.status = failure.status;
      record.injected = true;
      return envelope(failure.status, null, [{ code: 10013, message: "An unknown error has occurred" }]);
    }
    try {
      const { result, info } = await this.route(request, path, url.searchParams);
      return envelope(200, result, [], info);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      record.status = error.status;
      return envelope(error.status, null, [{ code: error.code, message: error.message }]);
    }
  }

  private async route(
    request: Request,
    path: string,
    query: URLSearchParams,
  ): Promise<{ result: unknown; info?: Record<string, number> }> {
    const method = request.method;
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "user" && parts[1] === "tokens" && parts[2] === "verify")
      return { result: { id: "standin-token", status: "active" } };
    if (parts[0] === "memberships")
      return { result: [{ id: "m1", account: { id: this.accountId, name: "Stand-in account" } }] };
    if (parts[0] === "accounts" && parts.length === 1)
      return { result: [{ id: this.accountId, name: "Stand-in account" }] };
    if (parts[0] !== "accounts" || parts[1] !== this.accountId)
      throw new ApiError(403, 9109, "Unauthorized to access requested resource");
    const rest = parts.slice(2);
    const route = `${method} ${routeOf(rest)}`;
    switch (route) {
      case "GET storage/kv/namespaces":
        return paged([...this.kvNamespaces.values()], query);
      case "POST storage/kv/namespaces":
        return { result: this.createKvNamespace(await bodyJson(request)) };
      case "GET d1/database":
        return paged([...this.databases.values()].map(describeDatabase), query);
      case "POST d1/database":
        return { result: describeDatabase(this.createDatabase(await bodyJson(request))) };
      case "GET d1/database/:":
        return { result: describeDatabase(this.database(rest[2])) };
      case "POST d1/database/:/query": {
        const body = await bodyJson(request);
        const sql = String((body as { sql?: string }).sql ?? "");
        const unsuccessful = this.unsuccessfulQueries.findIndex((pattern) => pattern.test(sql));
        if (unsuccessful >= 0) {
          this.unsuccessfulQueries.splice(unsuccessful, 1);
          return { result: [{ results: [], success: false, meta: { duration: 1, changes: 0 } }] };
        }
        return { result: runQuery(this.database(rest[2]), body) };
      }
      case "GET r2/buckets":
        return { result: { buckets: [...this.buckets.values()].map(describeBucket) } };
      case "POST r2/buckets":
        return { result: describeBucket(this.createBucket(await bodyJson(request))) };
      case "GET r2/buckets/:":
        return { result: describeBucket(this.bucket(rest[2])) };
      case "GET r2/buckets/:/lifecycle":
        return { result: { rules: this.bucket(rest[2]).lifecycle } };
      case "PUT r2/buckets/:/lifecycle":
        this.bucket(rest[2]).lifecycle = lifecycleRulesOf(await bodyJson(request));
        return { result: {} };
      case "GET queues":
        return paged(
          [...this.queues.values()]
            .filter((q) => query.getAll("name").length === 0 || query.getAll("name").includes(q.queue_name))
            .map(describeQueue),
          query,
        );
      case "POST queues":
        return { result: describeQueue(this.createQueue(await bodyJson(request))) };
      case "GET queues/:":
        return { result: describeQueue(this.queue(rest[1])) };
      case "GET queues/:/consumers":
        return { result: this.queue(rest[1]).consumers };
      case "POST queues/:/consumers":
        return { result: this.addConsumer(this.queue(rest[1]), await bodyJson(request)) };
      case "PUT queues/:/consumers/:":
        return { result: this.updateConsumer(this.queue(rest[1]), rest[3], await bodyJson(request)) };
      case "GET workers/subdomain":
        return { result: { subdomain: this.subdomain } };
      case "GET workers/scripts/:/secrets":
        return {
          result: [...this.script(rest[2]).secrets.keys()].map((name) => ({ name, type: "secret_text" })),
        };
      case "PUT workers/scripts/:/secrets":
        return { result: this.putSecret(this.script(rest[2]), await bodyJson(request)) };
      case "PUT workers/scripts/:": {
        const version = await this.upload(rest[2], request, { deploy: true });
        return {
          result: { id: rest[2], etag: version.id, deployment_id: version.id, startup_time_ms: 1 },
        };
      }
      case "GET workers/scripts/:/settings":
        return { result: settingsOf(this.script(rest[2])) };
      case "PATCH workers/scripts/:/settings":
        return { result: await this.patchSettings(this.script(rest[2]), request) };
      case "PATCH workers/scripts/:/secrets-bulk":
        return { result: this.patchSecrets(this.script(rest[2]), await bodyJson(request)) };
      case "GET workers/scripts/:/script-settings":
        this.script(rest[2]);
        return { result: { logpush: false, tail_consumers: [], observability: { enabled: true } } };
      case "GET workers/services/:":
        this.script(rest[2]);
        return {
          result: {
            id: rest[2],
            default_environment: { environment: "production", script: { id: rest[2] } },
          },
        };
      case "GET workers/workers/:": {
        const script = this.script(rest[2]);
        return {
          result: { id: rest[2], name: rest[2], subdomain: script.subdomain, previews_base_config: {} },
        };
      }
      case "GET workers/scripts/:/deployments":
        return {
          result: { deployments: this.script(rest[2]).deployments.map(describeDeployment).reverse() },
        };
      case "POST workers/scripts/:/deployments":
        return { result: this.deploy(this.script(rest[2]), await bodyJson(request)) };
      case "POST workers/scripts/:/versions": {
        const version = await this.upload(rest[2], request, { deploy: false });
        return {
          result: {
            id: version.id,
            number: this.script(rest[2]).uploads.length,
            metadata: { has_preview: false },
            resources: { script: { etag: version.id } },
            startup_time_ms: 1,
          },
        };
      }
      case "PATCH workers/scripts/:/script-settings":
        this.script(rest[2]);
        return { result: await bodyJson(request) };
      case "GET workers/scripts/:/schedules":
        return { result: { schedules: this.script(rest[2]).schedules } };
      case "PUT workers/scripts/:/schedules":
        return { result: this.putSchedules(this.script(rest[2]), await bodyJson(request)) };
      case "GET workers/scripts/:/subdomain":
        return { result: this.script(rest[2]).subdomain };
      case "POST workers/scripts/:/subdomain": {
        const script = this.script(rest[2]);
        const body = (await bodyJson(request)) as { enabled?: boolean; previews_enabled?: boolean };
        script.subdomain = {
          enabled: body.enabled ?? false,
          previews_enabled: body.previews_enabled ?? false,
        };
        return { result: script.subdomain };
      }
      default:
        throw new ApiError(404, 7000, `No route for that URI (stand-in: ${route})`);
    }
  }

  private createKvNamespace(body: unknown) {
    const title = (body as { title?: string }).title ?? "";
    if (!title) throw new ApiError(400, 10019, "namespace title is required");
    if ([...this.kvNamespaces.values()].some((ns) => ns.title === title))
      throw new ApiError(400, 10014, "A namespace with this account ID and title already exists.");
    return this.kvNamespaces.get(this.addKvNamespace(title));
  }

  private createDatabase(body: unknown): Database {
    const name = (body as { name?: string }).name ?? "";
    if ([...this.databases.values()].some((db) => db.name === name))
      throw new ApiError(400, 7502, "A database with that name already exists");
    const db: Database = {
      uuid: this.newUuid(),
      name,
      created_at: new Date().toISOString(),
      version: "production",
      migrations: [],
      queries: [],
    };
    this.databases.set(db.uuid, db);
    return db;
  }

  /** By id, or by name as `GET /d1/database/<name>` also answers (wrangler looks databases up so). */
  private database(idOrName: string | undefined): Database {
    const db =
      this.databases.get(idOrName ?? "") ??
      [...this.databases.values()].find((candidate) => candidate.name === idOrName);
    if (!db) throw new ApiError(404, 7404, `The database ${idOrName} could not be found`);
    return db;
  }

  private createBucket(body: unknown): Bucket {
    const name = (body as { name?: string }).name ?? "";
    // R2's naming rule: 3-63 characters, lower-case letters, digits and hyphens, alphanumeric ends.
    if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name))
      throw new ApiError(400, 10005, "The specified bucket name is not valid.");
    if (this.buckets.has(name)) throw new ApiError(409, 10073, "The bucket name already exists.");
    const bucket: Bucket = { name, creation_date: new Date().toISOString(), location: "ENAM", lifecycle: [] };
    this.buckets.set(name, bucket);
    return bucket;
  }

  private bucket(name: string | undefined): Bucket {
    const bucket = this.buckets.get(name ?? "");
    if (!bucket) throw new ApiError(404, 10006, "The specified bucket does not exist.");
    return bucket;
  }

  /** A queue made by hand, as found in a real account. */
  addQueue(name: string): Queue {
    return this.createQueue({ queue_name: name });
  }

  private createQueue(body: unknown): Queue {
    const name = (body as { queue_name?: string }).queue_name ?? "";
    if ([...this.queues.values()].some((q) => q.queue_name === name))
      throw new ApiError(409, 11009, "A queue with this name already exists");
    const now = new Date().toISOString();
    const queue: Queue = {
      queue_id: this.newId(32),
      queue_name: name,
      created_on: now,
      modified_on: now,
      consumers: [],
    };
    this.queues.set(queue.queue_id, queue);
    return queue;
  }

  private queue(id: string | undefined): Queue {
    const queue = this.queues.get(id ?? "") ?? [...this.queues.values()].find((q) => q.queue_name === id);
    if (!queue) throw new ApiError(404, 11000, "Queue does not exist");
    return queue;
  }

  private addConsumer(queue: Queue, body: unknown): QueueConsumer {
    const consumer = this.consumerOf(body, this.newId(32));
    if (queue.consumers.some((c) => c.script === consumer.script))
      throw new ApiError(400, 11004, "This queue already has a consumer for this script");
    queue.consumers.push(consumer);
    return consumer;
  }

  private updateConsumer(queue: Queue, consumerId: string | undefined, body: unknown): QueueConsumer {
    const index = queue.consumers.findIndex((c) => c.consumer_id === consumerId);
    if (index < 0) throw new ApiError(404, 11003, "Consumer does not exist");
    const consumer = this.consumerOf(body, consumerId as string);
    queue.consumers[index] = consumer;
    return consumer;
  }

  /** A consumer from a POST or PUT body, refused as the API does for a missing Worker or dead-letter queue. */
  private consumerOf(body: unknown, consumerId: string): QueueConsumer {
    const posted = body as {
      script_name?: string;
      dead_letter_queue?: string;
      settings?: Record<string, unknown>;
    };
    const script = posted.script_name ?? "";
    if (!this.scripts.has(script))
      throw new ApiError(404, 10007, "This Worker does not exist on your account.");
    if (posted.dead_letter_queue) this.queue(posted.dead_letter_queue);
    return {
      consumer_id: consumerId,
      script,
      type: "worker",
      ...(posted.dead_letter_queue && { dead_letter_queue: posted.dead_letter_queue }),
      settings: posted.settings ?? {},
    };
  }

  private script(name: string | undefined): Script {
    const script = this.scripts.get(name ?? "");
    if (!script) throw new ApiError(404, 10007, "This Worker does not exist on your account.");
    return script;
  }

  private putSecret(script: Script, body: unknown) {
    const { name, text, type } = body as { name?: string; text?: string; type?: string };
    if (!name || type !== "secret_text") throw new ApiError(400, 10021, "secret name and type are required");
    script.secrets.set(name, text ?? "");
    return { name, type };
  }

  /**
   * `wrangler secret bulk`: a multipart `settings` part whose bindings list is the Worker's whole
   * binding set. A secret given with text is set; one given as { type, name } only is kept; one
   * left out is deleted, as the API does.
   */
  private async patchSettings(script: Script, request: Request) {
    const part = (await request.formData()).get("settings");
    const text = typeof part === "string" ? part : await (part as Blob | null)?.text();
    const { bindings } = JSON.parse(text ?? "{}") as {
      bindings?: { type: string; name: string; text?: string }[];
    };
    if (!bindings) throw new ApiError(400, 10021, "settings.bindings is required");
    const secrets = new Map<string, string>();
    for (const binding of bindings) {
      if (binding.type !== "secret_text") continue;
      const value = binding.text ?? script.secrets.get(binding.name);
      if (value === undefined)
        throw new ApiError(400, 10021, `cannot inherit unknown secret ${binding.name}`);
      secrets.set(binding.name, value);
    }
    script.secrets = secrets;
    return settingsOf(script);
  }

  /** Newer wrangler's `secret bulk`: a JSON merge patch, { secrets: { NAME: {name, text, type} | null } }. */
  private patchSecrets(script: Script, body: unknown) {
    const { secrets } = body as { secrets?: Record<string, { text?: string; type?: string } | null> };
    if (!secrets) throw new ApiError(400, 10021, "secrets is required");
    for (const [name, secret] of Object.entries(secrets)) {
      if (secret === null) script.secrets.delete(name);
      else if (secret.type === "secret_text" && typeof secret.text === "string")
        script.secrets.set(name, secret.text);
      else throw new ApiError(400, 10021, `secret ${name} needs type secret_text and a text`);
    }
    return [...script.secrets.keys()].map((name) => ({ name, type: "secret_text" }));
  }

  private putSchedules(script: Script, body: unknown) {
    const schedules = body as { cron?: string }[];
    for (const { cron } of schedules)
      if (cron?.trim().split(/\s+/).length !== 5) throw new ApiError(400, 10100, `invalid cron: ${cron}`);
    script.schedules = schedules.map(({ cron }) => ({ cron: cron as string }));
    return { schedules: script.schedules };
  }

  private deploy(script: Script, body: unknown) {
    const { versions } = body as { versions?: { version_id: string; percentage: number }[] };
    const version = versions?.find((v) => v.percentage === 100);
    if (!version || !script.uploads.some((u) => u.id === version.version_id))
      throw new ApiError(400, 10215, "the stand-in deploys one known version at 100%");
    script.deployments.push(version.version_id);
    return describeDeployment(version.version_id, script.deployments.length - 1);
  }

  /**
   * A script upload (multipart: a `metadata` part and one part per module), checked binding by
   * binding; a PUT of the script also deploys it, a new version waits for a deployment.
   */
  private async upload(name: string | undefined, request: Request, { deploy }: { deploy: boolean }) {
    if (!name) throw new ApiError(400, 10021, "script name required");
    const form = await request.formData();
    const metadataPart = form.get("metadata");
    if (metadataPart === null) throw new ApiError(400, 10021, "metadata part is missing");
    const metadata = JSON.parse(
      typeof metadataPart === "string" ? metadataPart : await (metadataPart as Blob).text(),
    ) as WorkerMetadata;
    for (const binding of metadata.bindings ?? []) this.checkBinding(binding);
    const modules = [...form.keys()].filter((key) => key !== "metadata");
    const script: Script = this.scripts.get(name) ?? {
      secrets: new Map(),
      uploads: [],
      deployments: [],
      schedules: [],
      subdomain: { enabled: false, previews_enabled: false },
    };
    // Secrets belong to the Worker here and survive every upload, as they do across versions.
    const version: Upload = { id: this.newUuid(), metadata, modules };
    script.uploads.push(version);
    if (deploy) script.deployments.push(version.id);
    this.scripts.set(name, script);
    return version;
  }

  private checkBinding(binding: { type: string; name: string; [key: string]: unknown }) {
    switch (binding.type) {
      case "kv_namespace":
        if (!this.kvNamespaces.has(String(binding.namespace_id)))
          throw new ApiError(
            400,
            10042,
            `KV namespace '${binding.namespace_id}' is not valid. [code: 10042]`,
          );
        return;
      case "d1":
        if (!this.databases.has(String(binding.id)))
          throw new ApiError(
            400,
            10181,
            `D1 binding '${binding.name}' references database '${binding.id}' which was not found.`,
          );
        return;
      case "queue":
        if (![...this.queues.values()].some((q) => q.queue_name === binding.queue_name))
          throw new ApiError(400, 11000, `Queue "${binding.queue_name}" does not exist. [code: 11000]`);
        return;
      case "r2_bucket":
        // The real API refuses a binding to a missing bucket too; its code is not documented.
        if (!this.buckets.has(String(binding.bucket_name)))
          throw new ApiError(400, 10006, `R2 bucket '${binding.bucket_name}' does not exist.`);
        return;
      default:
        return;
    }
  }

  private newId(length: number): string {
    this.serial += 1;
    return this.serial.toString(16).padStart(length, "a");
  }

  private newUuid(): string {
    const hex = this.newId(32);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

/** The path below /accounts/:id with the ids in it replaced by ":", e.g. "workers/scripts/:/secrets". */
function routeOf(rest: string[]): string {
  const idAfter = new Set(["database", "queues", "consumers", "scripts", "services", "buckets"]);
  // workers/workers/<name> is the newer Workers API, which wrangler 4.1xx reads a Worker through.
  const isId = (i: number) =>
    i > 0 && (idAfter.has(rest[i - 1] as string) || (i === 2 && rest[1] === "workers"));
  return rest.map((part, i) => (isId(i) ? ":" : part)).join("/");
}

/** The Worker's settings: the live version's bindings plus its secrets (names only). */
function settingsOf(script: Script) {
  const live = script.uploads.find((upload) => upload.id === script.deployments.at(-1));
  return {
    bindings: [
      ...(live?.metadata.bindings ?? []),
      ...[...script.secrets.keys()].map((name) => ({ type: "secret_text", name })),
    ],
    logpush: false,
    tail_consumers: [],
    observability: { enabled: true },
  };
}

function describeBucket(bucket: Bucket) {
  return { name: bucket.name, creation_date: bucket.creation_date, location: bucket.location };
}

/**
 * A PUT of lifecycle rules, refused unless every rule has an id, a flag and a condition object.
 * The API's code for a malformed rule is not documented: 10040 is the stand-in's own.
 */
function lifecycleRulesOf(body: unknown): LifecycleRule[] {
  const { rules } = body as { rules?: LifecycleRule[] };
  if (!Array.isArray(rules)) throw new ApiError(400, 10040, "rules is required");
  for (const rule of rules)
    if (
      typeof rule.id !== "string" ||
      typeof rule.enabled !== "boolean" ||
      typeof rule.conditions !== "object"
    )
      throw new ApiError(400, 10040, "each rule needs an id, enabled and conditions");
  if (new Set(rules.map((rule) => rule.id)).size !== rules.length)
    throw new ApiError(400, 10040, "rule ids must be unique");
  return rules;
}

function describeQueue(queue: Queue) {
  return {
    ...queue,
    producers: [],
    producers_total_count: 0,
    consumers_total_count: queue.consumers.length,
    settings: { delivery_delay: 0, message_retention_period: 345600 },
  };
}

function describeDeployment(versionId: string, index: number) {
  return {
    id: `deployment-${index + 1}`,
    source: "wrangler",
    strategy: "percentage",
    created_on: new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString(),
    versions: [{ version_id: versionId, percentage: 100 }],
    annotations: {},
  };
}

function describeDatabase(db: Database) {
  return { uuid: db.uuid, name: db.name, created_at: db.created_at, version: db.version, num_tables: 0 };
}

/**
 * Just enough of D1 for `wrangler d1 migrations apply`: the d1_migrations bookkeeping table it
 * creates, reads and inserts into; every other statement is recorded and succeeds.
 */
function runQuery(db: Database, body: unknown) {
  const sql = String((body as { sql?: string }).sql ?? "");
  db.queries.push(sql);
  const meta = { duration: 1, changes: 0, last_row_id: 0, rows_read: 0, rows_written: 0, size_after: 4096 };
  let results: unknown[] = [];
  // wrangler 4.86 writes the table name bare, newer versions quote it ("d1_migrations").
  if (/^\s*SELECT \*\s+FROM "?d1_migrations"?/i.test(sql))
    results = db.migrations.map((name, i) => ({ id: i + 1, name, applied_at: "2026-11-30 00:00:00" }));
  for (const match of sql.matchAll(
    /INSERT INTO "?d1_migrations"? \(name\)\s+values \('((?:[^']|'')+)'\)/gi,
  )) {
    const name = (match[1] as string).replaceAll("''", "'");
    if (db.migrations.includes(name))
      throw new ApiError(400, 7500, `UNIQUE constraint failed: d1_migrations.name: SQLITE_CONSTRAINT`);
    db.migrations.push(name);
  }
  return [{ results, success: true, meta }];
}

function paged<T>(items: T[], query: URLSearchParams): { result: T[]; info: Record<string, number> } {
  const perPage = Number(query.get("per_page") ?? 20) || 20;
  const page = Number(query.get("page") ?? 1) || 1;
  const result = items.slice((page - 1) * perPage, page * perPage);
  return {
    result,
    info: {
      page,
      per_page: perPage,
      count: result.length,
      total_count: items.length,
      total_pages: Math.max(1, Math.ceil(items.length / perPage)),
    },
  };
}

async function bodyJson(request: Request): Promise<unknown> {
  const text = await request.text();
  try {
    return JSON.parse(text || "{}");
  } catch {
    throw new ApiError(400, 10026, "could not parse the request body as JSON");
  }
}

function envelope(
  status: number,
  result: unknown,
  errors: { code: number; message: string }[],
  info?: Record<string, number>,
): Response {
  const body = {
    success: errors.length === 0,
    errors,
    messages: [],
    result,
    ...(info && { result_info: info }),
  };
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}
