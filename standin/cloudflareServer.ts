/**
 * The Cloudflare API stand-in (cloudflare.ts) as a local HTTP server, for the setup and deploy
 * sequence test. Wrangler reaches it through CLOUDFLARE_API_BASE_URL = `apiBaseUrl`.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { CloudflareStandIn } from "./cloudflare";

export interface RunningCloudflareStandIn {
  /** What CLOUDFLARE_API_BASE_URL should be set to. */
  apiBaseUrl: string;
  standIn: CloudflareStandIn;
  close(): Promise<void>;
}

export async function startCloudflareStandIn(accountId: string): Promise<RunningCloudflareStandIn> {
  const standIn = new CloudflareStandIn(accountId);
  const server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const request = new Request(`http://${req.headers.host}${req.url ?? "/"}`, {
        method: req.method,
        headers: req.headers as Record<string, string>,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
      });
      const response = await standIn.handle(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ success: false, errors: [{ code: 10000, message: String(error) }], result: null }),
      );
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    apiBaseUrl: `http://127.0.0.1:${port}/client/v4`,
    standIn,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
