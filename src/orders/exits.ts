// Protection of open positions, shared by the position monitor job and the backtest: stop loss,
// take profit and trailing stop against the candle forming now (gap-aware), then the limits the
// market itself may have broken. Returns what happened; the caller tells the chat.
import type { Candle, Portfolio, Position, RiskLimits } from "../domain/types.js";
import { splitSymbol, type Exchange } from "../exchange/types.js";
import { dayKey } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import { placeReduce } from "./orderPath.js";
import { checkStops, marketBreaches, trailStop, type Breach, type StopHit } from "../risk/rules.js";
import { returnSeries, VAR_LOOKBACK, type ReturnSeries } from "../risk/var.js";
import type { ClosedTrade, PortfolioStore } from "../portfolio/store.js";
import type { PendingOrders } from "./pendingOrders.js";
import type { OpenOrders } from "./openOrders.js";
import { equity } from "../portfolio/valuation.js";

export interface ExitServices {
  market: MarketData;
  exchange: Exchange;
  portfolio: PortfolioStore;
  limits: RiskLimits;
  quote: string;
  clock: () => number;
  /** The journal of orders whose outcome is not known (an exit sent and not confirmed waits there). */
  pending?: PendingOrders;
  /** Our resting limit orders: a resting sell is cancelled before an exit needs its coins. */
  openOrders?: OpenOrders;
}

export interface ExitOptions {
  /** Where an exit is expected to fill (the level, or the open after a gap): the backtest fills there. */
  onExitPrice?: (symbol: string, price: number) => void;
  /** Check the daily loss, exposure and VaR limits against the market after the exits. */
  breaches?: boolean;
  /** Record a point of the equity curve, at most once per this many ms (0: every run). */
  equityEveryMs?: number;
  /**
   * The books as the caller already holds them (cash, positions, prices now, the day's starting
   * equity): saves reading them again. Read afresh anyway after an exit or a stop moved.
   */
  books?: Portfolio;
}

export type ExitEvent =
  | {
      kind: "exit";
      symbol: string;
      hit: StopHit["hit"];
      level: number;
      expected: number;
      fill: number;
      qty: number;
      fee: number;
      pnl: number;
      gapped: boolean;
      trade?: ClosedTrade;
      /** The books held more than the account: the exit sold what the account held. */
      capped?: { booked: number; held: number };
    }
  | { kind: "exit-rejected"; symbol: string; hit: StopHit["hit"]; reason: string; /** What the exit tried to sell. */ qty?: number }
  /** The exit was sent and the exchange did not confirm it: it is looked up (and booked when found), never sent twice. */
  | { kind: "exit-pending"; symbol: string; hit: StopHit["hit"]; reason: string }
  /**
   * The exit was refused (by the exchange, or because the account holds none of the asset): the
   * position stays open with its stop not executed. Comes beside "exit-rejected", for an alert.
   */
  | { kind: "exit-refused"; symbol: string; hit: StopHit["hit"]; reason: string; qty: number; booked: number; held: number; attempt: number }
  /** A fill booked from an estimate was read again with its trades listed: the books were corrected. */
  | { kind: "fill-corrected"; symbol: string; orderId: string; side: "buy" | "sell"; filledQty: number; fee: number }
  | { kind: "trail"; symbol: string; from: number; to: number }
  | { kind: "breach"; breach: Breach };

/** A fill this much worse than the level is the market breaking through it, not slippage. */
const GAP_TOLERANCE = 0.005;

