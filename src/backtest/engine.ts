// The backtest loop: real candles, one at a time, through the parts live trading uses: the
// indicator snapshot, the model (priced), the decision schema, the risk rules and order step of
// the pipeline (placeForDecision), the paper exchange, the portfolio store and the position
// monitor's exits. Only the clock and the market are the backtest's own. One symbol, or several
// on one account under the shared limits (a portfolio backtest, as live trading runs them).
import type { Redis } from "ioredis";
import type { DecisionInputs } from "../agent/tradingAgent.js";
import type { Candle, Order, Portfolio, RiskLimits } from "../domain/types.js";
import { PaperExchange } from "../exchange/paper.js";
import { computeSnapshot, MIN_CANDLES, SnapshotStream } from "../indicators/snapshot.js";
import { dayKey, type DecisionRecord } from "../ledger/ledger.js";
import { findGaps } from "../market/candles.js";
import { placeForDecision, portfolioContext, type OrderServices } from "../pipeline/decide.js";
import { enforceExits } from "../orders/exits.js";
import { PortfolioStore } from "../portfolio/store.js";
import { equity } from "../portfolio/valuation.js";
import { NoResearch } from "../research/types.js";
import { AgentState } from "../state/agentState.js";
import { buyAndHold, combineRuns, smaCrossover, type BaselineRun } from "./baselines.js";
import { constantExposure, edgeOf, feeSharePct, verdict, type BootstrapOptions, type Edge } from "./evaluation.js";
import { BacktestMarket } from "./market.js";
import { computeMetrics, drawdownSeries, periodsPerYear, type Metrics } from "./metrics.js";
import { offlineDirect, type DeciderOutcome, type PricedModel } from "./models.js";
import type { MarketSymbol } from "../domain/types.js";

export interface SymbolSeries {
  symbol: MarketSymbol;
  /** Every candle available, oldest first: those before `from` warm the indicators up. */
  candles: Candle[];
}

export interface BacktestOptions {
  /** One symbol: `symbol` and `candles`. Several on one account: `series` (then these two are ignored). */
  symbol?: string;
  candles?: Candle[];
  series?: SymbolSeries[];
  timeframe: string;
  from: number;
  /** Inclusive: the last candle opening at or before this time. */
  to: number;
  model: PricedModel;
  limits: RiskLimits;
  feeRate: number;
  slippageBps: number;
  startingCash: number;
  /** A Redis for the paper exchange and the books; the run's keys go under its own prefix. */
  redis: Redis;
  /** Ask the model every this many candles (1: every candle). */
  decideEvery?: number;
  /**
   * Live's DECISION_INTERVAL_SECONDS: when given, the cadence is derived from it against the
   * candle length (a whole number of candles, at least one) and the report says how it compares.
   */
  decisionIntervalSeconds?: number;
  /** Most USDC the run may spend on model calls; a call that would cross it is not made. */
  maxAiSpendUsdc?: number;
  dataLabel?: string;
  onProgress?: (done: number, total: number) => void;
  /** The interval of the edge: block length, resamples, seed (default 2,000 resamples, seed 1), level. */
  bootstrap?: BootstrapOptions;
}

export interface CurvePoint {
  time: number;
  equity: number;
}

