import { type Context, Hono } from "hono";
import { recentAlerts } from "../alerts/notify";
import { loadSettings } from "../config";
import { listDrift } from "../drift/watch";
import type { Env } from "../env";
import { isAdmin } from "../http/auth";
import { failureResponse, notFound } from "../http/failures";
import { deleteRecord, getRecord, listRecords, type RecordFilter, type RecordKind } from "../kv/records";
import { log } from "../log";
import { previewReplay, type ReplayResult, replayRecord } from "./replay";

type AdminContext = Context<{ Bindings: Env }>;

const MAX_LIMIT = 500;
// One bulk replay call re-enqueues at most this many; the answer's cursor continues. About four
// KV operations each keeps a call well inside the 1,000 per invocation.
const BULK_REPLAY_MAX = 100;
// A summary reads at most this many pages of 1,000 keys (a KV list each).
const SUMMARY_PAGES = 10;

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

  admin.get("/drift", async (c) => c.json({ entries: await listDrift(c.env.DEDUP) }));
  admin.get("/alerts", async (c) => c.json({ entries: await recentAlerts(c.env.DEDUP) }));

  for (const kind of ["dead-letters", "quarantine"] as const satisfies readonly RecordKind[]) {
    // Counts by reason over every record matching the filter (up to SUMMARY_PAGES pages of keys).
    admin.get(`/${kind}/summary`, async (c) => {
      const filter = readFilter(c);
      if ("error" in filter) return c.json(filter, 400);
      const byReason: Record<string, number> = {};
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await listRecords(c.env.DEDUP, kind, filter, 1_000, cursor ?? undefined);
        for (const entry of page.entries) byReason[entry.reason] = (byReason[entry.reason] ?? 0) + 1;
        cursor = page.cursor;
      } while (cursor && ++pages < SUMMARY_PAGES);
      const total = Object.values(byReason).reduce((sum, n) => sum + n, 0);
      return c.json({ total, byReason, complete: cursor === null });
    });

    admin.get(`/${kind}/:id/preview`, async (c) => {
      const config = loadSettings(c.env);
      if (!config.ok) return failureResponse(c, config);
      const preview = await previewReplay(c.env, config.settings, kind, c.req.param("id"), Date.now());
      return c.json(preview, preview.ok ? 200 : preview.reason === "not-found" ? 404 : 422);
    });

    admin.get(`/${kind}`, async (c) => {
      const filter = readFilter(c);
      if ("error" in filter) return c.json(filter, 400);
      const limit = Math.min(MAX_LIMIT, Math.max(1, Number(c.req.query("limit") ?? 50) || 50));
      return c.json(await listRecords(c.env.DEDUP, kind, filter, limit, c.req.query("cursor")));
    });

    admin.get(`/${kind}/:id`, async (c) => {
      const read = await getRecord(c.env.DEDUP, kind, c.req.param("id"));
      if (read.ok) return c.json(read.record);
      if (read.reason === "not-found") return recordNotFound(c, kind);
      return c.json(
        { error: read.reason, message: "the stored record does not match its schema", issues: read.issues },
        422,
      );
    });

    // Every record matching the filter, oldest first, up to BULK_REPLAY_MAX per call; each gets
    // its own result, and `cursor` continues where this call stopped.
    admin.post(`/${kind}/replay`, async (c) => {
      const filter = readFilter(c);
      if ("error" in filter) return c.json(filter, 400);
      if (Object.keys(filter).length === 0 && c.req.query("all") !== "true") {
        return c.json(
          { error: "invalid", message: "give a filter (reason, event, source, from, to) or all=true" },
          400,
        );
      }
      const config = loadSettings(c.env);
      if (!config.ok) return failureResponse(c, config);
      const results: ReplayResult[] = [];
      let cursor: string | null = c.req.query("cursor") ?? null;
      do {
        const page = await listRecords(
          c.env.DEDUP,
          kind,
          filter,
          BULK_REPLAY_MAX - results.length,
          cursor ?? undefined,
        );
        for (const entry of page.entries) results.push(await replayOne(c, config.settings, kind, entry.id));
        cursor = page.cursor;
      } while (cursor && results.length < BULK_REPLAY_MAX);
      const replayed = results.filter((result) => result.ok).length;
      log("info", "admin", { action: "replay", kind, ids: results.map((r) => r.id), count: replayed });
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
      const read = await getRecord(c.env.DEDUP, kind, id);
      if (!read.ok && read.reason === "not-found") return recordNotFound(c, kind);
      await deleteRecord(c.env.DEDUP, kind, id);
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
    return await replayRecord(c.env, settings, kind, id, Date.now(), (p) => c.executionCtx.waitUntil(p));
  } catch (error) {
    return { ok: false, id, reason: "store-unavailable", detail: String(error) };
  }
}

function recordNotFound(c: AdminContext, kind: RecordKind) {
  return c.json({ error: "not-found", message: `no ${kind} entry ${c.req.param("id")}` }, 404);
}

function readFilter(c: AdminContext): RecordFilter | { error: string; message: string } {
  const filter: RecordFilter = {};
  for (const key of ["reason", "event", "source"] as const) {
    const value = c.req.query(key);
    if (value) filter[key] = value;
  }
  for (const key of ["from", "to"] as const) {
    const raw = c.req.query(key);
    if (!raw) continue;
    const time = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
    if (Number.isNaN(time))
      return { error: "invalid", message: `${key} must be an ISO time or milliseconds` };
    filter[key] = time;
  }
  return filter;
}
