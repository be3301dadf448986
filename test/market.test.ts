import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { findGaps, loadCandles, parseOhlcvCsv } from "../src/market/candles.js";
import { normalizeSymbol, ReplayMarketData } from "../src/market/replay.js";
import { UnknownSymbolError } from "../src/market/types.js";

const SHIPPED = fileURLToPath(new URL("../data/ohlcv/", import.meta.url));
const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const H2 = 2 * 60 * 60 * 1000;

const tmp = mkdtempSync(join(tmpdir(), "market-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("parseOhlcvCsv", () => {
  it("parses both timestamp forms as UTC and keeps the numbers", () => {
    const candles = parseOhlcvCsv(
      "timestamp,open,high,low,close,volume\n2017-08-17 04:00:00,4261.48,4328.69,4261.32,4315.32,70.415925\n2017-08-18,1,2,0.5,1.5,10\n",
    );
    expect(candles).toEqual([
      { time: Date.UTC(2017, 7, 17, 4), open: 4261.48, high: 4328.69, low: 4261.32, close: 4315.32, volume: 70.415925 },
      { time: Date.UTC(2017, 7, 18), open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 },
    ]);
  });

  it("names the line of a malformed row", () => {
    const text = "timestamp,open,high,low,close,volume\n2017-08-17 04:00:00,1,2,0.5,1.5,10\n2017-08-17 06:00:00,1,2,oops,1.5,10\n";
    expect(() => parseOhlcvCsv(text)).toThrow(/line 3/);
    expect(() => parseOhlcvCsv("2017-08-17 04:00:00,1,2,0.5\n")).toThrow(/line 1.*6 fields/);
    expect(() => parseOhlcvCsv("17/08/2017,1,2,0.5,1.5,10\n")).toThrow(/line 1.*timestamp/);
    expect(() => parseOhlcvCsv("2025-02-30 00:00:00,1,2,0.5,1.5,10\n")).toThrow(/line 1/);
    // high below close is not a candle
    expect(() => parseOhlcvCsv("2017-08-17 04:00:00,1,1.2,0.5,1.5,10\n")).toThrow(/line 1: high\/low/);
  });

  it("rejects timestamps that do not increase", () => {
    const text = "2017-08-17 06:00:00,1,2,0.5,1.5,10\n2017-08-17 04:00:00,1,2,0.5,1.5,10\n";
    expect(() => parseOhlcvCsv(text)).toThrow(/line 2.*increase/);
  });

  it("loadCandles puts the path in its error", () => {
    const bad = join(tmp, "bad.csv");
    writeFileSync(bad, "timestamp,open,high,low,close,volume\n2017-08-17 04:00:00,1,2\n");
    expect(() => loadCandles(bad)).toThrow(new RegExp(`bad\\.csv.*line 2`));
  });
});

describe("shipped and shared candles", () => {
  it("finds the 18 gaps in the full BTC 2h file", () => {
    const candles = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
    const readme = readFileSync(join(SHARED, "README.md"), "utf8");
    const documented = Number(/has (\d+) gaps/.exec(readme)?.[1]);
    const gaps = findGaps(candles, H2);
    expect(gaps.length).toBe(documented);
    expect(gaps.length).toBe(18);
    for (const g of gaps) {
      const i = candles.findIndex((c) => c.time === g.after);
      expect(candles[i + 1]!.time - g.after).toBe((g.missing + 1) * H2);
    }
  });

  it("findGaps reports the size of each hole", () => {
    const c = (time: number) => ({ time, open: 1, high: 1, low: 1, close: 1, volume: 0 });
    expect(findGaps([c(0), c(H2), c(4 * H2), c(5 * H2)], H2)).toEqual([{ after: H2, missing: 2 }]);
  });

  it("the shipped slice is the tail of the shared data, rows as described in its README", () => {
    const shipped = loadCandles(join(SHIPPED, "BTC_USDT_2h.csv"));
    const full = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
    expect(shipped).toHaveLength(3000);
    expect(shipped).toEqual(full.slice(-3000));
    expect(loadCandles(join(SHIPPED, "ETH_USDT_2h.csv"))).toEqual(loadCandles(join(SHARED, "ETH_USDT_2h.csv")));
    expect(loadCandles(join(SHIPPED, "DOGE_USDT_2h.csv"))).toHaveLength(833);
    const readme = readFileSync(join(SHIPPED, "README.md"), "utf8");
    expect(readme).toContain("Binance");
    expect(readme).toContain("Exchange terms apply");
    expect(readme).toContain("| BTC_USDT_2h.csv | BTC/USDT | 2 hours | 2024-12-19 12:00 | 2025-08-26 10:00 | 3,000 |");
    expect(new Date(shipped[0]!.time).toISOString()).toBe("2024-12-19T12:00:00.000Z");
  });
});