export interface BacktestReport {
  /** The first symbol (the only one in a single-symbol run). */
  symbol: string;
  symbols: string[];
  timeframe: string;
  from: string;
  to: string;
  /** Steps of the run's clock (one per candle time). */
  candles: number;
  /** Holes in the recorded data inside the period: reported, not filled. */
  gaps: { symbol: string; after: string; missing: number }[];
  /** failed: no valid decision from the model (the offline engine decided instead, as live). */
  model: {
    id: string;
    route: PricedModel["route"];
    path: string;
    pricePerCallUsdc: number;
    decisions: number;
    modelCalls: number;
    failed: number;
    skippedForBudget: number;
    /** Decisions answered from a recording (replay). */
    replayed: number;
    /** Decisions a replay had no recording for (the offline engine decided them). */
    notRecorded: number;
    /** A strategy's answers refused (it threw, ran over its time, or answered outside the schema): no order. */
    refused: number;
    /** The first refusal's message, to say what went wrong. */
    firstRefusal?: string;
  };
  /** What made the decisions, in words and counted: every report says it. */
  decidedBy: { summary: string; counts: Record<string, number> };
  settings: { startingCash: number; feeRate: number; slippageBps: number; decideEvery: number; limits: RiskLimits };
  /** How often the backtest decides against live's DECISION_INTERVAL_SECONDS. */
  cadence: { candleSeconds: number; decideEvery: number; liveIntervalSeconds?: number; note: string };
  /** Net of every cost: fees, slippage and the AI spend (charged when each call is made). */
  strategy: Metrics;
  /** The same run before the AI spend: what the decisions earned, with only trading costs. */
  strategyGross: Metrics;
  buyAndHold: Metrics;
  /**
   * The headline benchmark: buy-and-hold of the strategy's average exposure, rebalanced to that
   * exposure at every close (the rest in cash), so it holds the same amount of market throughout.
   */
  exposureMatched: Metrics & { exposurePct: number };
  smaCrossover: Metrics;
  /**
   * Return against the exposure-matched benchmark: after every cost (fees, slippage, AI spend), and
   * before fees and AI spend (the strategy's fees added back, the benchmark's entry fee left out).
   */
  edge: { afterFees: Edge; beforeFees: Edge };
  /** Trading fees as a percent of the profit before them; null when nothing was made before fees. */
  feeSharePct: number | null;
  /** One plain line: does it beat, lose to, or not differ from the exposure-matched benchmark. */
  verdict: string;
  risk: {
    refusedByRule: Record<string, number>;
    resizedByRule: Record<string, number>;
    stopLosses: number;
    takeProfits: number;
    gapExits: number;
    trailingMoves: number;
    breaches: Record<string, number>;
    rejectedOrders: number;
  };
  /** Share of candles with a position open, percent. */
  timeInMarketPct: number;
  /** Mean of position value over equity at each close, percent. */
  averageExposurePct: number;
  wallTimeMs: number;
  candlesPerSecond: number;
}

export interface BacktestResult {
  report: BacktestReport;
  curves: { strategy: CurvePoint[]; strategyAfterAi: CurvePoint[]; buyAndHold: CurvePoint[]; exposureMatched: CurvePoint[]; smaCrossover: CurvePoint[] };
  /** Per-candle return differences against the exposure-matched benchmark (after and before fees), for pooling several runs. */
  differences: { times: number[]; afterFees: number[]; beforeFees: number[] };
}

/**
 * A decision's order fills this long after its risk check, as live: the check runs when the
 * decision is made, the fill comes after it. A losing close by a decision sell is then stamped
 * after the decision, so the next candle's buy, exactly one candle later, is inside a cool-down
 * of one candle's length (live would refuse it too, and place it at a later tick of the same
 * candle; the backtest, deciding once per candle, waits for the next candle: stricter, never looser).
 */
export const DECISION_FILL_LAG_MS = 1_000;

const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

interface Window {
  series: SymbolSeries[];
  /** Per symbol: index of its first candle in the window, and of its last. */
  first: number[];
  last: number[];
  /** Every candle open time in the window, across symbols, oldest first. */
  timeline: number[];
  every: number;
  tfMs: number;
}

function seriesOf(o: Pick<BacktestOptions, "series" | "symbol" | "candles">): SymbolSeries[] {
  if (o.series?.length) return o.series;
  if (!o.symbol || !o.candles) throw new Error("a backtest needs a symbol and its candles, or series of several");
  return [{ symbol: o.symbol, candles: o.candles }];
}

