// Starts /healthz and /metrics for one process of the agent, with the agent's gauges registered.
import type { ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { NotifierHub } from "../chat/notifier.js";
import type { ChatHealth } from "../chat/types.js";
import type { Log } from "../log.js";
import type { RedisOutage } from "../redis/outage.js";
import type { DecisionServices } from "../pipeline/decide.js";
import { AGENT_QUEUES, registerAgentMetrics } from "./agentMetrics.js";
import { registerProfitMetrics } from "./profitMetrics.js";
import { accountFigures } from "../profit/books.js";
import type { MetricsRegistry } from "./metrics.js";
import { chainCheck, chatChecks, queuesCheck, workersCheck, type HealthCheck } from "./health.js";
import { health, startOpsServer, type Health, type OpsServer } from "./server.js";

/** What the operator endpoints read (the composition root's app satisfies it). */
export interface OpsHost {
  config: { chat: { telegram: { token?: string | undefined }; discord: { token?: string | undefined } }; router: { network: "base" | "base-sepolia" } };
  role: string;
  /** Workers with a live heartbeat, and this process's own heartbeat id once its jobs run. */
  liveWorkers(): Promise<string[]>;
  workerId?: string;
  chainWallet?: { rpcUrl?: string };
  services: Pick<DecisionServices, "clock" | "ledger" | "balance" | "state" | "models" | "portfolio" | "market" | "exchange" | "quote">;
  metrics: MetricsRegistry;
  notifier: Pick<NotifierHub, "sinkNames">;
  /** Each running chat platform's health; set once chat started (never in a worker). */
  chatHealth?(): ChatHealth;
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
  /** A job due this long ago and still waiting makes the queues part fail (default 5 min). */
  stuckAfterMs?: number;
}

/** A job due this long and not taken by any worker means the workers are gone or stuck. */
export const STUCK_AFTER_MS = 300_000;

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
    chatHealth: () => app.chatHealth?.() ?? {},
    queues: { ...app.bull, names: [...AGENT_QUEUES, ...(o.extraQueues ?? [])] },
    onError: (source) => app.redisWatch.listener(source),
  });
  registerProfitMetrics(app.metrics, { figures: () => accountFigures(services), quote: services.quote, clock: services.clock });
  // The parts /healthz checks beside Redis (src/ops/health.ts), and the same as gauges.
  const queues = queuesCheck({ ...app.bull, names: [...AGENT_QUEUES, ...(o.extraQueues ?? [])], stuckAfterMs: o.stuckAfterMs ?? STUCK_AFTER_MS, onError: (source) => app.redisWatch.listener(source), clock: services.clock });
  const checks: HealthCheck[] = [queues, workersCheck({ live: () => app.liveWorkers(), self: () => app.workerId })];
  if (app.role !== "worker") {
    // The glue to the chat platforms: which ones run here, and their problems (app.chatHealth).
    const platforms = [...(app.config.chat.telegram.token ? ["telegram"] : []), ...(app.config.chat.discord.token ? ["discord"] : [])];
    checks.push(...chatChecks(platforms, () => app.chatHealth?.()));
  }
  const chain = app.chainWallet;
  if (chain) {
    const network = app.config.router.network;
    checks.push(chainCheck(async () => chain.rpcUrl ?? (await import("viem/chains"))[network === "base" ? "base" : "baseSepolia"].rpcUrls.default.http[0]));
  }
  const healthOptions = { redis: app.redis, redisCondition: () => app.redisWatch.condition(), checks, role, startedAt: app.startedAt, clock: services.clock };
  // One round of checks in flight serves every caller meanwhile (the two gauges of a scrape, a /healthz beside it).
  let inFlight: Promise<Health> | undefined;
  const current = () => (inFlight ??= health(healthOptions).finally(() => (inFlight = undefined)));
  app.metrics.gauge("healthy", async () => (await current()).status === "ok", { help: "1 when every part /healthz checks is ok" });
  app.metrics.gauge("health", async () => Object.entries((await current()).parts).map(([part, h]) => ({ labels: { part }, value: h.ok ? 1 : 0 })), {
    help: "Each part /healthz checks: 1 ok, 0 failing (redis, queues, workers, chat:PLATFORM, chain)",
    labels: ["part"],
  });
  const server = await startOpsServer({ host: o.host, port: o.port, metrics: app.metrics, ...healthOptions, current });
  app.log.info(`Serving /healthz and /metrics on http://${server.host}:${server.port}`);
  return {
    ...server,
    async stop() {
      await server.stop();
      await gauges.stop();
      await queues.close();
    },
  };
}
