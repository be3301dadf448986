// Real orders through ccxt. Off unless the user turns live trading on (TRADING_MODE=live with
// LIVE_TRADING_CONFIRM, keys, and the exchange's testnet by default): see src/app.ts.
import { createHash } from "node:crypto";
import ccxt, { type Exchange as CcxtExchange, type Order as CcxtOrder, type Trade as CcxtTrade } from "ccxt";
import type { Redis } from "ioredis";
import type { Order } from "../domain/types.js";
import { exchangeReason } from "./ccxtErrors.js";
import { ExchangeCallFailed, OrderOutcomeUnknown, splitSymbol, type Exchange, type ExchangeOrder, type PlaceOrderRequest } from "./types.js";

export interface LiveExchangeOptions {
  /** A ccxt exchange with API keys (createCcxtExchange). */
  exchange: CcxtExchange;
  /** Where the order intents and the orders seen are kept (survives restarts). */
  redis: Redis;
  /** Symbols traded: open orders and reconciliation look at these. */
  symbols: string[];
  sandbox: boolean;
  prefix?: string;
  clock?: () => number;
  log?: (message: string) => void;
  /**
   * How long to wait for a filled order's trades to be listed (Binance lists them a little after
   * the order's status): this many more reads, this far apart. Then the fill is booked from a
   * worst-case estimate and corrected later (settleFills).
   */
  tradesWait?: { tries: number; everyMs: number };
}

/**
 * Binance's highest spot fee (VIP 0, no BNB discount), the floor of the rate an estimated fill
 * assumes; a market whose listed fee is higher uses that (ccxt's market.taker).
 */
const WORST_FEE_RATE = 0.001;

/** Binance accepts `^[a-zA-Z0-9-_]{1,36}$`; most exchanges accept at least 32 such characters. */
const CLIENT_ID = /^[a-zA-Z0-9_-]{1,32}$/;

/**
 * The exchange-side client order id for a decision id: the same decision always gets the same
 * id, whatever characters the decision id holds (a job id like "sched:BTC/USDT:42" is not legal
 * on Binance). A hash, so two decisions cannot collide by truncation.
 */
export function exchangeClientOrderId(clientOrderId: string): string {
  return "ag" + createHash("sha256").update(clientOrderId).digest("hex").slice(0, 30);
}

export { exchangeReason } from "./ccxtErrors.js";

interface Intent {
  symbol: string;
  exchangeId: string;
  side: "buy" | "sell";
  qty: number;
  time: number;
}

/**
 * Whether an error leaves it unknown if the order was placed: a network failure, or Binance's own
 * "execution status unknown" answers (-1000 unknown, -1001 disconnected, -1006/-1007 backend
 * timeouts, -1008 overloaded) which ccxt files as plain exchange errors.
 */
export function outcomeUnknown(err: unknown): boolean {
  if (err instanceof ccxt.NetworkError) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /"code"\s*:\s*-10(00|01|06|07|08)\b/.test(message);
}

/**
 * An Exchange on a real venue through ccxt: market and limit orders, a client order id derived
 * from the decision (looked up before anything is sent, because Binance only rejects a duplicate
 * id while the first order is still open), partial fills, fees taken from the fills, the market's
 * minimum size and precision applied before sending, and the exchange's reason on a rejection.
 */
export class CcxtLiveExchange implements Exchange {
  readonly kind = "live" as const;
  readonly name: string;
  private readonly ex: CcxtExchange;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly clock: () => number;
  private readonly log: (message: string) => void;
  private marketsLoaded: Promise<unknown> | undefined;

  constructor(private readonly opts: LiveExchangeOptions) {
    this.ex = opts.exchange;
    this.redis = opts.redis;
    this.prefix = opts.prefix ?? "live:";
    this.clock = opts.clock ?? Date.now;
    this.log = opts.log ?? (() => {});
    this.name = `${this.ex.name ?? this.ex.id}${opts.sandbox ? " (sandbox)" : ""}`;
  }

  private markets(): Promise<unknown> {
    // A failed load is not cached, so the next call tries again.
    this.marketsLoaded ??= this.ex.loadMarkets().catch((err: unknown) => {
      this.marketsLoaded = undefined;
      throw err;
    });
    return this.marketsLoaded;
  }