/** Candles a decision is made on: indicator warm-up excluded, then every `decideEvery`-th. */
export function cadenceOf(o: Pick<BacktestOptions, "timeframe" | "decideEvery" | "decisionIntervalSeconds">): BacktestReport["cadence"] {
  const candleSeconds = 365 * 86_400 / periodsPerYear(o.timeframe);
  if (o.decisionIntervalSeconds === undefined) {
    const every = Math.max(1, Math.floor(o.decideEvery ?? 1));
    return { candleSeconds, decideEvery: every, note: `one decision every ${every} candle(s) of ${candleSeconds} s` };
  }
  const live = o.decisionIntervalSeconds;
  const every = Math.max(1, Math.round(live / candleSeconds));
  const note =
    live < candleSeconds
      ? `live decides every ${live} s; candles are ${candleSeconds} s, so the backtest decides once per candle (${Math.round(candleSeconds / live)} live decisions to one), with the clock (cool-down, exits) kept to the minute`
      : live % candleSeconds === 0
        ? `every ${every} candle(s), as live's ${live} s`
        : `every ${every} candle(s) (${every * candleSeconds} s), the nearest to live's ${live} s`;
  return { candleSeconds, decideEvery: every, liveIntervalSeconds: live, note };
}

/**
 * The window a run covers: for each symbol, from `from` (but not before its indicators have
 * MIN_CANDLES of history) to `to`; with several symbols, the span all of them cover.
 */
export function planWindow(o: Pick<BacktestOptions, "series" | "symbol" | "candles" | "from" | "to" | "timeframe" | "decideEvery" | "decisionIntervalSeconds">): Window {
  const series = seriesOf(o);
  const starts: number[] = [];
  const ends: number[] = [];
  for (const { symbol, candles } of series) {
    const startIdx = candles.findIndex((c) => c.time >= o.from);
    let endIdx = -1;
    for (let i = candles.length - 1; i >= 0; i--) {
      if (candles[i]!.time <= o.to) {
        endIdx = i;
        break;
      }
    }
    if (startIdx < 0 || endIdx < startIdx) throw new Error(`no ${symbol} candles between ${iso(o.from)} and ${iso(o.to)}`);
    // Indicators need MIN_CANDLES closed candles: without that much history before `from`, the run starts later.
    const first = Math.max(startIdx, MIN_CANDLES);
    if (first > endIdx) throw new Error(`${symbol}: not enough candles (${MIN_CANDLES} needed before the first decision)`);
    starts.push(candles[first]!.time);
    ends.push(candles[endIdx]!.time);
  }
  const start = Math.max(...starts);
  const end = Math.min(...ends);
  if (end < start) throw new Error(`${series.map((s) => s.symbol).join(", ")} have no period in common between ${iso(o.from)} and ${iso(o.to)}`);
  const first = series.map((s) => s.candles.findIndex((c) => c.time >= start));
  const last = series.map((s) => {
    for (let i = s.candles.length - 1; i >= 0; i--) if (s.candles[i]!.time <= end) return i;
    return -1;
  });
  const times = new Set<number>();
  series.forEach((s, k) => {
    for (let i = first[k]!; i <= last[k]!; i++) times.add(s.candles[i]!.time);
  });
  const timeline = [...times].sort((a, b) => a - b);
  const tfMs = (365 * 86_400_000) / periodsPerYear(o.timeframe);
  return { series, first, last, timeline, every: cadenceOf(o).decideEvery, tfMs };
}

/** How many decisions a run will make (what a paid model's estimate counts): warm-up candles excluded. */
export function plannedDecisions(o: Parameters<typeof planWindow>[0]): number {
  const w = planWindow(o);
  const bySymbol = w.series.map((s, k) => new Set(s.candles.slice(w.first[k]!, w.last[k]! + 1).map((c) => c.time)));
  let n = 0;
  for (let step = 0; step < w.timeline.length; step += w.every) for (const times of bySymbol) if (times.has(w.timeline[step]!)) n++;
  return n;
}

/**
 * When inside its candle a price level was first touched, for stamping an exit at the time it
 * would have happened. The candle is assumed to travel open → low → high → close when it closed
 * up, open → high → low → close when it closed down, at an even pace; a level through which the
 * candle opened was touched at the open.
 */
