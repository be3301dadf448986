// Hard risk rules, checked in code before any order. The model only emits a signal; these
// deterministic limits decide whether an order is placed and how big it is.
import type { Candle, Decision, OrderSide, Portfolio, Position, RiskLimits } from "../domain/types.js";
import { equity, exposure } from "../portfolio/valuation.js";
import { portfolioVar, type ReturnSeries } from "./var.js";

export type RiskRule =
  | "max-position"
  | "max-exposure"
  | "max-leverage"
  | "max-open-positions"
  | "daily-loss"
  | "stop-loss"
  | "min-order"
  | "cash"
  | "no-position"
  | "cooldown"
  | "max-var"
  /** An earlier order of the symbol was sent and its outcome is not known yet (the order path, not a rule here). */
  | "pending-order"
  /** /stopentry is on: no new buys, exits keep working (the order path, not a rule here). */
  | "entries-stopped";

/** What the rules need beyond the portfolio: the time, recent losses and the market's history. */
export interface RiskContext {
  /** Now (epoch ms), for the cool-down. */
  now?: number;
  /** When the decision's symbol last closed at a loss (epoch ms). */
  lastLossAt?: number;
  /** Recent candle-to-candle returns per symbol, for the historical VaR limit. */
  returns?: Record<string, ReturnSeries>;
  /**
   * Notional our open buy limit orders would add when they fill (quote, at their limit prices):
   * counted as if filled, so orders resting together can never exceed the position-size,
   * exposure and open-position limits once they all fill.
   */
  reserved?: Reservations;
}

export interface Reservations {
  total: number;
  bySymbol: Record<string, number>;
}

export interface RiskVerdict {
  /** approved: as asked; resized: smaller than asked; refused: no order; no-trade: hold, nothing to do. */
  outcome: "approved" | "resized" | "refused" | "no-trade";
  /** One sentence for the chat reply, naming the rule when one applied. */
  message: string;
  /** Every rule that resized or refused the order. */
  rules: RiskRule[];
  side?: OrderSide;
  /** Base-asset quantity to order; 0 when refused. */
  qty: number;
  /** Exit levels for a buy. */
  stopLoss?: number;
  takeProfit?: number;
}

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 2 });

/**
 * Decides the order for a decision. Buys are clamped in this order: position size, total exposure
 * (and leverage), cash; a buy is refused outright by the open-position count, the day's loss and a
 * stop wider than allowed, and when what is left is under the minimum order. Sells and closes
 * reduce risk and are never blocked by the loss or exposure limits.
 */
/** A hold asks for no order, so no book, price or limit bears on its verdict. */
export function holdVerdict(): RiskVerdict {
  return { outcome: "no-trade", message: "Hold: no order.", rules: [], qty: 0 };
}

