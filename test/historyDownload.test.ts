// `npm run data` against the Binance stand-in's klines endpoint (GET /api/v3/klines, the shape
// ccxt recorded from Binance), with the real ccxt client pointed at it: a fresh download in
// pages, a resumed one, one extended backwards, exchange errors retried and then given up on with
// how to resume, and bad arguments. Then the backtest's short-period rule for annualized figures.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dataMain, parseDataArgs, type DataIo } from "../src/backtest/dataCli.js";
import { progressLine } from "../src/backtest/history.js";
import { computeMetrics, MIN_ANNUALIZED_DAYS } from "../src/backtest/metrics.js";
import { main as backtestMain } from "../src/backtest/cli.js";
import { loadCandles } from "../src/market/candles.js";
import { BinanceStandIn } from "./support/exchangeStandIn.js";

const H2 = 7_200_000;
const DAY = 86_400_000;
const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const REPO_DATA = fileURLToPath(new URL("../data/ohlcv/", import.meta.url));
const JAN_2021 = Date.UTC(2021, 0, 1);
// 2,500 real BTC candles from 2021 on, and the repository's 1,000 ETH candles moved to March 2021
// (their real 2025 dates would lie after the clock below).
const btc = loadCandles(join(SHARED, "BTC_USDT_2h.csv")).filter((c) => c.time >= JAN_2021).slice(0, 2500);
const MARCH_2021 = Date.UTC(2021, 2, 1);
const eth = loadCandles(join(REPO_DATA, "ETH_USDT_2h.csv")).map((c, i) => ({ ...c, time: MARCH_2021 + i * H2 }));
// The clock stands inside BTC's last candle: it is still forming and must not be stored.
const now = btc.at(-1)!.time + H2 / 2;
const closedBtc = btc.slice(0, -1);

let standIn: BinanceStandIn;
let dir: string;

beforeAll(async () => {
  standIn = await BinanceStandIn.start({
    apiKey: "unused",
    secret: "unused",
    symbols: [
      { id: "BTCUSDT", base: "BTC", quote: "USDT", candles: btc },
      { id: "ETHUSDT", base: "ETH", quote: "USDT", candles: eth },
    ],
  });
});
afterAll(() => standIn.stop());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "history-"));
  standIn.requests.length = 0;
  standIn.failKlines = 0;
  return () => rmSync(dir, { recursive: true, force: true });
});

function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

async function run(argv: string[], tty = false) {
  const out = sink();
  const err = sink();
  const sleeps: number[] = [];
  const stderr = Object.assign(err.stream, { isTTY: tty });
  const io: DataIo = { stdout: out.stream, stderr, now: () => now, sleep: async (ms) => void sleeps.push(ms), backoffMs: (n) => 100 * n };
  const code = await dataMain(argv, { EXCHANGE_API_URL: standIn.url, DATA_DIR: dir }, io);
  return { code, stdout: out.text(), stderr: err.text(), sleeps };
}

const klines = () => standIn.requests.filter((r) => r.path === "/api/v3/klines");
const file = (name: string) => join(dir, "ohlcv", name);

