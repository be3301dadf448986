import { join } from "node:path";
import type { ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import { commandDispatcher, runRemoteCall } from "../commands/registry.js";
import { runBalanceMonitor } from "../jobs/balanceMonitor.js";
import { runDailyReport } from "../jobs/dailyReport.js";
import { runDecisionJob } from "../jobs/decisionJob.js";
import { runLedgerRollup } from "../jobs/ledgerRollup.js";
import { runPendingOrders } from "../jobs/pendingOrders.js";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { runReconciliation } from "../jobs/reconcile.js";
import { runPaymentRecovery } from "../jobs/recoverPayments.js";
import { runRouterRefresh } from "../jobs/refreshRouter.js";
import { RedisKeyValueProvider } from "./agent/redisKeyValue.js";
import { TradingAgent } from "./agent/tradingAgent.js";
import { BalanceManager } from "./payments/balanceManager.js";
import { NotifierHub } from "./chat/notifier.js";
import { ChatServices } from "./chat/services.js";
import { dashboardLinks, type DashboardLinks } from "./dashboard/links.js";
import type { ChatHealth, ChatUser, CommandDispatcher } from "./chat/types.js";
import { redactSecrets, type Config } from "./config/config.js";
import { USDC, type AgentMode, type MarketSymbol } from "./domain/types.js";
import { PaperExchange } from "./exchange/paper.js";
import type { Exchange } from "./exchange/types.js";
import { Ledger, ledgerKeys, type DecisionRecord } from "./ledger/ledger.js";
import type { SignedAuthorization } from "./payments/inflight.js";
import type { PermitSessions } from "./payments/permitSessions.js";
import { sessionReport } from "./payments/sessionText.js";
import type { RecoveryResult } from "./payments/recovery.js";
import type { ChainDrift } from "./chain/usdcTransfers.js";
import { buildReport, formatReport } from "./ledger/report.js";
import { JsonlArchive } from "./ledger/archive.js";
import { LedgerRollup } from "./ledger/rollup.js";
import { CcxtMarketData } from "./market/ccxtMarket.js";
import { ReplayMarketData } from "./market/replay.js";
import type { MarketData } from "./market/types.js";
import { routerAuthFromConfig } from "./models/routerAuth.js";
import { createRouterRuntime } from "./models/routerRuntime.js";
import { ModelLayer } from "./models/modelLayer.js";
import { LiveCatalogue } from "./models/liveCatalogue.js";
import { isLocalModel, localModel, localName, LOCAL_PREFIX } from "./localModels/openaiCompatible.js";
import { StrategyRunner, strategyContext } from "./strategy/runner.js";
import { runDecision, type DecideRequest, type DecisionGate, type DecisionServices } from "./pipeline/decide.js";
import { approvalGate } from "./chat/approvals.js";
import { PendingOrders } from "./orders/pendingOrders.js";
import { OpenOrders } from "./orders/openOrders.js";
import { PortfolioStore } from "./portfolio/store.js";
import { RedisLock } from "./redis/lock.js";
import { AgentQueues, claimSchedule, readSharedSchedule, SCHEDULE_KEY, type ScheduleLine, type ScheduleOutcome, type ScheduleSpec, type SharedSchedule } from "./queue/scheduler.js";
import { RuntimeSchedule, type RuntimeChoice, type ScheduleControl } from "./queue/runtimeSchedule.js";
import { commandWorker, RemoteCommands } from "./cluster/remoteCommands.js";
import { liveWorkers, WorkerHeartbeat } from "./cluster/workers.js";

/** The heartbeats of the processes that pay (src/payments/recovery.ts reads them). */
const PAYERS_KEY = "payments:payers";
import type { Worker } from "bullmq";
import { bullConnection, bullPrefix, checkRedisForBull, createRedis, withoutCredentials, type RedisSettings } from "./redis/connection.js";
import { RedisOutage } from "./redis/outage.js";
import { ReconciliationLog } from "./portfolio/reconcile.js";
import { StoredLimits } from "./risk/limitsStore.js";
import { NoResearch } from "./research/types.js";
import { researchFromConfig } from "./research/fromConfig.js";
import { AgentState } from "./state/agentState.js";
import { createLog, type Log } from "./log.js";
import { MetricsRegistry } from "./ops/metrics.js";
import { projectPath } from "./paths.js";
import { OnchainUsdcWallet } from "./payments/onchainWallet.js";
import { PaperWallet } from "./payments/paperWallet.js";
import type { UsdcWallet } from "./payments/wallet.js";

/**
 * The composition root's product: every service built once. Nothing below imports this type;
 * each command, job and platform declares the narrow part it uses, and this object is passed to
 * them (main.ts and the tests hold it).
 */
export interface App {
  config: Config;
  redis: Redis;
  log: Log;
  /** Redis's condition as this process sees it (reachable, taking writes), and the error listener every Redis and BullMQ object gets. */
  redisWatch: RedisOutage;
  services: DecisionServices;
  notifier: NotifierHub;
  /** The chat layer's shared parts: allow-lists, audit log, confirmations. */
  chat: ChatServices;
  /** The commands, as the platforms serve them. */
  commands: CommandDispatcher;
  limitsStore: StoredLimits;
  reconciliations: ReconciliationLog;
  symbols: MarketSymbol[];
  /** The agent's on-chain USDC wallet, when x402 pays from one (chain reconciliation reads it). */
  chainWallet?: { address: `0x${string}`; network: "base" | "base-sepolia"; rpcUrl?: string; blocks: number; funder?: `0x${string}` };
  mode: AgentMode;
  startedAt: number;
  /** Prometheus metrics of this process: any part adds its gauges (`app.metrics.gauge(name, read)`). */
  metrics: MetricsRegistry;
  /** How BullMQ reaches Redis for this agent (TLS, user, REDIS_KEY_PREFIX as its prefix): for every queue. */
  bull: { connection: ConnectionOptions; prefix: string };
  /** Makes one decision now (from chat, or from a scheduled job). */
  decide(req: DecideRequest, user?: ChatUser): Promise<DecisionRecord>;
  /** Asked before the order of every scheduled decision (approval mode), when set. */
  decisionGate?: DecisionGate;
  /** The schedules and when each runs next. */
  schedule(): Promise<ScheduleLine[]>;
  costReport(now?: number): Promise<string>;
  redact(text: string): string;
  /** Each running chat platform's health, for /status, /metrics and /healthz; set by whoever starts them. */
  chatHealth?(): ChatHealth;
  /** all, worker or frontend (ROLE): what this process runs. */
  role: Config["cluster"]["role"];
  /** Set in a frontend-only process: /decide, /trade and /pause all run on a worker through it. */
  remote?: RemoteCommands;
  /** /symbols and /interval: the symbols and decision interval chosen at run time, shared by the cluster (src/queue/runtimeSchedule.ts). */
  control: ScheduleControl;
  /** Calls `listener` whenever `symbols` changed (here or on another process); returns what unsubscribes. */
  onSymbolsChanged(listener: () => void): () => void;
  /** Set by startJobs on a fresh install (FIRST_DECISION=interval): when the first scheduled decisions run. */
  firstDecisionAt?: number;
  /** What startJobs did with this process's schedule (the cluster's may differ from its SYMBOLS). */
  scheduleOutcome?: ScheduleOutcome;
  /** This process's worker heartbeat id, once startJobs ran. */
  workerId?: string;
  /** Jobs waiting or running per queue (a seam for /metrics). */
  queueDepth(): Promise<{ decisions: number; monitors: number; commands: number }>;
  /** Workers with a live heartbeat, anywhere in the cluster. */
  liveWorkers(): Promise<string[]>;
  /** Books or releases the payments that left and were never booked (also run on its own: at start, after a Redis outage, every minute). */
  recoverPayments(): Promise<RecoveryResult>;
  /**
   * Compares the books with the wallet's USDC on chain (and matches permit sessions' batches); []
   * without a chain wallet. `wallClock`: the time deadlines are read against (the chain's; tests move it).
   */
  reconcileChain(wallClock?: () => number): Promise<ChainDrift[]>;
  /** The heartbeat that says this process is paying: the recovery finishes the payments of a process whose heartbeat stopped. */
  payer?: { readonly id: string; stop(): Promise<void> };
  /** The wallet's permit sessions, when the router is paid by one. */
  sessions?: PermitSessions;
  /** The team dashboard's ways in (/dashboard); the dashboard itself is started by main.ts. */
  dashboard: DashboardLinks;
  /** Starts the workers and the schedules (roles all and worker). Commands work without it. */
  startJobs(): Promise<void>;
  /** Finishes the jobs in flight, then closes everything. */
  stop(): Promise<void>;
}

export interface AppOptions {
  clock?: () => number;
  /** Replaces the market source (tests drive their own replay clock). */
  market?: MarketData;
  /** Replaces the exchange (tests use a stand-in). */
  exchange?: Exchange;
  /** Replaces the model layer (tests serve scripted replies through the router's code path). */
  models?: ModelLayer;
  /** Key prefix of BullMQ's queues, so tests can run apart. */
  queuePrefix?: string;
  log?: Log;
  /**
   * Keeps the paper wallet even when an x402 key is set. A router stand-in verifies payments but
   * no chain moves the USDC, so a test that pays one watches a simulated balance.
   */
  paperWallet?: boolean;
}

/** "daily at HH:MM UTC" for a daily cron pattern ("M H * * *"). */
const dailyAt = (pattern: string) => {
  const [m, h] = pattern.split(" ");
  return `daily at ${h!.padStart(2, "0")}:${m!.padStart(2, "0")} UTC`;
};
const every = (ms: number) => (ms % 3_600_000 === 0 ? `every ${ms / 3_600_000} h` : ms % 60_000 === 0 ? `every ${ms / 60_000} min` : `every ${ms / 1000} s`);

export async function buildApp(config: Config, redisUrl: string, opts: AppOptions = {}): Promise<App> {
  const clock = opts.clock ?? Date.now;
  const redact = (s: string) => redactSecrets(s, config);
  // Our keys under REDIS_KEY_PREFIX through ioredis's keyPrefix; BullMQ's under the same prefix through its own option.
  const redisSettings: RedisSettings = { ...config.redis, url: redisUrl };
  const redis = createRedis(redisSettings);
  // Every line the agent logs passes through here: a Redis outage or refused writes are one line
  // when they start and one when they end, whatever runs into them meanwhile.
  const outage = new RedisOutage({ redis, log: opts.log ?? createLog(config.logLevel, redact), where: withoutCredentials(redisUrl) });
  const log = outage.log;
  redis.on("error", outage.listener("redis"));
  await checkRedisForBull(redis, (m) => log.warn(m));

  const notifier = new NotifierHub((sink, err) => log.error(`notify via ${sink}`, err));
  const state = new AgentState(redis);
  const ledger = new Ledger(redis);
  // /symbols and /interval, kept in Redis, win over SYMBOLS and DECISION_INTERVAL_SECONDS: those
  // are only the first start's defaults (docs/control.md).
  const runtimeSchedule = new RuntimeSchedule(redis);
  const chosenSchedule = await runtimeSchedule.read();
  // A frontend schedules nothing itself: what it shows and changes is what the cluster's workers run.
  const clusterDecisions = config.cluster.role === "frontend" ? (await readSharedSchedule(redis))?.specs.filter((s) => s.job === "decide") : undefined;
  const startSymbols = chosenSchedule.symbols ?? (clusterDecisions?.length ? clusterDecisions.map((s) => String(s.data?.symbol)) : config.market.symbols);
  let decisionIntervalMs = chosenSchedule.intervalMs ?? clusterDecisions?.[0]?.every ?? config.schedule.decisionIntervalMs;
  let seenScheduleVersion = chosenSchedule.version;

  // ccxt, viem and the router's provider are loaded where they are built, only in the modes that use
  // them (import() below): an offline process starts without them, faster and smaller (viem alone
  // is about 70 MB and 0.5 s; bench/startup.ts measures it, per role).
  const market: MarketData =
    opts.market ??
    (config.market.source === "live"
      ? new CcxtMarketData({
          exchange: (await import("./exchange/ccxtClient.js")).createCcxtExchange({ id: config.exchange.id, sandbox: config.exchange.sandbox, apiUrl: config.exchange.apiUrl, pro: true }),
          symbols: startSymbols,
          timeframe: config.market.timeframe,
          now: clock,
          // Reported, never filled in: indicators over a hole are computed across it.
          onGap: (gap) => void notifier.notify({ type: "market-gap", symbol: gap.symbol, missing: gap.missing, after: gap.after }),
          stream: { mode: config.market.stream, onError: (err, retryInMs, how) => log.warn(`market ${how} stream: ${redact((err as Error).message)}; retrying in ${Math.round(retryInMs / 1000)} s`) },
        })
      : new ReplayMarketData({
          dir: projectPath("data", "ohlcv"),
          clock,
          epoch: await state.replayEpoch(clock()),
          stepMs: config.market.replayStepSeconds * 1000,
        }));
  // One array for the whole process: a /symbols change replaces its contents, and every holder sees it.
  const symbols = startSymbols.filter((s) => market.symbols().includes(s));
  if (symbols.length === 0) {
    throw new Error(`None of ${chosenSchedule.symbols ? "the symbols set with /symbols" : "SYMBOLS"} (${startSymbols.join(", ")}) is served by the market: it has ${market.symbols().join(", ")}`);
  }

  // Real orders only when the configuration asked for them (TRADING_MODE=live passed its checks).
  const exchange =
    opts.exchange ??
    (config.exchange.mode === "live"
      ? new (await import("./exchange/ccxtExchange.js")).CcxtLiveExchange({
          exchange: (await import("./exchange/ccxtClient.js")).createLiveCcxtExchange({ id: config.exchange.id, apiKey: config.exchange.apiKey, secret: config.exchange.secret, sandbox: config.exchange.sandbox, apiUrl: config.exchange.apiUrl }),
          redis,
          symbols,
          sandbox: config.exchange.sandbox,
          clock,
          log: (m) => log.info(redact(m)),
        })
      : undefined) ??
    new PaperExchange({
      redis,
      prices: (symbol) => market.lastPrice(symbol),
      feeRate: config.exchange.feeRate,
      slippageBps: config.exchange.slippageBps,
      startingCash: config.exchange.paperStartUsdt,
      clock,
      ...(market.currentCandle ? { candle: (symbol: string) => market.currentCandle!(symbol) } : {}),
    });

  const routerAuth = routerAuthFromConfig(config.router);
  const router = routerAuth ? (await import("./models/dreamsRouter.js")).createRouterClient({ origin: config.router.url, auth: routerAuth, ...(config.router.rpcUrl ? { rpcUrl: config.router.rpcUrl } : {}) }) : undefined;
  // When the router is paid from a wallet, the USDC that pays it is the key's own wallet, read on
  // chain. Otherwise (offline, or an API key billed to an account) the rules watch the paper wallet.
  const onchain = router?.payer && !opts.paperWallet;
  const refiller =
    onchain && config.balance.refillFromKey
      ? new (await import("./payments/usdcRefill.js")).UsdcRefiller({ redis, network: config.router.network, ...(config.router.rpcUrl ? { rpcUrl: config.router.rpcUrl } : {}), fundingKey: config.balance.refillFromKey as `0x${string}`, agent: router.payer as `0x${string}`, maxPerDayMicro: USDC(config.balance.refillMaxPerDay), clock })
      : undefined;
  const wallet: UsdcWallet = onchain
    ? new OnchainUsdcWallet(router.payer as `0x${string}`, config.router.network, config.router.rpcUrl, refiller)
    : new PaperWallet(redis, USDC(config.balance.paperWalletStart));
  const balance = new BalanceManager(wallet, ledger, {
    minBalance: config.balance.minBalance,
    criticalBalance: config.balance.criticalBalance,
    refillThreshold: config.balance.refillThreshold,
    refillAmount: config.balance.refillAmount,
    autoRefill: config.balance.autoRefill,
  });

  // The router's catalogue (/v1/models): what it offers and at what price, shared through Redis.
  const live = router && !opts.models ? new LiveCatalogue(redis, router.origin, clock) : undefined;
  if (live) await live.load();
  // Free models on an OpenAI-compatible server (LOCAL_MODELS at LOCAL_MODEL_URL): alone
  // (DECISION_MODEL=local), or after the router's models unless the chain places them.
  const localIds = config.router.decisionModel === "offline" || !config.local.url ? [] : config.local.models.map((m) => `${LOCAL_PREFIX}${m}`);
  const localFactory = (id: string, f: typeof fetch) => localModel({ baseURL: config.local.url!, model: localName(id), ...(config.local.apiKey ? { apiKey: config.local.apiKey } : {}), fetch: f });
  const routerChain = [config.router.primaryModel, ...config.router.fallbackModels];
  const chain = router ? [...routerChain, ...localIds.filter((id) => !routerChain.includes(id))] : localIds;
  const models = opts.models ?? new ModelLayer(
    router || localIds.length > 0
      ? {
          factory: (id, f) => (isLocalModel(id) ? localFactory(id, f) : router!.model(id, f)),
          ...(router ? { payWith: () => router.payWith() } : {}),
          ...(live ? { live } : {}),
          primary: chain[0]!,
          fallbacks: chain.slice(1),
          estimateUsdc: config.router.costPerDecision,
          prices: config.routing.modelPrices,
          timeouts: config.routing.modelTimeouts,
          timeoutMs: config.router.timeoutMs,
          paysPerCall: router?.paysPerCall ?? false,
          ...(router?.network ? { network: router.network } : {}),
          ...(router?.payer ? { payer: router.payer } : {}),
        }
      : undefined,
  );
  // STRATEGY: a strategy file decides where the offline engine would, in a thread of its own.
  const strategy = config.strategy.file ? await StrategyRunner.load(config.strategy.file, { timeoutMs: config.strategy.timeoutMs }) : undefined;
  if (strategy) {
    models.useStrategy({
      id: strategy.id,
      decide: async (inputs) => {
        const candles = inputs.candles ?? (await market.closedCandles(inputs.symbol, 200));
        const out = await strategy.decide(strategyContext(inputs, candles, inputs.now ?? clock()));
        // "strategy NAME threw: ...": the record names the strategy already.
        if (!out.ok) throw new Error(out.error.replace(/^strategy \S+ /, ""));
        return out.decision;
      },
    });
  }
  // The breaker, budget, cache and stats live in Redis; their alerts go to every chat.
  const runtimeSettings = {
    ...config.routing,
    symbols: config.market.symbols,
    slowestTimeoutMs: Math.max(config.router.timeoutMs, ...Object.values(config.routing.modelTimeouts)),
    dailyBudget: config.balance.dailyBudget,
    monthlyBudget: config.balance.monthlyBudget,
  };
  const runtime = createRouterRuntime(redis, runtimeSettings, {
    balance,
    refusals: ledger,
    clock,
    alert: (message: string) => notifier.notify({ type: "model-alert", message }),
    ...(wallet.kind === "onchain" ? { chainWatch: true } : {}),
  });
  models.attach(runtime);
  // Who is paying: the crash index names the process that sent each payment, and this heartbeat
  // tells the recovery whether that process still lives (a kill -9 ends it within seconds).
  const payers = new WorkerHeartbeat(redis, 2_000, PAYERS_KEY);
  if (router || config.research.url) {
    await payers.start();
    runtime.payments.owner = payers.id;
  }
  // A wallet pays the hosted router by permit session: one per wallet and router, shared by every process.
  const sessions = router?.useSessions({
    redis,
    budget: runtime.budget,
    balance: { getBalance: () => balance.getBalance(), rules: balance.rules },
    capMicro: USDC(config.router.sessionCap),
    ttlSeconds: config.router.sessionTtlSeconds,
    clock,
  });
  // Paid and not booked: never. The recovery books or releases what the crash index still holds.
  const chainReader = wallet.kind === "onchain" && router?.chain ? router.chain : undefined;
  const recovery = {
    inflight: runtime.payments.inflight,
    budget: runtime.budget,
    balance,
    booked: async (chargeId: string) => (await redis.exists(ledgerKeys().charged(chargeId))) === 1,
    livePayers: () => liveWorkers(redis, undefined, PAYERS_KEY),
    ...(runtime.payments.abandoned ? { abandoned: runtime.payments.abandoned } : {}),
    ...(sessions ? { sessions } : {}),
    ...(chainReader ? { chain: { used: (a: SignedAuthorization) => chainReader.authorizationUsed(a.kind, a.asset as `0x${string}`, a.from as `0x${string}`, a.nonce), now: () => chainReader.now() } } : {}),
    clock,
  };
  // Redis back after an outage: a booking it refused meanwhile is made now, not at the next tick.
  let redisDown = false;
  redis.on("error", () => (redisDown = true));
  redis.on("ready", () => {
    if (!redisDown) return;
    redisDown = false;
    void runPaymentRecovery({ recovery, notifier }).catch((err: unknown) => log.error("payment recovery", err));
  });

  // The router's payment terms and catalogue, read now; a router that does not answer is asked again later.
  if (router) {
    const [terms, cat] = await Promise.all([router.refreshTerms(), live?.refresh()]);
    if (terms && terms.kind !== "session") log.info(`router payment: ${terms.why}; each call is paid as its 402 asks`);
    if (cat && !cat.ok) log.warn(`router catalogue: ${cat.why}; using ${live?.current ? "the last one read" : "the built-in model list and prices"}`);
  }

  // AUDIT_TTL_DAYS: how long the audit record of each decision (its prompt and reply) is kept.
  // On the offline engine no language model is asked, so core and the ai SDK load only if one ever is.
  const agent = new TradingAgent(new RedisKeyValueProvider(redis), {
    auditTtlSeconds: Math.max(1, Math.round(config.retention.auditTtlMs / 1000)),
    loadCore: models.routerEnabled ? "at-start" : "on-first-model-call",
  });
  await agent.start();

  const services: DecisionServices = {
    market,
    research: new NoResearch(),  // replaced below once the balance rules exist
    agent,
    models,
    exchange,
    portfolio: new PortfolioStore(redis),
    ledger,
    balance,
    state,
    // A copy: /limits changes it at run time, and the loaded configuration stays as it was.
    limits: { ...config.risk },
    tradeLock: new RedisLock(redis, "lock:trading"),
    quote: "USDT",
    clock,
    pending: new PendingOrders(redis),
    openOrders: new OpenOrders(redis),
  };

  // RESEARCH_URL: research paid through the same guards, budget and wallet as the model calls.
  services.research = researchFromConfig(config, { redis, payments: runtime.payments, clock, symbols });

  const { hour, minute } = config.schedule.reportTime;
  const decisionSpecs = (): ScheduleSpec[] =>
    symbols.map((symbol): ScheduleSpec => ({ id: `decide:${symbol}`, job: "decide", data: { symbol }, every: decisionIntervalMs, label: `decision ${symbol}` }));
  const otherSpecs: ScheduleSpec[] = [
    { id: "balance", job: "balance", every: config.schedule.balanceCheckMs, label: "balance monitor" },
    { id: "positions", job: "positions", every: config.schedule.positionCheckMs, label: "position monitor" },
    { id: "reconcile", job: "reconcile", every: config.schedule.reconcileMs, label: "reconciliation" },
    ...(wallet.kind === "onchain" ? [{ id: "chain-reconcile", job: "chain-reconcile" as const, every: config.schedule.reconcileMs, label: "chain reconciliation" }] : []),
    { id: "recover-payments", job: "recover-payments", every: 60_000, label: "payment recovery" },
    ...(router ? [{ id: "router-refresh", job: "router-refresh" as const, every: config.router.catalogueRefreshMs, label: "router terms and catalogue" }] : []),
    { id: "report", job: "report", pattern: `${minute} ${hour} * * *`, label: "daily cost report" },
    // Past midnight UTC, so the day that just left the retention window goes the same night.
    { id: "rollup", job: "rollup", pattern: "15 0 * * *", label: "ledger rollup" },
  ];
  const specs = (): ScheduleSpec[] => [...decisionSpecs(), ...otherSpecs];
  const rollup = new LedgerRollup(redis, new JsonlArchive(config.retention.archiveDir ?? join(config.redis.dataDir, "archive")));
  let queues: AgentQueues | undefined;
  // Schedules of the cluster as this process runs them (set by startJobs); read-only queues for /status elsewhere.
  let running: ScheduleSpec[] | undefined;
  let readQueues: AgentQueues | undefined;
  let heartbeat: WorkerHeartbeat | undefined;
  let commandsWorker: Worker | undefined;
  // BullMQ's own connection and key prefix (REDIS_KEY_PREFIX + the queue prefix), built in one place.
  const connection = bullConnection(redisSettings);
  const prefix = bullPrefix(redisSettings, opts.queuePrefix);

  /** Takes a stored choice over in this process: the symbols array in place, the interval, the market's list. */
  const symbolListeners = new Set<() => void>();
  const takeSchedule = (c: RuntimeChoice) => {
    const next = c.symbols ?? config.market.symbols;
    const before = symbols.join(",");
    market.serve?.(next);
    symbols.splice(0, symbols.length, ...next.filter((s) => market.symbols().includes(s)));
    decisionIntervalMs = c.intervalMs ?? config.schedule.decisionIntervalMs;
    seenScheduleVersion = c.version;
    if (symbols.join(",") !== before) for (const listener of symbolListeners) listener();
  };
  const syncSchedule = async (): Promise<void> => {
    if ((await runtimeSchedule.version()) === seenScheduleVersion) return;
    takeSchedule(await runtimeSchedule.read());
    if (running) running = (await readSharedSchedule(redis))?.specs ?? running;
  };
  // Another process's /symbols or /interval reaches this one within a second (and before any decision job).
  const schedulePoll = setInterval(() => void syncSchedule().catch(() => {}), 1000);
  schedulePoll.unref();
  const control: ScheduleControl = {
    symbols: () => [...symbols],
    intervalMs: () => decisionIntervalMs,
    async source() {
      const c = await runtimeSchedule.read();
      return {
        symbols: c.symbols ? "chat" : "config",
        interval: c.intervalMs !== undefined ? "chat" : "config",
        ...(c.by ? { by: c.by } : {}),
        ...(c.at !== undefined ? { at: c.at } : {}),
        configSymbols: config.market.symbols,
        configIntervalMs: config.schedule.decisionIntervalMs,
      };
    },
    known: async () => (market.listed ? await market.listed() : market.symbols()),
    // Under the schedule's lock, so a worker starting meanwhile does not write the old one back.
    change: (change, by) =>
      new RedisLock(redis, "lock:schedule", 10_000, 30_000).run(async () => {
        // The first change stores the whole decision schedule the cluster runs then (symbols and
        // interval), so no process's own SYMBOLS or interval can differ from it afterwards.
        const [stored, current] = await Promise.all([readSharedSchedule(redis), runtimeSchedule.read()]);
        const clusterRuns = stored?.specs.filter((s) => s.job === "decide");
        const version = await runtimeSchedule.save(
          {
            symbols: change.symbols ?? current.symbols ?? (clusterRuns?.length ? clusterRuns.map((s) => String(s.data?.symbol)) : [...symbols]),
            intervalMs: change.intervalMs ?? current.intervalMs ?? clusterRuns?.[0]?.every ?? decisionIntervalMs,
          },
          by,
          clock(),
        );
        takeSchedule(await runtimeSchedule.read());
        const next = [...decisionSpecs(), ...(stored?.specs ?? otherSpecs).filter((s) => s.job !== "decide")];
        const shared: SharedSchedule = { version: stored?.version ?? config.cluster.scheduleVersion, specs: next, by, at: Date.now() };
        await redis.set(SCHEDULE_KEY, JSON.stringify(shared));
        if (running) running = next;
        // A changed interval or an added symbol: its next decision comes one interval from now.
        const firstDecisionAt = Date.now() + decisionIntervalMs;
        await (queues ?? (readQueues ??= new AgentQueues(connection, log, prefix, outage))).schedule(next, firstDecisionAt);
        return { version, firstDecisionAt };
      }),
    sync: syncSchedule,
  };

  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  };

  const limitsStore = new StoredLimits(redis);
  services.refreshLimits = () => limitsStore.refresh(services.limits);
  let metrics: MetricsRegistry | undefined;
  const app: App = {
    config,
    redis,
    log,
    redisWatch: outage,
    services,
    notifier,
    chat: new ChatServices({ redis, chat: config.chat, clock, log }),
    // Bound below, once the app it serves exists.
    commands: undefined as unknown as CommandDispatcher,
    limitsStore,
    reconciliations: new ReconciliationLog(redis),
    symbols,
    control,
    onSymbolsChanged(listener) {
      symbolListeners.add(listener);
      return () => symbolListeners.delete(listener);
    },
    ...(wallet.kind === "onchain" && router?.payer
      ? { chainWallet: { address: router.payer as `0x${string}`, network: config.router.network, ...(config.router.rpcUrl ? { rpcUrl: config.router.rpcUrl } : {}), blocks: config.balance.chainReconcileBlocks, ...(refiller ? { funder: refiller.funder } : {}) } }
      : {}),
    startedAt: clock(),
    // Made on first use: a process that serves no metrics never loads prom-client.
    get metrics() {
      return (metrics ??= new MetricsRegistry());
    },
    bull: { connection, prefix },
    mode: {
      trading: exchange.kind === "paper" ? "paper" : "live",
      market: market.describe(),
      wallet: wallet.describe(),
      model: models.chain()[0]!.id,
      research: services.research.name,
    },
    decide: (req) => track(runDecision(services, { ...req, gate: req.gate ?? (req.trigger === "schedule" ? app.decisionGate : undefined) })),
    role: config.cluster.role,
    async queueDepth() {
      const q = queues ?? (readQueues ??= new AgentQueues(connection, log, prefix, outage));
      const d = await q.depth();
      const commands = app.remote ? await app.remote.depth() : 0;
      return { ...d, commands };
    },
    liveWorkers: () => liveWorkers(redis),
    recoverPayments: () => runPaymentRecovery({ recovery, notifier }),
    reconcileChain: (wallClock) =>
      app.chainWallet
        ? // Loaded here: it reads the chain with viem, which only a process with a wallet needs.
          import("../jobs/chainReconcile.js").then(({ runChainReconciliation }) =>
            runChainReconciliation({ services, notifier, redis, chainWallet: app.chainWallet!, ...(sessions ? { sessions } : {}), ...(wallClock ? { wallClock } : {}), ...(router?.chain ? { allowance: (asset: `0x${string}`, spender: `0x${string}`) => router.chain!.allowance(asset, spender) } : {}) }),
          )
        : Promise.resolve([]),
    ...(router || config.research.url ? { payer: payers } : {}),
    ...(sessions ? { sessions } : {}),
    dashboard: dashboardLinks(config.ops.dashboard, redis, clock),
    async schedule() {
      const shown = running ?? (await readSharedSchedule(redis))?.specs ?? specs();
      if (!queues && config.cluster.role === "frontend") readQueues ??= new AgentQueues(connection, log, prefix, outage);
      const source = queues ?? readQueues;
      const next = source ? new Map((await source.upcoming()).map((u) => [u.id, u.next])) : new Map<string, number | undefined>();
      return shown.map((s) => {
        const n = next.get(s.id);
        return { name: s.label, job: s.job, every: s.pattern ? dailyAt(s.pattern) : every(s.every!), ...(n ? { next: n } : {}) };
      });
    },
    async costReport(now = clock()) {
      const d = new Date(now);
      const dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
      const [decisions, monthCharges] = await Promise.all([ledger.decisions(dayStart, now), ledger.charges(monthStart, now)]);
      const todayCharges = monthCharges.filter((c) => c.time >= dayStart);
      const caps = { dailyMicro: USDC(config.balance.dailyBudget), monthlyMicro: USDC(config.balance.monthlyBudget) };
      const text = formatReport(buildReport(decisions, todayCharges, monthCharges, now, `today, ${d.toISOString().slice(0, 10)} UTC`, caps));
      const [refused, views] = await Promise.all([ledger.refusals(dayStart, now), sessions ? sessions.recent(5) : []]);
      const withBatches = sessions ? await Promise.all(views.map(async (view) => ({ view, batches: await sessions.batches(view.id) }))) : [];
      const more = sessionReport(withBatches, refused, now);
      return more.length ? `${text}\n${more.join("\n")}` : text;
    },
    redact,
    async startJobs() {
      if (market instanceof CcxtMarketData) market.startStreams();
      // Orders a stopped process sent and could not confirm are looked up at once (not after their
      // backoff), so what they bought is booked with its stop before anything else runs.
      await runPendingOrders(app, { force: true }).catch((err: unknown) => log.error("looking up the pending orders at startup", err));
      // Drift between the books and the exchange is reported before the first decision.
      await runReconciliation(app, { startup: true }).catch((err: unknown) => log.error("startup reconciliation", err));
      // Payments a crash or a full Redis left unbooked are settled before anything new is paid.
      await runPaymentRecovery({ recovery, notifier }).catch((err: unknown) => log.error("payment recovery", err));
      queues = new AgentQueues(connection, log, prefix, outage);
      heartbeat = new WorkerHeartbeat(redis);
      await heartbeat.start();
      app.workerId = heartbeat.id;
      // One schedule for the cluster, in Redis: a worker with other SYMBOLS never deletes the others' (docs/scale-out.md).
      // A fresh install (no schedule in Redis yet): the first decisions wait one interval, so nothing
      // trades before a person has seen the banner (FIRST_DECISION=now: at once). Restarts keep theirs.
      const fresh = !(await readSharedSchedule(redis));
      const claimed = await claimSchedule(specs(), {
        redis,
        version: config.cluster.scheduleVersion,
        by: heartbeat.id,
        alone: async () => (await liveWorkers(redis, heartbeat!.id)).length === 0,
      });
      app.scheduleOutcome = claimed.outcome;
      if (claimed.outcome.note) log.warn(`schedule: ${claimed.outcome.note}`);
      running = claimed.run;
      const decisionsFrom = fresh && config.schedule.firstDecision === "interval" ? Date.now() + decisionIntervalMs : undefined;
      await queues.schedule(claimed.run, decisionsFrom);
      if (decisionsFrom !== undefined) app.firstDecisionAt = decisionsFrom;
      const tuning = { decisionConcurrency: config.cluster.decisionConcurrency, lockDurationMs: config.cluster.jobLockMs, name: heartbeat.id };
      commandsWorker = commandWorker(connection, (call, requestId, progress) => runRemoteCall(app, call, requestId, progress), { prefix, lockDuration: tuning.lockDurationMs, log, watch: outage });
      queues.startWorkers(async (job) => {
        switch (job.name) {
          case "decide": {
            // A /symbols remove on another process is seen here before the decision, never after it.
            await syncSchedule();
            const symbol = String(job.data.symbol);
            if (!symbols.includes(symbol)) return undefined;
            return runDecisionJob(app, symbol, String(job.id));
          }
          case "balance":
            return runBalanceMonitor(app);
          case "positions":
            return runPositionMonitor(app);
          case "reconcile":
            return runReconciliation(app);
          case "chain-reconcile":
            return app.chainWallet ? app.reconcileChain() : undefined;
          case "report":
            return runDailyReport(app);
          case "rollup":
            return runLedgerRollup({ services, rollup, retentionDays: config.retention.ledgerDays, log });
          case "recover-payments":
            return runPaymentRecovery({ recovery, notifier });
          case "router-refresh":
            return router ? runRouterRefresh({ router: { refreshTerms: () => router.refreshTerms(), ...(live ? { refreshCatalogue: () => live.refresh() } : {}) }, log }) : undefined;
          default:
            throw new Error(`unknown job ${job.name}`);
        }
      }, tuning);
    },
    async stop() {
      clearInterval(schedulePoll);
      // Drain: the workers finish the jobs they hold (new ones stay queued for other workers).
      await Promise.allSettled([queues?.close(), commandsWorker?.close()]);
      await heartbeat?.stop();
      await readQueues?.close().catch(() => {});
      await app.remote?.close();
      if (market instanceof CcxtMarketData) await market.stopStreams();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      await agent.stop();
      await strategy?.close();
      await payers.stop();
      // From here on, closed connections are expected: nothing is said about them.
      outage.stop();
      await redis.quit();
    },
  };
  // A frontend only: the commands that decide, trade or pay run on a worker (docs/scale-out.md).
  if (config.cluster.role === "frontend") {
    app.remote = new RemoteCommands(connection, redis, config.cluster.remoteTimeoutMs, log, prefix);
    await app.remote.start();
  }
  app.commands = commandDispatcher(app);
  // Limits an admin changed from chat are back in force before the first decision.
  if (!(await limitsStore.applyTo(services.limits))) log.warn("limits stored in Redis contradict each other; keeping the configured ones");
  if (config.chat.approval.above !== undefined) app.decisionGate = approvalGate(app, config.chat.approval.above, config.chat.approval.timeoutMs);
  return app;
}
