// The agent's own gauges: queue depth, decisions and orders, spend against the caps, the breakers,
// the USDC balance, the pause and the chats. Most read shared state in Redis, so every process of
// one agent reports the same value for them (aggregate with max, not sum); the process's own
// figures (memory, event loop, uptime) differ per process.
import { Queue, type ConnectionOptions } from "bullmq";
import type { ChatHealth } from "../chat/types.js";
import type { MicroUsdc } from "../domain/types.js";
import type { DecisionRecord } from "../ledger/ledger.js";
import type { BudgetStatus } from "../payments/budgetGuard.js";
import type { BreakerState } from "../models/breaker.js";
import type { MetricsRegistry, Sample } from "./metrics.js";

/** The queues BullMQ runs for the agent; other parts add theirs with `queues.names`. */
export const AGENT_QUEUES = ["decisions", "monitors"] as const;

export interface AgentMetricsSource {
  clock: () => number;
  startedAt: number;
  /** all, worker or frontend. */
  role: () => string;
  ledger: { decisions(from: number, to: number): Promise<DecisionRecord[]> };
  balance: { getBalance(): Promise<MicroUsdc> };
  paused: () => Promise<boolean>;
  /** The budget guard, when the router is on. */
  budget?: { status(now: number): Promise<BudgetStatus> } | undefined;
  /** The circuit breakers of the router's models, when the router is on. */
  breakers?: { models: () => string[]; state(model: string, now: number): Promise<BreakerState> } | undefined;
  /** Where notices go now (console, telegram, discord). */
  chats: () => string[];
  /** Each running chat platform's health (none in a worker, or before chat started). */
  chatHealth?: () => ChatHealth;
  queues: { connection: ConnectionOptions; prefix: string; names: readonly string[] };
  /** Where the queue handles' errors go (every BullMQ object needs a listener, or it prints a stack). */
  onError: (source: string) => (err: Error) => void;
}

const micro = (m: number) => m / 1_000_000;
const BREAKER_VALUE: Record<BreakerState["state"], number> = { closed: 0, "half-open": 1, open: 2 };
const JOB_STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed"] as const;

