import type { Redis } from "ioredis";
import type { Order, Position } from "../domain/types.js";

/** How much of an order has been booked: a partial fill can grow, and only the growth is new. */
interface Applied {
  qty: number;
  notional: number;
  fee: number;
}

export interface ClosedTrade {
  symbol: string;
  /** Time of the exit fill. */
  time: number;
  qty: number;
  entryPrice: number;
  exitPrice: number;
  /** Net of the exit fee. */
  pnl: number;
}

export interface FillOptions {
  /** Exits for a buy that opens (or replaces those of) a position. */
  exits?: { stopLoss: number; takeProfit: number; trailingStopPct?: number };
  /** The sell closes the position: what is left (dust under the exchange's step) is not a position. */
  closing?: boolean;
}

/**
 * Open positions (with their stop loss and take profit), realized P&L, closed trades, each day's
 * starting equity and the equity curve, in Redis. Callers hold the trading lock
 * (src/redis/lock.ts) around read-modify-write, so two fills never interleave; each fill is
 * booked once, keyed on the order id and the quantity already booked, so a retried job that finds
 * its order again changes nothing, and a partial fill that grows books only the growth.
 */
export class PortfolioStore {
  constructor(private readonly redis: Redis, private readonly prefix = "portfolio:") {}

  async positions(): Promise<Position[]> {
    const raw = await this.redis.hgetall(`${this.prefix}positions`);
    return Object.values(raw)
      .map((v) => JSON.parse(v) as Position)
      .sort((a, b) => a.openedAt - b.openedAt || a.symbol.localeCompare(b.symbol));
  }

  async position(symbol: string): Promise<Position | undefined> {
    const raw = await this.redis.hget(`${this.prefix}positions`, symbol);
    return raw ? (JSON.parse(raw) as Position) : undefined;
  }

  /** Replaces a position's exits (a trailing stop moved up); the quantity is left alone. */
  async updateExits(symbol: string, change: Pick<Position, "stopLoss"> & Partial<Pick<Position, "highWater" | "takeProfit">>): Promise<void> {
    const held = await this.position(symbol);
    if (!held) return;
    await this.redis.hset(`${this.prefix}positions`, symbol, JSON.stringify({ ...held, ...change }));
  }

  /** Books a position found on the exchange but not here (reconciliation), or corrects its size. */
  async adopt(position: Position): Promise<void> {
    await this.redis.hset(`${this.prefix}positions`, position.symbol, JSON.stringify(position));
  }

  async realizedPnl(): Promise<number> {
    return Number((await this.redis.get(`${this.prefix}realized`)) ?? 0);
  }

  /** The equity at the first look of a UTC day; `current` becomes it when the day is new. */
  async dayStartEquity(day: string, current: number): Promise<number> {
    const key = `${this.prefix}day-start:${day}`;
    await this.redis.set(key, String(current), "EX", 8 * 86_400, "NX");
    return Number(await this.redis.get(key));
  }

