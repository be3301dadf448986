// The one way an order reaches the exchange. Decisions, manual trades, the full stop of /pause all
// and the exits of the position monitor all come through here, so they share one risk context,
// one rule for client order ids (a retry finds its first order, never places a second), one way
// of booking a fill with its exits, and one record of what happened.
import type { Decision, Order, Portfolio } from "../domain/types.js";
import type { Exchange } from "../exchange/types.js";
import { splitSymbol } from "../exchange/types.js";
import { dayKey } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import type { ClosedTrade, PortfolioStore } from "../portfolio/store.js";
import { equity } from "../portfolio/valuation.js";
import { riskContext } from "../risk/context.js";
import { checkRisk, holdVerdict, type RiskVerdict } from "../risk/rules.js";
import type { RiskLimits } from "../domain/types.js";
import type { AgentState } from "../state/agentState.js";

/** What placing an order needs; the live app and the backtest supply the same parts. */
export interface OrderServices {
  exchange: Exchange;
  portfolio: PortfolioStore;
  market: MarketData;
  state: AgentState;
  limits: RiskLimits;
  quote: string;
  clock: () => number;
}

/** Cash, positions and prices as the risk rules and the agent see them. */
export async function loadPortfolio(svc: Pick<OrderServices, "exchange" | "portfolio" | "market" | "quote" | "clock">): Promise<Portfolio> {
  const [balances, positions] = await Promise.all([svc.exchange.balances(), svc.portfolio.positions()]);
  const prices: Record<string, number> = {};
  await Promise.all(positions.map(async (p) => (prices[p.symbol] = await svc.market.lastPrice(p.symbol))));
  const portfolio: Portfolio = { cash: balances[svc.quote] ?? 0, positions, prices, dayStartEquity: 0 };
  portfolio.dayStartEquity = await svc.portfolio.dayStartEquity(dayKey(svc.clock()), equity(portfolio));
  return portfolio;
}

/** An order that adds risk or changes a position by choice: it passes every risk rule first. */
export interface EntryIntent {
  /** The decision's id, or "manual:<id>": the exchange dedupes on it, so a retry finds its order. */
  clientOrderId: string;
  decision: Decision;
}

export interface OrderOutcome {
  /** The risk rules' verdict; for a retried order, the verdict of the first try is not known again. */
  risk: Pick<RiskVerdict, "outcome" | "message" | "rules">;
  verdict?: RiskVerdict;
  /** Undefined when nothing was placed (refused, nothing to do, paused). */
  order?: Order;
  /** This order was found at the exchange from an earlier try, not placed now. */
  found: boolean;
  realizedPnl: number;
  closed?: ClosedTrade;
  /** The exits the new position got (a buy). */
  exits?: { stopLoss: number; takeProfit: number; trailingStopPct?: number };
}

const placeable = (v: RiskVerdict) => (v.outcome === "approved" || v.outcome === "resized") && v.side !== undefined && v.qty > 0;

/**
 * The verdict of a decision that places no order whatever the books hold (a hold), or undefined.
 * Such a decision needs neither the trading lock nor a fresh read of the books: most scheduled
 * decisions are holds, and each lock and read is a Redis round trip.
 */
export function verdictWithoutBooks(decision: Decision): RiskVerdict | undefined {
  return decision.action === "hold" ? holdVerdict() : undefined;
}

/**
 * A risk-checked order: the cool-down, VaR, daily loss, exposure, position-size and open-position
 * rules, with the portfolio read afresh. The caller holds the trading lock.
 */
