// CcxtMarketData and CandleStream against the Binance stand-in on 127.0.0.1 (REST and
// websocket), serving real recorded ETH and BTC candles in Binance's own formats. Nothing leaves
// the machine.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ccxt from "ccxt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Candle } from "../src/domain/types.js";
import { createCcxtExchange } from "../src/exchange/ccxtClient.js";
import { loadCandles } from "../src/market/candles.js";
import { CcxtMarketData } from "../src/market/ccxtMarket.js";
import { CandleStream, type Gap } from "../src/market/stream.js";
import { UnknownSymbolError } from "../src/market/types.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";
import { waitFor } from "./support/app.js";

const H2 = 2 * 60 * 60 * 1000;
const DATA = fileURLToPath(new URL("../data/ohlcv/", import.meta.url));
const eth = loadCandles(join(DATA, "ETH_USDT_2h.csv"));
const btc = loadCandles(join(DATA, "BTC_USDT_2h.csv"));

// Real prices moved up to now: the newest candle opened a minute ago, so it is forming for the
// whole run (a grid-aligned open could close mid-test at a 2-hour boundary).
const candles: Candle[] = candlesEndingNow(eth, 300);
const forming = candles.at(-1)!;
let standIn: BinanceStandIn;

beforeAll(async () => {
  standIn = await BinanceStandIn.start({
    apiKey: "unused",
    secret: "unused",
    symbols: [
      { id: "ETHUSDT", base: "ETH", quote: "USDT", candles },
      { id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(btc, 300) },
    ],
  });
});
afterAll(() => standIn.stop());

const publicBinance = (pro = false) => createCcxtExchange({ id: "binance", sandbox: false, apiUrl: standIn.url, pro });

describe("CcxtMarketData over ccxt's binance", () => {
  it("returns closed candles only, and the forming candle apart", async () => {
    const market = new CcxtMarketData({ exchange: publicBinance(), symbols: ["ETH/USDT"], timeframe: "2h" });
    expect(market.kind).toBe("live");
    const closed = await market.closedCandles("ETH/USDT", 50);
    expect(closed).toHaveLength(50);
    expect(closed).toEqual(candles.slice(-51, -1));
    expect(closed.some((c) => c.time === forming.time)).toBe(false);
    expect(closed.at(-1)!.time + H2).toBeLessThanOrEqual(Date.now());
    // one extra requested to make up for the forming candle
    expect(standIn.requests.some((r) => r.path === "/api/v3/klines" && r.params.limit === "51")).toBe(true);
    const both = await market.candles("ETH/USDT", 10);
    expect(both.closed).toEqual(candles.slice(-11, -1));
    expect(both.forming).toEqual(forming);
    expect(await market.currentCandle("ETH/USDT")).toEqual(forming);
  });

  it("keeps a candle whose period has just ended (injected clock)", async () => {
    const justAfter = new CcxtMarketData({ exchange: publicBinance(), symbols: ["ETH/USDT"], timeframe: "2h", now: () => forming.time + H2 });
    expect((await justAfter.closedCandles("ETH/USDT", 3)).at(-1)).toEqual(forming);
    const justBefore = new CcxtMarketData({ exchange: publicBinance(), symbols: ["ETH/USDT"], timeframe: "2h", now: () => forming.time + H2 - 1 });
    expect((await justBefore.closedCandles("ETH/USDT", 3)).at(-1)).toEqual(candles.at(-2));
  });

  it("reads the ticker and an order book snapshot", async () => {
    const market = new CcxtMarketData({ exchange: publicBinance(), symbols: ["ETH/USDT"], timeframe: "2h" });
    expect(await market.lastPrice("ETH/USDT")).toBe(forming.close);
    const t = await market.ticker("ETH/USDT");
    expect(t.bid).toBeCloseTo(forming.close - 0.01, 6);
    expect(t.ask).toBeCloseTo(forming.close + 0.01, 6);
    const book = await market.orderBook("ETH/USDT", 5);
    expect(book.bids).toHaveLength(5);
    expect(book.asks).toHaveLength(5);
    expect(book.bids[0]![0]).toBeLessThan(book.asks[0]![0]);
    expect(book.bids[0]![0]).toBeGreaterThan(book.bids[1]![0]); // best first
    expect(book.spreadPct).toBeGreaterThan(0);
    expect(market.describe()).toMatch(/live Binance 2h candles for ETH\/USDT/);
  });

  it("reports a gap in the candles once, and never fills it", async () => {
    const gaps: Gap[] = [];
    const holed = [...candles.slice(0, 250), ...candles.slice(253)];
    standIn.setCandles("ETHUSDT", holed);
    try {
      const market = new CcxtMarketData({ exchange: publicBinance(), symbols: ["ETH/USDT"], timeframe: "2h", onGap: (g) => gaps.push(g) });
      const closed = await market.closedCandles("ETH/USDT", 100);
      expect(closed).toHaveLength(100);
      expect(closed.some((c) => c.time === candles[251]!.time)).toBe(false); // not filled
      await market.closedCandles("ETH/USDT", 100);
      expect(gaps).toEqual([{ symbol: "ETH/USDT", after: candles[249]!.time, missing: 3 }]);
    } finally {
      standIn.setCandles("ETHUSDT", candles);
    }
  });

  it("refuses symbols it was not configured for, without a request", async () => {
    const market = new CcxtMarketData({ exchange: publicBinance(), symbols: ["ETH/USDT"], timeframe: "2h" });
    const before = standIn.requests.length;
    await expect(market.closedCandles("BTC/USDT", 5)).rejects.toThrow(UnknownSymbolError);
    await expect(market.lastPrice("BTC/USDT")).rejects.toThrow(/ETH\/USDT/);
    expect(standIn.requests.length).toBe(before);
  });

  it("only used public endpoints, unsigned", () => {
    expect(standIn.requests.every((r) => !r.signed)).toBe(true);
    const paths = new Set(standIn.requests.map((r) => r.path));
    expect([...paths].sort()).toEqual(["/api/v3/depth", "/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/ticker/24hr"]);
  });
});

