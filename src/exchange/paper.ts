import type { Redis } from "ioredis";
import type { Candle, Order, OrderRequest } from "../domain/types.js";
import { splitSymbol, type Exchange, type PlaceOrderRequest } from "./types.js";

export interface PaperExchangeOptions {
  redis: Redis;
  /** The price an order fills at before slippage: the current candle's price. */
  prices: (symbol: string) => Promise<number>;
  /** Fraction of notional, e.g. 0.001. */
  feeRate: number;
  slippageBps: number;
  /** Starting quote balance (USDT), seeded once. */
  startingCash: number;
  quote?: string;
  clock?: () => number;
  prefix?: string;
  /**
   * The candle forming now, when the market has one: a resting limit order placed before it
   * opened fills when its low (a buy) or high (a sell) crossed the limit. Without it, or for an
   * order placed during the candle, only the price now counts.
   */
  candle?: (symbol: string) => Promise<Candle> | Candle;
}

// One script so that the dedupe on the client order id, the balance check and the balance change
// happen as one step: two workers placing the same order, or two orders against the same cash,
// cannot both pass. Numbers are written with 17 significant digits so no precision is lost.
const PLACE = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('HSETNX', KEYS[2], ARGV[11], ARGV[12])
local side, qty, price, feeRate = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local base, quote = ARGV[5], ARGV[6]
local cash = tonumber(redis.call('HGET', KEYS[2], quote) or '0')
local held = tonumber(redis.call('HGET', KEYS[2], base) or '0')
local f = function(x) return string.format('%.17g', x) end
local status, reason, filled, fee = 'filled', '', qty, 0
if side == 'buy' then
  fee = qty * price * feeRate
  if qty * price + fee > cash * (1 + 1e-12) then
    status, reason, filled, fee = 'rejected', 'insufficient ' .. quote .. ' balance (' .. f(cash) .. ' free)', 0, 0
  else
    redis.call('HINCRBYFLOAT', KEYS[2], quote, f(-(qty * price + fee)))
    redis.call('HINCRBYFLOAT', KEYS[2], base, f(qty))
  end
else
  -- A float hair over the holding is the same holding; more than that is a real shortfall.
  if qty > held * (1 + 1e-9) then
    status, reason, filled, fee = 'rejected', 'insufficient ' .. base .. ' balance (' .. f(held) .. ' free)', 0, 0
  else
    filled = math.min(qty, held)
    fee = filled * price * feeRate
    redis.call('HINCRBYFLOAT', KEYS[2], base, f(-filled))
    redis.call('HINCRBYFLOAT', KEYS[2], quote, f(filled * price - fee))
  end
end
local order = '{"id":' .. cjson.encode(ARGV[7]) .. ',"clientOrderId":' .. cjson.encode(ARGV[8]) ..
  ',"symbol":' .. cjson.encode(ARGV[9]) .. ',"side":"' .. side .. '","qty":' .. f(qty) ..
  ',"filledQty":' .. f(filled) .. ',"avgPrice":' .. f(status == 'filled' and price or 0) ..
  ',"fee":' .. f(fee) .. ',"status":"' .. status .. '"' ..
  (reason ~= '' and (',"reason":' .. cjson.encode(reason)) or '') .. ',"time":' .. ARGV[10] .. '}'
redis.call('SET', KEYS[1], order)
redis.call('LPUSH', KEYS[3], order)
redis.call('LTRIM', KEYS[3], 0, 999)
return order
`;

const SEEDED_BALANCES = `redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) return redis.call('HGETALL', KEYS[1])`;

// A limit order that rests: what it may spend is locked at once (a buy's quote at the limit price
// plus the fee, a sell's base), as an exchange does, so the free balance never counts it twice.
// KEYS: order, balances, open set. ARGV: side, qty, limit, feeRate, base, quote, id, clientId,
// symbol, time, seed asset, seed amount.
const REST = `
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('HSETNX', KEYS[2], ARGV[11], ARGV[12])
local side, qty, limit, feeRate = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local base, quote = ARGV[5], ARGV[6]
local f = function(x) return string.format('%.17g', x) end
local status, reason, locked = 'open', '', 0
if side == 'buy' then
  locked = qty * limit * (1 + feeRate)
  local cash = tonumber(redis.call('HGET', KEYS[2], quote) or '0')
  if locked > cash * (1 + 1e-12) then
    status, reason, locked = 'rejected', 'insufficient ' .. quote .. ' balance (' .. f(cash) .. ' free)', 0
  else
    redis.call('HINCRBYFLOAT', KEYS[2], quote, f(-locked))
  end
