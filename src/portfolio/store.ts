import type { Redis } from "ioredis";
import type { Order, Position } from "../domain/types.js";
import type { ExchangeOrder } from "../exchange/types.js";

/**
 * How much of an order has been booked: a partial fill can grow, and a truer read of the same fill
 * (its trades listed at last) can change it either way; only the difference is booked.
 */
interface Applied {
  qty: number;
  notional: number;
  fee: number;
  /** The part of the fee paid in a third asset (BNB), in the quote. */
  other?: number;
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

/**
 * One order's fill as the books hold it: what `applyFill` booked for that order id so far, summed
 * (a partial fill that grew, a truer read of the same fill). The trade history (/trades, the CSV
 * export, the period tables) is read from these, so it agrees with the realized P&L to the cent.
 */
export interface FillRecord {
  /** The exchange's order id: a trade's id. */
  orderId: string;
  /** Ours: the decision id, or manual:<id> for /trade, or an exit's id. */
  clientOrderId: string;
  symbol: string;
  side: "buy" | "sell";
  /** The order's time (epoch ms). */
  time: number;
  qty: number;
  /** Average fill price, in the quote. */
  price: number;
  /** The whole fee, in the quote (a third asset's fee converted). */
  fee: number;
  /** The part of `fee` paid in a third asset (BNB), already in `realized`. */
  feeOther: number;
  /** The P&L this order realized, as booked (a sell's gain on the average entry net of its fee; a buy's third-asset fee). */
  realized: number;
}

export interface FillOptions {
  /** Exits for a buy that opens (or replaces those of) a position. */
  exits?: { stopLoss: number; takeProfit: number; trailingStopPct?: number };
  /** The sell closes the position: what is left (dust under the exchange's step) is not a position. */
  closing?: boolean;
  /** Only correct what an earlier call booked for this order: an order never booked is left to its owner. */
  correction?: boolean;
}

// A new fill in the time index. Fills of the same millisecond (a clock that stands still, a
// paper exchange) keep the order they were booked in: the member starts with a booking number.
const INDEX_FILL = `local seq = redis.call('INCR', KEYS[2]) redis.call('ZADD', KEYS[1], ARGV[1], string.format('%012d', seq) .. ':' .. ARGV[2])`;
const orderIdOf = (member: string) => member.slice(member.indexOf(":") + 1);

const DAY_START = `redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') return redis.call('GET', KEYS[1])`;

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
    // Set-if-new and read in one script: one round trip on every decision instead of two.
    return Number(await this.redis.eval(DAY_START, 1, `${this.prefix}day-start:${day}`, String(current), String(8 * 86_400)));
  }

  /**
   * Books a filled (or partly filled) order. A buy opens or adds to the position (average entry;
   * the new exits replace the old ones when given). A sell reduces it and realizes P&L net of the
   * sell's fee. A fee paid in a third asset (BNB) leaves neither the quote nor the base balance, so
   * a buy's such fee is realized as a cost at once. Called again for the same order with a truer
   * fill (a partial fill grown, trades listed at last), it books the difference, in either
   * direction; with the same fill it changes nothing. Returns the P&L realized by this call.
   */
  async applyFill(order: Order, options: FillOptions | FillOptions["exits"] = {}): Promise<{ realizedPnl: number; applied: boolean; closed?: ClosedTrade }> {
    const opts: FillOptions = options && "stopLoss" in options ? { exits: options } : ((options ?? {}) as FillOptions);
    const nothing = { realizedPnl: 0, applied: false };
    const marker = `${this.prefix}applied:${order.id}`;
    // The marker and the position read together (one round trip); the position is used only for a new fill.
    const [appliedRaw, heldRaw, fillRaw] = await Promise.all([
      this.redis.get(marker),
      this.redis.hget(`${this.prefix}positions`, order.symbol),
      this.redis.hget(`${this.prefix}fills`, order.id),
    ]);
    const before = parseApplied(appliedRaw);
    if (before === "all") return nothing;
    if (before.qty <= 0 && (order.filledQty <= 0 || opts.correction)) return nothing;
    // An executed quantity never falls back to nothing: such a read is broken, not truer.
    if (order.filledQty <= 0) return nothing;
    const other = Math.max(0, (order as ExchangeOrder).feeOther ?? 0);
    const now: Applied = { qty: Math.max(0, order.filledQty), notional: Math.max(0, order.filledQty) * order.avgPrice, fee: order.fee, other };
    const qty = now.qty - before.qty;
    const notional = now.notional - before.notional;
    const fee = now.fee - before.fee;
    const otherFee = other - (before.other ?? 0);
    // Float noise on a re-read of the same fill is not a new fill.
    const qtyMoved = Math.abs(qty) > Math.max(now.qty, before.qty) * 1e-12;
    const feeMoved = Math.abs(fee) > Math.max(Math.abs(now.fee), 1e-9) * 1e-9 || Math.abs(otherFee) > Math.max(other, 1e-9) * 1e-9;
    if (!qtyMoved && !feeMoved) return nothing;

    const held = heldRaw ? (JSON.parse(heldRaw) as Position) : undefined;
    let next: Position | undefined = held;
    let realized = 0;
    let closed: ClosedTrade | undefined;
    if (order.side === "buy") {
      realized = -otherFee;
      if (qtyMoved && qty > 0 && (held || before.qty <= 0)) {
        const price = notional / qty;
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
      } else if (qtyMoved && qty < 0 && held) {
        // Booked more than arrived (the fee came out of the base): the position shrinks to the truth.
        const left = held.qty + qty;
        next = left > held.qty * 1e-9 ? { ...held, qty: left, entryPrice: (held.qty * held.entryPrice + notional) / left } : undefined;
      }
      // Otherwise the position this buy opened is closed already: what is left of it is dust, not a position.
    } else if (held || before.qty > 0) {
      const price = qty !== 0 ? notional / qty : order.avgPrice;
      if (qtyMoved && qty > 0 && held) {
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
      } else if (qtyMoved && qty < 0 && held) {
        // Sold less than booked: the rest is held again, and its P&L was not realized.
        realized = qty * (price - held.entryPrice) - fee;
        next = { ...held, qty: held.qty - qty };
      } else {
        // Only the fee is truer now.
        realized = -fee;
      }
    }
    const tx = this.redis.multi().set(marker, JSON.stringify(now), "EX", 90 * 86_400);
    // The trade history: this order's fill as booked, in the same transaction as the booking.
    const earlierFill = fillRaw ? (JSON.parse(fillRaw) as FillRecord) : undefined;
    const fill: FillRecord = {
      orderId: order.id,
      clientOrderId: order.clientOrderId,
      symbol: order.symbol,
      side: order.side,
      time: earlierFill?.time ?? order.time,
      qty: now.qty,
      price: now.qty > 0 ? now.notional / now.qty : order.avgPrice,
      fee: now.fee,
      feeOther: other,
      realized: (earlierFill?.realized ?? 0) + realized,
    };
    tx.hset(`${this.prefix}fills`, order.id, JSON.stringify(fill));
    if (!earlierFill) tx.eval(INDEX_FILL, 2, `${this.prefix}fill-times`, `${this.prefix}fill-seq`, String(fill.time), order.id);
    if (next) tx.hset(`${this.prefix}positions`, order.symbol, JSON.stringify(next));
    else tx.hdel(`${this.prefix}positions`, order.symbol);
    if (realized !== 0) tx.incrbyfloat(`${this.prefix}realized`, realized);
    if (next && realized !== 0) tx.hincrbyfloat(`${this.prefix}round-pnl`, order.symbol, realized);
    if (closed) {
      tx.hdel(`${this.prefix}round-pnl`, order.symbol);
      tx.lpush(`${this.prefix}closed`, JSON.stringify(closed)).ltrim(`${this.prefix}closed`, 0, 9999);
      if (closed.pnl < 0) tx.hset(`${this.prefix}last-loss`, closed.symbol, String(closed.time));
    }
    await tx.exec();
    return { realizedPnl: realized, applied: true, ...(closed ? { closed } : {}) };
  }

  /** Whether a fill of this exchange order id is on the books. */
  async isBooked(orderId: string): Promise<boolean> {
    return (await this.redis.exists(`${this.prefix}applied:${orderId}`)) === 1;
  }

  /** Closed round trips, newest first. */
  async closedTrades(limit = 1000): Promise<ClosedTrade[]> {
    const raws = await this.redis.lrange(`${this.prefix}closed`, 0, Math.max(0, limit - 1));
    return raws.map((r) => JSON.parse(r) as ClosedTrade);
  }

  /** The fills booked from `from` to `to` (order time), oldest first. */
  async fills(from = 0, to = Number.MAX_SAFE_INTEGER): Promise<FillRecord[]> {
    return this.fillsOf(await this.redis.zrangebyscore(`${this.prefix}fill-times`, from, to));
  }

  /** The latest `limit` fills, newest first. */
  async recentFills(limit: number): Promise<FillRecord[]> {
    return this.fillsOf(await this.redis.zrevrange(`${this.prefix}fill-times`, 0, Math.max(0, limit - 1)));
  }

  private async fillsOf(ids: string[]): Promise<FillRecord[]> {
    if (ids.length === 0) return [];
    const raws = await this.redis.hmget(`${this.prefix}fills`, ...ids.map(orderIdOf));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as FillRecord);
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
  if (raw === null) return { qty: 0, notional: 0, fee: 0, other: 0 };
  // Markers written before partial fills were tracked meant "booked in full".
  if (raw === "1") return "all";
  return JSON.parse(raw) as Applied;
}
