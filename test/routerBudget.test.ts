// Spending guardrails under load: 50 decisions in flight at once against a daily cap, with the real
// provider paying the stand-in. What the stand-in took is the ground truth.
import { afterEach, describe, expect, it } from "vitest";
import { dayKey } from "../src/ledger/ledger.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";
import { GPT, startRouterApp, type RouterTestApp } from "./support/routerApp.js";

let t: RouterTestApp | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const PRICE = 0.03125; // 31,250 atomic units: 16 calls are exactly $0.50

async function burst(n: number): Promise<DecisionRecord[]> {
  await t!.app.services.state.chooseModel(GPT);
  return Promise.all(Array.from({ length: n }, (_, i) => t!.app.decide({ decisionId: `burst:${i}`, symbol: "BTC/USDT", trigger: "chat" })));
}

describe("a budget cap under 50 concurrent decisions", () => {
  for (const c of [
    { name: "a cap that fits 16 calls exactly", cap: 0.5, estimate: PRICE, calls: 16 },
    { name: "a cap one atomic unit short of 16 calls", cap: 0.499999, estimate: PRICE, calls: 15 },
    // Reserved at a third of the real price: the quote at the 402 is what the cap is checked against.
    { name: "an estimate well under the gateway's price", cap: 0.499999, estimate: 0.01, calls: 15 },
  ]) {
    it(`is never crossed, by one atomic unit: ${c.name}`, async () => {
      t = await startRouterApp(
        (cfg) => {
          cfg.balance.dailyBudget = c.cap;
          cfg.routing.modelPrices = { [GPT]: c.estimate };
          // Calls in flight settle well within this even on a loaded machine; waiters queue up to a third of it.
          cfg.router.timeoutMs = 30_000;
        },
        { prices: { [GPT]: PRICE } },
      );
      const records = await burst(50);
      const cap = BigInt(Math.round(c.cap * 1_000_000));

      // The ground truth: what the gateway was paid.
      expect(t.standIn.paidAtomic() <= cap).toBe(true);
      expect(t.standIn.payments).toHaveLength(c.calls);
      // The books agree with it to the unit, and nothing is left reserved.
      const spent = await t.app.services.ledger.spentOn(dayKey(t.clock.now));
      expect(BigInt(spent)).toBe(t.standIn.paidAtomic());
      const status = await t.app.services.models.runtime!.budget.status(t.clock.now);
      expect(status.reservedTodayMicro).toBe(0);

      // Paid decisions came from the model; the others fell back to the free engine, told why.
      const paid = records.filter((r) => r.model === GPT);
      const free = records.filter((r) => r.model === "offline-engine");
      expect(paid).toHaveLength(c.calls);
      expect(free).toHaveLength(50 - c.calls);
      for (const r of free) expect(r.freeBecause).toBe("budget");
      expect(free[0]!.error).toMatch(/over-budget, the daily budget \$0\.50 has/);

      // One clear alert, not one per decision.
      const alerts = t.notices.of("alert").filter((n) => /budget reached/.test(n.text));
      expect(alerts).toHaveLength(1);
      expect(alerts[0]!.text).toMatch(/Model budget reached: \$0\.\d{4} of the daily \$0\.50 is spent\. No paid model calls until midnight UTC; decisions use the offline engine meanwhile\. Raise DAILY_BUDGET_USDC/);

      // And it stays closed: the next decision pays nothing and alerts no more.
      const after = await t.app.decide({ decisionId: "after", symbol: "BTC/USDT", trigger: "chat" });
      expect(after.model).toBe("offline-engine");
      expect(t.standIn.payments).toHaveLength(c.calls);
      expect(t.notices.of("alert").filter((n) => /budget reached/.test(n.text))).toHaveLength(1);
    }, 60_000);
  }

  it("keeps the monthly cap too, and the report shows spend against both caps", async () => {
    t = await startRouterApp(
      (cfg) => {
        cfg.balance.dailyBudget = 5;
        cfg.balance.monthlyBudget = 0.1;
        cfg.routing.modelPrices = { [GPT]: PRICE };
      },
      { prices: { [GPT]: PRICE } },
    );
    await burst(10);
    expect(t.standIn.paidAtomic()).toBe(93_750n);
    expect((await t.run("/report")).text).toMatch(/Today: \$0\.0938 of \$5\.00 \(1\.9%\) \| This month: \$0\.0938 of \$0\.10 \(93\.8%\)/);
    expect(t.notices.of("alert").map((n) => n.text).join("\n")).toMatch(/of the monthly \$0\.10 is spent\. No paid model calls until the start of next month/);
  });
});

describe("the balance rules", () => {
  it("make no paid call that would leave the wallet under the critical level", async () => {
    t = await startRouterApp((cfg) => {
      cfg.balance.paperWalletStart = 0.52;
      cfg.balance.criticalBalance = 0.5;
    });
    await t.app.services.state.chooseModel(GPT);
    const record = await t.app.decide({ decisionId: "poor", symbol: "BTC/USDT", trigger: "chat" });
    expect(record.model).toBe("offline-engine");
    expect(record.freeBecause).toBe("balance");
    expect(t.standIn.payments).toHaveLength(0);
  });
});