  /**
   * Books a filled (or partly filled) order. A buy opens or adds to the position (average entry;
   * the new exits replace the old ones when given). A sell reduces it and realizes P&L net of the
   * sell's fee. Returns the P&L realized by this call (0 when nothing new was filled).
   */
  async applyFill(order: Order, options: FillOptions | FillOptions["exits"] = {}): Promise<{ realizedPnl: number; applied: boolean; closed?: ClosedTrade }> {
    const opts: FillOptions = options && "stopLoss" in options ? { exits: options } : ((options ?? {}) as FillOptions);
    if (order.filledQty <= 0) return { realizedPnl: 0, applied: false };
    const marker = `${this.prefix}applied:${order.id}`;
    const before = parseApplied(await this.redis.get(marker));
    if (before === "all") return { realizedPnl: 0, applied: false };
    const qty = order.filledQty - before.qty;
    // Float noise on a re-read of the same fill is not a new fill.
    if (qty <= order.filledQty * 1e-12) return { realizedPnl: 0, applied: false };
    const notional = order.filledQty * order.avgPrice - before.notional;
    const price = notional / qty;
    const fee = Math.max(0, order.fee - before.fee);
    const now: Applied = { qty: order.filledQty, notional: order.filledQty * order.avgPrice, fee: order.fee };

    const held = await this.position(order.symbol);
    let next: Position | undefined;
    let realized = 0;
    let closed: ClosedTrade | undefined;
    if (order.side === "buy") {
      const total = (held?.qty ?? 0) + qty;
      const entryPrice = held ? (held.qty * held.entryPrice + qty * price) / total : price;
      const levels = opts.exits ?? (held ? { stopLoss: held.stopLoss, takeProfit: held.takeProfit, trailingStopPct: held.trailingStopPct } : undefined);
      // Every position is protected: a buy that would open one without exits is a bug upstream.
      if (!levels) throw new Error(`applyFill: a new ${order.symbol} position needs a stop loss and take profit`);
      const { trailingStopPct, ...fixed } = levels;
      next = {
        symbol: order.symbol,
        side: "long",
        qty: total,
        entryPrice,
        ...fixed,
        openedAt: held?.openedAt ?? order.time,
        ...(trailingStopPct ? { trailingStopPct, highWater: Math.max(held?.highWater ?? 0, price) } : {}),
      };
    } else if (held) {
      const sold = Math.min(qty, held.qty);
      realized = sold * (price - held.entryPrice) - fee;
      const left = held.qty - sold;
      // Float dust left by a full close is not a position, nor is what a closing sell leaves.
      next = left > held.qty * 1e-9 && !opts.closing ? { ...held, qty: left } : undefined;
      if (!next) {
        // The round trip's P&L includes earlier partial sells of the same position.
        const earlier = Number((await this.redis.hget(`${this.prefix}round-pnl`, order.symbol)) ?? 0);
        closed = { symbol: order.symbol, time: order.time, qty: held.qty, entryPrice: held.entryPrice, exitPrice: price, pnl: earlier + realized };
      }
    }
    const tx = this.redis.multi().set(marker, JSON.stringify(now), "EX", 90 * 86_400);
    if (next) tx.hset(`${this.prefix}positions`, order.symbol, JSON.stringify(next));
    else tx.hdel(`${this.prefix}positions`, order.symbol);
    if (realized !== 0) tx.incrbyfloat(`${this.prefix}realized`, realized);
    if (order.side === "sell" && next) tx.hincrbyfloat(`${this.prefix}round-pnl`, order.symbol, realized);
    if (closed) {
      tx.hdel(`${this.prefix}round-pnl`, order.symbol);
      tx.lpush(`${this.prefix}closed`, JSON.stringify(closed)).ltrim(`${this.prefix}closed`, 0, 9999);
      if (closed.pnl < 0) tx.hset(`${this.prefix}last-loss`, closed.symbol, String(closed.time));
    }
    await tx.exec();
    return { realizedPnl: realized, applied: true, ...(closed ? { closed } : {}) };
  }

  /** Closed round trips, newest first. */
  async closedTrades(limit = 1000): Promise<ClosedTrade[]> {
    const raws = await this.redis.lrange(`${this.prefix}closed`, 0, Math.max(0, limit - 1));
    return raws.map((r) => JSON.parse(r) as ClosedTrade);
  }

  /** When each symbol last closed at a loss (epoch ms), for the cool-down rule. */
  async lastLosses(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(`${this.prefix}last-loss`);
    return Object.fromEntries(Object.entries(raw).map(([s, t]) => [s, Number(t)]));
  }

  /**
   * Which exit attempt a position is on. An exit order keeps its client id across retries of the
   * monitor (so a lost reply never sells twice); after a rejection or a partial fill the next
   * attempt gets a new id, or the position could never be closed.
   */
  async exitAttempt(position: Pick<Position, "symbol" | "openedAt">): Promise<number> {
    return Number((await this.redis.hget(`${this.prefix}exit-attempts`, `${position.symbol}:${position.openedAt}`)) ?? 0);
  }

  async nextExitAttempt(position: Pick<Position, "symbol" | "openedAt">): Promise<void> {
    await this.redis.hincrby(`${this.prefix}exit-attempts`, `${position.symbol}:${position.openedAt}`, 1);
  }

  /** True the first time a limit is reported broken on a day (so it is announced once). */
  async markBreach(rule: string, day: string): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}breach:${rule}:${day}`, "1", "EX", 3 * 86_400, "NX")) === "OK";
  }

  /** One point of the equity curve; a point at the same time replaces the earlier one. */
  async recordEquity(time: number, equity: number): Promise<void> {
    const key = `${this.prefix}equity`;
    await this.redis
      .multi()
      .zremrangebyscore(key, time, time)
      .zadd(key, time, `${time}:${equity}`)
      // About a year of points at one per 5 minutes is plenty for a chart.
      .zremrangebyrank(key, 0, -100_001)
      .exec();
  }

  async equityCurve(from = 0, to = Number.MAX_SAFE_INTEGER): Promise<{ time: number; equity: number }[]> {
    const raws = await this.redis.zrangebyscore(`${this.prefix}equity`, from, to);
    return raws.map((r) => {
      const [t, e] = r.split(":");
      return { time: Number(t), equity: Number(e) };
    });
  }
}

function parseApplied(raw: string | null): Applied | "all" {
  if (raw === null) return { qty: 0, notional: 0, fee: 0 };
  // Markers written before partial fills were tracked meant "booked in full".
  if (raw === "1") return "all";
  return JSON.parse(raw) as Applied;
}