else
  local held = tonumber(redis.call('HGET', KEYS[2], base) or '0')
  if qty > held * (1 + 1e-9) then
    status, reason = 'rejected', 'insufficient ' .. base .. ' balance (' .. f(held) .. ' free)'
  else
    locked = math.min(qty, held)
    redis.call('HINCRBYFLOAT', KEYS[2], base, f(-locked))
  end
end
local order = '{"id":' .. cjson.encode(ARGV[7]) .. ',"clientOrderId":' .. cjson.encode(ARGV[8]) ..
  ',"symbol":' .. cjson.encode(ARGV[9]) .. ',"side":"' .. side .. '","qty":' .. f(qty) ..
  ',"filledQty":0,"avgPrice":0,"fee":0,"status":"' .. status .. '"' ..
  (reason ~= '' and (',"reason":' .. cjson.encode(reason)) or '') .. ',"time":' .. ARGV[10] ..
  ',"limitPrice":' .. f(limit) .. ',"locked":' .. f(locked) .. '}'
redis.call('SET', KEYS[1], order)
if status == 'open' then redis.call('SADD', KEYS[3], ARGV[8]) end
return order
`;

// Fills a resting order at ARGV[1] (or cancels it when ARGV[1] is 'cancel'), once: an order no
// longer open is returned as it is, so a fill and a cancel racing each other settle it once.
// KEYS: order, balances, open set, trades. ARGV: price or 'cancel', feeRate, base, quote, time.
const SETTLE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local o = cjson.decode(raw)
if o.status ~= 'open' then return raw end
local f = function(x) return string.format('%.17g', x) end
local base, quote = ARGV[3], ARGV[4]
if ARGV[1] == 'cancel' then
  redis.call('HINCRBYFLOAT', KEYS[2], o.side == 'buy' and quote or base, f(o.locked))
  o.status, o.reason = 'rejected', 'cancelled'
else
  local price, feeRate = tonumber(ARGV[1]), tonumber(ARGV[2])
  local fee = o.qty * price * feeRate
  if o.side == 'buy' then
    redis.call('HINCRBYFLOAT', KEYS[2], quote, f(o.locked - (o.qty * price + fee)))
    redis.call('HINCRBYFLOAT', KEYS[2], base, f(o.qty))
  else
    redis.call('HINCRBYFLOAT', KEYS[2], quote, f(o.qty * price - fee))
  end
  o.status, o.filledQty, o.avgPrice, o.fee = 'filled', o.qty, price, fee
end
o.locked, o.time = 0, tonumber(ARGV[5])
local out = '{"id":' .. cjson.encode(o.id) .. ',"clientOrderId":' .. cjson.encode(o.clientOrderId) ..
  ',"symbol":' .. cjson.encode(o.symbol) .. ',"side":"' .. o.side .. '","qty":' .. f(o.qty) ..
  ',"filledQty":' .. f(o.filledQty) .. ',"avgPrice":' .. f(o.avgPrice) .. ',"fee":' .. f(o.fee) ..
  ',"status":"' .. o.status .. '"' .. (o.reason and (',"reason":' .. cjson.encode(o.reason)) or '') ..
  ',"time":' .. ARGV[5] .. ',"limitPrice":' .. f(o.limitPrice) .. ',"locked":0}'
redis.call('SET', KEYS[1], out)
redis.call('SREM', KEYS[3], o.clientOrderId)
if o.status == 'filled' then
  redis.call('LPUSH', KEYS[4], out)
  redis.call('LTRIM', KEYS[4], 0, 999)
end
return out
`;

/** A resting paper order as stored: the domain order, its limit price and what it locks. */
interface RestingOrder extends Order {
  limitPrice: number;
  locked: number;
}

/**
 * A simulated exchange in Redis: market orders fill at the current price, moved against the
 * trader by the slippage, less the fee. A limit order the market has already crossed fills at
 * once as a taker (at the market price with slippage, never worse than its limit); any other rests,
 * with its funds locked, until `matchOpenOrders` sees the price cross it, and then fills at its
 * limit (or at the candle's open when the market gapped through it). Balances and orders survive
 * restarts.
 */
