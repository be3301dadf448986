import type { TradingAgent, DecisionInputs } from "../agent/tradingAgent.js";
import type { BalanceManager } from "../payments/balanceManager.js";
import type { Decision, MarketSymbol, Portfolio, RiskLimits } from "../domain/types.js";
import type { Exchange } from "../exchange/types.js";
import { computeSnapshot } from "../indicators/snapshot.js";
import { type DecisionRecord, type DecisionTrigger, type Ledger } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import type { ModelLayer } from "../models/modelLayer.js";
import type { DecideRequest } from "../decision/request.js";
import { decideWithModels, modelFields } from "../models/decideWithModels.js";
import type { PortfolioStore } from "../portfolio/store.js";
import { equity, exposure } from "../portfolio/valuation.js";
import type { ResearchProvider, ResearchReport } from "../research/types.js";
import { loadPortfolio, placeEntry, verdictWithoutBooks, type OrderServices } from "../orders/orderPath.js";
import type { PendingOrders } from "../orders/pendingOrders.js";
import type { OpenOrders } from "../orders/openOrders.js";
import type { RedisLock } from "../redis/lock.js";
import type { AgentState } from "../state/agentState.js";

export type { DecideRequest, DecisionGate } from "../decision/request.js";

export interface DecisionServices {
  market: MarketData;
  research: ResearchProvider;
  agent: TradingAgent;
  models: ModelLayer;
  exchange: Exchange;
  portfolio: PortfolioStore;
  ledger: Ledger;
  balance: BalanceManager;
  state: AgentState;
  limits: RiskLimits;
  /** Held around every risk check + order + fill (decisions and the position monitor). */
  tradeLock: RedisLock;
  quote: string;
  clock: () => number;
  /** Orders sent whose outcome is not known yet, looked up until it is (src/orders/pendingOrders.ts). */
  pending: PendingOrders;
  /** Our resting limit orders, booked when they fill (src/orders/openOrders.ts). */
  openOrders: OpenOrders;
  /** Brings `limits` up to the cluster's latest before a risk check (src/risk/limitsStore.ts). */
  refreshLimits?: () => Promise<void>;
}

/** The portfolio as the agent's portfolio context shows it (live and in a backtest alike). */
export function portfolioContext(p: Portfolio, realizedPnl: number, recent: DecisionInputs["portfolio"]["recent"]): DecisionInputs["portfolio"] {
  const eq = equity(p);
  return {
    cash: p.cash,
    equity: eq,
    positions: p.positions,
    dailyPnl: eq - p.dayStartEquity,
    exposurePct: eq > 0 ? (exposure(p) / eq) * 100 : 0,
    realizedPnl,
    recent,
  };
}

export { loadPortfolio } from "../orders/orderPath.js";

/** The model's answer a record kept (saved before its order), or undefined when there was none. */
function answerIn(r: DecisionRecord | undefined): Decision | undefined {
  if (r?.action === undefined || r.reasons === undefined || r.confidence === undefined) return undefined;
  return {
    symbol: r.symbol,
    action: r.action,
    sizePct: r.sizePct ?? 0,
    confidence: r.confidence,
    reasons: r.reasons,
    ...(r.stopLossPct !== undefined ? { stopLossPct: r.stopLossPct } : {}),
    ...(r.takeProfitPct !== undefined ? { takeProfitPct: r.takeProfitPct } : {}),
  };
}

/** What a decision's record keeps of its research (its cost is booked in the ledger under research). */
function researchFields(r: ResearchReport): NonNullable<DecisionRecord["research"]> {
  return { source: r.source, available: r.available, served: r.served ?? (r.available ? "free" : "none"), costMicro: r.costMicro ?? 0, ...(r.available ? {} : { note: r.note }) };
}

/**
 * One decision, end to end: market data and indicators, research, portfolio and limits into the
 * agent; the model's signal through the risk rules; an order; the ledger. Safe to retry with the
 * same decisionId: a finished decision is returned as it was, and a decision already made is not
 * asked (or paid for) again; the exchange dedupes the order on the same id.
 */
