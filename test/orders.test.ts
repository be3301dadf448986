// Orders from chat on the console: limit orders (resting, filled later by the paper exchange,
// reserved in the risk rules), /orders, /cancel_order, /stop, /tp, /close and /stopentry.
import { afterEach, describe, expect, it } from "vitest";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { findCommand } from "../commands/registry.js";
import type { Config } from "../src/config/config.js";
import { Redis } from "ioredis";
import { PaperExchange } from "../src/exchange/paper.js";
import type { Candle, RiskLimits } from "../src/domain/types.js";
import { checkRisk } from "../src/risk/rules.js";
import { buyReply, freshRedisUrl, scriptedModels, startTestApp, stateSnapshot, testConfig, type TestApp } from "./support/app.js";
import { SteeredMarket } from "./support/market.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

async function start(edit: (c: Config) => void = () => {}, models = scriptedModels(() => buyReply(5, { stopLossPct: 2, takeProfitPct: 4 }), 0)): Promise<{ t: TestApp; market: SteeredMarket }> {
  const market = new SteeredMarket(["BTC/USDT", "ETH/USDT"]);
  market.set("BTC/USDT", { open: 50_000 });
  market.set("ETH/USDT", { open: 2_000 });
  t = await startTestApp(
    testConfig((c) => {
      c.market.symbols = ["BTC/USDT", "ETH/USDT"];
      Object.assign(c.risk, { maxVar95Pct: undefined, cooldownAfterLossMinutes: 0 });
      edit(c);
    }),
    { market, models },
  );
  return { t, market };
}

const cash = async () => (await t!.app.services.exchange.balances()).USDT ?? 0;
const idOf = (text: string) => /order ([0-9a-f]{6})/.exec(text)?.[1];

