import type { Context } from "hono";
import { Hono } from "hono/tiny";
import * as v from "valibot";
import { recentAlerts } from "../alerts/notify";
import { loadSettings } from "../config";
import type { Env } from "../env";
import { isAdmin } from "../http/auth";
import { failureResponse, notFound } from "../http/failures";
import { readQuery } from "../http/query";
import { listDrift } from "../ledger/drift";
import { issueSummaries } from "../ledger/issues";
import { countByReason, deleteRecord, getRecord, listRecords, type RecordKind } from "../ledger/records";
import { log } from "../log";
import { overviewOf } from "./overview";
import { OVERVIEW_HOURS, RECORD_FILTER, RECORD_PAGE, RUN_CURSOR } from "./params";
import { previewReplay, type ReplayResult, replayRecord } from "./replay";
import { recordView } from "./view";

type AdminContext = Context<{ Bindings: Env }>;

// One bulk replay call re-enqueues at most this many; the answer's cursor continues. Each costs a
// D1 claim, a queue send and a D1 delete: with the page's listing, 15 make 31 D1 queries and 15
// sends, inside the Free plan's 50 D1 queries and 50 subrequests per invocation.
const BULK_REPLAY_MAX = 15;

/**
 * /admin: dead letters and quarantine, behind ADMIN_TOKEN (Bearer only). Unset token: every
 * route answers 404, like an unknown route.
 */