/** Registers the agent's gauges; the returned stop() closes the queue handles they read through. */
export function registerAgentMetrics(metrics: MetricsRegistry, src: AgentMetricsSource): { stop(): Promise<void> } {
  const dayStart = () => {
    const d = new Date(src.clock());
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  };

  metrics.gauge("info", () => [{ labels: { role: src.role() }, value: 1 }], { help: "This process's role (the value is always 1)", labels: ["role"] });
  metrics.gauge("uptime_seconds", () => (src.clock() - src.startedAt) / 1000, { help: "Seconds since this process built the agent" });

  // Queue depth, read through handles of our own (a frontend runs no workers, and still sees the backlog).
  let queues: Queue[] | undefined;
  const openQueues = () =>
    (queues ??= src.queues.names.map((name) => {
      const q = new Queue(name, { connection: src.queues.connection, prefix: src.queues.prefix });
      q.on("error", src.onError(`metrics ${name} queue`));
      return q;
    }));
  metrics.gauge(
    "queue_jobs",
    async () => {
      const out: Sample[] = [];
      for (const q of openQueues()) {
        const counts = await q.getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) out.push({ labels: { queue: q.name, state }, value: counts[state] ?? 0 });
      }
      return out;
    },
    { help: "Jobs in each BullMQ queue by state (waiting + delayed + prioritized is the backlog)", labels: ["queue", "state"] },
  );

  // Decisions and orders of the current UTC day, from the ledger every process writes to.
  let today: { at: number; records: DecisionRecord[] } | undefined;
  const decisionsToday = async () => {
    // One ledger read serves both gauges of a scrape.
    if (!today || src.clock() - today.at > 1_000) today = { at: src.clock(), records: await src.ledger.decisions(dayStart(), src.clock()) };
    return today.records;
  };
  metrics.gauge(
    "decisions_today",
    async () => {
      const by = new Map<string, number>();
      for (const r of await decisionsToday()) by.set(`${r.outcome}\u0000${r.trigger}`, (by.get(`${r.outcome}\u0000${r.trigger}`) ?? 0) + 1);
      return [...by].map(([k, value]) => {
        const [outcome, trigger] = k.split("\u0000") as [string, string];
        return { labels: { outcome, trigger }, value };
      });
    },
    { help: "Decisions since 00:00 UTC by outcome (order, no-order, refused, failed, skipped, decided) and trigger", labels: ["outcome", "trigger"] },
  );
  metrics.gauge(
    "orders_today",
    async () => {
      const by = new Map<string, number>();
      for (const r of await decisionsToday()) if (r.order) by.set(`${r.order.side}\u0000${r.order.status}`, (by.get(`${r.order.side}\u0000${r.order.status}`) ?? 0) + 1);
      return [...by].map(([k, value]) => {
        const [side, status] = k.split("\u0000") as [string, string];
        return { labels: { side, status }, value };
      });
    },
    { help: "Orders placed by decisions since 00:00 UTC, by side and status", labels: ["side", "status"] },
  );

  if (src.budget) {
    const budget = src.budget;
    const status = () => budget.status(src.clock());
    metrics.gauge(
      "spend_usdc",
      async () => {
        const s = await status();
        return [
          { labels: { period: "day" }, value: micro(s.spentTodayMicro) },
          { labels: { period: "month" }, value: micro(s.spentMonthMicro) },
        ];
      },
      { help: "USDC spent on model calls this UTC day and calendar month", labels: ["period"] },
    );
    metrics.gauge(
      "spend_reserved_usdc",
      async () => {
        const s = await status();
        return [
          { labels: { period: "day" }, value: micro(s.reservedTodayMicro) },
          { labels: { period: "month" }, value: micro(s.reservedMonthMicro) },
        ];
      },
      { help: "USDC held by model calls in flight, counted against the caps", labels: ["period"] },
    );
    metrics.gauge(
      "spend_cap_usdc",
      async () => {
        const { caps } = await status();
        return [
          { labels: { period: "day" }, value: micro(caps.dailyMicro) },
          { labels: { period: "month" }, value: micro(caps.monthlyMicro) },
        ];
      },
      { help: "The spending caps (DAILY_BUDGET_USDC, MONTHLY_BUDGET_USDC)", labels: ["period"] },
    );
  }

  if (src.breakers) {
    const breakers = src.breakers;
    metrics.gauge(
      "model_breaker_state",
      async () => Promise.all(breakers.models().map(async (model) => ({ labels: { model }, value: BREAKER_VALUE[(await breakers.state(model, src.clock())).state] }))),
      { help: "Circuit breaker of each model: 0 closed (called), 1 half-open (one probe), 2 open (skipped)", labels: ["model"] },
    );
    metrics.gauge(
      "model_breaker_failures",
      async () => Promise.all(breakers.models().map(async (model) => ({ labels: { model }, value: (await breakers.state(model, src.clock())).failures }))),
      { help: "Consecutive failures counted by each model's breaker", labels: ["model"] },
    );
  }

  // A real wallet's balance is an RPC call: read it at most every 15 s, whatever the scrape interval.
  let balance: { at: number; usdc: number } | undefined;
  metrics.gauge(
    "usdc_balance",
    async () => {
      if (!balance || src.clock() - balance.at > 15_000) balance = { at: src.clock(), usdc: micro(await src.balance.getBalance()) };
      return balance.usdc;
    },
    { help: "USDC that pays for model calls (the paper wallet, or the x402 wallet on chain)" },
  );
  metrics.gauge("trading_paused", src.paused, { help: "1 while new decisions are paused (/pause, or a critical balance)" });
  metrics.gauge("chat_connected", () => src.chats().map((chat) => ({ labels: { chat }, value: 1 })), { help: "Chats this process delivers notices to", labels: ["chat"] });
  const chatHealth = () => Object.entries(src.chatHealth?.() ?? {});
  metrics.gauge("chat_ok", () => chatHealth().map(([chat, h]) => ({ labels: { chat }, value: h.ok ? 1 : 0 })), {
    help: "1 while a chat platform delivers (0: it failed to start, lost its connection, or a chat it posts to refuses it; /status says why)",
    labels: ["chat"],
  });
  metrics.gauge("chat_problems", () => chatHealth().map(([chat, h]) => ({ labels: { chat }, value: h.problems.length })), { help: "Problems a chat platform reports now (the lines /status shows)", labels: ["chat"] });

  return {
    async stop() {
      await Promise.allSettled((queues ?? []).map((q) => q.close()));
    },
  };
}
