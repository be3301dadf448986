// Starts /healthz and /metrics for one process of the agent, with the agent's gauges registered.
import type { ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { NotifierHub } from "../chat/notifier.js";
import type { Log } from "../log.js";
import type { RedisOutage } from "../redis/outage.js";
import type { DecisionServices } from "../pipeline/decide.js";
import { AGENT_QUEUES, registerAgentMetrics } from "./agentMetrics.js";
import type { MetricsRegistry } from "./metrics.js";
import { startOpsServer, type OpsServer } from "./server.js";

/** What the operator endpoints read (the composition root's app satisfies it). */
export interface OpsHost {
  services: Pick<DecisionServices, "clock" | "ledger" | "balance" | "state" | "models">;
  metrics: MetricsRegistry;
  notifier: Pick<NotifierHub, "sinkNames">;
  bull: { connection: ConnectionOptions; prefix: string };
  redis: Redis;
  redisWatch: Pick<RedisOutage, "listener" | "condition">;
  startedAt: number;
  log: Log;
}

export interface OpsOptions {
  host: string;
  port: number;
  /** This process's role (all, worker, frontend); "all" until roles say otherwise. */
  role?: () => string;
  /** Queues beside the agent's own whose depth is reported (e.g. notices, commands). */
  extraQueues?: readonly string[];
}

export async function startOps(app: OpsHost, o: OpsOptions): Promise<OpsServer> {
  const role = o.role ?? (() => "all");
  const { services } = app;
  const runtime = services.models.runtime;
  const gauges = registerAgentMetrics(app.metrics, {
    clock: services.clock,
    startedAt: app.startedAt,
    role,
    ledger: services.ledger,
    balance: services.balance,
    paused: () => services.state.isPaused(),
    budget: runtime?.budget,
    breakers: runtime && services.models.routerEnabled ? { models: () => services.models.routerCatalogue().map((m) => m.id), state: (m, now) => runtime.breaker.state(m, now) } : undefined,
    chats: () => app.notifier.sinkNames(),
    queues: { ...app.bull, names: [...AGENT_QUEUES, ...(o.extraQueues ?? [])] },
    onError: (source) => app.redisWatch.listener(source),
  });
  const server = await startOpsServer({ host: o.host, port: o.port, metrics: app.metrics, redis: app.redis, role, startedAt: app.startedAt, clock: services.clock });
  app.log.info(`Serving /healthz and /metrics on http://${server.host}:${server.port}`);
  return {
    ...server,
    async stop() {
      await server.stop();
      await gauges.stop();
    },
  };
}