describe("a limit order from /trade", () => {
  it("rests below the market, is listed, fills when the price crosses it, and is booked with exits and announced", async () => {
    const { market } = await start();
    const placed = await t!.run("/trade buy BTC 50 @ 49000");
    expect(placed.error).toBeFalsy();
    expect(placed.text).toMatch(/^Limit BUY 0\.001020 BTC @ 49,000(\.00)? placed, order [0-9a-f]{6} \[PAPER\]/);
    expect(placed.text).toMatch(/Once filled: stop loss 47,530[\s\S]*take profit 51,940/);
    const id = idOf(placed.text)!;
    // Nothing is booked yet; its cash is locked, not gone: equity is unchanged.
    expect(await t!.app.services.portfolio.positions()).toEqual([]);
    expect(await cash()).toBeCloseTo(10_000 - 50 * 1.001, 6);
    expect((await t!.run("/balance")).text).toMatch(/equity 10,000\.00 USDT/);
    const listed = await t!.run("/orders");
    expect(listed.text).toContain(`${id}  BUY 0.001020 BTC @ 49,000`);
    expect(listed.text).toMatch(/by tester-admin/);

    // Not crossed yet: nothing fills.
    market.set("BTC/USDT", { open: 49_500 });
    await runPositionMonitor(t!.app);
    expect(await t!.app.services.portfolio.positions()).toEqual([]);

    // The price falls through the limit: it fills at the limit, as a maker.
    market.set("BTC/USDT", { open: 48_900 });
    await runPositionMonitor(t!.app);
    const [position] = await t!.app.services.portfolio.positions();
    expect(position).toMatchObject({ symbol: "BTC/USDT", entryPrice: 49_000 });
    expect(position!.qty).toBeCloseTo(50 / 49_000, 10);
    expect(position!.stopLoss).toBeCloseTo(49_000 * 0.97, 6);
    expect(position!.takeProfit).toBeCloseTo(49_000 * 1.06, 6);
    expect(await cash()).toBeCloseTo(10_000 - 50 - 50 * 0.001, 6);
    const notice = t!.notices.of("trade").at(-1)!;
    expect(notice.text).toMatch(new RegExp(`^Limit BUY BTC @ 49,000(\\.00)? \\(order ${id}, /trade buy BTC 50 @ 49000 by tester-admin\\) FILLED \\[PAPER\\]\\nBUY 0\\.001020 BTC @ 49,000`));
    expect(notice.text).toMatch(/Stop loss 47,530/);
    expect((await t!.run("/orders")).text).toMatch(/^No open orders \[PAPER\]/);
    // Booked once: another run changes nothing.
    await runPositionMonitor(t!.app);
    expect((await t!.app.services.portfolio.positions())[0]!.qty).toBeCloseTo(50 / 49_000, 10);
    expect(t!.notices.of("trade").filter((n) => n.text.startsWith("Limit"))).toHaveLength(1);
  });

  it("fills at once, at the market's price, when a buy limit is above the market (and says so)", async () => {
    await start();
    const reply = await t!.run("/trade buy BTC 50 @ 60000");
    expect(reply.text).toMatch(/^Manual BUY 0\.000833 BTC @ 50,025/);
    expect(reply.text).toMatch(/already at or above the price 50,000(\.00)?: it filled at once at the market's price, never worse than the limit/);
    expect((await t!.run("/orders")).text).toMatch(/^No open orders/);
  });

  it("refuses a limit price of 0, below 0 or not a number, an unknown symbol and a dangling @, changing nothing", async () => {
    await start();
    const before = await stateSnapshot(t!.url);
    const cases: [string, RegExp][] = [
      ["/trade buy BTC 50 @ 0", /limit price must be above 0, not 0\. Nothing was placed/],
      ["/trade buy BTC 50 @ -5", /limit price "-5" is not a number/],
      ["/trade buy BTC 50 @ abc", /limit price "abc" is not a number/],
      ["/trade buy BTC 50 @", /"@" needs a limit price after it/],
      ["/trade buy XYZ 50 @ 100", /Unknown symbol "XYZ"/],
      ["/trade buy BTC 50 @ 100 200", /Usage: \/trade buy\|sell SYMBOL AMOUNT \[@ PRICE\]/],
    ];
    for (const [line, error] of cases) {
      const reply = await t!.run(line);
      expect(reply.error, line).toBe(true);
      expect(reply.text, line).toMatch(error);
    }
    expect(await stateSnapshot(t!.url)).toEqual(before);
  });

  it("reserves an open buy's notional so two limit orders cannot jointly exceed the position size", async () => {
    await start((c) => (c.chat.tradeConfirmAbove = 100_000));
    // 10% of 10,000 equity is the most one position may hold.
    const first = await t!.run("/trade buy BTC 800 @ 45000");
    expect(first.text).toMatch(/placed, order/);
    const second = await t!.run("/trade buy BTC 800 @ 44000");
    expect(second.text).toMatch(/Resized by the risk rules: Resized from 800 to 200: the largest position is 10% of equity \(max-position rule, 800 of it reserved by open buy orders\)/);
    const third = await t!.run("/trade buy BTC 800 @ 43000");
    expect(third.error).toBe(true);
    expect(third.text).toMatch(/max-position rule, 1,000 of it reserved by open buy orders\)\), the order of 0 is under the minimum/);
    const open = await t!.app.services.openOrders.all();
    const reserved = open.reduce((sum, o) => sum + o.qty * o.limitPrice, 0);
    expect(reserved).toBeCloseTo(1_000, 6);
  });

  it("reserves exposure across symbols and counts an open buy as an open position", async () => {
    await start((c) => {
      Object.assign(c.risk, { maxPositionPct: 40, maxExposurePct: 50, maxOpenPositions: 1 });
      c.chat.tradeConfirmAbove = 100_000;
    });
    expect((await t!.run("/trade buy BTC 3000 @ 45000")).text).toMatch(/placed/);
    const other = await t!.run("/trade buy ETH 3000 @ 1900");
    expect(other.error).toBe(true);
    expect(other.text).toMatch(/1 positions are open \(1 of them open buy orders\), the most allowed is 1 \(max-open-positions rule\)/);
  });

  it("asks for a confirmation above the threshold, and a confirmation run twice places one order", async () => {
    await start();
    const asked = await t!.run("/trade buy BTC 500 @ 49000", "trader");
    expect(asked.text).toMatch(/Buy 500\.00 USDT of BTC\/USDT with a limit order at 49,000(\.00)? \(the price now: 50,000(\.00)?\) \[PAPER\]\?/);
    expect(await t!.app.services.openOrders.count()).toBe(0);
    const one = await t!.run(`/confirm ${asked.confirmationId}`, "trader");
    expect(one.text).toMatch(/placed, order/);
    // The same confirmed command run again (a worker taking over, a redelivery): it finds its first order.
    const user = { id: "u-trader", name: "tester-trader", platform: "console" as const, role: "trader" as const };
    const trade = findCommand("trade")!;
    const ctx = { user, app: t!.app, confirmationId: asked.confirmationId! };
    const parsed = trade.parse(["buy", "BTC", "500", "@", "49000"], ctx);
    if (!parsed.ok) throw new Error(parsed.error);
    const two = await trade.run(parsed.value, ctx);
    expect(idOf(two.text)).toBe(idOf(one.text));
    expect(await t!.app.services.openOrders.count()).toBe(1);
    expect(await cash()).toBeCloseTo(10_000 - 500 * 1.001, 6);
  });
});