export function touchTime(c: Pick<Candle, "time" | "open" | "high" | "low" | "close">, level: number, candleMs: number): number {
  const path = c.close >= c.open ? [c.open, c.low, c.high, c.close] : [c.open, c.high, c.low, c.close];
  let length = 0;
  for (let k = 1; k < path.length; k++) length += Math.abs(path[k]! - path[k - 1]!);
  if (!(length > 0) || level === c.open) return c.time;
  const below = level < c.open;
  let travelled = 0;
  for (let k = 1; k < path.length; k++) {
    const a = path[k - 1]!;
    const b = path[k]!;
    if (below ? b <= level : b >= level) return c.time + Math.floor(((travelled + Math.abs(level - a)) / length) * candleMs);
    travelled += Math.abs(b - a);
  }
  // Not on the path (an exit at a price the candle never showed): the middle of the candle.
  return c.time + Math.floor(candleMs / 2);
}

/** The label a decision is counted under in `decidedBy`. */
function sourceLabel(model: PricedModel, out: DeciderOutcome): string {
  if (out.source) return out.source;
  return model.route === "offline" ? "offline engine" : model.route === "stand-in" ? "stand-in" : model.route === "replay" ? "recording" : model.route === "local" ? "local model calls" : model.route === "strategy" ? model.id : "real model calls";
}

export function describeDecidedBy(model: PricedModel, counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n.toLocaleString("en-US")}`);
  const caveat =
    // The in-process stand-in echoes the offline engine; a router stand-in answers what it is told to.
    model.route === "stand-in" && !/router stand-in/.test(model.path)
      ? `: the stand-in answers as the offline engine would, so these decisions say nothing about ${model.id}; only the bill is ${model.id}'s`
      : model.route === "replay"
        ? `: replayed from recordings of ${model.id}, free and reproducible`
        : model.route === "router"
          ? `: real calls to ${model.id}`
          : model.route === "local"
            ? `: calls to the local model ${model.id}, free`
            : "";
  return `${total.toLocaleString("en-US")} decisions: ${parts.join(", ")}${caveat}`;
}

