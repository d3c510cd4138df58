/**
 * The Segment stand-in as a local HTTP server, for `npm start`, the black-box test, benchmarks
 * and the chaos run. It serves Segment's POST /v1/batch (see segment.ts for what it enforces),
 * prints every event it keeps on one readable line, and exposes what it saw:
 *   GET  /events?limit=N   the last events kept (default 50)
 *   GET  /stats            counts: requests by status, events kept, duplicates, dropped
 *   POST /failures         {"share": 0.3, "answers": [500, {"status": 429, "retryAfter": "1"}, "hang"]}
 *   POST /alerts           an alert receiver for `npm start` (ALERT_WEBHOOK_URL): prints each alert
 *   GET  /alerts           the alerts received
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type DestinationName, PROFILES } from "../src/destination/profiles";
import { type InjectedAnswer, type ReceivedEvent, SegmentStandIn } from "./segment";

export interface StandInServerOptions {
  port?: number;
  host?: string;
  writeKeys: string[];
  /** The destination profile to play (default segment). */
  destination?: DestinationName;
  /** Print each event kept; off for benchmarks. */
  print?: boolean;
  keep?: number;
}

export interface RunningStandIn {
  url: string;
  standIn: SegmentStandIn;
  close(): Promise<void>;
}

export async function startStandInServer(options: StandInServerOptions): Promise<RunningStandIn> {
  const standIn = new SegmentStandIn(options.writeKeys);
  standIn.profile = PROFILES[options.destination ?? "segment"];
  standIn.keep = options.keep ?? 1_000;
  if (options.print !== false)
    standIn.onEvent = (event) => console.log(describeEvent(event, standIn.profile.name));
  let failurePool: InjectedAnswer[] = [500];
  const alerts: unknown[] = [];
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ success: false, message: String(error) }));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://standin.local");
    if (req.method === "GET" && url.pathname === "/events") {
      const limit = Math.max(1, Number(url.searchParams.get("limit") ?? 50) || 50);
      return json(res, 200, standIn.received.slice(-limit));
    }
    if (req.method === "GET" && url.pathname === "/stats") return json(res, 200, stats(standIn));
    if (url.pathname === "/alerts") {
      if (req.method === "GET") return json(res, 200, alerts);
      const alert = JSON.parse((await readBody(req)).toString() || "{}") as { text?: string };
      alerts.push(alert);
      if (alerts.length > 100) alerts.shift();
      if (options.print !== false) console.log(`[alert] ${alert.text ?? JSON.stringify(alert)}`);
      return json(res, 200, { ok: true });
    }
    // A landing page, as a moved endpoint's redirect target serves: 200 to a GET, and no events.
    if (req.method === "GET" && url.pathname === "/")
      return json(res, 200, { service: "Segment stand-in", destination: standIn.profile.name });
    if (req.method === "POST" && url.pathname === "/failures") {
      const body = JSON.parse((await readBody(req)).toString() || "{}") as {
        share?: number;
        answers?: InjectedAnswer[];
      };
      standIn.setFailureShare(body.share ?? 0);
      if (body.answers?.length) failurePool = body.answers;
      return json(res, 200, { share: body.share ?? 0, answers: failurePool });
    }
    const body = await readBody(req);
    const controller = new AbortController();
    req.on("close", () => controller.abort());
    const request = new Request(url.href.replace("http://standin.local", `http://${req.headers.host}`), {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
      signal: controller.signal,
    });
    try {
      const response = await standIn.handle(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch {
      res.destroy(); // an injected hang the caller gave up on
    }
  }

  // Random failures draw from the configured answers.
  standIn.randomFailure = () => failurePool[Math.floor(Math.random() * failurePool.length)] ?? 500;

  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}`,
    standIn,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function stats(standIn: SegmentStandIn) {
  const byStatus: Record<string, number> = {};
  for (const request of standIn.requests) byStatus[request.status] = (byStatus[request.status] ?? 0) + 1;
  return {
    destination: standIn.profile.name,
    requests: standIn.requests.length,
    byStatus,
    eventsKept: standIn.acceptedCount,
    distinctMessageIds: standIn.distinctMessageIds,
    duplicates: standIn.duplicates,
    dropped: standIn.dropped.length,
    bytes: standIn.requests.reduce((sum, request) => sum + request.bytes, 0),
  };
}

/** `track  Guide Displayed  user=Webhook Visitor  id=pendo:default:f961…:track` */
export function describeEvent({ call }: ReceivedEvent, destination = "segment"): string {
  const who = call.userId ? `user=${call.userId}` : `anon=${call.anonymousId}`;
  const what =
    call.type === "track" ? `"${call.event}"` : call.type === "group" ? `group=${call.groupId}` : "traits";
  return `[${destination}] ${String(call.type).padEnd(8)} ${what}  ${who}  ${call.timestamp}  id=${call.messageId}`;
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
