import type { Exchange } from "ccxt";
import type { Candle, MarketSymbol } from "../domain/types.js";
import { exchangeReason, isCcxtError } from "../exchange/ccxtErrors.js";
import { ExchangeCallFailed } from "../exchange/types.js";
import { CandleStream, type CandleStreamOptions, type Gap } from "./stream.js";
import { UnknownSymbolError, type MarketData, type OrderBookSnapshot, type TickerSnapshot } from "./types.js";

export interface CcxtMarketOptions {
  /** A ccxt exchange instance, e.g. `new ccxt.binance()`; public endpoints only are used. */
  exchange: Exchange;
  symbols: MarketSymbol[];
  /** ccxt timeframe, e.g. "2h". */
  timeframe: string;
  /** Wall clock (epoch ms), injectable for tests; defaults to Date.now. */
  now?: () => number;
  /** Called once for each hole found between closed candles (never filled in). */
  onGap?: (gap: Gap) => void;
  /** How startStreams() follows the market; see CandleStream. */
  stream?: Pick<CandleStreamOptions, "mode" | "pollMs" | "backoffMs" | "maxBackoffMs" | "onError">;
}

/** Exchanges cap one klines request (Binance: 1000). */
const MAX_FETCH = 1000;

/**
 * Live market data over ccxt: closed candles kept apart from the forming one, ticker and order
 * book snapshots, gaps reported, and (after startStreams) a websocket or polling stream that keeps
 * the forming candle current for the position monitor.
 */
export class CcxtMarketData implements MarketData {
  readonly kind = "live" as const;
  private readonly exchange: Exchange;
  private readonly served: MarketSymbol[];
  private readonly timeframe: string;
  private readonly timeframeMs: number;
  private readonly now: () => number;
  private readonly reportedGaps = new Set<string>();
  private readonly streams = new Map<MarketSymbol, CandleStream>();

  constructor(private readonly opts: CcxtMarketOptions) {
    this.exchange = opts.exchange;
    this.served = [...opts.symbols];
    this.timeframe = opts.timeframe;
    // parseTimeframe answers in seconds.
    this.timeframeMs = opts.exchange.parseTimeframe(opts.timeframe) * 1000;
    this.now = opts.now ?? (() => Date.now());
  }

  symbols(): MarketSymbol[] {
    return [...this.served];
  }

  async listed(): Promise<MarketSymbol[]> {
    const markets = await this.plainly("reading the exchange's markets", () => this.exchange.loadMarkets());
    return Object.keys(markets);
  }

  serve(symbols: MarketSymbol[]): void {
    this.served.splice(0, this.served.length, ...symbols);
  }

  /** Closed candles (oldest first, at most `limit`) and the forming candle, from one request. */
  async candles(symbol: MarketSymbol, limit: number): Promise<{ closed: Candle[]; forming?: Candle }> {
    this.check(symbol);
    const n = Math.max(0, Math.floor(limit));
    // One extra, because the exchange's newest candle is usually still forming.
    const rows = await this.plainly(`reading the ${symbol} candles`, () => this.exchange.fetchOHLCV(symbol, this.timeframe, undefined, Math.min(n + 1, MAX_FETCH)));
    const now = this.now();
    const closed: Candle[] = [];
    let forming: Candle | undefined;
    for (const row of rows) {
      const [time, open, high, low, close, volume] = row;
      if (time === undefined || open === undefined || high === undefined || low === undefined || close === undefined) continue;
      const candle = { time, open, high, low, close, volume: volume ?? 0 };
      // A candle is closed only once its whole period has passed; a forming one would repaint.
      if (time + this.timeframeMs > now) {
        if (!forming || time > forming.time) forming = candle;
      } else closed.push(candle);
    }
    closed.sort((a, b) => a.time - b.time);
    this.reportGaps(symbol, closed);
    return { closed: n === 0 ? [] : closed.slice(-n), ...(forming ? { forming } : {}) };
  }

  async closedCandles(symbol: MarketSymbol, limit: number): Promise<Candle[]> {
    this.check(symbol);
    if (Math.floor(limit) <= 0) return [];
    return (await this.candles(symbol, limit)).closed;
  }

