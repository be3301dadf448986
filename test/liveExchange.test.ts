// CcxtLiveExchange: ccxt's own binance client, signed requests and all, talking over loopback to
// the Binance stand-in (test/support/exchangeStandIn.ts). Throwaway keys, test-only.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLiveCcxtExchange } from "../src/exchange/ccxtClient.js";
import { CcxtLiveExchange, exchangeClientOrderId, exchangeReason } from "../src/exchange/ccxtExchange.js";
import { loadCandles } from "../src/market/candles.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";
import { testRedis } from "./support/redis.js";

const KEY = "test-api-key-0000000000000000000000000000000000000000000000000000";
const SECRET = "test-secret-1111111111111111111111111111111111111111111111111111";
const btc = loadCandles(join(fileURLToPath(new URL("../data/ohlcv/", import.meta.url)), "BTC_USDT_2h.csv"));

let standIn: BinanceStandIn;
let redis: Redis;
let live: CcxtLiveExchange;

beforeAll(async () => {
  redis = await testRedis();
});
afterAll(async () => {
  await redis.quit();
});

beforeEach(async () => {
  await redis.flushdb();
  standIn = await BinanceStandIn.start({
    apiKey: KEY,
    secret: SECRET,
    symbols: [{ id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(btc, 300) }],
    balances: { USDT: 10_000, BNB: 0.5 },
  });
  live = new CcxtLiveExchange({
    exchange: createLiveCcxtExchange({ id: "binance", apiKey: KEY, secret: SECRET, sandbox: true, apiUrl: standIn.url }),
    redis,
    symbols: ["BTC/USDT"],
    sandbox: true,
  });
});
afterEach(async () => {
  await standIn.stop();
});