export function createAdminRoutes() {
  const admin = new Hono<{ Bindings: Env }>();

  admin.use("*", async (c, next) => {
    const config = loadSettings(c.env);
    const token = config.ok ? config.settings.ADMIN_TOKEN : undefined;
    if (!token) return notFound(c);
    if (!(await isAdmin(c.req.raw, token))) {
      return c.json(
        { error: "unauthorized", message: "Authorization: Bearer <ADMIN_TOKEN> is required" },
        401,
      );
    }
    await next();
  });

  admin.get("/drift", async (c) => c.json({ entries: await listDrift(c.env.LEDGER) }));
  admin.get("/alerts", async (c) => c.json({ entries: await recentAlerts(c.env.LEDGER) }));
  admin.get("/overview", async (c) => {
    const read = readQuery(c, { hours: OVERVIEW_HOURS });
    if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
    return c.json(await overviewOf(c.env, read.query.hours, Date.now()));
  });

  for (const kind of ["dead-letters", "quarantine"] as const satisfies readonly RecordKind[]) {
    // Exact counts by reason over every record matching the filter.
    admin.get(`/${kind}/summary`, async (c) => {
      const read = readQuery(c, RECORD_FILTER);
      if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
      const byReason = await countByReason(c.env.LEDGER, kind, read.query);
      const total = Object.values(byReason).reduce((sum, n) => sum + n, 0);
      return c.json({ total, byReason, complete: true });
    });

    admin.get(`/${kind}/:id/preview`, async (c) => {
      const config = loadSettings(c.env);
      if (!config.ok) return failureResponse(c, config);
      const preview = await previewReplay(c.env, config.settings, kind, c.req.param("id"), Date.now());
      return c.json(preview, preview.ok ? 200 : preview.reason === "not-found" ? 404 : 422);
    });

    admin.get(`/${kind}`, async (c) => {
      const read = readQuery(c, { ...RECORD_FILTER, ...RECORD_PAGE });
      if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
      const { limit, cursor, ...filter } = read.query;
      const page = await listRecords(c.env.LEDGER, kind, filter, limit, cursor);
      if (kind !== "quarantine") return c.json(page);
      // What a quarantined webhook was refused for, so the list needs no record read.
      const summaries = await issueSummaries(
        c.env.LEDGER,
        page.entries.map((entry) => entry.id),
      );
      const entries = page.entries.map((entry) => ({ ...entry, ...summaries.get(entry.id) }));
      return c.json({ ...page, entries });
    });

    admin.get(`/${kind}/:id`, async (c) => {
      const read = await getRecord(c.env.LEDGER, kind, c.req.param("id"));
      if (read.ok) return c.json(recordView(read.record));
      if (read.reason === "not-found") return recordNotFound(c, kind);
      return c.json(
        { error: read.reason, message: "the stored record does not match its schema", issues: read.issues },
        422,
      );
    });

    // The records that matched when the run started (created up to its start), oldest first, up
    // to BULK_REPLAY_MAX per call, each with its own result. `cursor` continues the same run, so
    // no record is replayed twice in it, and what fails again (a new dead letter) is not in it.
    admin.post(`/${kind}/replay`, async (c) => {
      const read = readQuery(c, {
        ...RECORD_FILTER,
        all: v.optional(v.string()),
        cursor: v.optional(RUN_CURSOR),
      });
      if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
      const { all, cursor: given, ...filter } = read.query;
      if (Object.values(filter).every((value) => value === undefined) && all !== "true") {
        return failureResponse(c, {
          reason: "bad-query",
          issues: [{ path: "all", message: "give a filter (reason, event, source, from, to) or all=true" }],
        });
      }
      const run = given ?? { startedAt: Date.now(), after: undefined };
      const config = loadSettings(c.env);
      if (!config.ok) return failureResponse(c, config);
      let page: Awaited<ReturnType<typeof listRecords>>;
      try {
        page = await listRecords(
          c.env.LEDGER,
          kind,
          { ...filter, createdUpTo: run.startedAt, claimableAt: Date.now() },
          BULK_REPLAY_MAX,
          run.after,
        );
      } catch (error) {
        log("error", "ledger-read-failed", { action: "replay", error: String(error) });
        return c.json({ error: "unavailable", message: "the ledger did not answer; retry later" }, 503);
      }
      const results: ReplayResult[] = [];
      for (const entry of page.entries) results.push(await replayOne(c, config.settings, kind, entry.id));
      const replayed = results.filter((result) => result.ok).length;
      log("info", "admin", { action: "replay", kind, ids: results.map((r) => r.id), count: replayed });
      const cursor = page.cursor ? `${run.startedAt}.${page.cursor}` : null;
      return c.json({ replayed, failed: results.length - replayed, results, cursor });
    });

    admin.post(`/${kind}/:id/replay`, async (c) => {
      const config = loadSettings(c.env);
      if (!config.ok) return failureResponse(c, config);
      const result = await replayOne(c, config.settings, kind, c.req.param("id"));
      log("info", "admin", { action: "replay", kind, ids: [result.id], count: result.ok ? 1 : 0 });
      if (result.ok) return c.json(result, 202);
      const status =
        result.reason === "not-found"
          ? 404
          : result.reason === "queue-unavailable" || result.reason === "store-unavailable"
            ? 503
            : result.reason === "already-replayed"
              ? 409
              : 422;
      return c.json({ error: result.reason, ...result }, status);
    });

    admin.delete(`/${kind}/:id`, async (c) => {
      const id = c.req.param("id");
      if (!(await deleteRecord(c.env.LEDGER, kind, id))) return recordNotFound(c, kind);
      log("info", "admin", { action: "delete", kind, ids: [id], count: 1 });
      return c.json({ status: "deleted", id });
    });
  }
  return admin;
}

/** Replay never throws: whatever goes wrong is this record's result, not a 500 for the batch. */
async function replayOne(
  c: AdminContext,
  settings: Parameters<typeof replayRecord>[1],
  kind: RecordKind,
  id: string,
): Promise<ReplayResult> {
  try {
    return await replayRecord(c.env, settings, kind, id, Date.now());
  } catch (error) {
    return { ok: false, id, reason: "store-unavailable", detail: String(error) };
  }
}

function recordNotFound(c: AdminContext, kind: RecordKind) {
  return c.json({ error: "not-found", message: `no ${kind} entry ${c.req.param("id")}` }, 404);
}