export async function placeEntry(svc: OrderServices, intent: EntryIntent): Promise<OrderOutcome> {
  const { decision, clientOrderId } = intent;
  const symbol = decision.symbol;
  // Reads that do not depend on each other go together: each is a round trip.
  const [found, paused] = await Promise.all([svc.exchange.findOrder(clientOrderId, symbol), svc.state.isPaused()]);
  if (!found && paused) {
    return { risk: { outcome: "no-trade", message: "Trading was paused before the order: nothing placed.", rules: [] }, found: false, realizedPnl: 0 };
  }
  // Cool-down and VaR only bear on buys: a hold, sell or close needs no market history.
  const wantsContext = decision.action === "buy" && !found;
  const [portfolio, price, lastLosses] = await Promise.all([loadPortfolio(svc), svc.market.lastPrice(symbol), wantsContext ? svc.portfolio.lastLosses() : undefined]);
  const priced = { ...portfolio, prices: { ...portfolio.prices, [symbol]: price } };
  const context = wantsContext ? await riskContext(svc, symbol, priced.positions, lastLosses) : {};
  const verdict = checkRisk(decision, priced, svc.limits, price, context);
  const risk = { outcome: verdict.outcome, message: verdict.message, rules: verdict.rules };
  if (!found && !placeable(verdict)) return { risk, verdict, found: false, realizedPnl: 0 };

  const order = found ?? (await svc.exchange.placeOrder({ clientOrderId, symbol, side: verdict.side!, qty: verdict.qty }));
  const exits =
    order.side === "buy" && verdict.stopLoss !== undefined && verdict.takeProfit !== undefined
      ? { stopLoss: verdict.stopLoss, takeProfit: verdict.takeProfit, ...(svc.limits.trailingStopPct ? { trailingStopPct: svc.limits.trailingStopPct } : {}) }
      : undefined;
  const booked = await book(svc, order, { ...(exits ? { exits } : {}), closing: decision.action === "close" });
  return { risk, verdict, order, found: found !== undefined, ...booked, ...(exits ? { exits } : {}) };
}

/** An order that only reduces a position: an exit at its stop or target, or the full stop. */
export interface ReduceIntent {
  clientOrderId: string;
  symbol: string;
  /** What the books hold and would sell. */
  qty: number;
  /** The position is closed by this order (an exit or the full stop), so what dust is left goes. */
  closing: boolean;
}

export interface ReduceOutcome extends OrderOutcome {
  /** What the account had free of the base asset when the sell was sized. */
  held: number;
  /** The books held more than the account: the sell was cut to what it held. */
  capped?: { booked: number; held: number };
}

/**
 * A sell that reduces risk. No entry rule can block it. It never sells more than the account has
 * free of the asset: the books can hold more (a fee taken from the coin bought, a fill booked
 * before its trades were listed), coins locked in an open order cannot be sold, and the exchange
 * refuses such a sell every time, so the stop would never execute. The caller holds the lock.
 */
export async function placeReduce(svc: Pick<OrderServices, "exchange" | "portfolio">, intent: ReduceIntent): Promise<ReduceOutcome> {
  const risk = { outcome: "approved" as const, message: "A sell that reduces a position: no entry rule applies.", rules: [] };
  const found = await svc.exchange.findOrder(intent.clientOrderId, intent.symbol);
  if (found) return { risk, order: found, found: true, held: found.qty, ...(await book(svc, found, { closing: intent.closing && found.status === "filled" })) };
  const [base] = splitSymbol(intent.symbol);
  // A coin the exchange does not list is one the account does not hold.
  const held = Math.max(0, (await svc.exchange.balances())[base] ?? 0);
  const qty = Math.min(intent.qty, held);
  const capped = qty < intent.qty ? { capped: { booked: intent.qty, held } } : {};
  if (!(qty > 0)) {
    return { risk: { outcome: "refused", message: `the account holds no ${base} to sell (the books hold ${intent.qty})`, rules: [] }, found: false, realizedPnl: 0, held, ...capped };
  }
  const order = await svc.exchange.placeOrder({ clientOrderId: intent.clientOrderId, symbol: intent.symbol, side: "sell", qty });
  return { risk, order, found: false, held, ...capped, ...(await book(svc, order, { closing: intent.closing && order.status === "filled" })) };
}

async function book(svc: Pick<OrderServices, "portfolio">, order: Order, opts: { exits?: NonNullable<OrderOutcome["exits"]>; closing: boolean }): Promise<{ realizedPnl: number; closed?: ClosedTrade }> {
  if (order.status !== "filled" && order.status !== "partial") return { realizedPnl: 0 };
  const { realizedPnl, closed } = await svc.portfolio.applyFill(order, { ...(opts.exits ? { exits: opts.exits } : {}), closing: opts.closing });
  return { realizedPnl, ...(closed ? { closed } : {}) };
}