describe("/cancel_order", () => {
  it("cancels an open order and frees its funds; an unknown or malformed id is a clear error", async () => {
    await start();
    const id = idOf((await t!.run("/trade buy BTC 50 @ 49000")).text)!;
    const before = await stateSnapshot(t!.url);
    const unknown = await t!.run("/cancel_order abcdef");
    expect(unknown).toMatchObject({ error: true, text: "No open order with id abcdef: nothing was cancelled. /orders lists the open ones." });
    const malformed = await t!.run("/cancel_order 12");
    expect(malformed.text).toMatch(/Usage: \/cancel_order ID, with the six-character id/);
    expect(await stateSnapshot(t!.url)).toEqual(before);
    const cancelled = await t!.run(`/cancel_order ${id}`, "trader");
    expect(cancelled.text).toMatch(/^Cancelled the limit BUY 0\.001020 BTC @ 49,000(\.00)? \(order [0-9a-f]{6}\) \[PAPER\]\. Its funds are free again\./);
    expect(await cash()).toBeCloseTo(10_000, 6);
    expect(await t!.app.services.openOrders.count()).toBe(0);
    const audit = await t!.app.chat.audit.recent(10);
    expect(audit.map((e) => `${e.command} → ${e.result}`)).toEqual(expect.arrayContaining([`/cancel_order ${id} → ok`, "/cancel_order abcdef → failed"]));
    // A viewer may list but not cancel.
    expect((await t!.run(`/cancel_order ${id}`, "viewer")).text).toMatch(/needs the trader role/);
  });
});

