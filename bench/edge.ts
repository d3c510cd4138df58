/**
 * Edge cost: autocannon against the running `wrangler dev`, the ingest route (auth, validation,
 * dedup, enqueue; every request a new event) beside a trivial route of the same Worker (GET /),
 * at several concurrencies, in the same run.
 */
import autocannon from "autocannon";
import { LOCAL_TOKEN } from "../scripts/harness/local-relay";
import { newWebhookEachRequest } from "./side-by-side";

export interface EdgeFigures {
  mode: "kv" | "off";
  connections: number;
  route: "ingest" | "trivial";
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

const DURATION_SECONDS = 5;

function run(url: string, connections: number, route: "ingest" | "trivial"): Promise<autocannon.Result> {
  const options: autocannon.Options =
    route === "trivial"
      ? { url: `${url}/`, connections, duration: DURATION_SECONDS }
      : {
          url: `${url}/pendo?token=${LOCAL_TOKEN}`,
          connections,
          duration: DURATION_SECONDS,
          method: "POST",
          headers: { "content-type": "application/json" },
          // A new event each time: a repeated uniqueId would take the cheaper duplicate path.
          requests: newWebhookEachRequest(),
        };
  return autocannon(options);
}

export async function benchEdge(
  url: string,
  mode: "kv" | "off",
  concurrencies = [1, 10, 50],
): Promise<EdgeFigures[]> {
  const figures: EdgeFigures[] = [];
  await run(url, 4, "trivial"); // warm-up
  for (const connections of concurrencies) {
    for (const route of ["trivial", "ingest"] as const) {
      const result = await run(url, connections, route);
      figures.push({
        mode,
        connections,
        route,
        requestsPerSecond: Math.round(result.requests.average),
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
        non2xx: result.non2xx,
      });
    }
  }
  return figures;
}
