import { Hono } from "hono/tiny";
import { loadSettings } from "../config";
import { startChain } from "../delivery/control";
import { DESTINATION_ID } from "../destination/target";
import type { Env } from "../env";
import { failureResponse } from "../http/failures";
import { holdStatement, parkedSummary, resumeStatement } from "../ledger/destinations";
import { randomHex } from "../ledger/records";
import { log } from "../log";
import { destinationsOf } from "../targets";

/**
 * /admin/destinations: each destination the configured sources send to (by id, with its host and
 * sources, never its key), its outage-mode state and what is parked for it; an operator's hold
 * (park everything, send nothing) and resume (drain what is parked, in order).
 */
export function destinationRoutes() {
  const routes = new Hono<{ Bindings: Env }>();

  routes.get("/", async (c) => {
    const config = loadSettings(c.env);
    if (!config.ok) return failureResponse(c, config);
    return c.json({ entries: await destinationList(c.env, config.settings) });
  });

  routes.post("/:name/hold", async (c) => {
    const config = loadSettings(c.env);
    if (!config.ok) return failureResponse(c, config);
    const name = c.req.param("name");
    const known = (await destinationsOf(config.settings)).find(({ target }) => target.id === name);
    if (!known) return unknownDestination(c, name);
    await holdStatement(c.env.LEDGER, name, known.target.host, Date.now()).run();
    log("info", "admin", { action: "hold", destination: name });
    return c.json({ destination: name, state: "held" });
  });

  routes.post("/:name/resume", async (c) => {
    const config = loadSettings(c.env);
    if (!config.ok) return failureResponse(c, config);
    const name = c.req.param("name");
    if (!DESTINATION_ID.test(name)) return unknownDestination(c, name);
    const chain = randomHex(8);
    const resumed = await resumeStatement(c.env.LEDGER, name, chain, Date.now()).first<{ state: string }>();
    if (!resumed) {
      return c.json({ error: "not-held", message: `destination ${name} is not held` }, 409);
    }
    if (resumed.state === "draining") await startChain(c.env, name, chain, 0);
    log("info", "admin", { action: "resume", destination: name, state: resumed.state });
    return c.json({ destination: name, state: resumed.state });
  });
  return routes;
}

function unknownDestination(c: { json: (body: unknown, status: 404) => Response }, name: string) {
  return c.json(
    { error: "not-found", message: `no configured source sends to destination ${name.slice(0, 100)}` },
    404,
  );
}

export interface DestinationEntry {
  name: string;
  destination: string;
  host: string;
  sources: string[];
  state: string;
  failingSince: string | null;
  lastStatus: number | null;
  outageSince: string | null;
  parked: { batches: number; events: number; bytes: number; oldest: string | null };
}

/** Configured destinations and any with a ledger row (parked batches of one no longer configured). */
export async function destinationList(
  env: Env,
  settings: Parameters<typeof destinationsOf>[0],
): Promise<DestinationEntry[]> {
  const configured = await destinationsOf(settings);
  const rows = new Map((await parkedSummary(env.LEDGER)).map((row) => [row.id, row]));
  const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null);
  const entries = configured.map(({ target, sources }): DestinationEntry => {
    const row = rows.get(target.id);
    rows.delete(target.id);
    return {
      name: target.id,
      destination: target.profile.name,
      host: target.host,
      sources,
      state: row?.state ?? "open",
      failingSince: iso(row?.failingSince ?? null),
      lastStatus: row?.lastStatus ?? null,
      outageSince: row?.state === "outage" || row?.state === "draining" ? iso(row.outageAt) : null,
      parked: {
        batches: row?.batches ?? 0,
        events: row?.events ?? 0,
        bytes: row?.bytes ?? 0,
        oldest: iso(row?.oldestAt ?? null),
      },
    };
  });
  for (const row of rows.values()) {
    entries.push({
      name: row.id,
      destination: row.id.split("-")[0] ?? "",
      host: row.host,
      sources: [],
      state: row.state,
      failingSince: iso(row.failingSince),
      lastStatus: row.lastStatus,
      outageSince: iso(row.outageAt),
      parked: { batches: row.batches, events: row.events, bytes: row.bytes, oldest: iso(row.oldestAt) },
    });
  }
  return entries;
}