describe("/stop and /tp", () => {
  it("move a position's exits within the bounds, and refuse the wrong side, too wide, or no position", async () => {
    await start();
    expect((await t!.run("/trade buy BTC 50")).error).toBeFalsy();
    const [position] = await t!.app.services.portfolio.positions();
    const entry = position!.entryPrice;
    const before = await stateSnapshot(t!.url);
    const refusals: [string, RegExp][] = [
      ["/stop BTC 50500", /stop loss at 50,500 is at or above the price now \(50,000\): for a long it must be below the price[\s\S]*Nothing was changed/],
      ["/stop BTC 40000", /below the entry 50,025, wider than the 10% allowed \(max_stop_loss\): the lowest allowed is 45,022\.5/],
      ["/stop ETH 1900", /There is no open ETH\/USDT position: no stop loss to move/],
      ["/stop BTC 0", /must be a price above 0/],
      ["/stop DOGEX 1", /Unknown symbol "DOGEX"/],
      ["/tp BTC 49000", /take profit at 49,000 is at or below the price now \(50,000\)/],
      ["/tp BTC abc", /must be a price above 0, not "abc"/],
    ];
    for (const [line, error] of refusals) {
      const reply = await t!.run(line);
      expect(reply.error, line).toBe(true);
      expect(reply.text, line).toMatch(error);
    }
    expect(await stateSnapshot(t!.url)).toEqual(Object.fromEntries(Object.entries(before)));
    const moved = await t!.run("/stop BTC 48000", "trader");
    expect(moved.text).toMatch(/^BTC\/USDT stop loss moved from 48,500(\.00)? to 48,000(\.00)? by tester-trader: 4\.00% below the price now/);
    const target = await t!.run("/tp BTC 56000", "trader");
    expect(target.text).toMatch(/take profit moved from 53,000(\.00)? to 56,000/);
    expect(await t!.app.services.portfolio.position("BTC/USDT")).toMatchObject({ stopLoss: 48_000, takeProfit: 56_000, entryPrice: entry });
    expect(t!.notices.of("info").map((n) => n.text)).toEqual(expect.arrayContaining([expect.stringMatching(/stop loss moved from/)]));
  });

  it("the moved stop is the one the position monitor enforces", async () => {
    const { market } = await start();
    await t!.run("/trade buy BTC 50");
    await t!.run("/stop BTC 49500");
    market.set("BTC/USDT", { open: 49_600 });
    expect(await runPositionMonitor(t!.app)).toBe(0);
    market.set("BTC/USDT", { open: 49_400 });
    expect(await runPositionMonitor(t!.app)).toBe(1);
    expect(await t!.app.services.portfolio.positions()).toEqual([]);
  });
});

describe("/close", () => {
  it("sells the whole position through the order path, and says so when there is none", async () => {
    await start();
    await t!.run("/trade buy BTC 50");
    const closed = await t!.run("/close BTC", "trader");
    expect(closed.error).toBeFalsy();
    expect(closed.text).toMatch(/^Closed BTC\/USDT: Manual SELL 0\.001000 BTC @ 49,975[\s\S]*Realized P&L -/);
    expect(await t!.app.services.portfolio.positions()).toEqual([]);
    const [sell] = await t!.app.services.exchange.trades(1);
    expect(sell).toMatchObject({ side: "sell", status: "filled" });
    expect(sell!.clientOrderId).toMatch(/^close:/);
    const again = await t!.run("/close BTC");
    expect(again).toMatchObject({ error: true, text: "There is no open BTC/USDT position to close. /positions lists them." });
    expect(await t!.app.services.exchange.trades(10)).toHaveLength(2);
  });

  it("cancels the position's resting sell first so the coins are free, and works while entries are stopped", async () => {
    await start();
    await t!.run("/trade buy BTC 50");
    const sell = await t!.run("/trade sell BTC all @ 60000");
    expect(sell.text).toMatch(/Limit SELL 0\.001000 BTC @ 60,000(\.00)? placed/);
    expect((await t!.app.services.exchange.balances()).BTC ?? 0).toBeCloseTo(0, 12);
    await t!.run("/stopentry");
    const closed = await t!.run("/close BTC");
    expect(closed.text).toMatch(/^Closed BTC\/USDT: Manual SELL 0\.001000 BTC/);
    expect(await t!.app.services.openOrders.count()).toBe(0);
    expect(await t!.app.services.portfolio.positions()).toEqual([]);
  });
});