export class PaperExchange implements Exchange {
  readonly kind = "paper" as const;
  readonly name = "paper";
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly quote: string;
  private readonly clock: () => number;

  constructor(private readonly opts: PaperExchangeOptions) {
    this.redis = opts.redis;
    this.prefix = opts.prefix ?? "paper:";
    this.quote = opts.quote ?? "USDT";
    this.clock = opts.clock ?? Date.now;
  }

  private get balanceKey() {
    return `${this.prefix}balances`;
  }

  async balances(): Promise<Record<string, number>> {
    // Seeded and read in one script: every decision reads the balances, and this is one round trip.
    const flat = (await this.redis.eval(SEEDED_BALANCES, 1, this.balanceKey, this.quote, String(this.opts.startingCash))) as string[];
    const out: Record<string, number> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = Number(flat[i + 1]);
    return out;
  }

  async placeOrder(req: PlaceOrderRequest): Promise<Order> {
    if (req.type === "limit" || (req.type === undefined && req.price !== undefined)) return this.placeLimit(req);
    return this.placeAtMarket(req);
  }

  private async placeAtMarket(req: OrderRequest, limit?: number): Promise<Order> {
    // The script finds an order placed before under the same id, and seeds the cash, itself; only
    // a refusal made here must look for that order first.
    const [base, quote] = splitSymbol(req.symbol);
    const now = this.clock();
    const id = `paper-${now}-${Math.random().toString(36).slice(2, 10)}`;
    if (!(req.qty > 0) || !Number.isFinite(req.qty)) {
      return (await this.findOrder(req.clientOrderId)) ?? this.reject(req, id, now, `quantity must be positive, got ${req.qty}`);
    }
    const mid = await this.opts.prices(req.symbol);
    if (!(mid > 0)) return (await this.findOrder(req.clientOrderId)) ?? this.reject(req, id, now, `no price for ${req.symbol}`);
    const slip = this.opts.slippageBps / 10_000;
    const slipped = req.side === "buy" ? mid * (1 + slip) : mid * (1 - slip);
    // A marketable limit order takes the book, but never at a price worse than its limit.
    const price = limit === undefined ? slipped : req.side === "buy" ? Math.min(slipped, limit) : Math.max(slipped, limit);
    const raw = (await this.redis.eval(
      PLACE,
      3,
      this.orderKey(req.clientOrderId),
      this.balanceKey,
      `${this.prefix}trades`,
      req.side,
      String(req.qty),
      String(price),
      String(this.opts.feeRate),
      base,
      quote,
      id,
      req.clientOrderId,
      req.symbol,
      String(now),
      this.quote,
      String(this.opts.startingCash),
    )) as string;
    return JSON.parse(raw) as Order;
  }

  private async placeLimit(req: PlaceOrderRequest): Promise<Order> {
    const now = this.clock();
    const id = `paper-${now}-${Math.random().toString(36).slice(2, 10)}`;
    const limit = req.price;
    if (limit === undefined || !(limit > 0) || !Number.isFinite(limit)) {
      return (await this.findOrder(req.clientOrderId)) ?? this.reject(req, id, now, `a limit order needs a positive price, got ${limit}`);
    }
    const found = await this.findOrder(req.clientOrderId);
    if (found) return found;
    const mid = await this.opts.prices(req.symbol);
    if (!(mid > 0)) return this.reject(req, id, now, `no price for ${req.symbol}`);
    // Already crossed: it would take the book on a real exchange too.
    if (req.side === "buy" ? limit >= mid : limit <= mid) return this.placeAtMarket(req, limit);
    if (!(req.qty > 0) || !Number.isFinite(req.qty)) return this.reject(req, id, now, `quantity must be positive, got ${req.qty}`);
    const [base, quote] = splitSymbol(req.symbol);
    const raw = (await this.redis.eval(
      REST,
      3,
      this.orderKey(req.clientOrderId),
      this.balanceKey,
      this.openKey,
      req.side,
      String(req.qty),
      String(limit),
      String(this.opts.feeRate),
      base,
      quote,
      id,
      req.clientOrderId,
      req.symbol,
      String(now),
      this.quote,
      String(this.opts.startingCash),
    )) as string;
    return plain(JSON.parse(raw) as RestingOrder);
  }

