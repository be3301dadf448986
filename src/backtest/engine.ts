// The backtest loop: real candles, one at a time, through the parts live trading uses: the
// indicator snapshot, the model (priced), the decision schema, the risk rules and order step of
// the pipeline (placeForDecision), the paper exchange, the portfolio store and the position
// monitor's exits. Only the clock and the market are the backtest's own.
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
import { buyAndHold, smaCrossover, type BaselineRun } from "./baselines.js";
import { BacktestMarket } from "./market.js";
import { computeMetrics, drawdownSeries, periodsPerYear, type Metrics } from "./metrics.js";
import { offlineDirect, type DeciderOutcome, type PricedModel } from "./models.js";

export interface BacktestOptions {
  symbol: string;
  timeframe: string;
  /** Every candle available, oldest first: those before `from` warm the indicators up. */
  candles: Candle[];
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
  /** Most USDC the run may spend on model calls; a call that would cross it is not made. */
  maxAiSpendUsdc?: number;
  dataLabel?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface CurvePoint {
  time: number;
  equity: number;
}

export interface BacktestReport {
  symbol: string;
  timeframe: string;
  from: string;
  to: string;
  candles: number;
  /** Holes in the recorded data inside the period: reported, not filled. */
  gaps: { after: string; missing: number }[];
  /** failed: no valid decision from the model (the offline engine decided instead, as live). */
  model: { id: string; route: PricedModel["route"]; path: string; pricePerCallUsdc: number; decisions: number; modelCalls: number; failed: number; skippedForBudget: number };
  settings: { startingCash: number; feeRate: number; slippageBps: number; decideEvery: number; limits: RiskLimits };
  strategy: Metrics;
  buyAndHold: Metrics;
  smaCrossover: Metrics;
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
  wallTimeMs: number;
  candlesPerSecond: number;
}

export interface BacktestResult {
  report: BacktestReport;
  curves: { strategy: CurvePoint[]; strategyAfterAi: CurvePoint[]; buyAndHold: CurvePoint[]; smaCrossover: CurvePoint[] };
}

const iso = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

export async function runBacktest(o: BacktestOptions): Promise<BacktestResult> {
  const started = performance.now();
  const startIdx = o.candles.findIndex((c) => c.time >= o.from);
  let endIdx = -1;
  for (let i = o.candles.length - 1; i >= 0; i--) {
    if (o.candles[i]!.time <= o.to) {
      endIdx = i;
      break;
    }
  }
  if (startIdx < 0 || endIdx < startIdx) throw new Error(`no ${o.symbol} candles between ${iso(o.from)} and ${iso(o.to)}`);
  // Indicators need MIN_CANDLES closed candles: without that much history before `from`, the run starts later.
  const first = Math.max(startIdx, MIN_CANDLES);
  if (first > endIdx) throw new Error(`${o.symbol}: not enough candles (${MIN_CANDLES} needed before the first decision)`);
  const tfMs = (365 * 86_400_000) / periodsPerYear(o.timeframe);

  const market = new BacktestMarket(o.symbol, o.candles, o.dataLabel ?? `backtest of ${o.symbol}`);
  const clock = { now: o.candles[first]!.time };
  const exchange = new PaperExchange({
    redis: o.redis,
    prices: (s) => market.lastPrice(s),
    feeRate: o.feeRate,
    slippageBps: o.slippageBps,
    startingCash: o.startingCash,
    clock: () => clock.now,
    prefix: "paper:",
  });
  const portfolio = new PortfolioStore(o.redis, "portfolio:");
  const svc: OrderServices = {
    exchange,
    portfolio,
    market,
    state: new AgentState(o.redis, "agent:"),
    limits: o.limits,
    quote: o.symbol.split("/")[1] ?? "USDT",
    clock: () => clock.now,
  };
  const research = await new NoResearch().research();
  const fallback = offlineDirect();
  const every = Math.max(1, Math.floor(o.decideEvery ?? 1));

  const stream = new SnapshotStream(o.symbol);
  // Warm the indicators on the candles before the first one (200 is what live decisions read).
  for (const c of o.candles.slice(Math.max(0, first - 200), first)) stream.push(c);

  // Every curve starts from the starting cash at the first candle's open; then one mark per close.
  const times: number[] = [o.candles[first]!.time];
  const eq: number[] = [o.startingCash];
  const eqAfterAi: number[] = [o.startingCash];
  let aiSpend = 0;
  let decisions = 0;
  let modelCalls = 0;
  let failed = 0;
  let skippedForBudget = 0;
  let orders = 0;
  let fees = 0;
  let candlesInMarket = 0;
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
    return { cash: balances[svc.quote] ?? 0, positions };
  };
  let books = await readBooks();
  let day = "";
  let dayStart = 0;
  const total = endIdx - first + 1;
  for (let i = first; i <= endIdx; i++) {
    market.index = i;
    const candle = o.candles[i]!;
    clock.now = candle.time;
    if (i > first) stream.push(o.candles[i - 1]!);
    let traded = false;
    // The books marked at this candle's open, the price decisions and the monitor see now.
    const atOpen = (): Portfolio => ({ ...books, prices: { [o.symbol]: candle.open }, dayStartEquity: dayStart });
    if (dayKey(clock.now) !== day) {
      // The same record the live pipeline reads for the daily loss limit, set once per UTC day.
      day = dayKey(clock.now);
      dayStart = await portfolio.dayStartEquity(day, equity(atOpen()));
    }

    if ((i - first) % every === 0) {
      const snapshot = stream.snapshot() ?? computeSnapshot(o.symbol, o.candles.slice(Math.max(0, i - 200), i));
      const inputs: DecisionInputs = {
        decisionId: `bt:${i}`,
        symbol: o.symbol,
        snapshot,
        research,
        // The offline engine reads none of it; a model sees what live trading would show it.
        portfolio: portfolioContext(atOpen(), o.model.route === "offline" ? 0 : await portfolio.realizedPnl(), []),
        limits: o.limits,
      };
      decisions++;
      const price = o.model.pricePerCallUsdc;
      let out: DeciderOutcome;
      if (price > 0 && o.maxAiSpendUsdc !== undefined && aiSpend + price > o.maxAiSpendUsdc + 1e-12) {
        // The cap is never crossed: as live when the budget is spent, the offline engine decides.
        skippedForBudget++;
        out = await fallback.decide(inputs);
      } else {
        out = await o.model.decide(inputs);
        // A call that reached the model is paid for whether or not its reply was usable.
        if (out.modelCalls > 0) {
          modelCalls += out.modelCalls;
          aiSpend += price * out.modelCalls;
        }
        if (!out.ok) {
          // As live: when the model gives no valid decision, the offline engine (free) decides.
          failed++;
          out = await fallback.decide(inputs);
        }
      }
      if (out.ok && out.decision.action !== "hold") {
        const record: DecisionRecord = { id: inputs.decisionId, time: clock.now, symbol: o.symbol, trigger: "schedule", model: o.model.id, costMicro: 0, latencyMs: 0, outcome: "decided" };
        const done = await placeForDecision(svc, { decisionId: inputs.decisionId, symbol: o.symbol, trigger: "schedule" }, out.decision, record);
        if (done.risk) {
          if (done.risk.outcome === "refused") for (const r of done.risk.rules) bump(risk.refusedByRule, r);
          if (done.risk.outcome === "resized") for (const r of done.risk.rules) bump(risk.resizedByRule, r);
        }
        if (done.order) {
          countOrder({ status: done.order.status, fee: done.order.fee, filledQty: done.order.qty });
          traded = true;
        }
      }
    }

    // The position monitor over this candle: stops and targets (gap-aware), trailing stops, limits.
    if (traded || books.positions.length > 0) {
      if (traded) books = await readBooks();
      const events = await enforceExits(
        { market, exchange, portfolio, limits: o.limits, quote: svc.quote, clock: svc.clock },
        { onExitPrice: (s, at) => market.fillAt.set(s, at), breaches: true, books: atOpen() },
      );
      market.fillAt.clear();
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
        }
        else if (e.kind === "breach") bump(risk.breaches, e.breach.rule);
      }
    }
    if (traded) books = await readBooks();
    if (books.positions.length > 0) candlesInMarket++;
    const mark = books.cash + books.positions.reduce((a, pos) => a + pos.qty * candle.close, 0);
    times.push(candle.time + tfMs);
    eq.push(mark);
    eqAfterAi.push(mark - aiSpend);
    if (o.onProgress && (i - first) % 500 === 0) o.onProgress(i - first, total);
  }
  o.onProgress?.(total, total);

  const tradePnls = (await portfolio.closedTrades(100_000)).map((t) => t.pnl);
  const ppy = periodsPerYear(o.timeframe);
  const window = o.candles.slice(first, endIdx + 1);
  const strategy = computeMetrics({ equity: eq, times, periodsPerYear: ppy, tradePnls, orders, fees, aiSpend });
  const costs = { feeRate: o.feeRate, slippageBps: o.slippageBps, candleMs: tfMs };
  const bh = buyAndHold(window, o.startingCash, costs);
  const sma = smaCrossover(o.candles.slice(Math.max(0, first - 200), first), window, o.startingCash, costs);
  const baseline = (b: BaselineRun) => computeMetrics({ equity: b.equity, times: b.times, periodsPerYear: ppy, tradePnls: b.tradePnls, orders: b.orders, fees: b.fees, aiSpend: 0 });
  const wallTimeMs = performance.now() - started;
  const curve = (ts: number[], es: number[]) => ts.map((time, k) => ({ time, equity: es[k]! }));

  const report: BacktestReport = {
    symbol: o.symbol,
    timeframe: o.timeframe,
    from: iso(window[0]!.time),
    to: iso(window[window.length - 1]!.time),
    candles: window.length,
    gaps: findGaps(window, tfMs).map((g) => ({ after: iso(g.after), missing: g.missing })),
    model: { id: o.model.id, route: o.model.route, path: o.model.path, pricePerCallUsdc: o.model.pricePerCallUsdc, decisions, modelCalls, failed, skippedForBudget },
    settings: { startingCash: o.startingCash, feeRate: o.feeRate, slippageBps: o.slippageBps, decideEvery: every, limits: o.limits },
    strategy,
    buyAndHold: baseline(bh),
    smaCrossover: baseline(sma),
    risk,
    timeInMarketPct: Number(((candlesInMarket / window.length) * 100).toFixed(2)),
    wallTimeMs: Math.round(wallTimeMs),
    candlesPerSecond: Math.round(window.length / (wallTimeMs / 1000)),
  };
  return {
    report,
    curves: { strategy: curve(times, eq), strategyAfterAi: curve(times, eqAfterAi), buyAndHold: curve(bh.times, bh.equity), smaCrossover: curve(sma.times, sma.equity) },
  };
}

export { drawdownSeries };