  async balances(): Promise<Record<string, number>> {
    const b = await this.call("reading the balances", () => this.ex.fetchBalance());
    return numbers(b.free as unknown as Record<string, unknown>);
  }

  async holdings(): Promise<Record<string, number>> {
    const b = await this.call("reading the balances", () => this.ex.fetchBalance());
    return numbers(b.total as unknown as Record<string, unknown>);
  }

  async placeOrder(req: PlaceOrderRequest): Promise<ExchangeOrder> {
    return this.call(`placing the ${req.side} order for ${req.symbol}`, () => this.place(req));
  }

  private async place(req: PlaceOrderRequest): Promise<ExchangeOrder> {
    const existing = await this.lookUp(req.clientOrderId, req.symbol, true);
    if (existing) return existing;
    await this.markets();
    const type = req.type ?? (req.price !== undefined ? "limit" : "market");
    const exchangeId = exchangeClientOrderId(req.clientOrderId);
    if (!CLIENT_ID.test(exchangeId)) throw new Error(`derived client order id "${exchangeId}" is not valid`);

    const checked = await this.applyMarketRules(req, type);
    if ("reason" in checked) return this.remember(req.clientOrderId, this.rejected(req, checked.reason));
    const { amount, price } = checked;

    // Written before sending, so a lookup after a crash knows which market to ask, and the
    // reconciliation knows an order with this client id on the exchange is ours.
    const intent: Intent = { symbol: req.symbol, exchangeId, side: req.side, qty: amount, time: this.clock() };
    await this.redis
      .multi()
      .set(this.intentKey(req.clientOrderId), JSON.stringify(intent), "EX", 90 * 86_400)
      .set(this.byExchangeIdKey(exchangeId), req.clientOrderId, "EX", 90 * 86_400)
      .exec();

    let placed: CcxtOrder;
    try {
      placed = await this.ex.createOrder(req.symbol, type, req.side, amount, type === "limit" ? price : undefined, { clientOrderId: exchangeId });
    } catch (err) {
      // An answer that is not the exchange's refusal (a network failure, a 5xx page, an
      // unreadable reply, Binance's "execution status unknown") may come after the order was placed.
      if (outcomeUnknown(err) || !(err instanceof ccxt.ExchangeError)) {
        this.log(`order ${exchangeId} on ${req.symbol}: ${(err as Error).name} while placing: ${rawOf(err)}; looking it up`);
        const found = await this.lookUp(req.clientOrderId, req.symbol, true).catch((lookup: unknown) => {
          this.log(`order ${exchangeId} on ${req.symbol}: the lookup failed too: ${rawOf(lookup)}`);
          return undefined;
        });
        if (found) return found;
        throw new OrderOutcomeUnknown(req.clientOrderId, req.symbol, exchangeReason(err), { cause: err });
      }
      const reason = exchangeReason(err);
      if (/duplicate order/i.test(reason)) {
        // An open order already holds this id: it is ours.
        const found = await this.lookUp(req.clientOrderId, req.symbol, true);
        if (found) return found;
      }
      this.log(`order ${exchangeId} on ${req.symbol} refused: ${rawOf(err)}`);
      return this.remember(req.clientOrderId, this.rejected(req, reason));
    }
    try {
      const order = await this.toOrder(req.clientOrderId, placed, req.symbol, { waitForTrades: true });
      return await this.remember(req.clientOrderId, order);
    } catch (err) {
      // It was placed: only reading its fill failed. It is looked up again, never sent again.
      this.log(`order ${exchangeId} on ${req.symbol}: placed, but reading its fill failed: ${rawOf(err)}`);
      throw new OrderOutcomeUnknown(req.clientOrderId, req.symbol, `placed, but its fill could not be read: ${exchangeReason(err)}`, { cause: err });
    }
  }

  async findOrder(clientOrderId: string, symbol?: string): Promise<ExchangeOrder | undefined> {
    return this.call("looking up an order", () => this.lookUp(clientOrderId, symbol, true));
  }