export async function enforceExits(s: ExitServices, opts: ExitOptions = {}): Promise<ExitEvent[]> {
  const events: ExitEvent[] = [];
  // Fills booked from a worst-case estimate are corrected first, so the exits below see the truth.
  // A failed look-up must not keep the stops below from running: the next run looks again.
  for (const order of (await s.exchange.settleFills?.().catch(() => [])) ?? []) {
    const { applied } = await s.portfolio.applyFill(order, { correction: true });
    if (applied) events.push({ kind: "fill-corrected", symbol: order.symbol, orderId: order.id, side: order.side, filledQty: order.filledQty, fee: order.fee });
  }
  const positions = opts.books && events.length === 0 ? opts.books.positions : await s.portfolio.positions();
  for (const position of positions) {
    const candle = await candleSinceEntry(s.market, position);
    const hit = checkStops(position, candle);
    if (!hit) {
      const moved = trailStop(position, candle);
      if (moved) {
        await s.portfolio.updateExits(position.symbol, moved);
        if (moved.stopLoss !== position.stopLoss) events.push({ kind: "trail", symbol: position.symbol, from: position.stopLoss, to: moved.stopLoss });
      }
      continue;
    }
    opts.onExitPrice?.(position.symbol, hit.price);
    // One exit order per attempt: a retried job finds this order instead of selling twice.
    const attempt = await s.portfolio.exitAttempt(position);
    const clientOrderId = `exit:${position.symbol}:${position.openedAt}${attempt ? `:${attempt}` : ""}`;
    // The order path sells no more than the account has free of the asset (see placeReduce).
    const out = await placeReduce(s, { clientOrderId, symbol: position.symbol, qty: position.qty, closing: true, origin: `the ${hit.hit === "stop-loss" ? "stop loss" : "take profit"} of ${position.symbol}` });
    if (out.pending) {
      // Told once, when it was sent; later runs meet the same order in the journal and wait for its lookup.
      if (out.pending.sentNow) events.push({ kind: "exit-pending", symbol: position.symbol, hit: hit.hit, reason: out.pending.entry.reason ?? "not confirmed" });
      continue;
    }
    const { held } = out;
    const qty = Math.min(position.qty, held);
    const refused = (reason: string) => {
      events.push({ kind: "exit-rejected", symbol: position.symbol, hit: hit.hit, reason, qty });
      events.push({ kind: "exit-refused", symbol: position.symbol, hit: hit.hit, reason, qty, booked: position.qty, held, attempt });
    };
    const order = out.order;
    if (!order) {
      refused(out.risk.message);
      continue;
    }
    // Refused, or only partly filled: the next run tries again with a new order for what is left.
    if (order.status === "rejected" || order.status === "partial") await s.portfolio.nextExitAttempt(position);
    if (order.status === "rejected") {
      refused(order.reason ?? order.status);
      continue;
    }
    if (order.filledQty <= 0) {
      events.push({ kind: "exit-rejected", symbol: position.symbol, hit: hit.hit, reason: order.reason ?? order.status, qty });
      continue;
    }
    const { realizedPnl, closed } = out;
    const level = hit.hit === "stop-loss" ? position.stopLoss : position.takeProfit;
    const gapped = hit.hit === "stop-loss" && (hit.price < level || order.avgPrice < level * (1 - GAP_TOLERANCE));
    events.push({
      kind: "exit",
      symbol: position.symbol,
      hit: hit.hit,
      level,
      expected: hit.price,
      fill: order.avgPrice,
      qty: order.filledQty,
      fee: order.fee,
      pnl: realizedPnl,
      gapped,
      ...(closed ? { trade: closed } : {}),
      ...(out.capped ? { capped: out.capped } : {}),
    });
  }

  const needPortfolio = opts.breaches || opts.equityEveryMs !== undefined;
  if (!needPortfolio) return events;
  const portfolio = opts.books && events.length === 0 ? opts.books : await portfolioNow(s);
  if (opts.equityEveryMs !== undefined) {
    const now = s.clock();
    const [last] = (await s.portfolio.equityCurve(now - (opts.equityEveryMs || 0), now)).slice(-1);
    if (!last || opts.equityEveryMs === 0) await s.portfolio.recordEquity(now, equity(portfolio));
  }
  if (opts.breaches && portfolio.positions.length > 0) {
    const returns: Record<string, ReturnSeries> = {};
    if (s.limits.maxVar95Pct !== undefined) {
      for (const p of portfolio.positions) returns[p.symbol] = returnSeries(await s.market.closedCandles(p.symbol, VAR_LOOKBACK + 1));
    }
    for (const breach of marketBreaches(portfolio, s.limits, returns)) {
      // Once per rule per day: the chat hears of it when it happens, not every 30 seconds.
      if (await s.portfolio.markBreach(breach.rule, dayKey(s.clock()))) events.push({ kind: "breach", breach });
    }
  }
  return events;
}

/**
 * The price action a position has lived through in the forming candle. A live position opened
 * during the candle did not live through its open, high or low before the entry: only the last
 * trade is its own. A replay buys at the candle's open, so the whole candle counts.
 */
async function candleSinceEntry(market: MarketData, position: Position): Promise<Pick<Candle, "open" | "high" | "low">> {
  if (!market.currentCandle) {
    const p = await market.lastPrice(position.symbol);
    return { open: p, high: p, low: p };
  }
  const c = await market.currentCandle(position.symbol);
  if (market.kind === "live" && position.openedAt > c.time) return { open: c.close, high: c.close, low: c.close };
  return c;
}

async function portfolioNow(s: ExitServices): Promise<Portfolio> {
  const [balances, positions] = await Promise.all([s.exchange.balances(), s.portfolio.positions()]);
  const prices: Record<string, number> = {};
  for (const p of positions) prices[p.symbol] = await s.market.lastPrice(p.symbol);
  const portfolio: Portfolio = { cash: balances[s.quote] ?? 0, positions, prices, dayStartEquity: 0 };
  portfolio.dayStartEquity = await s.portfolio.dayStartEquity(dayKey(s.clock()), equity(portfolio));
  return portfolio;
}
