import { Hono } from "hono/tiny";
import * as v from "valibot";
import { cancelJob, createJob, dryRun, getJob, listJobs } from "../archive/jobs";
import { loadSettings } from "../config";
import { startJob } from "../delivery/control";
import type { Env } from "../env";
import { failureResponse } from "../http/failures";
import { issuesOf } from "../issues";
import { log } from "../log";

// A range is bounded by the archive's longest retention: R2's lifecycle keeps at most 365 days.
const MAX_RANGE_MS = 366 * 86_400_000;

const time = v.union([
  v.pipe(v.number(), v.integer("must be whole milliseconds"), v.minValue(0)),
  v.pipe(
    v.string(),
    v.isoTimestamp("must be an ISO time such as 2026-11-24T00:00:00Z"),
    v.transform((text) => Date.parse(text)),
  ),
]);

const ReplayRequestSchema = v.pipe(
  v.strictObject({
    source: v.pipe(v.string(), v.minLength(1), v.maxLength(24)),
    from: time,
    to: time,
    destination: v.optional(v.pipe(v.string(), v.maxLength(40))),
    dryRun: v.optional(v.boolean(), false),
  }),
  v.forward(
    v.check((request) => request.from < request.to, "must be after from"),
    ["to"],
  ),
  v.forward(
    v.check((request) => request.to - request.from <= MAX_RANGE_MS, "the range may span at most 366 days"),
    ["to"],
  ),
);

/**
 * /admin/archive/replay: send a time range of one source again from the archive
 * (src/archive/jobs.ts). POST with `dryRun: true` counts and previews; without, it starts a job
 * (202), or answers 409 naming the running job that overlaps. GET lists jobs or shows one, DELETE
 * cancels one.
 */
export function archiveRoutes() {
  const routes = new Hono<{ Bindings: Env }>();

  routes.post("/replay", async (c) => {
    const config = loadSettings(c.env);
    if (!config.ok) return failureResponse(c, config);
    const body = await c.req.json().catch(() => undefined);
    const parsed = v.safeParse(ReplayRequestSchema, body);
    if (!parsed.success) {
      return c.json(
        { error: "invalid", message: "not a replay request", issues: issuesOf(parsed.issues) },
        400,
      );
    }
    const { dryRun: dry, ...request } = parsed.output;
    const now = Date.now();
    if (dry) {
      const counted = await dryRun(c.env, config.settings, request, now);
      if (!counted.ok) return c.json({ error: "invalid", issues: [counted.problem] }, 400);
      // The range as a job would run it (its end no later than ARCHIVE_SETTLE_SECONDS ago).
      const range = {
        from: new Date(counted.request.from).toISOString(),
        to: new Date(counted.request.to).toISOString(),
      };
      return c.json({ dryRun: true, ...range, ...counted.dryRun });
    }
    const created = await createJob(c.env, config.settings, request, now);
    if (!created.ok && "problem" in created)
      return c.json({ error: "invalid", issues: [created.problem] }, 400);
    if (!created.ok) {
      return c.json(
        {
          error: "conflict",
          message: "a replay of this source overlapping that range is running",
          job: created.conflict,
        },
        409,
      );
    }
    try {
      await startJob(c.env, created.job.id, created.chain);
    } catch (error) {
      // The job is kept; the cron starts a job whose chain never ran.
      log("error", "chain-send-failed", { kind: "replay-job", job: created.job.id, error: String(error) });
    }
    log("info", "admin", { action: "archive-replay", job: created.job.id, source: request.source });
    return c.json({ job: created.job, dryRun: created.dryRun }, 202);
  });

  routes.get("/replay", async (c) => c.json({ entries: await listJobs(c.env.LEDGER, 50) }));

  routes.get("/replay/:job", async (c) => {
    const job = await getJob(c.env.LEDGER, c.req.param("job"));
    return job ? c.json(job) : jobNotFound(c);
  });

  routes.delete("/replay/:job", async (c) => {
    const job = await cancelJob(c.env.LEDGER, c.req.param("job"), Date.now());
    if (!job) return jobNotFound(c);
    log("info", "admin", { action: "archive-replay-cancel", job: job.id, state: job.state });
    return c.json(job);
  });
  return routes;
}

function jobNotFound(c: {
  json: (body: unknown, status: 404) => Response;
  req: { param: (k: string) => string };
}) {
  return c.json({ error: "not-found", message: `no replay job ${c.req.param("job").slice(0, 100)}` }, 404);
}
