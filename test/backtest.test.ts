// The backtest: metrics and baselines checked by hand on small cases, the engine on the real BTC
// candles (the offline engine called directly against the same engine through
// @daydreamsai/core, the AI bill and its cap), a full-history run, and the command line.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buyAndHold, smaCrossover } from "../src/backtest/baselines.js";
import { main, parseArgs } from "../src/backtest/cli.js";
import { runBacktest, type BacktestOptions } from "../src/backtest/engine.js";
import { computeMetrics, periodsPerYear } from "../src/backtest/metrics.js";
import { offlineDirect, priceOf, standInModel, throughAgent } from "../src/backtest/models.js";
import type { Candle } from "../src/domain/types.js";
import { loadCandles } from "../src/market/candles.js";
import { testConfig } from "./support/app.js";

const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const btc = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
const YEAR = 365 * 86_400_000;
const H2 = 7_200_000;

describe("metrics, worked by hand", () => {
  // Equity 100 -> 110 -> 99 -> 121 over exactly one year, three periods a year.
  // Returns +10%, -10%, +2/9. Mean 2/27. Sample variance (0.7² + 4.7² + 4²) / 27² / 2 = 38.58 / 1458.
  // Sharpe = (2/27) / sqrt(38.58/1458) * sqrt(3) = 0.788723. Downside deviation sqrt(0.01 / 3),
  // Sortino = (2/27) / sqrt(0.01/3) * sqrt(3) = 60/27 = 2.2222. Drawdown 110 -> 99 = 10%.
  const m = computeMetrics({ equity: [100, 110, 99, 121], times: [0, YEAR / 3, (2 * YEAR) / 3, YEAR], periodsPerYear: 3, tradePnls: [5, -3, 0], orders: 6, fees: 1.5, aiSpend: 4 });

  it("returns", () => {
    expect(m.totalReturnPct).toBeCloseTo(21, 9);
    expect(m.annualizedReturnPct).toBeCloseTo(21, 6); // one calendar year
    expect(m.netPnl).toBeCloseTo(21, 9);
    expect(m.netPnlAfterAi).toBeCloseTo(17, 9);
    expect(m.netReturnAfterAiPct).toBeCloseTo(17, 9);
  });

  it("Sharpe, Sortino and drawdown", () => {
    expect(m.sharpe).toBeCloseTo(0.788723, 5);
    expect(m.sortino).toBeCloseTo(60 / 27, 4);
    expect(m.maxDrawdownPct).toBeCloseTo(10, 9);
  });

  it("win rate counts only winning round trips", () => {
    expect(m.trades).toBe(3);
    expect(m.winRatePct).toBeCloseTo(33.33, 2);
    expect(m.orders).toBe(6);
    expect(m.fees).toBe(1.5);
    expect(m.aiSpend).toBe(4);
  });

  it("annualizes over calendar time: half a year doubling is 300% a year", () => {
    const half = computeMetrics({ equity: [100, 200], times: [0, YEAR / 2], periodsPerYear: 2, tradePnls: [], orders: 0, fees: 0, aiSpend: 0 });
    expect(half.annualizedReturnPct).toBeCloseTo(300, 6);
    expect(periodsPerYear("2h")).toBe(4380);
    expect(periodsPerYear("1d")).toBe(365);
  });
});