describe("npm run data", () => {
  it("downloads in pages of 1,000 from --from, closed candles only, in the backtest's CSV format", async () => {
    const r = await run(["--symbols", "BTC/USDT,ETH/USDT", "--timeframe", "2h", "--from", "2021-01-01"]);
    expect(r.stderr).not.toMatch(/failed|refused/);
    expect(r.code).toBe(0);
    expect(loadCandles(file("BTC_USDT_2h.csv"))).toEqual(closedBtc);
    // ETH starts in March: the first page from January holds its first 1,000 candles, all of it.
    expect(loadCandles(file("ETH_USDT_2h.csv"))).toEqual(eth);
    expect(readFileSync(file("BTC_USDT_2h.csv"), "utf8").split("\n")[0]).toBe("timestamp,open,high,low,close,volume");
    const btcPages = klines().filter((k) => k.params.symbol === "BTCUSDT");
    // Binance's query: symbol, interval, startTime, limit; each page starts one candle after the last.
    expect(btcPages[0]!.params).toMatchObject({ symbol: "BTCUSDT", interval: "2h", startTime: String(JAN_2021), limit: "1000" });
    expect(btcPages[1]!.params.startTime).toBe(String(btc[999]!.time + H2));
    expect(btcPages.length).toBeGreaterThanOrEqual(3);
    expect(r.stdout).toContain(`BTC/USDT 2h: ${closedBtc.length.toLocaleString("en-US")} new candle(s)`);
    expect(r.stdout).toContain("npm run backtest -- --symbols BTC/USDT,ETH/USDT --timeframe 2h");
    // Piped: plain progress lines with rate and time left, and no escape codes anywhere.
    expect(r.stderr).toMatch(/BTC\/USDT \[#+\.*\] \d+% [\d,]+ of [\d,]+ candles, [\d,]+\/s, .* left/);
    expect(r.stderr + r.stdout).not.toContain("\x1b");
  });

  it("on a terminal, draws one progress line over itself", async () => {
    const r = await run(["--symbols", "ETH/USDT", "--from", "2021-05-01"], true);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("\r\x1b[2KETH/USDT [");
  });

  it("resumes after the last stored candle: no duplicates, no gaps", async () => {
    const cut = btc[1200]!.time;
    const first = await run(["--symbols", "BTC/USDT", "--from", "2021-01-01", "--to", new Date(cut).toISOString().slice(0, 10)]);
    expect(first.code).toBe(0);
    const part = loadCandles(file("BTC_USDT_2h.csv"));
    expect(part.length).toBeGreaterThan(1000);
    expect(part.length).toBeLessThan(closedBtc.length);
    expect(part).toEqual(closedBtc.slice(0, part.length));
    standIn.requests.length = 0;
    const second = await run(["--symbols", "BTC/USDT"]);
    expect(second.code).toBe(0);
    expect(klines()[0]!.params.startTime).toBe(String(part.at(-1)!.time + H2));
    expect(loadCandles(file("BTC_USDT_2h.csv"))).toEqual(closedBtc);
    expect(second.stdout).toContain(`${(closedBtc.length - part.length).toLocaleString("en-US")} new candle(s)`);
    // Nothing new: a third run adds nothing and changes nothing.
    const third = await run(["--symbols", "BTC/USDT"]);
    expect(third.stdout).toContain("0 new candle(s)");
    expect(loadCandles(file("BTC_USDT_2h.csv"))).toEqual(closedBtc);
  });

  it("an earlier --from extends the file backwards", async () => {
    expect((await run(["--symbols", "BTC/USDT", "--from", "2021-03-01"])).code).toBe(0);
    expect(loadCandles(file("BTC_USDT_2h.csv"))[0]!.time).toBe(Date.UTC(2021, 2, 1));
    expect((await run(["--symbols", "BTC/USDT", "--from", "2021-01-01"])).code).toBe(0);
    expect(loadCandles(file("BTC_USDT_2h.csv"))).toEqual(closedBtc);
    expect(existsSync(file("BTC_USDT_2h.csv.head"))).toBe(false);
  });

  it("retries 429 and 503 with growing waits, then goes on", async () => {
    standIn.klinesFailure = "rateLimited";
    standIn.failKlines = 2;
    const r = await run(["--symbols", "ETH/USDT", "--from", "2021-05-01"]);
    expect(r.code).toBe(0);
    expect(r.sleeps).toEqual([100, 200]);
    expect(r.stderr).toMatch(/ETH\/USDT: .*Too much request weight.*; try 2 in 0\.1 s/);
    expect(loadCandles(file("ETH_USDT_2h.csv"))).toEqual(eth.filter((c) => c.time >= Date.UTC(2021, 4, 1)));
    standIn.klinesFailure = "overloaded";
  });

  it("gives up after a bounded number of tries, says how to resume, and keeps what it stored", async () => {
    expect((await run(["--symbols", "BTC/USDT", "--from", "2021-01-01", "--to", "2021-02-01"])).code).toBe(0);
    const before = readFileSync(file("BTC_USDT_2h.csv"), "utf8");
    standIn.failKlines = 100;
    const r = await run(["--symbols", "BTC/USDT"]);
    expect(r.code).toBe(1);
    expect(r.sleeps).toHaveLength(4);
    expect(standIn.failKlines).toBe(95);
    expect(r.stderr).toContain("binance did not serve BTC/USDT 2h candles from 2021-02-02 00:00 UTC after 5 tries");
    expect(r.stderr).toContain("Server is currently overloaded");
    expect(r.stderr).toContain("holds candles up to 2021-02-01 22:00 UTC; run the same command again to continue from there");
    expect(readFileSync(file("BTC_USDT_2h.csv"), "utf8")).toBe(before);
    standIn.failKlines = 0;
    expect((await run(["--symbols", "BTC/USDT"])).code).toBe(0);
    expect(loadCandles(file("BTC_USDT_2h.csv"))).toEqual(closedBtc);
  });

  it("bad arguments and an unknown market get a usage error and write nothing", async () => {
    for (const [argv, message] of [
      [["--timeframe", "2h", "--from", "2021-01-01"], /--symbols is needed/],
      [["--symbols", "BTCUSDT", "--from", "2021-01-01"], /not a market: use BASE\/QUOTE/],
      [["--symbols", "BTC/USDT", "--from", "2021-13-01"], /not a date: use YYYY-MM-DD/],
      [["--symbols", "BTC/USDT", "--timeframe", "2hours"], /not a timeframe/],
      [["--symbols", "BTC/USDT", "--from", "2021-02-01", "--to", "2021-01-01"], /--to is before --from/],
      [["--symbols", "BTC/USDT", "--frm", "2021-01-01"], /Unknown option --frm/],
    ] as [string[], RegExp][]) {
      const r = await run(argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain("Usage: npm run data");
    }
    const missingFrom = await run(["--symbols", "BTC/USDT"]);
    expect(missingFrom.code).toBe(1);
    expect(missingFrom.stderr).toContain("give --from YYYY-MM-DD");
    const tf = await run(["--symbols", "BTC/USDT", "--timeframe", "7h", "--from", "2021-01-01"]);
    expect(tf.code).toBe(2);
    expect(tf.stderr).toMatch(/binance has no 7h candles: use one of .*2h/);
    const unknown = await run(["--symbols", "NOPE/USDT", "--from", "2021-01-01"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("binance has no market NOPE/USDT");
    expect(existsSync(file("NOPE_USDT_2h.csv"))).toBe(false);
    expect(klines()).toHaveLength(0);
    expect(() => parseDataArgs(["--symbols", "btc/usdt,ETH/USDT,BTC/USDT"])).not.toThrow();
    expect(parseDataArgs(["--symbols", "btc/usdt,ETH/USDT,BTC/USDT"]).symbols).toEqual(["BTC/USDT", "ETH/USDT"]);
  });

  it("the progress line has the rate and the time left", () => {
    const line = progressLine({ symbol: "BTC/USDT", done: 2_000, total: 10_000, at: JAN_2021 }, 4_000, 10);
    expect(line).toBe("BTC/USDT [##........] 20% 2,000 of 10,000 candles, 500/s, 16 s left (at 2021-01-01 00:00)");
  });
});

describe("annualized figures need a long enough period", () => {
  const curve = (days: number) => {
    const times: number[] = [];
    const equity: number[] = [];
    for (let t = 0; t <= days * DAY; t += H2) {
      times.push(t);
      equity.push(1000 * (1 + 0.1 * (t / (days * DAY))));
    }
    return computeMetrics({ equity, times, periodsPerYear: 4380, tradePnls: [], orders: 0, fees: 0, aiSpend: 0 });
  };

  it(`is left out under ${MIN_ANNUALIZED_DAYS} days and given from there`, () => {
    expect(curve(23).annualizedReturnPct).toBeNull();
    expect(curve(MIN_ANNUALIZED_DAYS - 1).annualizedReturnPct).toBeNull();
    expect(curve(23).totalReturnPct).toBeCloseTo(10, 6);
    const quarter = curve(MIN_ANNUALIZED_DAYS);
    expect(quarter.annualizedReturnPct).toBeCloseTo((1.1 ** (365 / MIN_ANNUALIZED_DAYS) - 1) * 100, 6);
  });

  /** The backtest's command line, its stdout and stderr together. */
  async function backtest(argv: string[]): Promise<string> {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await backtestMain(argv, {})).toBe(0);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    return out.join("");
  }

  it("a walk-forward leaves out a partial year under 90 days when a longer one is there", async () => {
    // The shipped BTC slice: 12 days of December 2024, then 2025 to late August.
    const text = await backtest(["--walk-forward", "--data", REPO_DATA, "--symbol", "BTC/USDT", "--out", dir]);
    expect(text).toContain("BTC/USDT: left out 2024 (12-19 to 12-31): under 90 days, too short to count as a year.");
    expect(text).toMatch(/Walk-forward BTC\/USDT 2h, 1 period\(s\)/);
  }, 120_000);

  it("the backtest of ETH and DOGE's 23 shared days prints n/a, not +924,518%", async () => {
    const text = await backtest(["--symbols", "ETH/USDT,DOGE/USDT", "--data", REPO_DATA, "--out", dir]);
    const row = text.split("\n").find((l) => l.trimStart().startsWith("annualized return"));
    expect(row).toMatch(/annualized return\s+n\/a \(period too short\)$/);
    expect(text).toMatch(/total return\s+[+-]\d/);
    // The edge too is given over the period, not a year.
    expect(text).toMatch(/edge [+-]\d+\.\d\d points over the 17 days \(too short to annualize\)/);
    expect(text).toMatch(/Verdict: .* points over the 17 days \(too short to annualize\)/);
    expect(text).not.toContain("points a year");
  });
});
