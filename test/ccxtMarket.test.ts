// CcxtMarketData against a stand-in for Binance's public REST API on 127.0.0.1, serving real
// recorded ETH candles in Binance's own response formats. Nothing leaves the machine.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ccxt from "ccxt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Candle } from "../src/domain/types.js";
import { loadCandles } from "../src/market/candles.js";
import { CcxtMarketData } from "../src/market/ccxtMarket.js";
import { UnknownSymbolError } from "../src/market/types.js";

const H2 = 2 * 60 * 60 * 1000;
const recorded = loadCandles(join(fileURLToPath(new URL("../data/ohlcv/", import.meta.url)), "ETH_USDT_2h.csv"));

// Real prices moved up to now: the newest candle opened a minute ago, so it is forming for the
// whole run (a grid-aligned open could close mid-test at a 2-hour boundary).
const formingOpen = Date.now() - 60_000;
const candles: Candle[] = recorded.slice(-300).map((c, i, all) => ({ ...c, time: formingOpen - (all.length - 1 - i) * H2 }));

const exchangeInfo = {
  timezone: "UTC",
  serverTime: Date.now(),
  rateLimits: [],
  exchangeFilters: [],
  symbols: [
    {
      symbol: "ETHUSDT",
      status: "TRADING",
      baseAsset: "ETH",
      baseAssetPrecision: 8,
      quoteAsset: "USDT",
      quotePrecision: 8,
      quoteAssetPrecision: 8,
      baseCommissionPrecision: 8,
      quoteCommissionPrecision: 8,
      orderTypes: ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
      icebergAllowed: true,
      ocoAllowed: true,
      quoteOrderQtyMarketAllowed: true,
      allowTrailingStop: true,
      cancelReplaceAllowed: true,
      isSpotTradingAllowed: true,
      isMarginTradingAllowed: true,
      filters: [
        { filterType: "PRICE_FILTER", minPrice: "0.01000000", maxPrice: "1000000.00000000", tickSize: "0.01000000" },
        { filterType: "LOT_SIZE", minQty: "0.00010000", maxQty: "9000.00000000", stepSize: "0.00010000" },
        { filterType: "NOTIONAL", minNotional: "5.00000000", applyMinToMarket: true, maxNotional: "9000000.00000000", applyMaxToMarket: false, avgPriceMins: 5 },
      ],
      permissions: [],
      permissionSets: [["SPOT", "MARGIN"]],
      defaultSelfTradePreventionMode: "EXPIRE_MAKER",
      allowedSelfTradePreventionModes: ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    },
  ],
};

function kline(c: Candle): unknown[] {
  return [c.time, String(c.open), String(c.high), String(c.low), String(c.close), String(c.volume), c.time + H2 - 1, String(c.volume * c.close), 1000, "0", "0", "0"];
}

const forming = candles.at(-1)!;
const requests: string[] = [];
let server: Server;
let base = "";

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push(url.pathname + url.search);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/api/v3/exchangeInfo") return json(200, exchangeInfo);
    if (url.pathname === "/api/v3/klines" && url.searchParams.get("symbol") === "ETHUSDT") {
      const limit = Number(url.searchParams.get("limit") ?? 500);
      return json(200, candles.slice(-limit).map(kline));
    }
    if (url.pathname === "/api/v3/ticker/24hr" && url.searchParams.get("symbol") === "ETHUSDT") {
      return json(200, {
        symbol: "ETHUSDT",
        priceChange: "0",
        priceChangePercent: "0",
        weightedAvgPrice: String(forming.close),
        prevClosePrice: String(forming.open),
        lastPrice: String(forming.close),
        lastQty: "0.1",
        bidPrice: String(forming.close - 0.01),
        bidQty: "1",
        askPrice: String(forming.close + 0.01),
        askQty: "1",
        openPrice: String(forming.open),
        highPrice: String(forming.high),
        lowPrice: String(forming.low),
        volume: String(forming.volume),
        quoteVolume: "0",
        openTime: forming.time,
        closeTime: Date.now(),
        firstId: 1,
        lastId: 2,
        count: 2,
      });
    }
    json(404, { code: -1, msg: `stand-in does not serve ${url.pathname}` });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function localBinance() {
  const exchange = new ccxt.binance({ options: { fetchMarkets: { types: ["spot"] } } });
  // Every API base keeps its path but points at the stand-in, so a stray call fails here, not on the internet.
  const api = exchange.urls.api as Record<string, string>;
  for (const [key, value] of Object.entries(api)) api[key] = base + new URL(value).pathname;
  return exchange;
}

describe("CcxtMarketData over ccxt's binance", () => {
  it("returns closed candles only, dropping the forming one", async () => {
    const market = new CcxtMarketData({ exchange: localBinance(), symbols: ["ETH/USDT"], timeframe: "2h" });
    expect(market.kind).toBe("live");
    const closed = await market.closedCandles("ETH/USDT", 50);
    expect(closed).toHaveLength(50);
    expect(closed).toEqual(candles.slice(-51, -1));
    expect(closed.some((c) => c.time === forming.time)).toBe(false);
    expect(closed.at(-1)!.time + H2).toBeLessThanOrEqual(Date.now());
    // one extra requested to make up for the forming candle
    expect(requests.some((r) => r.startsWith("/api/v3/klines") && r.includes("limit=51"))).toBe(true);
  });

  it("keeps a candle whose period has just ended (injected clock)", async () => {
    const justAfter = new CcxtMarketData({ exchange: localBinance(), symbols: ["ETH/USDT"], timeframe: "2h", now: () => forming.time + H2 });
    expect((await justAfter.closedCandles("ETH/USDT", 3)).at(-1)).toEqual(forming);
    const justBefore = new CcxtMarketData({ exchange: localBinance(), symbols: ["ETH/USDT"], timeframe: "2h", now: () => forming.time + H2 - 1 });
    expect((await justBefore.closedCandles("ETH/USDT", 3)).at(-1)).toEqual(candles.at(-2));
  });

  it("reads the last price from the ticker", async () => {
    const market = new CcxtMarketData({ exchange: localBinance(), symbols: ["ETH/USDT"], timeframe: "2h" });
    expect(await market.lastPrice("ETH/USDT")).toBe(forming.close);
    expect(market.describe()).toMatch(/live Binance 2h candles for ETH\/USDT/);
  });

  it("refuses symbols it was not configured for, without a request", async () => {
    const market = new CcxtMarketData({ exchange: localBinance(), symbols: ["ETH/USDT"], timeframe: "2h" });
    const before = requests.length;
    await expect(market.closedCandles("BTC/USDT", 5)).rejects.toThrow(UnknownSymbolError);
    await expect(market.lastPrice("BTC/USDT")).rejects.toThrow(/ETH\/USDT/);
    expect(requests.length).toBe(before);
  });

  it("only used the public spot endpoints", () => {
    const paths = new Set(requests.map((r) => r.split("?")[0]));
    expect([...paths].sort()).toEqual(["/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/ticker/24hr"]);
  });
});