  /** Free balances plus what resting orders lock, for the reconciliation. */
  async holdings(): Promise<Record<string, number>> {
    const [free, resting] = await Promise.all([this.balances(), this.resting()]);
    for (const o of resting) {
      const [base, quote] = splitSymbol(o.symbol);
      const asset = o.side === "buy" ? quote : base;
      free[asset] = (free[asset] ?? 0) + o.locked;
    }
    return free;
  }

  /** Resting limit orders, oldest first. */
  async openOrders(): Promise<Order[]> {
    return (await this.resting()).map(plain);
  }

  private async resting(): Promise<RestingOrder[]> {
    const ids = await this.redis.smembers(this.openKey);
    const raws = ids.length ? await this.redis.mget(ids.map((id) => this.orderKey(id))) : [];
    return raws
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as RestingOrder)
      .filter((o) => o.status === "open")
      .sort((a, b) => a.time - b.time);
  }

  /** Cancels a resting order and unlocks its funds; an order no longer open comes back as it is. */
  async cancelOrder(clientOrderId: string): Promise<Order | undefined> {
    const order = await this.findOrder(clientOrderId);
    if (!order || order.status !== "open") return order;
    return this.settle(order, "cancel");
  }

  /**
   * Fills every resting order the price has crossed since it was placed: a buy when the price fell
   * to its limit, a sell when it rose to it. Returns the orders filled now. A real exchange does
   * this on its own; the order path calls it before it looks its open orders up.
   */
  async matchOpenOrders(): Promise<Order[]> {
    const filled: Order[] = [];
    for (const o of await this.resting()) {
      const limit = o.limitPrice;
      const range = await this.rangeSince(o.symbol, o.time);
      if (!range) continue;
      const crossed = o.side === "buy" ? range.low <= limit : range.high >= limit;
      if (!crossed) continue;
      // Opened beyond it (a gap): the open is the first price it met, and the better one, as on
      // an exchange. Seen only as the price now, the path there is unknown: it fills at its limit.
      const first = range.first ?? limit;
      const at = o.side === "buy" ? Math.min(limit, first) : Math.max(limit, first);
      const done = await this.settle(o, at);
      if (done?.status === "filled") filled.push(done);
    }
    return filled;
  }

  /** What the price did since `since`: the forming candle when it opened after then, else the price now. */
  private async rangeSince(symbol: string, since: number): Promise<{ first?: number; low: number; high: number } | undefined> {
    const candle = this.opts.candle ? await this.opts.candle(symbol) : undefined;
    if (candle && candle.time >= since) return { first: candle.open, low: candle.low, high: candle.high };
    const last = await this.opts.prices(symbol);
    return last > 0 ? { low: last, high: last } : undefined;
  }

  private async settle(order: Order, how: number | "cancel"): Promise<Order | undefined> {
    const [base, quote] = splitSymbol(order.symbol);
    const raw = (await this.redis.eval(
      SETTLE,
      4,
      this.orderKey(order.clientOrderId),
      this.balanceKey,
      this.openKey,
      `${this.prefix}trades`,
      String(how),
      String(this.opts.feeRate),
      base,
      quote,
      String(this.clock()),
    )) as string | null;
    return raw ? plain(JSON.parse(raw) as RestingOrder) : undefined;
  }

  private get openKey() {
    return `${this.prefix}open`;
  }

  async findOrder(clientOrderId: string): Promise<Order | undefined> {
    const raw = await this.redis.get(this.orderKey(clientOrderId));
    return raw ? plain(JSON.parse(raw) as RestingOrder) : undefined;
  }

  async trades(limit: number): Promise<Order[]> {
    const raws = await this.redis.lrange(`${this.prefix}trades`, 0, Math.max(0, limit - 1));
    return raws.map((r) => JSON.parse(r) as Order);
  }

  private orderKey(clientOrderId: string): string {
    return `${this.prefix}order:${clientOrderId}`;
  }

  private reject(req: OrderRequest, id: string, time: number, reason: string): Order {
    return { id, clientOrderId: req.clientOrderId, symbol: req.symbol, side: req.side, qty: req.qty, filledQty: 0, avgPrice: 0, fee: 0, status: "rejected", reason, time };
  }
}

/** The domain order, without what only the paper exchange keeps (what it locks). */
function plain(o: Order & Partial<Pick<RestingOrder, "limitPrice" | "locked">>): Order {
  const { locked: _locked, limitPrice: _limit, ...order } = o;
  return order;
}
