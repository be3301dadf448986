// GET /healthz and GET /metrics for operators (a load balancer, Kubernetes, Docker's HEALTHCHECK,
// Prometheus), on METRICS_HOST:METRICS_PORT, loopback by default. /healthz checks each part the
// process depends on (Redis, the queues, the workers' heartbeats, each chat platform, the chain's
// RPC; src/ops/health.ts) and answers 200 when all are ok, 503 with the failing ones named.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { checkParts, redisCheck, type HealthCheck, type PartHealth } from "./health.js";
import type { MetricsRegistry } from "./metrics.js";

export interface Health {
  status: "ok" | "unavailable";
  role: string;
  uptimeSeconds: number;
  /** "ok", or what is wrong with Redis (kept beside parts.redis for the scripts that read it). */
  redis: "ok" | string;
  pid: number;
  /** The parts that fail, e.g. ["queues", "chat:telegram"]. */
  failing: string[];
  parts: Record<string, PartHealth>;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  metrics: MetricsRegistry;
  redis: { ping(): Promise<string> };
  /** Whether Redis takes writes (a full Redis still answers PING). */
  redisCondition?: () => { reachable: boolean; writable: boolean; detail?: string; since?: number };
  /** The other parts to check (queues, workers, chat, chain). */
  checks?: readonly HealthCheck[];
  role: () => string;
  startedAt: number;
  clock?: () => number;
  /** How long /healthz waits for each part (Redis's PONG among them). */
  pingTimeoutMs?: number;
  /** The health to answer with, when the caller shares one round of checks with its gauges. */
  current?: () => Promise<Health>;
}

export interface OpsServer {
  /** The bound address (port 0 asks for a free one). */
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function health(o: Pick<OpsServerOptions, "redis" | "redisCondition" | "checks" | "role" | "startedAt" | "clock" | "pingTimeoutMs">): Promise<Health> {
  const clock = o.clock ?? Date.now;
  const r = await checkParts([redisCheck(o.redis, o.redisCondition), ...(o.checks ?? [])], o.pingTimeoutMs ?? 1_000);
  const redis = r.parts.redis!;
  return {
    status: r.ok ? "ok" : "unavailable",
    role: o.role(),
    uptimeSeconds: Math.round((clock() - o.startedAt) / 1000),
    redis: redis.ok ? "ok" : /^(down|refuses)/.test(redis.detail ?? "") ? redis.detail! : `down: ${redis.detail ?? "failing"}`,
    pid: process.pid,
    failing: r.failing,
    parts: r.parts,
  };
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("Only GET /healthz and GET /metrics are served.\n");
      return;
    }
    if (path === "/healthz") {
      void (o.current ? o.current() : health(o)).then((h) => {
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
