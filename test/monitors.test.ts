import { afterEach, describe, expect, it } from "vitest";
import { runBalanceMonitor } from "../jobs/balanceMonitor.js";
import { runDailyReport } from "../jobs/dailyReport.js";
import { runDecisionJob } from "../jobs/decisionJob.js";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import type { ModelLayer } from "../src/models/modelLayer.js";
import { SteeredMarket } from "./support/market.js";
import { buyReply, scriptedModels, startTestApp, testConfig, type TestApp } from "./support/app.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

describe("balance monitor", () => {
  it("warns once when the USDC balance is low, and not again while it stays low", async () => {
    t = await startTestApp(testConfig((c) => (c.balance.paperWalletStart = 0.8)));
    expect(await runBalanceMonitor(t.app)).toBe("low");
    expect(await runBalanceMonitor(t.app)).toBe("low");
    const alerts = t.notices.of("alert");
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.text).toMatch(/Low balance: USDC \$0\.80 is under \$1\.00/);
    expect(await t.app.services.state.isPaused()).toBe(false);
  });

  it("pauses trading at the critical level, and a refill resumes it", async () => {
    t = await startTestApp(testConfig((c) => (c.balance.paperWalletStart = 0.3)));
    expect(await runBalanceMonitor(t.app)).toBe("critical");
    await runBalanceMonitor(t.app);
    expect(t.notices.of("critical")).toHaveLength(1);
    expect(t.notices.of("critical")[0]!.text).toMatch(/CRITICAL: USDC balance \$0\.30[\s\S]*Trading is paused/);
    expect(await t.app.services.state.pauseState()).toMatchObject({ paused: true, reason: "critical-balance" });

    // Paused: a scheduled decision makes nothing, a chat decision says why.
    expect(await runDecisionJob(t.app, "BTC/USDT", "1")).toBeUndefined();
    expect((await t.run("/decide BTC")).text).toMatch(/paused \(critical-balance\)/);
    expect((await t.run("/resume")).text).toMatch(/stays paused[\s\S]*\/refill first/);
    expect(await t.app.services.ledger.recent(10)).toEqual([]);

    const ask = await t.run("/refill 5");
    expect(ask.text).toMatch(/Refill: add \$5\.00/);
    expect(await t.app.services.state.isPaused()).toBe(true); // nothing happens before the confirmation
    expect((await t.run(`/confirm ${ask.confirmationId}`)).text).toMatch(/USDC balance now \$5\.30\.\nTrading was paused for a critical balance: it is resumed\./);
    expect(await t.app.services.state.isPaused()).toBe(false);
    expect(await runBalanceMonitor(t.app)).toBe("ok");
  });

  it("refills automatically under the threshold when AUTO_REFILL is on", async () => {
    t = await startTestApp(testConfig((c) => Object.assign(c.balance, { paperWalletStart: 1.5, autoRefill: true, refillThreshold: 2, refillAmount: 10 })));
    expect(await runBalanceMonitor(t.app)).toBe("ok");
    expect(await t.app.services.balance.getBalance()).toBe(11_500_000);
    expect(t.notices.of("info")[0]!.text).toMatch(/Auto-refill: \+\$10\.00 USDC, balance now \$11\.50/);
  });
});

