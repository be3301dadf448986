// GET /healthz and GET /metrics for operators (a load balancer, Kubernetes, Prometheus), on
// METRICS_HOST:METRICS_PORT, loopback by default. /healthz answers 200 while Redis answers, 503
// when it does not: every role is useless without it.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { withTimeout, type MetricsRegistry } from "./metrics.js";

export interface Health {
  status: "ok" | "unavailable";
  role: string;
  uptimeSeconds: number;
  redis: "ok" | string;
  pid: number;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: MetricsRegistry;
  redis: { ping(): Promise<string> };
  role: () => string;
  startedAt: number;
  clock?: () => number;
  /** How long /healthz waits for Redis's PONG. */
  pingTimeoutMs?: number;
}

export interface OpsServer {
  /** The bound address (port 0 asks for a free one). */
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function health(o: Pick<OpsServerOptions, "redis" | "role" | "startedAt" | "clock" | "pingTimeoutMs">): Promise<Health> {
  const clock = o.clock ?? Date.now;
  let redis: string;
  try {
    redis = (await withTimeout(o.redis.ping(), o.pingTimeoutMs ?? 1_000)) === "PONG" ? "ok" : "unexpected reply to PING";
  } catch (err) {
    redis = `down: ${(err as Error).message}`;
  }
  return { status: redis === "ok" ? "ok" : "unavailable", role: o.role(), uptimeSeconds: Math.round((clock() - o.startedAt) / 1000), redis, pid: process.pid };
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("Only GET /healthz and GET /metrics are served.\n");
      return;
    }
    if (path === "/healthz") {
      void health(o).then((h) => {
        res.writeHead(h.status === "ok" ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : JSON.stringify(h));
      });
      return;
    }
    if (path === "/metrics") {
      o.metrics.text().then(
        (text) => res.writeHead(200, { "content-type": o.metrics.contentType }).end(req.method === "HEAD" ? undefined : text),
        (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${(err as Error).message}\n`),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("Not found. This server has GET /healthz and GET /metrics.\n");
  });
  // A scrape must never keep the process alive on shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === "EADDRINUSE"
            ? `METRICS_PORT ${o.port} is already in use on ${o.host}: give each process on one machine its own port, or leave METRICS_PORT empty`
            : `the /healthz and /metrics server cannot listen on ${o.host}:${o.port} (${err.code ?? err.message}); check METRICS_HOST and METRICS_PORT`,
        ),
      ),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    host: addr.address,
    port: addr.port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