export async function runDecision(svc: DecisionServices, req: DecideRequest): Promise<DecisionRecord> {
  // Read together: each is one round trip to Redis, and neither depends on the other.
  const [existing, { pause, chosenModel }] = await Promise.all([svc.ledger.get(req.decisionId), svc.state.forDecision()]);
  // Finished, or failed after asking the models: a retry must not ask (and pay) again.
  if (existing && (existing.risk || existing.outcome === "failed")) return existing;

  const started = svc.clock();
  const base: DecisionRecord = existing ?? {
    id: req.decisionId,
    time: started,
    symbol: req.symbol,
    trigger: req.trigger,
    model: "none",
    costMicro: 0,
    latencyMs: 0,
    outcome: "skipped",
  };

  if (pause.paused) {
    return { ...base, error: `Trading is paused (${pause.reason ?? "manual"}). Use /resume to lift it.` };
  }

  const [closed, portfolio] = await Promise.all([svc.market.closedCandles(req.symbol, 200), loadPortfolio(svc)]);
  const snapshot = computeSnapshot(req.symbol, closed);
  const indicators = {
    price: snapshot.price,
    sma20: snapshot.sma20,
    sma50: snapshot.sma50,
    rsi14: snapshot.rsi14,
    macdHist: snapshot.macd.histogram,
    bbUpper: snapshot.bollinger.upper,
    bbLower: snapshot.bollinger.lower,
    atr14: snapshot.atr14,
    volatility: snapshot.volatility,
    signal: snapshot.signal,
  };

  let record: DecisionRecord = { ...base, indicators };
  // The model already answered for this decision before a crash or retry: reuse its answer.
  let decision = answerIn(existing);
  const reused = decision !== undefined;
  if (!decision) {
    // The ledger's latest decisions are read once: the portfolio context shows the last few, the
    // model layer's tier choice the rest.
    const [research, latest, realizedPnl] = await Promise.all([svc.research.research(req.symbol), svc.ledger.recent(20), svc.portfolio.realizedPnl()]);
    const recent = latest.slice(0, 5).filter((r) => r.symbol === req.symbol);
    const inputs: DecisionInputs = {
      decisionId: req.decisionId,
      symbol: req.symbol,
      snapshot,
      research,
      portfolio: portfolioContext(
        portfolio,
        realizedPnl,
        recent.map((r) => ({ time: r.time, action: r.action ?? "none", outcome: r.outcome })),
      ),
      limits: svc.limits,
      // For a strategy file (STRATEGY): the candles behind the snapshot, and the time.
      candles: closed,
      now: started,
    };
    const out = await decideWithModels(svc, req, inputs, { recent: latest, chosenModel });
    record = { ...record, research: researchFields(research) };
    record = { ...record, model: out.model, costMicro: record.costMicro + out.costMicro, latencyMs: out.latencyMs, ...modelFields(out) };
    decision = out.decision;
    const errors = out.errors;
    if (!decision) {
      record = { ...record, outcome: "failed", error: errors.join(" | ") || "no model available" };
      await svc.ledger.put(record);
      return record;
    }
    record = {
      ...record,
      outcome: "decided",
      action: decision.action,
      sizePct: decision.sizePct,
      confidence: decision.confidence,
      reasons: decision.reasons,
      ...(decision.stopLossPct !== undefined ? { stopLossPct: decision.stopLossPct } : {}),
      ...(decision.takeProfitPct !== undefined ? { takeProfitPct: decision.takeProfitPct } : {}),
      // What happened on the way to this answer: models skipped or failed, billing notes.
      ...(errors.length ? { error: `model notes: ${errors.join(" | ")}` } : {}),
    };
  }

  // A hold places no order: no gate, lock or second read of the books, and one write of the record.
  const orderless = verdictWithoutBooks(decision);
  if (orderless) {
    record = { ...record, risk: { outcome: orderless.outcome, message: orderless.message, rules: orderless.rules }, outcome: "no-order", latencyMs: svc.clock() - started };
    await svc.ledger.put(record);
    return record;
  }
  // Saved before any order, so a retry after a crash reuses this answer instead of paying again.
  if (!reused) await svc.ledger.put(record);

  if (req.gate) {
    const stop = await req.gate(decision, record);
    if (stop) {
      await svc.ledger.put(stop);
      return stop;
    }
  }

  // Risk check, order and fill under one lock shared by every worker, so two decisions can never
  // both pass an exposure limit that only one of them fits under.
  record = await svc.tradeLock.run(() => placeForDecision(svc, req, decision, record));
  record.latencyMs = svc.clock() - started;
  await svc.ledger.put(record);
  return record;
}

/** What the order half of a decision needs; the backtest supplies the same parts. */
export type { OrderServices } from "../orders/orderPath.js";

/** The order half of a decision, through the one order path; its outcome as the decision's record. */
export async function placeForDecision(svc: OrderServices, req: DecideRequest, decision: Decision, record: DecisionRecord): Promise<DecisionRecord> {
  const origin = `the ${req.trigger === "schedule" ? "scheduled decision" : "decision"} ${req.decisionId}`;
  const out = await placeEntry(svc, { clientOrderId: req.decisionId, decision, origin, decisionId: req.decisionId });
  if (out.pending) {
    // Not "failed": it may have filled. The journal's lookups bring this record up to date.
    const p = out.pending.entry;
    return { ...record, risk: record.risk ?? out.risk, outcome: "pending", pendingOrder: { side: p.side, qty: p.qty, reason: p.reason ?? "not confirmed" } };
  }
  if (!out.order) return { ...record, risk: out.risk, outcome: out.risk.outcome === "refused" ? "refused" : "no-order" };
  const order = out.order;
  return {
    ...record,
    // A retried job whose order already went out keeps the verdict it was placed under.
    risk: out.found ? (record.risk ?? out.risk) : out.risk,
    outcome: order.status === "rejected" ? "refused" : "order",
    order: { id: order.id, side: order.side, qty: order.filledQty, avgPrice: order.avgPrice, fee: order.fee, status: order.status, ...(order.reason ? { reason: order.reason } : {}) },
  };
}