describe("position monitor", () => {
  async function openBtc(): Promise<{ t: TestApp; market: SteeredMarket; entry: number }> {
    const market = new SteeredMarket(["BTC/USDT"]);
    market.set("BTC/USDT", { open: 50_000 });
    const app = await startTestApp(testConfig((c) => (c.market.symbols = ["BTC/USDT"])), {
      market,
      models: scriptedModels(() => buyReply(5, { stopLossPct: 2, takeProfitPct: 4 }), 0),
    });
    expect((await app.run("/decide BTC")).text).toMatch(/Order: BUY/);
    const [position] = await app.app.services.portfolio.positions();
    return { t: app, market, entry: position!.entryPrice };
  }

  it("sells at the open when the price gaps through the stop loss, once", async () => {
    const opened = await openBtc();
    t = opened.t;
    const [position] = await t.app.services.portfolio.positions();
    expect(position!.stopLoss).toBeCloseTo(50_000 * 0.98, 6);
    opened.market.set("BTC/USDT", { open: 47_000 }); // opened below the stop: a gap
    // The monitor keeps protecting positions while trading is paused.
    await t.run("/pause");
    expect(await runPositionMonitor(t.app)).toBe(1);
    expect(await runPositionMonitor(t.app)).toBe(0);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
    const [exit] = await t.app.services.exchange.trades(1);
    expect(exit).toMatchObject({ side: "sell", status: "filled" });
    expect(exit!.avgPrice).toBeLessThan(47_000); // filled at the gap open less slippage, not at the stop
    expect(await t.app.services.exchange.trades(10)).toHaveLength(2);
    // A gap through a stop is the market breaking a limit: an alert, not a routine trade notice.
    const notice = t.notices.of("alert").at(-1)!;
    expect(notice.text).toMatch(/Stop loss hit on BTC\/USDT \(the price gapped through the level\)[\s\S]*P&L -\d[\s\S]*broke through the stop/);
    expect(notice.text).toContain("[PAPER]");
    expect(await t.app.services.portfolio.realizedPnl()).toBeLessThan(0);
  });

  it("takes profit when the candle's high touches the target", async () => {
    const opened = await openBtc();
    t = opened.t;
    opened.market.set("BTC/USDT", { open: 51_000, high: 52_100, low: 50_900 });
    expect(await runPositionMonitor(t.app)).toBe(1);
    expect(t.notices.of("trade").at(-1)!.text).toMatch(/Take profit hit on BTC\/USDT: sold/);
    expect(await t.app.services.portfolio.realizedPnl()).toBeGreaterThan(0);
  });

  it("leaves a position alone while the price is between its stop and target", async () => {
    const opened = await openBtc();
    t = opened.t;
    opened.market.set("BTC/USDT", { open: 50_500, high: 50_900, low: 49_500 });
    expect(await runPositionMonitor(t.app)).toBe(0);
    expect(await t.app.services.portfolio.positions()).toHaveLength(1);
  });
});

/** A paid scripted model ($0.05 a call) that buys, and counts how often it is asked. */
function countingBuyer(): { models: ModelLayer; calls: () => number } {
  let calls = 0;
  // It reports its cost with the reply, as the gateway does: the ledger books only what was paid.
  const models = scriptedModels(() => (calls++, buyReply(5)), 0.05, "test/paid");
  return { models, calls: () => calls };
}

describe("a retried decision job", () => {
  it("never places a second order nor pays twice", async () => {
    const { models, calls } = countingBuyer();
    t = await startTestApp(testConfig((c) => (c.market.symbols = ["BTC/USDT"])), { models });
    const first = await runDecisionJob(t.app, "BTC/USDT", "job-7");
    const again = await runDecisionJob(t.app, "BTC/USDT", "job-7");
    expect(first!.outcome).toBe("order");
    expect(again).toEqual(first);
    expect(calls()).toBe(1);
    expect(await t.app.services.exchange.trades(10)).toHaveLength(1);
    expect(await t.app.services.balance.getBalance()).toBe(10_000_000 - 50_000);
  });

  it("after a crash between the model's answer and the order, reuses the answer and places the order once", async () => {
    const { models, calls } = countingBuyer();
    t = await startTestApp(testConfig((c) => (c.market.symbols = ["BTC/USDT"])), { models });
    const s = t.app.services;
    // What a crash right after the model answered leaves behind: a "decided" record, one charge.
    await s.balance.trackCost("sched:BTC/USDT:job-9:test/paid", "test/paid", 50_000, t.clock.now);
    await s.ledger.put({
      id: "sched:BTC/USDT:job-9", time: t.clock.now, symbol: "BTC/USDT", trigger: "schedule", model: "test/paid",
      costMicro: 50_000, latencyMs: 5, outcome: "decided", action: "buy", sizePct: 5, confidence: 0.8, reasons: ["before the crash"],
    });
    const record = await runDecisionJob(t.app, "BTC/USDT", "job-9");
    expect(record!.outcome).toBe("order");
    expect(record!.reasons).toEqual(["before the crash"]);
    expect(calls()).toBe(0);
    expect(await s.exchange.trades(10)).toHaveLength(1);
    expect(await s.balance.getBalance()).toBe(10_000_000 - 50_000);
  });
});

describe("daily cost report job", () => {
  it("posts the same report /report shows", async () => {
    t = await startTestApp(testConfig());
    await t.run("/decide BTC");
    const text = await runDailyReport(t.app);
    expect(text).toBe((await t.run("/report")).text);
    const [notice] = t.notices.of("report");
    expect(notice!.text).toMatch(/^Daily cost report \(today, 2026-11-22 UTC\)\nDecisions: 1 /);
  });
});
