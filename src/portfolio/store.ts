import type { Redis } from "ioredis";
import type { Order, Position } from "../domain/types.js";

/**
 * Open positions (with their stop loss and take profit), realized P&L and each day's starting
 * equity, in Redis. Callers hold the trading lock (src/redis/lock.ts) around read-modify-write, so
 * two fills never interleave; each fill is applied once, keyed on the order id, so a retried job
 * that finds its order again changes nothing.
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
   * sell's fee. Returns the P&L realized by this fill (0 when it was already applied).
   */
  async applyFill(order: Order, exits?: { stopLoss: number; takeProfit: number }): Promise<{ realizedPnl: number; applied: boolean }> {
    if (order.filledQty <= 0) return { realizedPnl: 0, applied: false };
    const marker = `${this.prefix}applied:${order.id}`;
    if (await this.redis.exists(marker)) return { realizedPnl: 0, applied: false };
    const held = await this.position(order.symbol);
    let next: Position | undefined;
    let realized = 0;
    if (order.side === "buy") {
      const qty = (held?.qty ?? 0) + order.filledQty;
      const entryPrice = held ? (held.qty * held.entryPrice + order.filledQty * order.avgPrice) / qty : order.avgPrice;
      const levels = exits ?? (held ? { stopLoss: held.stopLoss, takeProfit: held.takeProfit } : undefined);
      // Every position is protected: a buy that would open one without exits is a bug upstream.
      if (!levels) throw new Error(`applyFill: a new ${order.symbol} position needs a stop loss and take profit`);
      next = { symbol: order.symbol, side: "long", qty, entryPrice, ...levels, openedAt: held?.openedAt ?? order.time };
    } else if (held) {
      const sold = Math.min(order.filledQty, held.qty);
      realized = sold * (order.avgPrice - held.entryPrice) - order.fee;
      const left = held.qty - sold;
      // Float dust left by a full close is not a position.
      next = left > held.qty * 1e-9 ? { ...held, qty: left } : undefined;
    }
    const tx = this.redis.multi().set(marker, "1", "EX", 30 * 86_400);
    if (next) tx.hset(`${this.prefix}positions`, order.symbol, JSON.stringify(next));
    else tx.hdel(`${this.prefix}positions`, order.symbol);
    if (realized !== 0) tx.incrbyfloat(`${this.prefix}realized`, realized);
    await tx.exec();
    return { realizedPnl: realized, applied: true };
  }
}
