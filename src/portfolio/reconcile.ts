// Positions as the agent books them against what the exchange says it holds. The comparison is
// pure: the caller fetches balances and open orders and decides whom to tell.
import type { Redis } from "ioredis";
import type { Order, Position } from "../domain/types.js";
import { splitSymbol } from "../exchange/types.js";

export interface Drift {
  symbol: string;
  kind: "missing" | "size" | "untracked" | "unknown-order";
  /** What the agent's books say (base asset), and what the exchange holds. */
  booked: number;
  held: number;
  message: string;
}

export interface ReconcileInput {
  positions: Position[];
  /** Free plus locked, by asset. */
  holdings: Record<string, number>;
  openOrders: Order[];
  /** Client order ids this agent placed (its own open orders are not drift). */
  ownOrderIds: Set<string>;
  symbols: string[];
  prices: Record<string, number>;
  /** Differences worth less than this (quote) are dust, e.g. fees taken in the base asset. */
  dustNotional: number;
  /** Relative size difference tolerated (fees, rounding to the exchange's step). */
  tolerance?: number;
}

const fmtQty = (n: number) => (Math.abs(n) >= 1 ? n.toFixed(4) : n.toPrecision(4));

export function reconcile(input: ReconcileInput): Drift[] {
  const drifts: Drift[] = [];
  const tolerance = input.tolerance ?? 0.01;
  const symbols = [...new Set([...input.symbols, ...input.positions.map((p) => p.symbol)])];
  for (const symbol of symbols) {
    const [base] = splitSymbol(symbol);
    const booked = input.positions.filter((p) => p.symbol === symbol).reduce((a, p) => a + p.qty, 0);
    const held = input.holdings[base] ?? 0;
    const price = input.prices[symbol] ?? input.positions.find((p) => p.symbol === symbol)?.entryPrice ?? 0;
    const diff = held - booked;
    const diffValue = Math.abs(diff) * price;
    if (diffValue < input.dustNotional || Math.abs(diff) <= Math.max(booked, held) * tolerance) continue;
    if (booked > 0 && held <= booked * tolerance) {
      drifts.push({ symbol, kind: "missing", booked, held, message: `${symbol}: the books hold ${fmtQty(booked)} ${base}, the exchange holds ${fmtQty(held)} (sold or moved outside the agent?)` });
    } else if (booked === 0) {
      drifts.push({ symbol, kind: "untracked", booked, held, message: `${symbol}: the exchange holds ${fmtQty(held)} ${base} (about ${diffValue.toFixed(2)}) that the books do not; it is not managed (no stop loss)` });
    } else {
      drifts.push({ symbol, kind: "size", booked, held, message: `${symbol}: the books hold ${fmtQty(booked)} ${base}, the exchange ${fmtQty(held)} (${diff > 0 ? "+" : ""}${fmtQty(diff)}, about ${diffValue.toFixed(2)})` });
    }
  }
  for (const o of input.openOrders) {
    if (input.ownOrderIds.has(o.clientOrderId)) continue;
    drifts.push({ symbol: o.symbol, kind: "unknown-order", booked: 0, held: o.qty, message: `${o.symbol}: an open ${o.side} order for ${fmtQty(o.qty)} (id ${o.id}) that this agent did not place` });
  }
  return drifts;
}

export interface ReconcileReport {
  time: number;
  /** The differences nothing explains: reported to the team. */
  drifts: Drift[];
  /** Differences on a symbol with an order in flight or being looked up: the lookups settle them. */
  explained?: { symbol: string; why: string }[];
}

/** The last reconciliation, and whether its result changed since the run before it. */
export class ReconciliationLog {
  constructor(private readonly redis: Redis, private readonly key = "monitor:reconcile") {}

  /** Stores the report; returns the signature of the run before it (null on the first run). */
  async record(report: ReconcileReport, signature: string): Promise<string | null> {
    const previous = await this.redis.getset(`${this.key}:signature`, signature);
    await this.redis.set(this.key, JSON.stringify(report));
    return previous;
  }

  async last(): Promise<ReconcileReport | undefined> {
    const raw = await this.redis.get(this.key);
    return raw ? (JSON.parse(raw) as ReconcileReport) : undefined;
  }
}