describe("ReplayMarketData", () => {
  const epoch = Date.UTC(2030, 0, 1);
  let now = epoch;
  const market = new ReplayMarketData({ dir: SHIPPED, clock: () => now, epoch, stepMs: 60_000 });
  const btc = loadCandles(join(SHIPPED, "BTC_USDT_2h.csv"));
  const doge = loadCandles(join(SHIPPED, "DOGE_USDT_2h.csv"));

  it("serves the symbols named by its files", () => {
    expect(market.kind).toBe("replay");
    expect(market.symbols().sort()).toEqual(["BTC/USDT", "DOGE/USDT", "ETH/USDT"]);
  });

  it("moves the current candle with the injected clock", async () => {
    now = epoch;
    expect(market.index("BTC/USDT")).toBe(200);
    now = epoch + 59_999;
    expect(market.index("BTC/USDT")).toBe(200);
    now = epoch + 5 * 60_000 + 1;
    expect(market.index("BTC/USDT")).toBe(205);
    expect(market.currentCandle("BTC/USDT")).toEqual(btc[205]);
    expect(await market.lastPrice("BTC/USDT")).toBe(btc[205]!.open);
    // each symbol replays its own file from its own start
    expect(market.currentCandle("DOGE/USDT")).toEqual(doge[205]);
    expect(market.describe()).toContain("candle 206/3000 of BTC/USDT");
  });

  it("returns only closed candles, oldest first, at most limit", async () => {
    now = epoch + 10 * 60_000;
    const closed = await market.closedCandles("BTC/USDT", 50);
    expect(closed).toHaveLength(50);
    expect(closed).toEqual(btc.slice(160, 210));
    expect(closed.at(-1)!.time).toBeLessThan(market.currentCandle("BTC/USDT").time);
    expect(await market.closedCandles("BTC/USDT", 10_000)).toHaveLength(210);
    expect(await market.closedCandles("BTC/USDT", 0)).toEqual([]);
  });

  it("does not let callers mutate its candles", async () => {
    now = epoch;
    const [first] = await market.closedCandles("ETH/USDT", 1);
    first!.close = -1;
    const [again] = await market.closedCandles("ETH/USDT", 1);
    expect(again!.close).toBeGreaterThan(0);
  });

  it("clamps at the last candle and says the replay ended", async () => {
    now = epoch + 1000 * 60_000; // DOGE (833 rows) is past its end, BTC is not
    expect(market.index("DOGE/USDT")).toBe(832);
    expect(market.describe()).toContain("replay ended for DOGE/USDT");
    now = epoch + 10_000 * 60_000;
    expect(market.index("BTC/USDT")).toBe(2999);
    expect(await market.lastPrice("BTC/USDT")).toBe(btc[2999]!.open);
    expect(await market.closedCandles("BTC/USDT", 3)).toEqual(btc.slice(2996, 2999));
    expect(market.describe()).toMatch(/replay ended/);
    expect(market.describe()).not.toMatch(/candle \d+\//);
  });

  it("throws UnknownSymbolError listing the served symbols", async () => {
    await expect(market.closedCandles("XRP/USDT", 5)).rejects.toThrow(UnknownSymbolError);
    await expect(market.lastPrice("btc")).rejects.toThrow(/BTC\/USDT.*ETH\/USDT|ETH\/USDT.*BTC\/USDT/);
  });

  it("needs a timeframe when a folder holds two files for one symbol", () => {
    expect(() => new ReplayMarketData({ dir: SHARED, clock: () => 0, epoch: 0, stepMs: H2 })).toThrow(/timeframe/);
    const daily = new ReplayMarketData({ dir: SHARED, clock: () => 0, epoch: 0, stepMs: H2, timeframe: "1d" });
    expect(daily.symbols()).toEqual(["BTC/USDT"]);
    expect(daily.describe()).toContain("1d candles");
  });
});

describe("normalizeSymbol", () => {
  const known = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"];
  it.each(["btc", "BTC", "BTC/USDT", "btcusdt", "BTC-USDT", " btc_usdt "])("maps %j to BTC/USDT", (input) => {
    expect(normalizeSymbol(input, known)).toBe("BTC/USDT");
  });
  it("returns undefined for what is not served", () => {
    expect(normalizeSymbol("xrp", known)).toBeUndefined();
    expect(normalizeSymbol("BTC/EUR", known)).toBeUndefined();
    expect(normalizeSymbol("", known)).toBeUndefined();
    expect(normalizeSymbol("btc", ["ETH/USDT"])).toBeUndefined();
  });
  it("prefers the USDT pair for a bare base", () => {
    expect(normalizeSymbol("eth", ["ETH/BTC", "ETH/USDT"])).toBe("ETH/USDT");
  });
});