  /**
   * A ccxt failure as a short message fit for a chat (what was being done, what the error means);
   * the raw error stays its cause, for the log. Anything else (Redis, our own errors) passes as is.
   */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ccxt.BaseError)) throw err;
      throw new ExchangeCallFailed(`${this.name}: ${what} failed: ${exchangeReason(err)}`, { cause: err });
    }
  }

  async settleFills(): Promise<ExchangeOrder[]> {
    const ids = await this.redis.srandmember(this.unsettledKey(), 20);
    const settled: ExchangeOrder[] = [];
    for (const id of ids) {
      try {
        // No waiting here: the next run looks again.
        const order = (await this.intent(id)) ? await this.lookUp(id, undefined, false) : undefined;
        if (!order) await this.redis.srem(this.unsettledKey(), id);
        else if (!order.feesPending) settled.push(order);
      } catch (err) {
        this.log(`order ${exchangeClientOrderId(id)}: could not read its trades again (${exchangeReason(err)}); the next run tries again`);
      }
    }
    return settled;
  }

  private async lookUp(clientOrderId: string, symbol: string | undefined, waitForTrades: boolean): Promise<ExchangeOrder | undefined> {
    const [intent, saved] = await Promise.all([this.intent(clientOrderId), this.saved(clientOrderId)]);
    // The intent is written before anything is sent: without it this agent never sent the order.
    if (!intent) return saved;
    const market = symbol ?? intent.symbol;
    await this.markets();
    let raw: CcxtOrder;
    try {
      raw = await this.ex.fetchOrder("", market, { clientOrderId: exchangeClientOrderId(clientOrderId) });
    } catch (err) {
      if (err instanceof ccxt.OrderNotFound) return saved?.status === "rejected" ? saved : undefined;
      throw err;
    }
    return this.remember(clientOrderId, await this.toOrder(clientOrderId, raw, market, { waitForTrades }));
  }

  async cancelOrder(clientOrderId: string, symbol?: string): Promise<ExchangeOrder | undefined> {
    return this.call("cancelling an order", async () => {
      const intent = await this.intent(clientOrderId);
      const market = symbol ?? intent?.symbol;
      if (!market) return undefined;
      await this.markets();
      try {
        await this.ex.cancelOrder("", market, { clientOrderId: exchangeClientOrderId(clientOrderId) });
      } catch (err) {
        if (!(err instanceof ccxt.OrderNotFound || err instanceof ccxt.InvalidOrder)) throw err;
        // Already filled or gone: its final state is what the lookup reports.
      }
      return this.lookUp(clientOrderId, market, true);
    });
  }

  async unbookedOwnOrders(symbol: string, isBooked: (orderId: string) => Promise<boolean>): Promise<ExchangeOrder[]> {
    return this.call(`reading the recent trades of ${symbol}`, async () => {
      await this.markets();
      if (!this.ex.has.fetchMyTrades) return [];
      // The most recent trades (Binance: the last 500), then each order not on the books, once.
      const trades: CcxtTrade[] = await this.ex.fetchMyTrades(symbol, undefined, 500);
      const ids = [...new Set(trades.sort((a, b) => (a.timestamp ?? 0) - (b.timestamp ?? 0)).map((t) => (t.order === undefined || t.order === null ? "" : String(t.order))))].filter(Boolean);
      const out: ExchangeOrder[] = [];
      for (const id of ids.slice(-20)) {
        if (await isBooked(id)) continue;
        const raw = await this.ex.fetchOrder(id, symbol);
        // Ours only when its client order id is one this agent wrote before sending.
        const ours = raw.clientOrderId ? await this.redis.get(this.byExchangeIdKey(raw.clientOrderId)) : null;
        if (!ours) continue;
        out.push(await this.remember(ours, await this.toOrder(ours, raw, symbol, { waitForTrades: false })));
      }
      return out;
    });
  }

  async openOrders(): Promise<Order[]> {
    return this.call("reading the open orders", () => this.readOpenOrders());
  }

  private async readOpenOrders(): Promise<Order[]> {
    await this.markets();
    const out: Order[] = [];
    for (const symbol of this.opts.symbols) {
      for (const raw of await this.ex.fetchOpenOrders(symbol)) {
        const ours = await this.redis.get(this.byExchangeIdKey(raw.clientOrderId ?? ""));
        out.push(await this.toOrder(ours ?? raw.clientOrderId ?? String(raw.id), raw, symbol, { fetchFees: false }));
      }
    }
    return out;
  }

  async trades(limit: number): Promise<Order[]> {
    const ids = await this.redis.lrange(`${this.prefix}orders`, 0, Math.max(0, limit - 1));
    const raws = ids.length ? await this.redis.mget(ids.map((id) => this.orderKey(id))) : [];
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as Order);
  }

  /** Amount and price rounded to the market's precision, and its minimums checked, before sending. */
  private async applyMarketRules(req: PlaceOrderRequest, type: "market" | "limit"): Promise<{ amount: number; price: number } | { reason: string }> {
    const market = this.ex.markets?.[req.symbol];
    if (!market) return { reason: `${this.ex.id} has no market ${req.symbol}` };
    if (!(req.qty > 0) || !Number.isFinite(req.qty)) return { reason: `quantity must be positive, got ${req.qty}` };
    if (type === "limit" && !(req.price !== undefined && req.price > 0)) return { reason: "a limit order needs a positive price" };
    // Precision truncates (never rounds up): an order is never bigger than the risk rules allowed.
    let amount = 0;
    try {
      amount = Number(this.ex.amountToPrecision(req.symbol, req.qty));
    } catch {
      // ccxt throws when the amount truncates to nothing: that is under the minimum.
    }
    const minAmount = market.limits?.amount?.min;
    if (!(amount > 0) || (minAmount !== undefined && amount < minAmount)) {
      return { reason: `${req.qty} ${market.base} is under ${this.ex.id}'s minimum order size of ${minAmount ?? "one step"} ${market.base} for ${req.symbol}` };
    }
    const price = type === "limit" ? Number(this.ex.priceToPrecision(req.symbol, req.price!)) : await this.lastPrice(req.symbol);
    const minCost = market.limits?.cost?.min;
    if (minCost !== undefined && price > 0 && amount * price < minCost) {
      return { reason: `${(amount * price).toFixed(2)} ${market.quote} is under ${this.ex.id}'s minimum order value of ${minCost} ${market.quote} for ${req.symbol}` };
    }
    return { amount, price };
  }

  private async lastPrice(symbol: string): Promise<number> {
    const t = await this.ex.fetchTicker(symbol);
    return t.last ?? t.close ?? 0;
  }

  /**
   * The ccxt order as ours: status from the fill, quantity and fee from the order's own trades
   * (those carrying its id, adding up to its executed quantity), every fee in the quote (a
   * third-asset fee such as BNB converted at the ticker), and the base that reached the account.
   */
  private async toOrder(clientOrderId: string, o: CcxtOrder, symbol: string, how: { fetchFees?: boolean; waitForTrades?: boolean } = {}): Promise<ExchangeOrder> {
    const [base, quote] = splitSymbol(symbol);
    const amount = o.amount ?? 0;
    const filled = o.filled ?? 0;
    let avgPrice = o.average ?? (filled > 0 && o.cost ? o.cost / filled : 0);
    let fill: Fill | undefined;
    if (filled > 0 && how.fetchFees !== false) {
      fill = await this.fillFromTrades(o, symbol, base, quote, how.waitForTrades ?? false);
      if (fill && !(avgPrice > 0)) avgPrice = fill.avgPrice;
    } else if (filled > 0) {
      // An open order read for reconciliation: only what the order itself says.
      fill = await this.fillOf(feesOf(o), base, quote, symbol, String(o.id));
    }
    const pending = filled > 0 && how.fetchFees !== false && (!fill || fill.pending);
    if (pending) this.log(`order ${o.id} on ${symbol}: its trades are not all listed (or a fee not priced) yet; booked at the worst-case fee until they are`);
    const market = this.ex.markets?.[symbol];
    const worst = Math.max(WORST_FEE_RATE, Number(market?.taker ?? 0), Number(market?.maker ?? 0));
    const feeBase = fill && !fill.pending ? fill.feeBase : 0;
    const complete = filled > 0 && filled >= amount * (1 - 1e-9);
    let status: Order["status"];
    let reason: string | undefined;
    if (o.status === "open") status = filled > 0 ? "partial" : "open";
    else if (o.status === "closed") status = complete ? "filled" : "partial";
    else if (filled > 0) {
      status = "partial";
      reason = `${o.status} after filling ${filled} of ${amount}`;
    } else {
      status = "rejected";
      reason = o.status === "expired" ? "expired unfilled (no liquidity at the price)" : `${o.status ?? "not accepted"} by the exchange`;
    }
    const buy = o.side !== "sell";
    // What reached the account: a buy's fee taken in the base asset is not ours to sell later.
    // Unknown yet: assume the highest fee was taken from the base, so the books never hold more.
    const filledQty = pending ? (buy ? filled * (1 - worst) : filled) : buy ? Math.max(0, filled - feeBase) : filled;
    const fee = pending ? filled * avgPrice * worst : fill ? fill.feeQuote + feeBase * avgPrice + fill.feeOther : 0;
    return {
      id: String(o.id),
      clientOrderId,
      symbol,
      side: buy ? "buy" : "sell",
      qty: amount,
      filledQty,
      avgPrice,
      fee,
      status,
      ...(reason ? { reason } : {}),
      time: o.timestamp ?? this.clock(),
      ...(fill && !pending && fill.feeOther > 0 ? { feeOther: fill.feeOther } : {}),
      ...(pending ? { feesPending: true } : {}),
    };
  }

  /**
   * The order's fill from its trades: those in the order reply (Binance's FULL reply lists them),
   * else those listed for it, waited for a little. Only trades carrying this order's id count,
   * and only when they add up to its executed quantity: otherwise the fill is pending.
   */
  private async fillFromTrades(o: CcxtOrder, symbol: string, base: string, quote: string, wait: boolean): Promise<Fill | undefined> {
    const id = String(o.id);
    const filled = o.filled ?? 0;
    const own = (trades: CcxtTrade[], embedded: boolean) => {
      const seen = new Set<string>();
      return trades.filter((t) => {
        // Trades inside the order reply carry no order id: they are its own by construction.
        const mine = t.order === undefined || t.order === null ? embedded : String(t.order) === id;
        if (!mine || (t.symbol && t.symbol !== symbol)) return false;
        const key = t.id ?? `${t.timestamp}:${t.amount}:${t.price}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    };
    const addsUp = (trades: CcxtTrade[]) => Math.abs(trades.reduce((a, t) => a + (t.amount ?? 0), 0) - filled) <= filled * 1e-9;
    let trades = own(o.trades ?? [], true);
    if (!addsUp(trades) && feesOf(o).length > 0 && trades.length === 0) {
      // An exchange that reports the fees on the order but no trades: the order's word is all there is.
      return this.fillOf(feesOf(o), base, quote, symbol, id);
    }
    if (!addsUp(trades) && this.ex.has.fetchOrderTrades) {
      const tries = wait ? (this.opts.tradesWait?.tries ?? 3) : 0;
      for (let i = 0; ; i++) {
        const listed: CcxtTrade[] = await this.ex.fetchOrderTrades(id, symbol);
        const mine = own(listed, false);
        if (mine.length < listed.length) this.log(`order ${id} on ${symbol}: ${listed.length - mine.length} listed trade(s) of other orders ignored`);
        trades = mine;
        if (addsUp(trades) || i >= tries) break;
        await new Promise((r) => setTimeout(r, this.opts.tradesWait?.everyMs ?? 300));
      }
    }
    if (!addsUp(trades)) return undefined;
    const fill = await this.fillOf(trades.flatMap(feesOf), base, quote, symbol, id);
    const cost = trades.reduce((a, t) => a + (t.cost ?? (t.amount ?? 0) * (t.price ?? 0)), 0);
    return { ...fill, avgPrice: filled > 0 ? cost / filled : 0 };
  }

  /** Fees sorted by asset; a third asset's converted to the quote at its ticker now. */
  private async fillOf(fees: FeeLike[], base: string, quote: string, symbol: string, id: string): Promise<Fill> {
    const fill: Fill = { feeQuote: 0, feeBase: 0, feeOther: 0, avgPrice: 0, pending: false };
    for (const f of fees) {
      const cost = Number(f.cost ?? 0);
      if (!(cost > 0)) continue;
      if (f.currency === quote) fill.feeQuote += cost;
      else if (f.currency === base) fill.feeBase += cost;
      else {
        const value = await this.inQuote(f.currency ?? "", cost, quote);
        if (value === undefined) fill.pending = true;
        else fill.feeOther += value;
      }
    }
    if (fill.pending) this.log(`order ${id} on ${symbol}: a fee in another asset could not be priced in ${quote} yet`);
    return fill;
  }

  /** `amount` of `asset` in `quote`, from the ticker of asset/quote (or quote/asset); undefined when unknown. */
  private async inQuote(asset: string, amount: number, quote: string): Promise<number | undefined> {
    const markets = this.ex.markets ?? {};
    try {
      if (markets[`${asset}/${quote}`]) {
        const p = await this.lastPrice(`${asset}/${quote}`);
        return p > 0 ? amount * p : undefined;
      }
      if (markets[`${quote}/${asset}`]) {
        const p = await this.lastPrice(`${quote}/${asset}`);
        return p > 0 ? amount / p : undefined;
      }
    } catch (err) {
      this.log(`no ${asset}/${quote} price for a fee: ${exchangeReason(err)}`);
      return undefined;
    }
    this.log(`no ${asset}/${quote} market to price a fee of ${amount} ${asset}`);
    return undefined;
  }

  private rejected(req: PlaceOrderRequest, reason: string): Order {
    return { id: `rejected-${exchangeClientOrderId(req.clientOrderId)}`, clientOrderId: req.clientOrderId, symbol: req.symbol, side: req.side, qty: req.qty, filledQty: 0, avgPrice: 0, fee: 0, status: "rejected", reason, time: this.clock() };
  }

  private async remember<T extends ExchangeOrder>(clientOrderId: string, order: T): Promise<T> {
    const key = this.orderKey(clientOrderId);
    const fresh = (await this.redis.exists(key)) === 0;
    const tx = this.redis.multi().set(key, JSON.stringify(order), "EX", 90 * 86_400);
    // An estimated fill is read again until its trades are listed (settleFills).
    if (order.feesPending) tx.sadd(this.unsettledKey(), clientOrderId);
    else tx.srem(this.unsettledKey(), clientOrderId);
    tx.set(this.byExchangeIdKey(exchangeClientOrderId(clientOrderId)), clientOrderId, "EX", 90 * 86_400);
    if (fresh) tx.lpush(`${this.prefix}orders`, clientOrderId).ltrim(`${this.prefix}orders`, 0, 999);
    await tx.exec();
    return order;
  }

  private async intent(clientOrderId: string): Promise<Intent | undefined> {
    const raw = await this.redis.get(this.intentKey(clientOrderId));
    return raw ? (JSON.parse(raw) as Intent) : undefined;
  }

  private async saved(clientOrderId: string): Promise<Order | undefined> {
    const raw = await this.redis.get(this.orderKey(clientOrderId));
    return raw ? (JSON.parse(raw) as Order) : undefined;
  }

  private unsettledKey() {
    return `${this.prefix}unsettled`;
  }
  private intentKey(id: string) {
    return `${this.prefix}intent:${id}`;
  }
  private orderKey(id: string) {
    return `${this.prefix}order:${id}`;
  }
  private byExchangeIdKey(exchangeId: string) {
    return `${this.prefix}by-exchange-id:${exchangeId}`;
  }
}

interface Fill {
  feeQuote: number;
  feeBase: number;
  /** Fees in a third asset, in the quote. */
  feeOther: number;
  avgPrice: number;
  /** Something is not known yet (a trade not listed, a fee not priced). */
  pending: boolean;
}

/** A raw error for the log (redacted and made inert there), bounded: an error page can be long. */
function rawOf(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

interface FeeLike {
  cost?: number | undefined;
  currency?: string | undefined;
}

/** ccxt puts every fee of a multi-fill order in `fees` (not in its typings) and one in `fee`. */
function feesOf(x: { fee?: unknown }): FeeLike[] {
  const all = (x as { fees?: FeeLike[] }).fees;
  const list = all?.length ? all : x.fee ? [x.fee as FeeLike] : [];
  return list.filter((f) => f && f.cost !== undefined);
}

function numbers(raw: Record<string, unknown> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [asset, v] of Object.entries(raw ?? {})) {
    const n = Number(v);
    if (Number.isFinite(n) && n !== 0) out[asset] = n;
  }
  return out;
}