  /** The candle forming now: from the stream when it runs, else one request. */
  async currentCandle(symbol: MarketSymbol): Promise<Candle> {
    this.check(symbol);
    const streamed = this.streams.get(symbol)?.latest().forming;
    if (streamed && streamed.time + this.timeframeMs > this.now()) return streamed;
    const { forming } = await this.candles(symbol, 1);
    if (forming) return forming;
    // The exchange has not started the new candle yet: the last trade is all there is.
    const last = await this.lastPrice(symbol);
    const start = Math.floor(this.now() / this.timeframeMs) * this.timeframeMs;
    return { time: start, open: last, high: last, low: last, close: last, volume: 0 };
  }

  async lastPrice(symbol: MarketSymbol): Promise<number> {
    return (await this.ticker(symbol)).last;
  }

  async ticker(symbol: MarketSymbol): Promise<TickerSnapshot> {
    this.check(symbol);
    const t = await this.plainly(`reading the ${symbol} price`, () => this.exchange.fetchTicker(symbol));
    const last = t.last ?? t.close;
    if (last === undefined || !Number.isFinite(last)) throw new Error(`${this.exchange.id} returned no last price for ${symbol}`);
    return { symbol, last, ...(t.bid !== undefined ? { bid: t.bid } : {}), ...(t.ask !== undefined ? { ask: t.ask } : {}), time: t.timestamp ?? this.now() };
  }

  async orderBook(symbol: MarketSymbol, depth = 20): Promise<OrderBookSnapshot> {
    this.check(symbol);
    const book = await this.plainly(`reading the ${symbol} order book`, () => this.exchange.fetchOrderBook(symbol, depth));
    const side = (levels: unknown[][]) => levels.slice(0, depth).map(([p, q]) => [Number(p), Number(q)] as [number, number]);
    const bids = side(book.bids as unknown[][]);
    const asks = side(book.asks as unknown[][]);
    const bid = bids[0]?.[0];
    const ask = asks[0]?.[0];
    return {
      symbol,
      bids,
      asks,
      time: book.timestamp ?? this.now(),
      ...(bid !== undefined && ask !== undefined ? { spreadPct: ((ask - bid) / ((ask + bid) / 2)) * 100 } : {}),
    };
  }

  /** Follows every symbol over the exchange's websocket (ccxt.pro) or by polling with backoff. */
  startStreams(): void {
    for (const symbol of this.served) {
      if (this.streams.has(symbol)) continue;
      const stream = new CandleStream({
        exchange: this.exchange,
        symbol,
        timeframe: this.timeframe,
        now: this.now,
        ...this.opts.stream,
        onGap: (gap) => this.reportGap(gap),
      });
      this.streams.set(symbol, stream);
      stream.start();
    }
  }

  async stopStreams(): Promise<void> {
    await Promise.all([...this.streams.values()].map((s) => s.stop()));
    this.streams.clear();
  }

  /** How each symbol is followed, e.g. { "BTC/USDT": "websocket" }. */
  streamModes(): Record<string, "websocket" | "poll"> {
    return Object.fromEntries([...this.streams].map(([s, st]) => [s, st.mode]));
  }

  describe(): string {
    const modes = [...new Set(Object.values(this.streamModes()))];
    const how = modes.length ? ` (${modes.join("/")} stream)` : "";
    return `live ${this.exchange.name ?? this.exchange.id} ${this.timeframe} candles for ${this.served.join(", ")}${how}`;
  }

  /** A ccxt failure as a few plain words fit for a chat (never the exchange's raw page); the raw error is its cause, for the log. */
  private async plainly<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isCcxtError(err)) throw err;
      throw new ExchangeCallFailed(`${this.exchange.name ?? this.exchange.id}: ${what} failed: ${exchangeReason(err)}`, { cause: err });
    }
  }

  private reportGaps(symbol: MarketSymbol, closed: Candle[]): void {
    for (let i = 1; i < closed.length; i++) {
      const delta = closed[i]!.time - closed[i - 1]!.time;
      if (delta > this.timeframeMs) {
        this.reportGap({ symbol, after: closed[i - 1]!.time, missing: Math.max(1, Math.round(delta / this.timeframeMs) - 1) });
      }
    }
  }

  private reportGap(gap: Gap): void {
    const key = `${gap.symbol}@${gap.after}`;
    if (this.reportedGaps.has(key)) return;
    this.reportedGaps.add(key);
    this.opts.onGap?.(gap);
  }

  private check(symbol: MarketSymbol): void {
    if (!this.served.includes(symbol)) throw new UnknownSymbolError(symbol, this.symbols());
  }
}
