import { afterEach, describe, expect, it } from "vitest";
import { startTestApp, testConfig, type TestApp } from "./support/app.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

const orderCount = async () => (await t!.app.services.exchange.trades(100)).length;

/** A manual /trade goes through the same order path as the agent's decisions, with the same risk context. */
describe("a manual /trade on the one order path", () => {
  it("is refused by the loss cool-down after a losing round trip, and places no order", async () => {
    t = await startTestApp(testConfig((c) => Object.assign(c.risk, { cooldownAfterLossMinutes: 120, maxVar95Pct: undefined })));
    expect((await t.run("/trade buy BTC 50")).error).toBeFalsy();
    // Fees and slippage make an immediate round trip a loss.
    const sold = await t.run("/trade sell BTC all");
    expect(sold.text).toMatch(/Realized P&L -/);
    const before = await orderCount();
    t.clock.advance(30 * 60_000);
    const again = await t.run("/trade buy BTC 50");
    expect(again.error).toBe(true);
    expect(again.text).toMatch(/cooldown rule, 90 min left/);
    expect(await orderCount()).toBe(before);
    // Past the cool-down the same trade goes through.
    t.clock.advance(91 * 60_000);
    expect((await t.run("/trade buy BTC 50")).error).toBeFalsy();
    expect(await orderCount()).toBe(before + 1);
  });

  it("is refused by the VaR limit, and places no order", async () => {
    t = await startTestApp(testConfig((c) => Object.assign(c.risk, { maxVar95Pct: 0.0001 })));
    const reply = await t.run("/trade buy BTC 50");
    expect(reply.error).toBe(true);
    expect(reply.text).toMatch(/max-var rule/);
    expect(await orderCount()).toBe(0);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
  });

  it("gets the trailing stop a decision's buy gets", async () => {
    t = await startTestApp(testConfig((c) => Object.assign(c.risk, { trailingStopPct: 3, maxVar95Pct: undefined })));
    const reply = await t.run("/trade buy BTC 50");
    expect(reply.text).toMatch(/trailing 3%/);
    const [position] = await t.app.services.portfolio.positions();
    expect(position!.trailingStopPct).toBe(3);
  });
});