export function checkRisk(decision: Decision, portfolio: Portfolio, limits: RiskLimits, price: number, context: RiskContext = {}): RiskVerdict {
  const symbol = decision.symbol;
  const held = portfolio.positions.find((p) => p.symbol === symbol);
  const eq = equity(portfolio);
  const refuse = (rule: RiskRule, message: string, extra: RiskRule[] = []): RiskVerdict => ({
    outcome: "refused",
    message,
    rules: [...extra, rule],
    qty: 0,
  });

  if (decision.action === "hold") return holdVerdict();
  if (!(price > 0)) return refuse("min-order", `No usable price for ${symbol}: no order.`);

  if (decision.action === "close" || decision.action === "sell") {
    if (!held || held.qty <= 0) return refuse("no-position", `No open ${symbol} position to ${decision.action} (long-only spot): no order.`);
    if (decision.action === "close") {
      return { outcome: "approved", message: `Close the whole ${symbol} position.`, rules: [], side: "sell", qty: held.qty };
    }
    const wanted = (decision.sizePct / 100) * eq / price;
    const qty = Math.min(wanted, held.qty);
    if (qty * price < limits.minOrderNotional && qty < held.qty) {
      return refuse("min-order", `A sell of ${fmt(qty * price)} is under the minimum order of ${fmt(limits.minOrderNotional)}: no order.`);
    }
    return qty < wanted
      ? { outcome: "resized", message: `Sell resized to the whole position (${held.qty}).`, rules: [], side: "sell", qty }
      : { outcome: "approved", message: `Sell ${decision.sizePct}% of equity.`, rules: [], side: "sell", qty };
  }

  // A buy.
  const stopPct = decision.stopLossPct ?? limits.defaultStopLossPct;
  const targetPct = decision.takeProfitPct ?? limits.defaultTakeProfitPct;
  if (stopPct > limits.maxStopLossPct) {
    return refuse("stop-loss", `Stop loss ${fmt(stopPct)}% below entry is wider than the ${fmt(limits.maxStopLossPct)}% allowed (stop-loss rule): no order.`);
  }
  const reserved = context.reserved ?? { total: 0, bySymbol: {} };
  const reservedHere = reserved.bySymbol[symbol] ?? 0;
  // A symbol with an open buy order and no position yet will be a position once it fills.
  const waiting = Object.keys(reserved.bySymbol).filter((s) => reserved.bySymbol[s]! > 0 && !portfolio.positions.some((p) => p.symbol === s)).length;
  const opened = portfolio.positions.length + waiting;
  if (!held && reservedHere <= 0 && opened >= limits.maxOpenPositions) {
    const pending = waiting ? ` (${waiting} of them open buy orders)` : "";
    return refuse("max-open-positions", `${opened} positions are open${pending}, the most allowed is ${limits.maxOpenPositions} (max-open-positions rule): no order.`);
  }
  const cooldownMs = (limits.cooldownAfterLossMinutes ?? 0) * 60_000;
  if (cooldownMs > 0 && context.lastLossAt !== undefined && context.now !== undefined && context.now - context.lastLossAt < cooldownMs) {
    const left = Math.ceil((cooldownMs - (context.now - context.lastLossAt)) / 60_000);
    return refuse("cooldown", `${symbol} closed at a loss ${Math.floor((context.now - context.lastLossAt) / 60_000)} min ago; no new buy in it for ${fmt(limits.cooldownAfterLossMinutes!)} min after a loss (cooldown rule, ${left} min left): no order.`);
  }
  const floor = portfolio.dayStartEquity * (1 - limits.dailyLossLimitPct / 100);
  if (portfolio.dayStartEquity > 0 && eq <= floor) {
    const lossPct = ((portfolio.dayStartEquity - eq) / portfolio.dayStartEquity) * 100;
    return refuse("daily-loss", `Today's loss is ${lossPct.toFixed(4)}% of the day's starting equity, at or over the ${fmt(limits.dailyLossLimitPct)}% limit (daily-loss rule): no new buys today.`);
  }

  const asked = (decision.sizePct / 100) * eq;
  let notional = asked;
  const rules: RiskRule[] = [];
  const why: string[] = [];

  const heldNotional = held ? held.qty * price : 0;
  const positionRoom = Math.max(0, (limits.maxPositionPct / 100) * eq - heldNotional - reservedHere);
  if (notional > positionRoom) {
    notional = positionRoom;
    rules.push("max-position");
    why.push(`the largest position is ${fmt(limits.maxPositionPct)}% of equity (max-position rule${reservedHere > 0 ? `, ${fmt(reservedHere)} of it reserved by open buy orders` : ""})`);
  }

  // Leverage caps exposure too; the tighter of the two limits is the one named.
  const exposureCapPct = Math.min(limits.maxExposurePct, limits.maxLeverage * 100);
  const exposureRule: RiskRule = limits.maxLeverage * 100 < limits.maxExposurePct ? "max-leverage" : "max-exposure";
  const exposureRoom = Math.max(0, (exposureCapPct / 100) * eq - exposure(portfolio) - reserved.total);
  if (notional > exposureRoom) {
    notional = exposureRoom;
    rules.push(exposureRule);
    const note = reserved.total > 0 ? `, ${fmt(reserved.total)} of it reserved by open buy orders` : "";
    why.push(
      exposureRule === "max-leverage"
        ? `exposure may not exceed ${fmt(limits.maxLeverage)}x equity (max-leverage rule${note})`
        : `total exposure may not exceed ${fmt(limits.maxExposurePct)}% of equity (max-exposure rule${note})`,
    );
  }

  if (limits.maxVar95Pct !== undefined && context.returns) {
    const cap = (limits.maxVar95Pct / 100) * eq;
    const notionals: Record<string, number> = {};
    for (const p of portfolio.positions) notionals[p.symbol] = p.qty * (portfolio.prices[p.symbol] ?? p.entryPrice);
    const varWith = (extra: number) => portfolioVar({ ...notionals, [symbol]: (notionals[symbol] ?? 0) + extra }, context.returns!);
    if (varWith(notional) > cap) {
      // The largest order that keeps the portfolio's VaR under the cap (VaR grows with the order).
      let lo = 0;
      let hi = notional;
      for (let i = 0; i < 40; i++) {
        const mid = (lo + hi) / 2;
        if (varWith(mid) <= cap) lo = mid;
        else hi = mid;
      }
      notional = lo;
      rules.push("max-var");
      why.push(`the one-candle 95% VaR of all positions may not exceed ${fmt(limits.maxVar95Pct)}% of equity (max-var rule)`);
    }
  }

  if (notional > portfolio.cash) {
    notional = Math.max(0, portfolio.cash);
    rules.push("cash");
    why.push(`only ${fmt(portfolio.cash)} cash is free (cash rule)`);
  }

  if (notional < limits.minOrderNotional) {
    const reason = why.length ? `After limits (${why.join("; ")}), ` : "";
    return refuse(
      "min-order",
      `${reason}${reason ? "t" : "T"}he order of ${fmt(notional)} is under the minimum of ${fmt(limits.minOrderNotional)} (min-order rule): no order.`,
      rules,
    );
  }

  const verdict: RiskVerdict = {
    outcome: rules.length ? "resized" : "approved",
    message: rules.length
      ? `Resized from ${fmt(asked)} to ${fmt(notional)}: ${why.join("; ")}.`
      : `Buy ${fmt(notional)} (${fmt(decision.sizePct)}% of equity).`,
    rules,
    side: "buy",
    qty: notional / price,
    stopLoss: price * (1 - stopPct / 100),
    takeProfit: price * (1 + targetPct / 100),
  };
  return verdict;
}

