import type { Redis } from "ioredis";
import type { Order, OrderRequest } from "../domain/types.js";
import { splitSymbol, type Exchange } from "./types.js";

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

/**
 * A simulated exchange in Redis: market orders fill at the current price, moved against the
 * trader by the slippage, less the fee. Balances and orders survive restarts.
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

  async placeOrder(req: OrderRequest): Promise<Order> {
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
    const price = req.side === "buy" ? mid * (1 + slip) : mid * (1 - slip);
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

  async findOrder(clientOrderId: string): Promise<Order | undefined> {
    const raw = await this.redis.get(this.orderKey(clientOrderId));
    return raw ? (JSON.parse(raw) as Order) : undefined;
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