describe("CandleStream", () => {
  it("follows Binance's websocket kline stream through ccxt.pro", async () => {
    const exchange = publicBinance(true);
    const closed: Candle[] = [];
    const formingSeen: Candle[] = [];
    const gaps: Gap[] = [];
    const base = candlesEndingNow(btc, 10);
    const stream = new CandleStream({ exchange, symbol: "BTC/USDT", timeframe: "2h", onClosed: (c) => closed.push(c), onForming: (c) => formingSeen.push(c), onGap: (g) => gaps.push(g) });
    expect(stream.mode).toBe("websocket");
    stream.start();
    try {
      await waitFor("the subscription", async () => standIn.subscriptions.includes("btcusdt@kline_2h"));
      const [a, b, c, d] = base.slice(-8, -4).map((x) => ({ ...x }));
      standIn.pushKline("BTCUSDT", { ...a!, close: a!.open }, false);
      standIn.pushKline("BTCUSDT", a!, true);
      standIn.pushKline("BTCUSDT", b!, true);
      // c is lost (the exchange was down for it): d arrives next
      standIn.pushKline("BTCUSDT", d!, true);
      const now = base.at(-1)!;
      standIn.pushKline("BTCUSDT", { ...now, close: now.open + 1 }, false);
      await waitFor("the closed candles", async () => closed.length >= 3 && formingSeen.some((f) => f.time === now.time));
      expect(closed.map((x) => x.time)).toEqual([a!.time, b!.time, d!.time]);
      expect(closed[0]).toEqual(a); // its final state, not the first tick
      expect(gaps).toEqual([{ symbol: "BTC/USDT", after: b!.time, missing: 1 }]);
      expect(c).toBeDefined();
      expect(stream.latest().forming!.close).toBe(now.open + 1);
      expect(standIn.requests.some((r) => r.method === "WS" && r.path === "/ws/0")).toBe(true);
    } finally {
      await stream.stop();
    }
  });

  it("polls over REST with backoff when the exchange fails, then recovers", async () => {
    const waits: number[] = [];
    const errors: number[] = [];
    const closed: Candle[] = [];
    standIn.failKlines = 3;
    const stream = new CandleStream({
      exchange: publicBinance(),
      symbol: "ETH/USDT",
      timeframe: "2h",
      mode: "poll",
      pollMs: 20,
      backoffMs: 10,
      maxBackoffMs: 25,
      sleep: async (ms) => {
        waits.push(ms);
        await new Promise((r) => setTimeout(r, 1));
      },
      onError: (err, retryInMs) => {
        expect(err).toBeInstanceOf(ccxt.BaseError);
        errors.push(retryInMs);
      },
      onClosed: (c) => closed.push(c),
    });
    expect(stream.mode).toBe("poll");
    stream.start();
    try {
      await waitFor("candles after the outage", async () => closed.length > 0);
      expect(errors).toEqual([10, 20, 25]); // doubling, capped
      expect(waits.slice(0, 3)).toEqual([10, 20, 25]);
      await waitFor("a steady poll", async () => waits.length >= 5);
      expect(waits[3]).toBe(20); // back to the normal interval
      expect(stream.nextBackoffMs).toBe(10); // and the backoff reset
      expect(closed.at(-1)).toEqual(candles.at(-2));
      expect(stream.latest().forming).toEqual(forming);
    } finally {
      await stream.stop();
    }
  });
});
