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
import { loadRecordBytes } from "../records/bytes";
import { archiveRoutes } from "./archive";
import { destinationRoutes } from "./destinations";
import { overviewOf } from "./overview";
import { OVERVIEW_HOURS, RECORD_FILTER, RECORD_PAGE, RUN_CURSOR } from "./params";
import { previewReplay, REPLAY_PAGE, type ReplayResult, replayRecords } from "./replay";
import { recordView } from "./view";

type AdminContext = Context<{ Bindings: Env }>;

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

  admin.route("/archive", archiveRoutes());
  admin.route("/destinations", destinationRoutes());
  admin.get("/drift", async (c) => c.json({ entries: await listDrift(c.env.LEDGER) }));
  admin.get("/alerts", async (c) => c.json({ entries: await recentAlerts(c.env.LEDGER) }));
  admin.get("/overview", async (c) => {
    const read = readQuery(c, { hours: OVERVIEW_HOURS });
    if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
    const config = loadSettings(c.env);
    if (!config.ok) return failureResponse(c, config);
    return c.json(await overviewOf(c.env, config.settings, read.query.hours, Date.now()));
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
      return c.json(preview, preview.ok ? 200 : replayStatus(preview));
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
      if (read.ok) {
        const [missing] = await loadRecordBytes(c.env.ARCHIVE, [read.record]);
        return c.json(recordView(read.record, missing?.detail));
      }
      if (read.reason === "not-found") return recordNotFound(c, kind);
      return c.json(
        { error: read.reason, message: "the stored record does not match its schema", issues: read.issues },
        422,
      );
    });

    // The records that matched when the run started (created up to its start), oldest first, up
    // to REPLAY_PAGE (100) per call, each with its own result, in a fixed number of ledger
    // statements whatever the page holds (src/admin/replay.ts). `cursor` continues the same run,
    // so no record is replayed twice in it, and what fails again (a new dead letter) is not in it.
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
          { ...filter, state: "stored", createdUpTo: run.startedAt },
          REPLAY_PAGE,
          run.after,
        );
      } catch (error) {
        log("error", "ledger-read-failed", { action: "replay", error: String(error) });
        return c.json({ error: "unavailable", message: "the ledger did not answer; retry later" }, 503);
      }
      const results = await replayMany(
        c,
        config.settings,
        kind,
        page.entries.map((entry) => entry.id),
      );
      const tally = tallyResults(results);
      log("info", "admin", { action: "replay", kind, ids: results.map((r) => r.id), count: tally.replayed });
      const cursor = page.cursor ? `${run.startedAt}.${page.cursor}` : null;
      return c.json({ ...tally, results, cursor });
    });

    // `again=true` sends a record already sent once more (an operator's explicit choice).
    admin.post(`/${kind}/:id/replay`, async (c) => {
      const read = readQuery(c, {
        again: v.optional(v.picklist(["true", "false"], "must be true or false")),
      });
      if (!read.ok) return failureResponse(c, { reason: "bad-query", issues: read.issues });
      const config = loadSettings(c.env);
      if (!config.ok) return failureResponse(c, config);
      const [result] = (await replayMany(c, config.settings, kind, [c.req.param("id")], {
        again: read.query.again === "true",
      })) as [ReplayResult];
      log("info", "admin", { action: "replay", kind, ids: [result.id], count: result.ok ? 1 : 0 });
      if (result.ok) return c.json(result, result.status === "replayed" ? 202 : 200);
      return c.json({ error: result.reason, ...result }, replayStatus(result));
    });

    admin.delete(`/${kind}/:id`, async (c) => {
      const id = c.req.param("id");
      if (!(await deleteRecord(c.env.LEDGER, kind, id, Date.now()))) return recordNotFound(c, kind);
      log("info", "admin", { action: "delete", kind, ids: [id], count: 1 });
      return c.json({ status: "deleted", id });
    });
  }
  return admin;
}

/** Replay never throws: whatever goes wrong is each record's result, not a 500 for the page. */
async function replayMany(
  c: AdminContext,
  settings: Parameters<typeof replayRecords>[1],
  kind: RecordKind,
  ids: readonly string[],
  options: { again?: boolean } = {},
): Promise<ReplayResult[]> {
  if (ids.length === 0) return [];
  try {
    return await replayRecords(c.env, settings, kind, ids, Date.now(), options);
  } catch (error) {
    return ids.map((id) => ({ ok: false, id, reason: "store-unavailable", detail: String(error) }));
  }
}

/** A replay's failure as an HTTP status: the one place each reason gets its answer. */
function replayStatus(result: Extract<ReplayResult, { ok: false }>): 404 | 409 | 422 | 503 {
  switch (result.reason) {
    case "not-found":
      return 404;
    case "already-replayed":
      return 409;
    case "queue-unavailable":
    case "store-unavailable":
      return 503;
    case "invalid":
    case "malformed-record":
    case "not-replayable":
    case "event-too-large":
    case "unknown-source":
    case "missing-bytes":
      return 422;
  }
}

/** What a page of results amounts to: replayed, dropped (do-not-process) and failed. */
function tallyResults(results: readonly ReplayResult[]) {
  const replayed = results.filter((r) => r.ok && r.status === "replayed").length;
  const dropped = results.filter((r) => r.ok && r.status === "dropped").length;
  return { replayed, dropped, failed: results.length - replayed - dropped };
}

function recordNotFound(c: AdminContext, kind: RecordKind) {
  return c.json({ error: "not-found", message: `no ${kind} entry ${c.req.param("id")}` }, 404);
}