export interface StopHit {
  hit: "stop-loss" | "take-profit";
  /** Where the exit is expected to fill: the level, or the open when the price gapped through it. */
  price: number;
}

/**
 * Whether a candle touched a position's stop or target. A candle that opens beyond a level has
 * gapped through it and exits at the open. When one candle touches both, the stop is assumed to
 * come first: the candle alone cannot tell, and assuming the worse is the safe side.
 */
export function checkStops(position: Position, candle: Pick<Candle, "open" | "high" | "low">): StopHit | undefined {
  if (candle.open <= position.stopLoss) return { hit: "stop-loss", price: candle.open };
  if (candle.low <= position.stopLoss) return { hit: "stop-loss", price: position.stopLoss };
  if (candle.open >= position.takeProfit) return { hit: "take-profit", price: candle.open };
  if (candle.high >= position.takeProfit) return { hit: "take-profit", price: position.takeProfit };
  return undefined;
}

/**
 * Moves a trailing stop up after a candle: the stop follows the highest price since entry at the
 * position's distance, and never moves down. Ratcheted after the candle's own stop check, so a
 * candle is never judged against a stop its own high produced (the order inside it is unknown).
 */
export function trailStop(position: Position, candle: Pick<Candle, "high">): { stopLoss: number; highWater: number } | undefined {
  const pct = position.trailingStopPct;
  if (!pct || pct <= 0) return undefined;
  const highWater = Math.max(position.highWater ?? position.entryPrice, candle.high);
  const stopLoss = Math.max(position.stopLoss, highWater * (1 - pct / 100));
  if (stopLoss === position.stopLoss && highWater === position.highWater) return undefined;
  return { stopLoss, highWater };
}

export interface Breach {
  rule: "daily-loss" | "max-exposure" | "max-var";
  message: string;
}

/**
 * Limits broken by the market itself, not by an order: a fall through the daily loss limit,
 * exposure grown past its cap by rising prices, VaR grown past its cap by volatility. New buys
 * are refused by checkRisk while they last; the caller alerts.
 */
export function marketBreaches(portfolio: Portfolio, limits: RiskLimits, returns?: Record<string, ReturnSeries>): Breach[] {
  const out: Breach[] = [];
  const eq = equity(portfolio);
  if (eq <= 0) return out;
  if (portfolio.dayStartEquity > 0) {
    const lossPct = ((portfolio.dayStartEquity - eq) / portfolio.dayStartEquity) * 100;
    if (lossPct >= limits.dailyLossLimitPct) {
      out.push({ rule: "daily-loss", message: `Today's loss is ${lossPct.toFixed(2)}% of the day's starting equity, over the ${fmt(limits.dailyLossLimitPct)}% limit: no new buys until tomorrow (UTC).` });
    }
  }
  const exposurePct = (exposure(portfolio) / eq) * 100;
  const cap = Math.min(limits.maxExposurePct, limits.maxLeverage * 100);
  if (exposurePct > cap + 1e-9) {
    out.push({ rule: "max-exposure", message: `Exposure has grown to ${exposurePct.toFixed(1)}% of equity, over the ${fmt(cap)}% cap: no new buys until it is back under.` });
  }
  if (limits.maxVar95Pct !== undefined && returns) {
    const notionals: Record<string, number> = {};
    for (const p of portfolio.positions) notionals[p.symbol] = p.qty * (portfolio.prices[p.symbol] ?? p.entryPrice);
    const varPct = (portfolioVar(notionals, returns) / eq) * 100;
    if (varPct > limits.maxVar95Pct) {
      out.push({ rule: "max-var", message: `The one-candle 95% VaR of the positions is ${varPct.toFixed(2)}% of equity, over the ${fmt(limits.maxVar95Pct)}% cap: no new buys until it is back under.` });
    }
  }
  return out;
}

/** The limits in words, for /status. */
export function describeLimits(l: RiskLimits): string[] {
  return [
    `position ≤ ${fmt(l.maxPositionPct)}% of equity · exposure ≤ ${fmt(l.maxExposurePct)}% · leverage ≤ ${fmt(l.maxLeverage)}x · ≤ ${l.maxOpenPositions} open positions`,
    `daily loss limit ${fmt(l.dailyLossLimitPct)}% · stop loss ${fmt(l.defaultStopLossPct)}% (widest ${fmt(l.maxStopLossPct)}%) · take profit ${fmt(l.defaultTakeProfitPct)}% · minimum order ${fmt(l.minOrderNotional)}`,
    `trailing stop ${l.trailingStopPct ? `${fmt(l.trailingStopPct)}%` : "off"} · cool-down after a loss ${l.cooldownAfterLossMinutes ? `${fmt(l.cooldownAfterLossMinutes)} min` : "off"} · VaR(95%, one candle) ≤ ${l.maxVar95Pct !== undefined ? `${fmt(l.maxVar95Pct)}% of equity` : "off"}`,
  ];
}