describe("baselines, worked by hand", () => {
  const c = (i: number, open: number, close: number): Candle => ({ time: i * H2, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 1 });
  const candles = [c(0, 100, 110), c(1, 110, 120), c(2, 120, 90), c(3, 92, 93)];
  const costs = { feeRate: 0.001, slippageBps: 0, candleMs: H2 };

  it("buy and hold buys everything at the first open, fee included", () => {
    const run = buyAndHold(candles.slice(0, 3), 10_000, costs);
    // qty = 10,000 / (100 * 1.001) = 99.9001; marked at 110, 120, 90
    expect(run.equity).toHaveLength(4);
    expect(run.equity[0]).toBe(10_000);
    expect(run.equity[1]).toBeCloseTo(10_989.011, 3);
    expect(run.equity[3]).toBeCloseTo(8_991.009, 3);
    expect(run.fees).toBeCloseTo(9.99001, 5);
  });

  it("the SMA crossover trades at the open after the cross, both ways", () => {
    // SMA(1) over SMA(2): history closes 100, 95 -> below. After c0's close 110: 110 > 102.5, so buy
    // at c1's open 110: qty 90.81827. After c2's close 90: 90 < 105, so sell at c3's open 92.
    const history = [c(-2, 100, 100), c(-1, 100, 95)];
    const run = smaCrossover(history, candles, 10_000, costs, 1, 2);
    expect(run.equity[1]).toBe(10_000);
    expect(run.equity[2]).toBeCloseTo(10_898.193, 3);
    expect(run.equity[3]).toBeCloseTo(8_173.645, 3);
    expect(run.equity[4]).toBeCloseTo(8_346.926, 3);
    expect(run.orders).toBe(2);
    expect(run.tradePnls).toHaveLength(1);
    expect(run.tradePnls[0]).toBeCloseTo(-1_653.074, 3);
    expect(run.fees).toBeCloseTo(9.99001 + 8.35528, 4);
  });
});

