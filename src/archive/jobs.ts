import type { Settings } from "../config";
import type { Next } from "../delivery/control";
import type { Env } from "../env";
import { prepareEvent } from "../intake/prepare";
import { randomHex } from "../ledger/records";
import { log } from "../log";
import { sendBatchGroups } from "../queue/batches";
import { decodeRelayMessage, fitForQueue, type RelayMessage } from "../queue/message";
import { resolveSource, type Source } from "../sources";
import { destinationById, sourceTargets } from "../targets";
import { type ArchivedWebhook, countArchived, listArchive, readArchiveObject } from "./read";

/**
 * Sending a time range again from the archive: `POST /admin/archive/replay`. A dry run counts what
 * matches and maps the first webhook with today's code; a run is a job in the ledger
 * (`replay_jobs`): paced, resumable and cancellable. Each step (a control message on the queue)
 * takes the job's lease, reads the next archive objects after its cursor, maps each webhook with
 * today's mapping under its original messageIds, enqueues them, and moves the cursor. The consumer
 * then treats them as any event: do-not-process by their own time, outage mode, dead letters.
 * A step that dies after enqueueing and before moving its cursor is done again by the next: a
 * webhook may be sent twice, under the same messageIds.
 */

export interface ArchiveReplayRequest {
  source: string;
  from: number;
  to: number;
  /** A destination id (GET /admin/destinations): send there instead of each source's own. */
  destination?: string;
}

// One step at most this much: 1,000 events a second at most, whatever the range holds.
const EVENTS_PER_STEP = 1_000;
const OBJECTS_PER_STEP = 50;
const PACE_SECONDS = 1;
// A step takes seconds; a lease older than this belongs to a step that died.
const LEASE_MS = 2 * 60_000;
// Dry runs and job creation list at most this many pages: each is a Class A operation.
const COUNT_LISTS = 200;

export type RequestProblem = { path: string; message: string };

/**
 * The request as a job runs it: its end no later than ARCHIVE_SETTLE_SECONDS ago (webhooks are
 * archived as the consumer takes them, so a job must not finish before the archive holds the end
 * of its range), and a destination
 * that is the source's own said as none (so that two replays of one range to the same place are
 * seen to overlap however they name it).
 */
async function settledRequest(
  settings: Settings,
  request: ArchiveReplayRequest,
  now: number,
): Promise<{ ok: true; request: ArchiveReplayRequest } | { ok: false; problem: RequestProblem }> {
  const to = Math.min(request.to, now - settings.ARCHIVE_SETTLE_SECONDS * 1000);
  if (to <= request.from)
    return {
      ok: false,
      problem: {
        path: "from",
        message: `the range must start before ${new Date(to).toISOString()}: the last ${settings.ARCHIVE_SETTLE_SECONDS} seconds may not be archived yet (ARCHIVE_SETTLE_SECONDS)`,
      },
    };
  const own = (await sourceTargets(settings)).get(request.source);
  const { destination: _, ...rest } = request;
  const ownDestination = own?.ok === true && own.target.id === request.destination;
  return {
    ok: true,
    request: ownDestination || request.destination === undefined ? { ...rest, to } : { ...request, to },
  };
}