describe("exits and resting sells", () => {
  it("a stop loss cancels the position's resting sell first, so its coins are free to sell", async () => {
    const { market } = await start();
    await t!.run("/trade buy BTC 50");
    expect((await t!.run("/trade sell BTC all @ 60000")).text).toMatch(/placed/);
    market.set("BTC/USDT", { open: 48_000 });
    expect(await runPositionMonitor(t!.app)).toBe(1);
    expect(await t!.app.services.portfolio.positions()).toEqual([]);
    expect(await t!.app.services.openOrders.count()).toBe(0);
    expect(await t!.app.services.exchange.openOrders!()).toEqual([]);
  });

  it("a /close confirmed and run twice sells once", async () => {
    await start((c) => (c.chat.tradeConfirmAbove = 10));
    const buy = await t!.run("/trade buy BTC 50", "trader");
    await t!.run(`/confirm ${buy.confirmationId}`, "trader");
    const asked = await t!.run("/close BTC", "trader");
    expect(asked.text).toMatch(/^Close the whole BTC\/USDT position \(0\.001000, about 50\.00 USDT\) at about 50,000(\.00)? \[PAPER\]\?/);
    expect(await t!.app.services.portfolio.positions()).toHaveLength(1);
    expect((await t!.run(`/confirm ${asked.confirmationId}`, "trader")).text).toMatch(/Closed BTC\/USDT/);
    const user = { id: "u-trader", name: "tester-trader", platform: "console" as const, role: "trader" as const };
    const again = await findCommand("close")!.run("BTC/USDT", { user, app: t!.app, confirmationId: asked.confirmationId! });
    expect(again.text).toMatch(/Closed BTC\/USDT/);
    expect((await t!.app.services.exchange.trades(10)).filter((o) => o.side === "sell")).toHaveLength(1);
  });
});

describe("/stopentry", () => {
  it("blocks a buy decision and /trade buys, while a stop loss still fires; kept across a restart and shown in /status", async () => {
    const { market } = await start();
    expect((await t!.run("/decide BTC")).text).toMatch(/Order: BUY/);
    const stopped = await t!.run("/stopentry", "trader");
    expect(stopped.text).toMatch(/^New entries stopped/);
    expect((await t!.run("/stopentry")).text).toMatch(/already stopped \(by tester-trader \(console\)\)/);
    const decided = await t!.run("/decide ETH");
    expect(decided.text).toMatch(/New entries are stopped \(\/stopentry by tester-trader \(console\)\): no buy placed/);
    const manual = await t!.run("/trade buy ETH 50");
    expect(manual.error).toBe(true);
    expect(manual.text).toMatch(/New entries are stopped/);
    expect((await t!.run("/trade buy ETH 50 @ 1900")).text).toMatch(/New entries are stopped/);
    expect((await t!.app.services.portfolio.positions()).map((p) => p.symbol)).toEqual(["BTC/USDT"]);
    expect((await t!.run("/status")).text).toMatch(/Entries: STOPPED \(\/stopentry by tester-trader \(console\), \d+ s ago\): no new buys; exits, stops and take-profits keep working/);

    // The stop loss (2% below) still sells.
    market.set("BTC/USDT", { open: 48_000 });
    expect(await runPositionMonitor(t!.app)).toBe(1);
    expect(await t!.app.services.portfolio.positions()).toEqual([]);
    expect(t!.notices.of("alert").concat(t!.notices.of("trade")).some((n) => /Stop loss hit on BTC\/USDT/.test(n.text))).toBe(true);

    // Kept in Redis: a new process on the same Redis still refuses buys.
    const url = t!.url;
    await t!.app.stop();
    const market2 = new SteeredMarket(["BTC/USDT", "ETH/USDT"]);
    t = await startTestApp(testConfig((c) => { c.market.symbols = ["BTC/USDT", "ETH/USDT"]; c.risk.maxVar95Pct = undefined; }), { url, market: market2 });
    expect((await t.run("/trade buy ETH 50")).text).toMatch(/New entries are stopped/);
    expect((await t.run("/stopentry off")).text).toMatch(/^New entries allowed again/);
    expect((await t.run("/stopentry off")).text).toBe("New entries are not stopped.");
    expect((await t.run("/status")).text).toMatch(/Entries: allowed/);
    expect((await t.run("/trade buy ETH 50")).error).toBeFalsy();
    expect((await t.run("/stopentry now")).text).toMatch(/Usage: \/stopentry \[off\]/);
  });
});