describe("the backtest engine on real BTC candles", () => {
  let redis: Redis;
  let db = 0;
  beforeAll(async () => {
    const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
    db = worker % 8;
    redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { db, maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(async () => {
    await redis.flushdb();
  });

  const limits = testConfig().risk;
  const base = (over: Partial<BacktestOptions> = {}): BacktestOptions => ({
    symbol: "BTC/USDT",
    timeframe: "2h",
    candles: btc,
    from: Date.UTC(2022, 5, 1),
    to: Date.UTC(2022, 6, 15) - 1,
    model: offlineDirect(),
    limits,
    feeRate: 0.001,
    slippageBps: 5,
    startingCash: 10_000,
    redis,
    ...over,
  });

  it("keeps its books straight: equity, orders, fees and trades agree with the paper exchange", async () => {
    const { report, curves } = await runBacktest(base());
    expect(report.candles).toBe(44 * 12);
    expect(report.model.decisions).toBe(report.candles);
    expect(curves.strategy).toHaveLength(report.candles + 1);
    expect(curves.strategy[0]!.equity).toBe(10_000);
    const paperOrders = (await redis.lrange("paper:trades", 0, -1)).map((r) => JSON.parse(r) as { fee: number; status: string });
    const filled = paperOrders.filter((o) => o.status === "filled");
    expect(report.strategy.orders).toBe(filled.length);
    expect(report.strategy.orders).toBeGreaterThan(4);
    expect(report.strategy.fees).toBeCloseTo(filled.reduce((a, o) => a + o.fee, 0), 6);
    expect(report.strategy.trades).toBe(await redis.llen("portfolio:closed"));
    // The last mark is cash plus any position at the last close.
    const cash = Number(await redis.hget("paper:balances", "USDT"));
    const held = Number((await redis.hget("paper:balances", "BTC")) ?? 0);
    const lastClose = btc.find((c) => c.time === Date.UTC(2022, 6, 14, 22))!.close;
    expect(report.strategy.endEquity).toBeCloseTo(cash + held * lastClose, 2);
    expect(report.strategy.aiSpend).toBe(0);
    expect(report.risk.stopLosses + report.risk.takeProfits).toBeGreaterThan(0);
    // a real month of 2022: BTC fell; the comparison is reported beside it
    expect(report.buyAndHold.totalReturnPct).toBeLessThan(-10);
  });

  it("makes the same decisions through @daydreamsai/core as called directly, and bills a paid model", async () => {
    const window = { from: Date.UTC(2022, 5, 1), to: Date.UTC(2022, 5, 8) - 1 };
    const direct = await runBacktest(base(window));
    await redis.flushdb();
    const viaCore = await throughAgent({ id: "openai/gpt-4o", pricePerCallUsdc: priceOf("openai/gpt-4o", 0.04), route: "stand-in", path: "test", model: standInModel("openai/gpt-4o") });
    try {
      const paid = await runBacktest(base({ ...window, model: viaCore }));
      expect(paid.curves.strategy).toEqual(direct.curves.strategy);
      expect(paid.report.model.modelCalls).toBe(paid.report.candles);
      expect(paid.report.strategy.aiSpend).toBeCloseTo(0.1 * paid.report.candles, 9);
      expect(paid.report.strategy.netPnlAfterAi).toBeCloseTo(direct.report.strategy.netPnl - 0.1 * paid.report.candles, 6);
      expect(paid.curves.strategyAfterAi.at(-1)!.equity).toBeCloseTo(direct.report.strategy.endEquity - 0.1 * paid.report.candles, 6);
    } finally {
      await viaCore.close();
    }
  });

  it("never crosses the AI spending cap", async () => {
    const priced = { ...offlineDirect(), id: "test/paid", pricePerCallUsdc: 0.1, route: "stand-in" as const };
    const calls = { n: 0 };
    const counting = { ...priced, decide: async (i: Parameters<typeof priced.decide>[0]) => (calls.n++, { ...(await offlineDirect().decide(i)), modelCalls: 1 }) };
    const { report } = await runBacktest(base({ model: counting, maxAiSpendUsdc: 1.05, to: Date.UTC(2022, 5, 3) - 1 }));
    expect(calls.n).toBe(10);
    expect(report.model.modelCalls).toBe(10);
    expect(report.model.skippedForBudget).toBe(report.candles - 10);
    expect(report.strategy.aiSpend).toBeLessThanOrEqual(1.05);
  });

  it("asks the model every N candles when told to", async () => {
    const { report } = await runBacktest(base({ decideEvery: 6, to: Date.UTC(2022, 5, 5) - 1 }));
    expect(report.model.decisions).toBe(Math.ceil(report.candles / 6));
  });

  it("runs the full 35,000-candle history to the end", async () => {
    const { report, curves } = await runBacktest(base({ from: 0, to: Date.now() }));
    expect(report.candles).toBe(btc.length - 60); // 60 candles warm the indicators up
    expect(curves.strategy).toHaveLength(report.candles + 1);
    expect(report.gaps).toHaveLength(18); // the recorded outages, reported and not filled
    expect(report.strategy.trades).toBeGreaterThan(100);
    expect(Number.isFinite(report.strategy.sharpe)).toBe(true);
    expect(report.buyAndHold.totalReturnPct).toBeGreaterThan(1000);
  }, 240_000);
});

describe("npm run backtest", () => {
  it("parses its options and refuses bad ones with the usage", () => {
    const a = parseArgs(["--symbol", "eth-usdt", "--from", "2022-01-01", "--to", "2022-12-31", "--model", "openai/gpt-4o", "--every", "4"]);
    expect(a.symbol).toBe("ETH/USDT");
    expect(a.from).toBe(Date.UTC(2022, 0, 1));
    expect(a.to).toBe(Date.UTC(2023, 0, 1) - 1);
    expect(a.every).toBe(4);
    expect(() => parseArgs(["--from", "2022-02-30"])).toThrow(/not a date: use YYYY-MM-DD/);
    expect(() => parseArgs(["--from", "2022-13-01"])).toThrow(/not a date/);
    expect(() => parseArgs(["--every", "0"])).toThrow(/--every "0" must be a whole number above 0/);
    expect(() => parseArgs(["--from", "2022-02-01", "--to", "2022-01-01"])).toThrow(/--to is before --from/);
    expect(() => parseArgs(["--frobnicate", "1"])).toThrow(/Unknown option --frobnicate/);
    expect(() => parseArgs(["--model"])).toThrow(/--model needs a value/);
  });

  it("writes the JSON report and the PNG chart, and shows the estimate for a paid model first", async () => {
    const out = mkdtempSync(join(tmpdir(), "backtest-out-"));
    const stderr: string[] = [];
    const stdout: string[] = [];
    const errWrite = process.stderr.write.bind(process.stderr);
    const outWrite = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    process.stdout.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stdout.write;
    try {
      const code = await main(["--symbol", "BTC/USDT", "--from", "2022-06-01", "--to", "2022-06-03", "--model", "google-vertex/gemini-2.5-flash", "--out", out], {});
      expect(code).toBe(0);
    } finally {
      process.stderr.write = errWrite;
      process.stdout.write = outWrite;
    }
    expect(stderr.join("")).toMatch(/Estimated AI spend: 36 decisions × \$0\.02 \(google-vertex\/gemini-2\.5-flash\) = \$0\.72, charged to the report only/);
    const text = stdout.join("");
    expect(text).toMatch(/AI spend \(USDC\)\s+0\.7200/);
    expect(text).toMatch(/net P&L after AI spend/);
    const json = join(out, "backtest-BTC_USDT-2h-2022-06-01-2022-06-03-google-vertex_gemini-2.5-flash.json");
    const png = json.replace(/\.json$/, ".png");
    expect(existsSync(json) && existsSync(png)).toBe(true);
    const saved = JSON.parse(readFileSync(json, "utf8")) as { report: { strategy: { aiSpend: number }; model: { route: string } } };
    expect(saved.report.strategy.aiSpend).toBeCloseTo(0.72, 9);
    expect(saved.report.model.route).toBe("stand-in");
    expect(readFileSync(png).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    rmSync(out, { recursive: true, force: true });
  }, 120_000);

  it("sends a paid model's calls to a router stand-in on this machine with --router-url", async () => {
    // The smallest OpenAI-style streaming endpoint, as the Dreams Router serves: every call holds.
    const calls: { auth?: string; model?: string }[] = [];
    const hold = `<response><reasoning>stand-in</reasoning><action_call name="RiskManagement">${JSON.stringify({ stance: "hold", confidence: 0.5, reasons: ["router stand-in"] })}</action_call></response>`;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        calls.push({ auth: req.headers.authorization, model: (JSON.parse(body) as { model?: string }).model });
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta: object, finish: string | null) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "openai/gpt-4o", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        res.end(chunk({ role: "assistant", content: hold }, null) + chunk({}, "stop") + "data: [DONE]\n\n");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const out = mkdtempSync(join(tmpdir(), "backtest-router-"));
    const stdout: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["--from", "2022-06-01", "--to", "2022-06-01", "--model", "openai/gpt-4o", "--router-url", url, "--every", "3", "--out", out], {})).toBe(0);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
      server.close();
    }
    expect(calls).toHaveLength(4); // 12 candles, every 3rd
    expect(calls.every((c) => c.model === "openai/gpt-4o" && c.auth?.startsWith("Bearer "))).toBe(true);
    const text = stdout.join("");
    expect(text).toMatch(/router stand-in at http:\/\/127\.0\.0\.1:\d+\/v1 \(no money moves\); \$0\.1 per decision, 4 decisions, 4 model calls/);
    expect(text).toMatch(/AI spend \(USDC\)\s+0\.4000/);
    expect(text).toMatch(/trades \(round trips\)\s+0/); // it only ever held
    rmSync(out, { recursive: true, force: true });
  }, 120_000);

  it("never sends a paid model to a router off this machine without --real-calls", async () => {
    const stderr: string[] = [];
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    try {
      // No keys in this environment, whatever the developer's .env holds.
      expect(await main(["--model", "openai/gpt-4o", "--router-url", "https://router.example.com/v1"], {})).toBe(2);
      expect(await main(["--model", "openai/gpt-4o", "--real-calls", "--from", "2022-01-01", "--to", "2022-01-02"], {})).toBe(2);
      expect(await main(["--symbol", "XRP/USDT"], {})).toBe(2);
    } finally {
      process.stderr.write = errWrite;
    }
    const text = stderr.join("");
    expect(text).toMatch(/is not on this machine: a router elsewhere means real calls, which need --real-calls/);
    expect(text).toMatch(/--real-calls needs DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY/);
    expect(text).toMatch(/No XRP_USDT_2h\.csv in/);
  });
});