/** The source the webhooks are mapped as: the archive's own, sent to the chosen destination. */
async function mappingSource(
  settings: Settings,
  request: ArchiveReplayRequest,
): Promise<{ ok: true; source: Source } | { ok: false; problem: RequestProblem }> {
  const source = resolveSource(settings, request.source);
  if (!source)
    return {
      ok: false,
      problem: { path: "source", message: `no source named ${request.source} is configured` },
    };
  if (request.destination === undefined) return { ok: true, source };
  const target = destinationById(await sourceTargets(settings), request.destination);
  if (!target)
    return {
      ok: false,
      problem: {
        path: "destination",
        message: `no configured source sends to destination ${request.destination}`,
      },
    };
  // Mapped as the source's events (its names, its messageIds), in the form that destination keeps.
  return { ok: true, source: { ...source, destination: target.profile.name } };
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** One archived webhook as today's code maps it, or why it cannot be sent. */
export async function mapArchived(
  settings: Settings,
  source: Source,
  webhook: ArchivedWebhook,
  request: ArchiveReplayRequest,
  now: number,
): Promise<{ ok: true; message: RelayMessage; encoded: string } | { ok: false; detail: string }> {
  let message: RelayMessage;
  if (webhook.meta.holds === "message") {
    const decoded = decodeRelayMessage(webhook.bytes);
    if (!decoded.ok) return { ok: false, detail: decoded.detail };
    message = decoded.message;
  } else {
    let text: string;
    try {
      text = utf8.decode(webhook.bytes);
    } catch {
      return { ok: false, detail: "the archived webhook is not UTF-8" };
    }
    const prepared = await prepareEvent(text, source, webhook.meta.receivedAt, {
      keepRaw: settings.ARCHIVE_MODE !== "off",
    });
    if (!prepared.ok)
      return {
        ok: false,
        detail:
          prepared.reason === "invalid" ? prepared.issues.map((i) => i.message).join("; ") : prepared.detail,
      };
    message = prepared.message;
  }
  message.replayedAt = now;
  if (request.destination !== undefined) message.destination = request.destination;
  // Measured with what a replay adds: past the queue's limit it travels as its calls, or not at all.
  const fitted = fitForQueue(message);
  if (!fitted.ok) return { ok: false, detail: `event-too-large: ${fitted.detail}` };
  return { ok: true, message, encoded: fitted.encoded };
}

export type DryRun = {
  events: number;
  batches: number;
  /** False when the range holds more objects than one answer lists: counts are lower bounds. */
  complete: boolean;
  unreadable: number;
  first:
    | { eventId: string; receivedAt: string; willSend: unknown[] }
    | { eventId: string; error: string }
    | null;
};

/** How many webhooks and archive objects match, and what the first maps to today. */
export async function dryRun(
  env: Env,
  settings: Settings,
  asked: ArchiveReplayRequest,
  now: number,
): Promise<
  { ok: true; dryRun: DryRun; request: ArchiveReplayRequest } | { ok: false; problem: RequestProblem }
> {
  const settled = await settledRequest(settings, asked, now);
  if (!settled.ok) return settled;
  const request = settled.request;
  const mapping = await mappingSource(settings, request);
  if (!mapping.ok) return mapping;
  const listing = await listArchive(env.ARCHIVE, request.source, request.from, request.to, {
    maxObjects: Number.POSITIVE_INFINITY,
    maxLists: COUNT_LISTS,
  });
  const counted = await countArchived(env.ARCHIVE, listing.objects, request.from, request.to);
  let first: DryRun["first"] = null;
  for (const object of listing.objects) {
    const read = await readArchiveObject(env.ARCHIVE, object.key, request.from, request.to);
    const webhook = read.ok ? read.webhooks[0] : undefined;
    if (!webhook) continue;
    const mapped = await mapArchived(settings, mapping.source, webhook, request, now);
    first = mapped.ok
      ? {
          eventId: webhook.meta.eventId,
          receivedAt: new Date(webhook.meta.receivedAt).toISOString(),
          willSend: mapped.message.calls.map((call) => JSON.parse(call) as unknown),
        }
      : { eventId: webhook.meta.eventId, error: mapped.detail };
    break;
  }
  return {
    ok: true,
    request,
    dryRun: {
      events: counted.events,
      batches: listing.objects.length,
      complete: listing.complete,
      unreadable: counted.unreadable,
      first,
    },
  };
}

export interface ReplayJob {
  id: string;
  source: string;
  from: string;
  to: string;
  destination: string | null;
  state: "running" | "done" | "cancelled" | "failed";
  sent: number;
  total: number;
  skipped: number;
  detail: string | null;
  createdAt: string;
  updatedAt: string;
}

const JOB_COLUMNS = `id, source, range_from AS rangeFrom, range_to AS rangeTo, destination, state, sent, total, skipped,
  detail, created_at AS createdAt, updated_at AS updatedAt, cursor, chain, lease_until AS leaseUntil`;

interface JobRow {
  id: string;
  source: string;
  rangeFrom: number;
  rangeTo: number;
  destination: string | null;
  state: ReplayJob["state"];
  sent: number;
  total: number;
  skipped: number;
  detail: string | null;
  createdAt: number;
  updatedAt: number;
  cursor: string;
  chain: string;
  leaseUntil: number;
}

const jobOf = (row: JobRow): ReplayJob => ({
  id: row.id,
  source: row.source,
  from: new Date(row.rangeFrom).toISOString(),
  to: new Date(row.rangeTo).toISOString(),
  destination: row.destination,
  state: row.state,
  sent: row.sent,
  total: row.total,
  skipped: row.skipped,
  detail: row.detail,
  createdAt: new Date(row.createdAt).toISOString(),
  updatedAt: new Date(row.updatedAt).toISOString(),
});

export type JobCreated =
  | { ok: true; job: ReplayJob; chain: string; dryRun: DryRun }
  | { ok: false; problem: RequestProblem }
  | { ok: false; conflict: ReplayJob };

/**
 * A job, made only if no running job of the same source and destination overlaps the range:
 * one statement decides, so of two replays asked at once one runs and the other is told which.
 */
export async function createJob(
  env: Env,
  settings: Settings,
  asked: ArchiveReplayRequest,
  now: number,
): Promise<JobCreated> {
  const counted = await dryRun(env, settings, asked, now);
  if (!counted.ok) return counted;
  const { request } = counted;
  const id = `${String(now).padStart(13, "0")}-${randomHex(4)}`;
  const chain = randomHex(8);
  const db = env.LEDGER;
  const created = await db
    .prepare(
      `INSERT INTO replay_jobs (id, source, range_from, range_to, destination, state, total, chain, created_at, updated_at)
       SELECT ?1, ?2, ?3, ?4, ?5, 'running', ?6, ?8, ?7, ?7
       WHERE NOT EXISTS (SELECT 1 FROM replay_jobs WHERE state = 'running' AND source = ?2
         AND coalesce(destination, '') = coalesce(?5, '') AND range_from < ?4 AND range_to > ?3)
       RETURNING ${JOB_COLUMNS}`,
    )
    .bind(
      id,
      request.source,
      request.from,
      request.to,
      request.destination ?? null,
      counted.dryRun.events,
      now,
      chain,
    )
    .first<JobRow>();
  if (!created) {
    const running = await db
      .prepare(
        `SELECT ${JOB_COLUMNS} FROM replay_jobs WHERE state = 'running' AND source = ?1
           AND coalesce(destination, '') = coalesce(?2, '') AND range_from < ?4 AND range_to > ?3 LIMIT 1`,
      )
      .bind(request.source, request.destination ?? null, request.from, request.to)
      .first<JobRow>();
    if (running) return { ok: false, conflict: jobOf(running) };
    return { ok: false, problem: { path: "", message: "the job could not be made; try again" } };
  }
  return { ok: true, job: jobOf(created), chain, dryRun: counted.dryRun };
}

export async function getJob(db: D1Database, id: string): Promise<ReplayJob | undefined> {
  const row = await db
    .prepare(`SELECT ${JOB_COLUMNS} FROM replay_jobs WHERE id = ?`)
    .bind(id)
    .first<JobRow>();
  return row ? jobOf(row) : undefined;
}

export async function listJobs(db: D1Database, limit: number): Promise<ReplayJob[]> {
  const { results } = await db
    .prepare(`SELECT ${JOB_COLUMNS} FROM replay_jobs ORDER BY id DESC LIMIT ?`)
    .bind(limit)
    .all<JobRow>();
  return results.map(jobOf);
}

/** Cancels a running job: its next step finds it cancelled and stops. */
export async function cancelJob(db: D1Database, id: string, now: number): Promise<ReplayJob | undefined> {
  await db
    .prepare("UPDATE replay_jobs SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'running'")
    .bind(now, id)
    .run();
  return getJob(db, id);
}

/**
 * Running jobs whose chain went quiet (no step for `staleMs`) get a new chain, which the cron
 * starts; a message of the old chain that turns up later finds its chain replaced and stops.
 */
export async function restartStaleJobs(
  db: D1Database,
  now: number,
  staleMs: number,
): Promise<{ job: string; chain: string }[]> {
  const { results } = await db
    .prepare("SELECT id FROM replay_jobs WHERE state = 'running' AND updated_at < ? AND lease_until < ?")
    .bind(now - staleMs, now)
    .all<{ id: string }>();
  const restarted: { job: string; chain: string }[] = [];
  for (const { id } of results) {
    const chain = randomHex(8);
    const row = await db
      .prepare(
        "UPDATE replay_jobs SET chain = ?, updated_at = ? WHERE id = ? AND state = 'running' RETURNING id",
      )
      .bind(chain, now, id)
      .first();
    if (row) restarted.push({ job: id, chain });
  }
  return restarted;
}

// Steps in a row that could not enqueue before the job is failed (the queue refuses its writes).
const MAX_FAILED_STEPS = 10;

/**
 * One step of a job; the delay before the next, or undefined when the job is over (or not ours).
 * `chain` is the token the step's message carries, `next` the one its successor carries.
 */
export async function runJobStep(
  env: Env,
  settings: Settings,
  jobId: string,
  chain: string,
  next: string,
  now: number,
): Promise<Next> {
  const db = env.LEDGER;
  // The token passes to the next step (compare-and-set): a duplicate message of this step ends.
  const job = await db
    .prepare(
      `UPDATE replay_jobs SET lease_until = ?2, chain = ?5
       WHERE id = ?1 AND chain = ?4 AND state = 'running' AND lease_until < ?3
       RETURNING ${JOB_COLUMNS}`,
    )
    .bind(jobId, now + LEASE_MS, now, chain, next)
    .first<JobRow>();
  // Not running any more, another chain owns it, or a step holds it (a duplicate message): ends here.
  if (!job) return undefined;
  try {
    return await stepJob(env, settings, job, now);
  } catch (error) {
    // Its lease given back at once, for the successor handleControl sends (30 s later, not the
    // lease's 2 minutes), and counted with the steps that could not enqueue.
    await db
      .prepare(
        `UPDATE replay_jobs SET lease_until = 0, failures = failures + 1,
           state = CASE WHEN failures + 1 >= ?3 THEN 'failed' ELSE state END,
           detail = CASE WHEN failures + 1 >= ?3 THEN ?4 ELSE detail END
         WHERE id = ?1 AND chain = ?2 AND state = 'running'`,
      )
      .bind(
        jobId,
        next,
        MAX_FAILED_STEPS,
        `${MAX_FAILED_STEPS} steps in a row failed: ${String(error)}`.slice(0, 2_000),
      )
      .run()
      .catch(() => undefined);
    throw error;
  }
}

async function stepJob(env: Env, settings: Settings, job: JobRow, now: number): Promise<Next> {
  const db = env.LEDGER;
  const jobId = job.id;
  const request: ArchiveReplayRequest = {
    source: job.source,
    from: job.rangeFrom,
    to: job.rangeTo,
    ...(job.destination === null ? {} : { destination: job.destination }),
  };
  const finish = (state: ReplayJob["state"], detail: string | null) =>
    db
      .prepare(
        "UPDATE replay_jobs SET state = ?, detail = ?, lease_until = 0, updated_at = ? WHERE id = ? AND state = 'running'",
      )
      .bind(state, detail, now, jobId)
      .run();
  const mapping = await mappingSource(settings, request);
  if (!mapping.ok) {
    await finish("failed", `${mapping.problem.path}: ${mapping.problem.message}`);
    return undefined;
  }
  const listing = await listArchive(env.ARCHIVE, job.source, job.rangeFrom, job.rangeTo, {
    after: job.cursor || undefined,
    maxObjects: OBJECTS_PER_STEP,
    maxLists: 10,
  });
  const messages: string[] = [];
  let skipped = 0;
  let cursor = job.cursor;
  let consumed = 0;
  for (const object of listing.objects) {
    const read = await readArchiveObject(env.ARCHIVE, object.key, job.rangeFrom, job.rangeTo);
    if (!read.ok) {
      // Expired or unreadable: said in the job, counted as skipped, and the job goes on.
      skipped += object.events;
      log("warn", "archive-replay-skipped", { job: jobId, key: object.key, reason: read.reason });
    } else {
      skipped += read.unreadable;
      for (const webhook of read.webhooks) {
        const mapped = await mapArchived(settings, mapping.source, webhook, request, now);
        if (mapped.ok) messages.push(mapped.encoded);
        else skipped++;
      }
    }
    cursor = object.key;
    consumed++;
    if (messages.length >= EVENTS_PER_STEP) break;
  }
  // Every listed object done: the cursor moves past what the listing looked at, in range or not,
  // so a stretch of objects outside the range never holds a job in place.
  if (consumed === listing.objects.length && listing.scanned !== undefined && listing.scanned > cursor)
    cursor = listing.scanned;
  try {
    for (const chunk of sendBatchGroups(messages, (message) => message)) {
      await env.EVENTS.sendBatch(chunk.map((body) => ({ body, contentType: "text" as const })));
    }
  } catch (error) {
    // Nothing moves: the step is done again after its delay (what went out goes again, same ids);
    // after MAX_FAILED_STEPS in a row the job fails, saying why, and can be asked again.
    const failed = await db
      .prepare(
        `UPDATE replay_jobs SET lease_until = 0, failures = failures + 1, updated_at = ?3,
           state = CASE WHEN failures + 1 >= ?2 THEN 'failed' ELSE state END,
           detail = CASE WHEN failures + 1 >= ?2 THEN ?4 ELSE detail END
         WHERE id = ?1 AND state = 'running' RETURNING state`,
      )
      .bind(
        jobId,
        MAX_FAILED_STEPS,
        now,
        `the queue refused ${MAX_FAILED_STEPS} steps in a row: ${String(error)}`.slice(0, 2_000),
      )
      .first<{ state: ReplayJob["state"] }>();
    log("error", "archive-replay-enqueue-failed", { job: jobId, error: String(error) });
    return failed?.state === "running" ? { delaySeconds: 30 } : undefined;
  }
  const done = listing.complete && consumed === listing.objects.length;
  await db
    .prepare(
      `UPDATE replay_jobs SET cursor = ?2, sent = sent + ?3, skipped = skipped + ?4, lease_until = 0, updated_at = ?5,
         failures = 0, state = CASE WHEN ?6 THEN 'done' ELSE state END
       WHERE id = ?1 AND state = 'running'`,
    )
    .bind(jobId, cursor, messages.length, skipped, now, done ? 1 : 0)
    .run();
  log("info", "archive-replay-step", { job: jobId, sent: messages.length, skipped, done });
  return done ? undefined : { delaySeconds: PACE_SECONDS };
}