describe("the paper exchange's limit orders", () => {
  it("fill at the candle's open when it gapped through the limit, once, and a cancel after the fill changes nothing", async () => {
    const redis = new Redis(await freshRedisUrl());
    let now = 1_000_000;
    let last = 100;
    let candle: Candle = { time: 0, open: 100, high: 100, low: 100, close: 100, volume: 1 };
    const paper = new PaperExchange({ redis, prices: async () => last, candle: () => candle, feeRate: 0.001, slippageBps: 5, startingCash: 1_000, clock: () => now });
    try {
      const buy = await paper.placeOrder({ clientOrderId: "b1", symbol: "BTC/USDT", side: "buy", qty: 1, type: "limit", price: 95 });
      expect(buy.status).toBe("open");
      expect((await paper.balances()).USDT).toBeCloseTo(1_000 - 95 * 1.001, 9);
      expect((await paper.holdings()).USDT).toBeCloseTo(1_000, 9);
      // The same client id again: the same order, nothing locked twice.
      expect((await paper.placeOrder({ clientOrderId: "b1", symbol: "BTC/USDT", side: "buy", qty: 1, type: "limit", price: 95 })).id).toBe(buy.id);
      // A candle that touched 95 before the order was placed does not fill it.
      candle = { time: now - 1, open: 100, high: 100, low: 90, close: 100, volume: 1 };
      expect(await paper.matchOpenOrders()).toEqual([]);
      // A candle opened after it, at 93 (a gap through 95): filled at the open, the better price.
      now += 10;
      candle = { time: now, open: 93, high: 96, low: 92, close: 94, volume: 1 };
      last = 94;
      const [filled] = await paper.matchOpenOrders();
      expect(filled).toMatchObject({ clientOrderId: "b1", status: "filled", filledQty: 1, avgPrice: 93 });
      expect(await paper.matchOpenOrders()).toEqual([]);
      expect((await paper.balances()).USDT).toBeCloseTo(1_000 - 93 * 1.001, 9);
      expect((await paper.balances()).BTC).toBeCloseTo(1, 12);
      expect(await paper.cancelOrder("b1")).toMatchObject({ status: "filled" });
      expect((await paper.balances()).USDT).toBeCloseTo(1_000 - 93 * 1.001, 9);

      // A sell limit locks the coin, and a cancel gives it back.
      const sell = await paper.placeOrder({ clientOrderId: "s1", symbol: "BTC/USDT", side: "sell", qty: 1, type: "limit", price: 120 });
      expect(sell.status).toBe("open");
      expect((await paper.balances()).BTC ?? 0).toBeCloseTo(0, 12);
      expect((await paper.placeOrder({ clientOrderId: "s2", symbol: "BTC/USDT", side: "sell", qty: 1, type: "limit", price: 130 })).status).toBe("rejected");
      expect(await paper.cancelOrder("s1")).toMatchObject({ status: "rejected", reason: "cancelled" });
      expect((await paper.balances()).BTC).toBeCloseTo(1, 12);
      expect(await paper.openOrders()).toEqual([]);
    } finally {
      await redis.quit();
    }
  });
});

describe("the risk rules with open buy orders reserved", () => {
  const limits: RiskLimits = { maxPositionPct: 40, maxExposurePct: 50, maxLeverage: 1, maxOpenPositions: 3, dailyLossLimitPct: 5, defaultStopLossPct: 3, maxStopLossPct: 10, defaultTakeProfitPct: 6, minOrderNotional: 10 };
  const books = { cash: 6_000, reserved: 4_000, positions: [], prices: {}, dayStartEquity: 10_000 };
  const buy = (symbol: string, sizePct: number) => ({ symbol, action: "buy" as const, sizePct, confidence: 1, reasons: [] });

  it("counts the locked quote in equity and the reserved notional against exposure", () => {
    const v = checkRisk(buy("ETH/USDT", 20), books, limits, 2_000, { reserved: { total: 4_000, bySymbol: { "BTC/USDT": 4_000 } } });
    expect(v.outcome).toBe("resized");
    expect(v.qty * 2_000).toBeCloseTo(1_000, 6);
    expect(v.message).toMatch(/max-exposure rule, 4,000 of it reserved by open buy orders/);
  });

  it("without the reservation the same buy passes: the reservation is what binds", () => {
    const v = checkRisk(buy("ETH/USDT", 20), books, limits, 2_000, {});
    expect(v.outcome).toBe("approved");
    expect(v.qty * 2_000).toBeCloseTo(2_000, 6);
  });
});