export async function runBacktest(o: BacktestOptions): Promise<BacktestResult> {
  const started = performance.now();
  const w = planWindow(o);
  const { series, timeline, every, tfMs } = w;
  const symbols = series.map((s) => s.symbol);
  const cadence = cadenceOf(o);

  const market = new BacktestMarket(series, o.dataLabel ?? `backtest of ${symbols.join(", ")}`);
  // fillLag: set while a decision's order is placed (see DECISION_FILL_LAG_MS).
  const clock = { now: timeline[0]!, fillLag: 0 };
  market.at(clock.now);
  const exchange = new PaperExchange({
    redis: o.redis,
    prices: (s) => market.lastPrice(s),
    feeRate: o.feeRate,
    slippageBps: o.slippageBps,
    startingCash: o.startingCash,
    clock: () => clock.now + clock.fillLag,
    prefix: "paper:",
  });
  const portfolio = new PortfolioStore(o.redis, "portfolio:");
  const quote = symbols[0]!.split("/")[1] ?? "USDT";
  const svc: OrderServices = {
    exchange,
    portfolio,
    market,
    state: new AgentState(o.redis, "agent:"),
    limits: o.limits,
    quote,
    clock: () => clock.now,
  };
  const research = await new NoResearch().research();
  const fallback = offlineDirect();

  const streams = series.map((s) => new SnapshotStream(s.symbol));
  // Per symbol, the newest candle fed to its indicators (they see closed candles only).
  const pushed: number[] = [];
  series.forEach((s, k) => {
    const f = w.first[k]!;
    // Warm the indicators on the candles before the first one (200 is what live decisions read).
    for (const c of s.candles.slice(Math.max(0, f - 200), f)) streams[k]!.push(c);
    pushed.push(f - 1);
  });

  // Every curve starts from the starting cash at the first candle's open; then one mark per close.
  const times: number[] = [timeline[0]!];
  const eq: number[] = [o.startingCash];
  const eqAfterAi: number[] = [o.startingCash];
  // Equity with the trading fees paid so far added back, and no AI spend: the run before fees.
  const eqBeforeFees: number[] = [o.startingCash];
  let aiSpend = 0;
  const m: Omit<BacktestReport["model"], "id" | "route" | "path" | "pricePerCallUsdc"> = { decisions: 0, modelCalls: 0, failed: 0, skippedForBudget: 0, replayed: 0, notRecorded: 0, refused: 0 };
  const decidedBy: Record<string, number> = {};
  let orders = 0;
  let fees = 0;
  let candlesInMarket = 0;
  let exposureSum = 0;
  const risk: BacktestReport["risk"] = { refusedByRule: {}, resizedByRule: {}, stopLosses: 0, takeProfits: 0, gapExits: 0, trailingMoves: 0, breaches: {}, rejectedOrders: 0 };
  const countOrder = (order: Pick<Order, "status" | "fee" | "filledQty">) => {
    if (order.status === "rejected") risk.rejectedOrders++;
    else if (order.filledQty > 0) {
      orders++;
      fees += order.fee;
    }
  };

  // The books (cash and positions) as Redis holds them, read again after every order or moved
  // stop: between orders nothing changes them, so a quiet candle costs no round trip to Redis.
  const readBooks = async (): Promise<Pick<Portfolio, "cash" | "positions">> => {
    const [balances, positions] = await Promise.all([exchange.balances(), portfolio.positions()]);
    return { cash: balances[quote] ?? 0, positions };
  };
  let books = await readBooks();
  let day = "";
  let dayStart = 0;
  const total = timeline.length;
  const decideOne = async (k: number, idx: number, atOpen: () => Portfolio): Promise<boolean> => {
    const symbol = symbols[k]!;
    const candles = series[k]!.candles;
    const snapshot = streams[k]!.snapshot() ?? computeSnapshot(symbol, candles.slice(Math.max(0, idx - 200), idx));
    const inputs: DecisionInputs = {
      decisionId: `bt:${symbols.length > 1 ? `${symbol}:` : ""}${idx}`,
      symbol,
      snapshot,
      research,
      // The offline engine reads none of it; a model sees what live trading would show it.
      portfolio: portfolioContext(atOpen(), o.model.route === "offline" ? 0 : await portfolio.realizedPnl(), []),
      limits: o.limits,
      ...(o.model.needsCandles ? { candles: candles.slice(Math.max(0, idx - 200), idx), now: clock.now } : {}),
    };
    m.decisions++;
    const price = o.model.pricePerCallUsdc;
    let out: DeciderOutcome;
    if (price > 0 && o.maxAiSpendUsdc !== undefined && aiSpend + price > o.maxAiSpendUsdc + 1e-12) {
      // The cap is never crossed: as live when the budget is spent, the offline engine decides.
      m.skippedForBudget++;
      out = { ...(await fallback.decide(inputs)), source: "offline engine (spending cap reached)" };
    } else {
      out = await o.model.decide(inputs);
      // A call that reached the model is paid for whether or not its reply was usable.
      if (out.modelCalls > 0) {
        m.modelCalls += out.modelCalls;
        aiSpend += price * out.modelCalls;
      }
      if (out.ok && out.source === "recording") m.replayed++;
      if (!out.ok && o.model.refuseOnFailure) {
        // A strategy's fault is its own: refused, nothing traded, no stand-in decides for it.
        m.refused++;
        m.firstRefusal ??= out.error;
        bump(decidedBy, "refused");
        return false;
      }
      if (!out.ok) {
        const missing = out.source === "no recording";
        if (missing) m.notRecorded++;
        else m.failed++;
        // As live: when the model gives no valid decision, the offline engine (free) decides.
        out = { ...(await fallback.decide(inputs)), source: missing ? "offline engine (no recording)" : "offline engine (model failed)" };
      }
    }
    bump(decidedBy, sourceLabel(o.model, out));
    if (!out.ok || out.decision.action === "hold") return false;
    const record: DecisionRecord = { id: inputs.decisionId, time: clock.now, symbol, trigger: "schedule", model: o.model.id, costMicro: 0, latencyMs: 0, outcome: "decided" };
    clock.fillLag = DECISION_FILL_LAG_MS;
    let done: DecisionRecord;
    try {
      done = await placeForDecision(svc, { decisionId: inputs.decisionId, symbol, trigger: "schedule" }, out.decision, record);
    } finally {
      clock.fillLag = 0;
    }
    if (done.risk) {
      if (done.risk.outcome === "refused") for (const r of done.risk.rules) bump(risk.refusedByRule, r);
      if (done.risk.outcome === "resized") for (const r of done.risk.rules) bump(risk.resizedByRule, r);
    }
    if (!done.order) return false;
    countOrder({ status: done.order.status, fee: done.order.fee, filledQty: done.order.qty });
    return true;
  };

  for (let step = 0; step < total; step++) {
    const t = timeline[step]!;
    clock.now = t;
    const live = new Set(market.at(t));
    series.forEach((s, k) => {
      if (!live.has(s.symbol)) return;
      const idx = market.indexOf(s.symbol);
      for (let j = pushed[k]! + 1; j < idx; j++) streams[k]!.push(s.candles[j]!);
      pushed[k] = Math.max(pushed[k]!, idx - 1);
    });
    let traded = false;
    // The books marked at this candle's open, the price decisions and the monitor see now.
    const atOpen = (): Portfolio => ({ ...books, prices: Object.fromEntries(symbols.map((s) => [s, market.currentCandle(s).open])), dayStartEquity: dayStart });
    if (dayKey(clock.now) !== day) {
      // The same record the live pipeline reads for the daily loss limit, set once per UTC day.
      day = dayKey(clock.now);
      dayStart = await portfolio.dayStartEquity(day, equity(atOpen()));
    }

    if (step % every === 0) {
      for (let k = 0; k < series.length; k++) {
        if (!live.has(symbols[k]!)) continue;
        if (await decideOne(k, market.indexOf(symbols[k]!), atOpen)) {
          traded = true;
          // The next symbol's decision sees this order in the shared books.
          books = await readBooks();
        }
      }
    }

    // The position monitor over this candle: stops and targets (gap-aware), trailing stops, limits.
    if (traded || books.positions.length > 0) {
      const events = await enforceExits(
        { market, exchange, portfolio, limits: o.limits, quote, clock: svc.clock },
        {
          onExitPrice: (s, at) => {
            market.fillAt.set(s, at);
            // Stamped when it would happen inside the candle, as live: the cool-down counts from here.
            clock.now = touchTime(market.currentCandle(s), at, tfMs);
          },
          breaches: true,
          books: atOpen(),
        },
      );
      market.fillAt.clear();
      clock.now = t;
      for (const e of events) {
        if (e.kind === "exit") {
          traded = true;
          orders++;
          fees += e.fee;
          if (e.hit === "stop-loss") risk.stopLosses++;
          else risk.takeProfits++;
          if (e.gapped) risk.gapExits++;
        } else if (e.kind === "exit-rejected") risk.rejectedOrders++;
        else if (e.kind === "trail") {
          risk.trailingMoves++;
          traded = true;
        } else if (e.kind === "breach") bump(risk.breaches, e.breach.rule);
      }
    }
    if (traded) books = await readBooks();
    let held = 0;
    for (const pos of books.positions) held += pos.qty * market.currentCandle(pos.symbol).close;
    const mark = books.cash + held;
    if (books.positions.length > 0) candlesInMarket++;
    exposureSum += mark > 0 ? held / mark : 0;
    times.push(t + tfMs);
    eq.push(mark);
    eqAfterAi.push(mark - aiSpend);
    eqBeforeFees.push(mark + fees);
    if (o.onProgress && step % 500 === 0) o.onProgress(step, total);
  }
  o.onProgress?.(total, total);

  const tradePnls = (await portfolio.closedTrades(100_000)).map((tr) => tr.pnl);
  const ppy = periodsPerYear(o.timeframe);
  const windows = series.map((s, k) => s.candles.slice(w.first[k]!, w.last[k]! + 1));
  const strategyGross = computeMetrics({ equity: eq, times, periodsPerYear: ppy, tradePnls, orders, fees, aiSpend });
  const strategy = computeMetrics({ equity: eqAfterAi, times, periodsPerYear: ppy, tradePnls, orders, fees, aiSpend, aiIncluded: true });
  const costs = { feeRate: o.feeRate, slippageBps: o.slippageBps, candleMs: tfMs };
  const averageExposure = exposureSum / total;
  // Several symbols: each baseline splits the cash equally between them, on the run's clock.
  const share = o.startingCash / series.length;
  const bh = combineRuns(windows.map((c) => buyAndHold(c, share, costs)), times);
  const matched = combineRuns(windows.map((c) => constantExposure(c, share, costs, averageExposure)), times);
  const matchedBeforeFees = combineRuns(windows.map((c) => constantExposure(c, share, { ...costs, feeRate: 0 }, averageExposure)), times);
  const after = edgeOf(eqAfterAi, matched.equity, ppy, o.bootstrap);
  const before = edgeOf(eqBeforeFees, matchedBeforeFees.equity, ppy, o.bootstrap);
  const { differences: afterDiffs, ...afterFees } = after;
  const { differences: beforeDiffs, ...beforeFees } = before;
  const sma = combineRuns(series.map((s, k) => smaCrossover(s.candles.slice(Math.max(0, w.first[k]! - 200), w.first[k]!), windows[k]!, share, costs)), times);
  const baseline = (b: BaselineRun) => computeMetrics({ equity: b.equity, times: b.times, periodsPerYear: ppy, tradePnls: b.tradePnls, orders: b.orders, fees: b.fees, aiSpend: 0 });
  const wallTimeMs = performance.now() - started;
  const curve = (ts: number[], es: number[]) => ts.map((time, k) => ({ time, equity: es[k]! }));
  const tfMsGap = tfMs;

  const report: BacktestReport = {
    symbol: symbols[0]!,
    symbols,
    timeframe: o.timeframe,
    from: iso(timeline[0]!),
    to: iso(timeline[timeline.length - 1]!),
    candles: total,
    gaps: series.flatMap((s, k) => findGaps(windows[k]!, tfMsGap).map((g) => ({ symbol: s.symbol, after: iso(g.after), missing: g.missing }))),
    model: { id: o.model.id, route: o.model.route, path: o.model.path, pricePerCallUsdc: o.model.pricePerCallUsdc, ...m },
    decidedBy: { summary: describeDecidedBy(o.model, decidedBy), counts: decidedBy },
    settings: { startingCash: o.startingCash, feeRate: o.feeRate, slippageBps: o.slippageBps, decideEvery: every, limits: o.limits },
    cadence,
    strategy,
    strategyGross,
    buyAndHold: baseline(bh),
    exposureMatched: { ...baseline(matched), exposurePct: Number((averageExposure * 100).toFixed(2)) },
    smaCrossover: baseline(sma),
    edge: { afterFees, beforeFees },
    feeSharePct: feeSharePct(strategyGross.fees, strategyGross.netPnl),
    verdict: verdict(o.model.id, afterFees, `on ${symbols.join(" + ")} ${o.timeframe}, ${iso(timeline[0]!).slice(0, 10)} to ${iso(timeline[timeline.length - 1]!).slice(0, 10)}`, (timeline[timeline.length - 1]! - timeline[0]!) / 86_400_000),
    risk,
    timeInMarketPct: Number(((candlesInMarket / total) * 100).toFixed(2)),
    averageExposurePct: Number((averageExposure * 100).toFixed(2)),
    wallTimeMs: Math.round(wallTimeMs),
    candlesPerSecond: Math.round(total / (wallTimeMs / 1000)),
  };
  return {
    report,
    curves: {
      strategy: curve(times, eq),
      strategyAfterAi: curve(times, eqAfterAi),
      buyAndHold: curve(bh.times, bh.equity),
      exposureMatched: curve(matched.times, matched.equity),
      smaCrossover: curve(sma.times, sma.equity),
    },
    differences: { times: times.slice(1), afterFees: afterDiffs, beforeFees: beforeDiffs },
  };
}

export { drawdownSeries };
