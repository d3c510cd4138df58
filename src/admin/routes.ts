import { type Context, Hono } from "hono";
import { loadSettings } from "../config";
import {
  type DeadLetter,
  deleteRecord,
  getRecord,
  listRecords,
  type QuarantineEntry,
  type RecordFilter,
  type RecordKind,
} from "../delivery/records";
import type { Env } from "../env";
import { presentedToken, tokenMatches } from "../http/auth";
import { replayRecord } from "./replay";

type AdminContext = Context<{ Bindings: Env }>;

const MAX_LIMIT = 500;
// One bulk replay call re-enqueues at most this many; the answer's cursor continues.
const BULK_REPLAY_MAX = 100;

/**
 * /admin: dead letters and quarantine, behind ADMIN_TOKEN (Bearer only: unlike Pendo, an operator
 * can set a header, and a token in a URL ends up in shell history). Unset token: every route 404s.
 */
export function createAdminRoutes() {
  const admin = new Hono<{ Bindings: Env }>();

  admin.use("*", async (c, next) => {
    const config = loadSettings(c.env);
    const token = config.ok ? config.settings.ADMIN_TOKEN : undefined;
    if (!token)
      return c.json({ error: "not-found", message: `no route for ${c.req.method} ${c.req.path}` }, 404);
    const header = c.req.header("authorization");
    const presented = header?.startsWith("Bearer ") ? presentedToken(c.req.raw) : undefined;
    if (!(await tokenMatches(presented, [token]))) {
      return c.json(
        { error: "unauthorized", message: "Authorization: Bearer <ADMIN_TOKEN> is required" },
        401,
      );
    }
    await next();
  });

  for (const kind of ["dead-letters", "quarantine"] as const satisfies readonly RecordKind[]) {
    admin.get(`/${kind}`, async (c) => {
      const filter = readFilter(c);
      if ("error" in filter) return c.json(filter, 400);
      const limit = Math.min(MAX_LIMIT, Math.max(1, Number(c.req.query("limit") ?? 50) || 50));
      return c.json(await listRecords(c.env.DEDUP, kind, filter, limit, c.req.query("cursor")));
    });

    admin.get(`/${kind}/:id`, async (c) => {
      const record = await getRecord(c.env.DEDUP, kind, c.req.param("id"));
      return record ? c.json(record) : notFound(c, kind);
    });

    admin.post(`/${kind}/replay`, async (c) => {
      const filter = readFilter(c);
      if ("error" in filter) return c.json(filter, 400);
      if (Object.keys(filter).length === 0 && c.req.query("all") !== "true") {
        return c.json(
          { error: "invalid", message: "give a filter (reason, event, source, from, to) or all=true" },
          400,
        );
      }
      const settings = loadSettings(c.env);
      if (!settings.ok) return c.json({ error: "misconfigured", problems: settings.problems }, 503);
      const page = await listRecords(c.env.DEDUP, kind, filter, BULK_REPLAY_MAX, c.req.query("cursor"));
      const results = [];
      for (const summary of page.entries) {
        const record = await getRecord<DeadLetter | QuarantineEntry>(c.env.DEDUP, kind, summary.id);
        if (record) results.push(await replayRecord(c.env, settings.settings, kind, record, Date.now()));
      }
      const replayed = results.filter((result) => result.ok).length;
      return c.json({ replayed, failed: results.filter((result) => !result.ok), cursor: page.cursor });
    });

    admin.post(`/${kind}/:id/replay`, async (c) => {
      const record = await getRecord<DeadLetter | QuarantineEntry>(c.env.DEDUP, kind, c.req.param("id"));
      if (!record) return notFound(c, kind);
      const settings = loadSettings(c.env);
      if (!settings.ok) return c.json({ error: "misconfigured", problems: settings.problems }, 503);
      const result = await replayRecord(c.env, settings.settings, kind, record, Date.now());
      if (result.ok) return c.json({ status: "replayed", ...result }, 202);
      const status = result.reason === "queue-unavailable" ? 503 : 422;
      return c.json({ error: result.reason, ...result }, status);
    });

    admin.delete(`/${kind}/:id`, async (c) => {
      const record = await getRecord(c.env.DEDUP, kind, c.req.param("id"));
      if (!record) return notFound(c, kind);
      await deleteRecord(c.env.DEDUP, kind, c.req.param("id"));
      return c.json({ status: "deleted", id: c.req.param("id") });
    });
  }
  return admin;
}

function notFound(c: AdminContext, kind: RecordKind) {
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