describe("live orders through ccxt", () => {
  it("fills a market buy, with the fee from the fill and the derived client id", async () => {
    const price = standIn.price("BTCUSDT");
    const order = await live.placeOrder({ clientOrderId: "chat:decision:1", symbol: "BTC/USDT", side: "buy", qty: 0.0123456789 });
    expect(order.status).toBe("filled");
    expect(order.clientOrderId).toBe("chat:decision:1");
    // precision: truncated to the 0.00001 step, never rounded up
    expect(order.qty).toBe(0.01234);
    expect(order.avgPrice).toBeCloseTo(price, 6);
    // Binance took 0.1% of the BTC bought: what reached the account is net of it, and the fee is priced in USDT
    expect(order.filledQty).toBeCloseTo(0.01234 * 0.999, 12);
    expect(order.fee).toBeCloseTo(0.01234 * 0.001 * price, 8);
    const [post] = standIn.posts();
    expect(post!.params.newClientOrderId).toBe(exchangeClientOrderId("chat:decision:1"));
    expect(post!.params.newClientOrderId).toMatch(/^[a-zA-Z0-9_-]{1,36}$/);
    expect(post!.params.type).toBe("MARKET");
    expect(post!.signed).toBe(true);
    expect(standIn.balance("BTC")).toBeCloseTo(order.filledQty, 12);
    expect((await live.balances()).BTC).toBeCloseTo(order.filledQty, 12);
  });

  it("looks the order up instead of placing it twice", async () => {
    const first = await live.placeOrder({ clientOrderId: "sched:BTC/USDT:7", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    const again = await live.placeOrder({ clientOrderId: "sched:BTC/USDT:7", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(again.id).toBe(first.id);
    expect(again.fee).toBeCloseTo(first.fee, 10); // from the trades, since a looked-up order has no fills
    expect(standIn.posts()).toHaveLength(1);
    expect(standIn.requests.some((r) => r.path === "/api/v3/myTrades")).toBe(true);
  });

  it("reports a partial fill when the book runs out", async () => {
    standIn.liquidity.BTCUSDT = 0.004;
    const order = await live.placeOrder({ clientOrderId: "thin-1", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(order.status).toBe("partial");
    expect(order.filledQty).toBeCloseTo(0.004 * 0.999, 12);
    expect(order.reason).toMatch(/expired after filling 0.004 of 0.01/);
  });

  it("reports a rejection with the exchange's reason and does not resend it", async () => {
    const order = await live.placeOrder({ clientOrderId: "too-big", symbol: "BTC/USDT", side: "buy", qty: 5 });
    expect(order.status).toBe("rejected");
    expect(order.reason).toMatch(/^Account has insufficient balance for requested action\./);
    const again = await live.placeOrder({ clientOrderId: "too-big", symbol: "BTC/USDT", side: "buy", qty: 5 });
    expect(again.status).toBe("rejected");
    expect(standIn.posts()).toHaveLength(1);
  });

  it("refuses an order under the market's minimum size without sending it", async () => {
    const dust = await live.placeOrder({ clientOrderId: "dust", symbol: "BTC/USDT", side: "buy", qty: 0.000004 });
    expect(dust.status).toBe("rejected");
    expect(dust.reason).toMatch(/under binance's minimum order size of 0.00001 BTC/);
    const small = await live.placeOrder({ clientOrderId: "small", symbol: "BTC/USDT", side: "buy", qty: 0.00002 });
    expect(small.reason).toMatch(/under binance's minimum order value of 5 USDT/);
    expect(standIn.posts()).toHaveLength(0);
  });

  it("finds an order whose reply was lost, instead of sending it again", async () => {
    standIn.dropNextOrderResponse = true;
    const order = await live.placeOrder({ clientOrderId: "lost-1", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(order.status).toBe("filled");
    expect(standIn.posts()).toHaveLength(1);
    expect(standIn.orders).toHaveLength(1);
  });

  it("treats Binance's 'execution status unknown' as unknown, not as a rejection", async () => {
    standIn.unknownStatusNext = true;
    const order = await live.placeOrder({ clientOrderId: "unknown-1", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(order.status).toBe("filled");
    expect(standIn.orders).toHaveLength(1);
  });

  it("throws when the outcome is unknown, and the retry finds the order", async () => {
    standIn.dropNextOrderResponse = true;
    standIn.failLookups = 1;
    await expect(live.placeOrder({ clientOrderId: "lost-2", symbol: "BTC/USDT", side: "buy", qty: 0.01 })).rejects.toThrow(/not confirmed/);
    const retried = await live.placeOrder({ clientOrderId: "lost-2", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(retried.status).toBe("filled");
    expect(standIn.orders).toHaveLength(1);
  });

  it("places a limit order, follows its partial fill and cancels the rest", async () => {
    const below = Math.floor(standIn.price("BTCUSDT") * 0.95);
    const order = await live.placeOrder({ clientOrderId: "limit-1", symbol: "BTC/USDT", side: "buy", qty: 0.02, type: "limit", price: below + 0.004 });
    expect(order.status).toBe("open");
    expect(Number(standIn.posts()[0]!.params.price)).toBe(below); // tick 0.01: the extra 0.004 is cut
    expect((await live.openOrders()).map((o) => o.clientOrderId)).toEqual(["limit-1"]);
    expect((await live.holdings()).USDT).toBeCloseTo(10_000, 6); // locked is still held
    standIn.fillLimit(standIn.orders[0]!.orderId, 0.005);
    const partial = await live.findOrder("limit-1");
    expect(partial!.status).toBe("partial");
    expect(partial!.filledQty).toBeCloseTo(0.005 * 0.999, 12);
    expect(partial!.avgPrice).toBeCloseTo(below, 6);
    const final = await live.cancelOrder("limit-1");
    expect(final!.status).toBe("partial");
    expect(final!.reason).toMatch(/canceled after filling 0.005 of 0.02/);
    expect(await live.openOrders()).toEqual([]);
    expect(standIn.balance("USDT")).toBeCloseTo(10_000 - 0.005 * below, 6);
  });

  it("keeps the exchange's own words from an error", () => {
    expect(exchangeReason(new Error('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}'))).toBe("Filter failure: NOTIONAL (code -1013)");
    expect(exchangeReason(new Error("kraken EGeneral:Invalid arguments"))).toBe("EGeneral:Invalid arguments");
  });

  it("refuses a sandbox request on an exchange without a testnet", () => {
    expect(() => createLiveCcxtExchange({ id: "kraken", apiKey: "k", secret: "s", sandbox: true })).toThrow(/no testnet for kraken; nothing was sent/);
    expect(() => createLiveCcxtExchange({ id: "binance", sandbox: true })).toThrow(/EXCHANGE_API_KEY and EXCHANGE_SECRET/);
  });
});
