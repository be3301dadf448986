import { Queue } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import { snapshot, stateSnapshot, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

describe("the scheduled loop on BullMQ", () => {
  it("runs a scheduled decision end to end and posts it to the chat", async () => {
    t = await startTestApp(testConfig((c) => {
      c.market.symbols = ["BTC/USDT"];
      c.schedule.decisionIntervalMs = 200;
    }));
    await t.app.startJobs();
    const record = await waitFor("a scheduled decision", async () =>
      (await t!.app.services.ledger.recent(10)).find((r) => r.trigger === "schedule" && r.outcome !== "decided"),
    );
    expect(record.symbol).toBe("BTC/USDT");
    expect(record.model).toBe("offline-engine");
    expect(record.id).toMatch(/^sched:BTC\/USDT:/);
    expect(["order", "no-order", "refused"]).toContain(record.outcome);
    expect(record.indicators?.rsi14).toBeTypeOf("number");
    const notice = await waitFor("its notice", async () => t!.notices.notices.find((n) => n.text.includes("Scheduled decision")));
    expect(notice.text).toContain("BTC/USDT");
    expect(notice.text).toContain("Model: offline-engine");
  });

  it("stops scheduled decisions on /pause and starts them again on /resume", async () => {
    t = await startTestApp(testConfig((c) => {
      c.market.symbols = ["BTC/USDT", "ETH/USDT"];
      c.schedule.decisionIntervalMs = 150;
    }));
    await t.app.startJobs();
    const ledger = t.app.services.ledger;
    await waitFor("scheduled decisions", async () => (await ledger.recent(100)).length >= 2);
    expect((await t.run("/pause")).text).toMatch(/paused/i);
    // A job that was already past its pause check may still finish; after that, nothing new. What
    // the test waits for is what it can see (the queue's jobs), not a span of time a loaded machine
    // may not give it.
    const decisions = new Queue("decisions", { connection: t.app.bull.connection, prefix: t.app.bull.prefix });
    try {
      await waitFor("the decision in flight to end", async () => (await decisions.getActiveCount()) === 0);
      const frozen = (await ledger.recent(1000)).length;
      const ran = await decisions.getCompletedCount();
      // Four more scheduled ticks ran while paused (two per symbol), and decided nothing.
      await waitFor("scheduled ticks while paused", async () => (await decisions.getCompletedCount()) >= ran + 4);
      expect((await ledger.recent(1000)).length).toBe(frozen);
      expect((await t.run("/resume")).text).toMatch(/resumed/i);
      await waitFor("decisions after resume", async () => (await ledger.recent(1000)).length > frozen);
    } finally {
      await decisions.close();
    }
  });
});

describe("every command", () => {
  it("answers each command with something readable", async () => {
    t = await startTestApp(testConfig());
    const expectations: [string, RegExp][] = [
      ["/help", /\/decide SYMBOL[\s\S]*\/refill AMOUNT[\s\S]*\/report/],
      ["/decide BTC", /BTC\/USDT: (BUY|SELL|HOLD|CLOSE)[\s\S]*Model: offline-engine · cost \$0\.0000[\s\S]*Indicators: price/],
      ["/balance", /USDC for model calls: \$10\.00 — OK[\s\S]*Trading account \[PAPER\]: cash/],
      ["/refill 10", /Refill: add \$10\.00 to the paper USDC wallet[\s\S]*Confirm within 60 s/],
      ["/confirm LAST", /Confirmed by tester-admin[\s\S]*Refilled \$10\.00\. USDC balance now \$20\.00/],
      ["/model", /1\. offline-engine — offline engine/],
      ["/model offline-engine", /Decisions now use offline-engine first/],
      ["/model auto", /Model choice reset/],
      ["/pause", /Trading paused/],
      ["/pause", /already paused/],
      ["/resume", /Trading resumed/],
      ["/resume", /not paused/],
      ["/status", /Trading: running · PAPER[\s\S]*Market: replay[\s\S]*Risk limits:/],
      ["/positions", /(No open positions|Open positions) \[PAPER\]/],
      ["/report", /Cost report \(today[\s\S]*Decisions: 1 [\s\S]*Success rate: 100\.0%/],
    ];
    let last: string | undefined;
    for (const [command, pattern] of expectations) {
      const reply = await t.run(command.replace("LAST", last ?? ""));
      last = reply.confirmationId ?? last;
      expect(reply.text, command).toMatch(pattern);
      expect(reply.error, command).toBeFalsy();
    }
  });

  it("refuses bad input with a clear error and changes nothing", async () => {
    t = await startTestApp(testConfig());
    await t.run("/balance"); // seeds the paper wallet and the day's starting equity
    const before = await snapshot(t.url);
    const cases: [string, RegExp][] = [
      ["/refill -5", /not an amount\. Usage: \/refill AMOUNT/],
      ["/refill abc", /"abc" is not an amount\. Usage: \/refill AMOUNT/],
      ["/refill 0", /from 0\.01 to 1000/],
      ["/refill 5000", /from 0\.01 to 1000/],
      ["/refill", /Usage: \/refill AMOUNT/],
      ["/decide NOPE", /Unknown symbol "NOPE"\. Watched symbols: BTC, ETH, DOGE\. Example: \/decide BTC/],
      ["/decide", /Usage: \/decide SYMBOL/],
      ["/decide BTC ETH", /Usage: \/decide SYMBOL/],
      ["/frobnicate", /Unknown command \/frobnicate\. Type \/help/],
      ["hello", /Commands start with \/\. Type \/help/],
      ["/model gpt-9", /Unknown model "gpt-9"\. Available: offline-engine/],
      ["/pause now", /takes no arguments/],
    ];
    for (const [command, pattern] of cases) {
      const reply = await t.run(command);
      expect(reply.text, command).toMatch(pattern);
      expect(reply.error, command).toBe(true);
    }
    expect(await snapshot(t.url)).toEqual(before);
  });

  it("refuses commands above the user's role", async () => {
    t = await startTestApp(testConfig());
    // Refusals are written to the audit log, and change nothing else.
    const before = await stateSnapshot(t.url);
    expect((await t.run("/refill 10", "trader")).text).toMatch(/needs the admin role/);
    expect((await t.run("/decide BTC", "viewer")).text).toMatch(/needs the trader role/);
    expect((await t.run("/pause", "viewer")).text).toMatch(/needs the trader role/);
    expect((await t.run("/model offline-engine", "trader")).text).toMatch(/Only an admin/);
    expect(await stateSnapshot(t.url)).toEqual(before);
    expect((await t.run("/help", "viewer")).text).not.toContain("/refill");
  });
});
