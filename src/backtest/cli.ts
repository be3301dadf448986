// npm run backtest -- --symbol BTC/USDT --from 2022-01-01 --to 2022-12-31 --model <name|offline>
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { loadConfig, readDotEnv, redactSecrets } from "../config/config.js";
import { loadCandles } from "../market/candles.js";
import { ensureRedis } from "../redis/ensureRedis.js";
import { fromJsonl, MemoryRecordings, toJsonl } from "../models/recordings.js";
import type { Candle } from "../domain/types.js";
import { renderChart } from "./chart.js";
import { plannedDecisions, runBacktest, type BacktestOptions, type BacktestReport, type BacktestResult } from "./engine.js";
import { MIN_ANNUALIZED_DAYS, type Metrics } from "./metrics.js";
import { recordingModel, type PricedModel } from "./models.js";
import type { PaidRouterModel } from "./paidModel.js";
import { buildDecider, deciderLabel, DeciderError, parseDecider, type DeciderSettings, type DeciderSpec } from "./deciders.js";
import { walkForward, walkForwardMarkdown, yearlyPeriods, type WalkForwardResult } from "./walkForward.js";

const USAGE = `Usage: npm run backtest -- --symbol BTC/USDT --from 2022-01-01 --to 2022-12-31 --model <name|offline>
       npm run backtest -- --walk-forward --from 2022-01-01     (a row per year, and how often it wins)
       npm run backtest -- --walk-forward --symbols BTC/USDT,ETH/USDT   (one table per symbol, then pooled)
       npm run backtest -- --strategy strategies/sma-crossover.ts      (your own strategy file)
       npm run backtest -- --compare offline,sma,local:llama3.2,replay:run.jsonl   (side by side)
Options:
  --symbol SYMBOL      market, e.g. BTC/USDT (default BTC/USDT)
  --symbols A,B,...    several markets: on one account under the shared risk limits (a portfolio
                       backtest over the period they all cover), e.g. ETH/USDT,DOGE/USDT; with
                       --walk-forward, each on its own; "all": every SYMBOL_TIMEFRAME.csv in the folder
  --from DATE          first day, YYYY-MM-DD (default: the first candle)
  --to DATE            last day, YYYY-MM-DD, inclusive (default: the last candle)
  --model NAME         offline (default), sma, local:NAME (a local model), strategy:PATH, or a paid
                       model id such as openai/gpt-4o
  --strategy PATH      a strategy file (.ts or .js, see strategies/README.md): the same as --model strategy:PATH
  --compare A,B,...    run each decider on the same candles and print them side by side, each net of
                       its own AI spend: offline, sma, strategy:PATH, local:NAME, replay:FILE[#MODEL], a model id
  --local-url URL      the OpenAI-compatible server of local:NAME models (default LOCAL_MODEL_URL;
                       Ollama: http://127.0.0.1:11434/v1)
  --timeframe TF       candle file to use, e.g. 2h (default TIMEFRAME)
  --every N            ask the model every N candles (default 1)
  --interval SECONDS   decide as often as live's DECISION_INTERVAL_SECONDS ("live" reads it), in whole
                       candles; shorter than a candle means once per candle, and the report says so
  --walk-forward       one run per calendar year in the range and symbol, a table per symbol, a pooled
                       summary: periods won on return against buy-and-hold at the same exposure, the
                       mean edge a year with its interval, before and after fees
  --seed N             seed of the bootstrap intervals (default 1: the same figures every run)
  --replay FILE        answer from recorded decisions of --model (JSONL), free; inputs with no
                       recording are decided by the offline engine, and counted
  --record FILE        where real calls and local models record every decision (JSONL, added to;
                       default .data/recordings.jsonl)
  --cash AMOUNT        starting cash in the quote currency (default PAPER_START_USDT)
  --price USDC         price of one decision for a paid model (default: the model's list price)
  --router-url URL     a router stand-in on this machine (http://127.0.0.1:PORT/v1) for a paid model
  --real-calls         call the real Dreams Router for a paid model (spends real USDC; asks first)
  --max-spend USDC     most to spend on model calls (default: the estimate)
  --yes                do not ask before spending with --real-calls
  --through-core       run the offline engine through @daydreamsai/core too (slower; same decisions)
  --data DIR           folder of SYMBOL_TIMEFRAME.csv files (default: what npm run data downloaded to
                       DATA_DIR/ohlcv, else ../shared/data/ohlcv, else data/ohlcv);
                       with --walk-forward and no --symbol(s), every symbol in it
  --out DIR            where the JSON report and PNG chart go (default .data/backtests)`;

interface Args {
  symbol: string;
  symbols: string[];
  /** --symbols all */
  allSymbols: boolean;
  /** --symbol or --symbols was given (else a --data folder means all of its symbols in a walk-forward). */
  symbolsGiven: boolean;
  interval?: number | "live";
  walkForward: boolean;
  replay?: string;
  record?: string;
  from?: number;
  to?: number;
  model: string;
  strategy?: string;
  compare?: string[];
  localUrl?: string;
  timeframe?: string;
  every: number;
  cash?: number;
  price?: number;
  routerUrl?: string;
  realCalls: boolean;
  maxSpend?: number;
  yes: boolean;
  throughCore: boolean;
  data?: string;
  out?: string;
  seed?: number;
}

class UsageError extends Error {}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
function parseDay(flag: string, v: string, endOfDay: boolean): number {
  const m = DAY.exec(v);
  const t = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  if (!m || !Number.isFinite(t) || new Date(t).getUTCMonth() !== Number(m[2]) - 1 || new Date(t).getUTCDate() !== Number(m[3])) throw new UsageError(`${flag} "${v}" is not a date: use YYYY-MM-DD, e.g. 2022-01-01`);
  return endOfDay ? t + 86_400_000 - 1 : t;
}

function positive(flag: string, v: string, whole = false, allowZero = false): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (allowZero ? n < 0 : n <= 0) || (whole && !Number.isInteger(n))) {
    throw new UsageError(`${flag} "${v}" must be ${whole ? "a whole number" : "a number"} ${allowZero ? "of at least 0" : "above 0"}`);
  }
  return n;
}

const httpUrl = (flag: string, v: string) => {
  try {
    if (!["http:", "https:"].includes(new URL(v).protocol)) throw new Error();
  } catch {
    throw new UsageError(`${flag} "${v}" is not an http(s) URL`);
  }
  return v;
};

export function parseArgs(argv: string[]): Args {
  const args: Args = { symbol: "BTC/USDT", symbols: [], allSymbols: false, symbolsGiven: false, model: "offline", every: 1, realCalls: false, yes: false, throughCore: false, walkForward: false };
  const flags = new Set(["--real-calls", "--yes", "--through-core", "--walk-forward"]);
  const market = (flag: string, v: string) => {
    const s = v.trim().toUpperCase().replace(/[-_]/, "/");
    if (!/^[A-Z0-9]+\/[A-Z0-9]+$/.test(s)) throw new UsageError(`${flag} "${v}" is not a market: use BASE/QUOTE, e.g. BTC/USDT`);
    return s;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--help" || flag === "-h") throw new UsageError("");
    if (flags.has(flag)) {
      if (flag === "--real-calls") args.realCalls = true;
      if (flag === "--yes") args.yes = true;
      if (flag === "--through-core") args.throughCore = true;
      if (flag === "--walk-forward") args.walkForward = true;
      continue;
    }
    const v = argv[i + 1];
    if (!flag.startsWith("--")) throw new UsageError(`Unexpected "${flag}": options start with --`);
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    i++;
    switch (flag) {
      case "--symbol":
        args.symbol = market(flag, v);
        args.symbolsGiven = true;
        break;
      case "--symbols": {
        args.symbolsGiven = true;
        if (v.trim().toLowerCase() === "all") {
          args.allSymbols = true;
          break;
        }
        const list = [...new Set(v.split(",").filter((x) => x.trim() !== "").map((x) => market(flag, x)))];
        if (list.length === 0) throw new UsageError(`--symbols needs markets separated by commas, e.g. ETH/USDT,DOGE/USDT`);
        if (new Set(list.map((x) => x.split("/")[1])).size > 1) throw new UsageError(`--symbols must share one quote currency (one account), got ${list.join(", ")}`);
        args.symbols = list;
        args.symbol = list[0]!;
        break;
      }
      case "--interval": args.interval = v === "live" ? "live" : positive(flag, v, true); break;
      case "--replay": args.replay = v; break;
      case "--record": args.record = v; break;
      case "--from": args.from = parseDay(flag, v, false); break;
      case "--to": args.to = parseDay(flag, v, true); break;
      case "--model": args.model = v; break;
      case "--strategy": args.strategy = v; break;
      case "--compare": {
        const list = [...new Set(v.split(",").map((x) => x.trim()).filter((x) => x !== ""))];
        if (list.length < 2) throw new UsageError(`--compare needs two deciders or more, separated by commas, e.g. offline,sma,local:llama3.2`);
        args.compare = list;
        break;
      }
      case "--local-url": args.localUrl = httpUrl(flag, v).replace(/\/+$/, ""); break;
      case "--seed": args.seed = positive(flag, v, true, true); break;
      case "--timeframe":
        if (!/^\d+[smhdw]$/.test(v)) throw new UsageError(`--timeframe "${v}" is not a timeframe: use e.g. 15m, 2h or 1d`);
        args.timeframe = v;
        break;
      case "--every": args.every = positive(flag, v, true); break;
      case "--cash": args.cash = positive(flag, v); break;
      case "--price": args.price = positive(flag, v, false, true); break;
      case "--max-spend": args.maxSpend = positive(flag, v, false, true); break;
      case "--router-url": args.routerUrl = httpUrl(flag, v); break;
      case "--data": args.data = v; break;
      case "--out": args.out = v; break;
      default:
        throw new UsageError(`Unknown option ${flag}`);
    }
  }
  if (args.from !== undefined && args.to !== undefined && args.to < args.from) throw new UsageError("--to is before --from");
  if (args.symbols.length === 0) args.symbols = [args.symbol];
  const modelGiven = argv.includes("--model");
  if (args.strategy && modelGiven) throw new UsageError("--strategy and --model both name the decider: give one (--strategy PATH is --model strategy:PATH)");
  if (args.compare && (modelGiven || args.strategy || args.replay)) throw new UsageError("--compare names every decider itself: drop --model, --strategy and --replay (use replay:FILE in the list)");
  if (args.replay && (args.realCalls || args.routerUrl)) throw new UsageError("--replay answers from recordings and makes no calls: drop --real-calls and --router-url");
  const recordable = args.realCalls || args.model.startsWith("local:") || (args.compare ?? []).some((d) => d.startsWith("local:"));
  if (args.record && !recordable) throw new UsageError("--record is for real calls (--real-calls) and local models (local:NAME): only their decisions are recorded (replay a file with --replay)");
  if (args.interval !== undefined && argv.includes("--every")) throw new UsageError("use --every or --interval, not both");
  return args;
}

/** The decider --model / --strategy / --replay name (not --compare). */
function singleSpec(args: Args, root: string): DeciderSpec {
  if (args.replay) return { kind: "replay", file: args.replay, ...(args.model !== "offline" && args.model !== "offline-engine" ? { model: args.model } : {}) };
  if (args.strategy) return { kind: "strategy", path: args.strategy };
  return parseDecider(args.model, root);
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => ok(port));
    });
  });
}

const pct = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(2)}%`;
const num = (x: number, d = 2) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

/** The headline lines of one run: return against buy-and-hold at the same exposure, with the edge's interval. */
export function headline(r: BacktestReport): string[] {
  const a = r.edge.afterFees;
  const b = r.edge.beforeFees;
  const exp = r.exposureMatched.exposurePct;
  const pts = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(2)}`;
  // A period too short to annualize gives its edge over the period, not a year.
  const days = (Date.parse(`${r.to.replace(" ", "T")}Z`) - Date.parse(`${r.from.replace(" ", "T")}Z`)) / 86_400_000;
  const short = days < MIN_ANNUALIZED_DAYS;
  const k = short ? days / 365 : 1;
  const unit = short ? `points over the ${Math.round(days)} days (too short to annualize)` : "points a year";
  return [
    `Headline: return against buy-and-hold of the same exposure (${exp.toFixed(1)}% of equity, rebalanced at every close):`,
    `  strategy ${pct(a.strategyReturnPct)} after every cost, B&H@exposure ${pct(a.benchmarkReturnPct)}: ${a.won ? "above it" : "below it"} (${pts(a.returnDifferencePct)} points)`,
    `  edge ${pts(a.perYearPct * k)} ${unit} (${Math.round(a.level * 100)}% block-bootstrap interval ${pts(a.lowPct * k)} to ${pts(a.highPct * k)}); before fees and AI spend ${pts(b.perYearPct * k)} (${pts(b.lowPct * k)} to ${pts(b.highPct * k)}), ${b.won ? "above" : "below"} on return`,
    `  fees ${num(r.strategy.fees)}${r.feeSharePct === null ? " (nothing was made before fees)" : `, ${r.feeSharePct.toFixed(0)}% of the profit before fees`}; average exposure ${r.averageExposurePct}% of equity; AI spend ${num(r.strategy.aiSpend, 4)} USDC`,
  ];
}

export function summary(result: BacktestResult, files: { json: string; png: string }): string {
  const r = result.report;
  const cols: [string, Metrics][] = [["strategy (net)", r.strategy], ["before AI", r.strategyGross], [`B&H@${r.exposureMatched.exposurePct.toFixed(0)}% reb.`, r.exposureMatched], ["buy&hold", r.buyAndHold], ["SMA 20/50", r.smaCrossover]];
  const row = (label: string, f: (m: Metrics) => string) => `  ${label.padEnd(22)}${cols.map(([, m]) => f(m).padStart(15)).join("")}`;
  return [
    `Backtest ${r.symbols.join(" + ")} ${r.timeframe}, ${r.from} → ${r.to} UTC: ${r.candles.toLocaleString("en-US")} candles${r.symbols.length > 1 ? " on one account under the shared limits" : ""}, ${r.gaps.length} gap(s) in the data (reported, not filled)`,
    `Model ${r.model.id}: ${r.model.path}; $${r.model.pricePerCallUsdc} per decision, ${r.model.decisions.toLocaleString("en-US")} decisions, ${r.model.modelCalls.toLocaleString("en-US")} model calls${r.model.failed ? `, ${r.model.failed} failed` : ""}${r.model.skippedForBudget ? `, ${r.model.skippedForBudget} skipped (spending cap)` : ""}`,
    `Decided by: ${r.decidedBy.summary}`,
    `Cadence: ${r.cadence.note}`,
    ...headline(r),
    `  ${"".padEnd(22)}${cols.map(([n]) => n.padStart(15)).join("")}`,
    row("total return", (m) => pct(m.totalReturnPct)),
    // Every column shares the period: too short for one is too short for all.
    r.strategy.annualizedReturnPct === null ? `  ${"annualized return".padEnd(22)}${"n/a (period too short)".padStart(30)}` : row("annualized return", (m) => (m.annualizedReturnPct === null ? "n/a" : pct(m.annualizedReturnPct))),
    row("Sharpe", (m) => m.sharpe.toFixed(2)),
    row("Sortino", (m) => m.sortino.toFixed(2)),
    row("max drawdown", (m) => `${m.maxDrawdownPct.toFixed(2)}%`),
    row("win rate", (m) => (m.trades ? `${m.winRatePct.toFixed(1)}%` : "-")),
    row("trades (round trips)", (m) => String(m.trades)),
    row("fees", (m) => num(m.fees)),
    row("AI spend (USDC)", (m) => num(m.aiSpend, 4)),
    row("net P&L after AI spend", (m) => num(m.netPnlAfterAi)),
    `Strategy (net) is after fees, slippage and AI spend; "before AI" leaves the AI spend out. B&H@${r.exposureMatched.exposurePct.toFixed(0)}% reb. holds the strategy's average exposure at every close, the rest in cash.`,
    `Risk: ${r.risk.stopLosses} stop losses (${r.risk.gapExits} through a gap), ${r.risk.takeProfits} take profits, ${r.risk.trailingMoves} trailing-stop moves; refused ${JSON.stringify(r.risk.refusedByRule)}, resized ${JSON.stringify(r.risk.resizedByRule)}, market breaches ${JSON.stringify(r.risk.breaches)}; in the market ${r.timeInMarketPct}% of the time, average exposure ${r.averageExposurePct}% of equity`,
    `Wall time ${(r.wallTimeMs / 1000).toFixed(1)} s (${r.candlesPerSecond.toLocaleString("en-US")} candles/s). Report: ${files.json}  Chart: ${files.png}`,
    r.verdict,
  ].join("\n");
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim().toLowerCase() === "yes";
  } finally {
    rl.close();
  }
}

/** Side by side, one column per decider, each net of its own AI spend (Markdown). */
export function compareTable(runs: { label: string; report: BacktestReport }[]): string {
  const pts = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(2)}`;
  const rows: [string, (r: BacktestReport) => string][] = [
    ["return, net of every cost", (r) => pct(r.strategy.totalReturnPct)],
    ["B&H at its exposure (rebalanced)", (r) => `${pct(r.exposureMatched.totalReturnPct)} at ${r.exposureMatched.exposurePct.toFixed(1)}%`],
    ["won on return", (r) => (r.edge.afterFees.won ? "yes" : "no")],
    ["edge, points a year (95% CI)", (r) => `${pts(r.edge.afterFees.perYearPct)} (${pts(r.edge.afterFees.lowPct)} to ${pts(r.edge.afterFees.highPct)})`],
    ["before fees and AI: edge", (r) => `${pts(r.edge.beforeFees.perYearPct)} (${pts(r.edge.beforeFees.lowPct)} to ${pts(r.edge.beforeFees.highPct)})`],
    ["Sharpe", (r) => r.strategy.sharpe.toFixed(2)],
    ["max drawdown", (r) => `${r.strategy.maxDrawdownPct.toFixed(2)}%`],
    ["average exposure", (r) => `${r.averageExposurePct.toFixed(1)}%`],
    ["trades (round trips)", (r) => String(r.strategy.trades)],
    ["fees", (r) => num(r.strategy.fees)],
    ["fee share of profit before fees", (r) => (r.feeSharePct === null ? "no profit" : `${r.feeSharePct.toFixed(0)}%`)],
    ["AI spend (USDC)", (r) => num(r.strategy.aiSpend, 4)],
    ["net P&L after AI spend", (r) => num(r.strategy.netPnlAfterAi)],
    ["refused answers", (r) => String(r.model.refused)],
  ];
  return [
    `| | ${runs.map((x) => x.label).join(" | ")} |`,
    `|---|${runs.map(() => "---:").join("|")}|`,
    ...rows.map(([name, f]) => `| ${name} | ${runs.map((x) => f(x.report)).join(" | ")} |`),
  ].join("\n");
}

/** Walk-forwards side by side: the pooled figures of each decider. */
export function compareWalkTable(runs: { label: string; wf: WalkForwardResult }[]): string {
  const pts = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(2)}`;
  const rows: [string, (w: WalkForwardResult) => string][] = [
    ["periods", (w) => String(w.pooled.periods)],
    ["won on return, after every cost", (w) => `${w.pooled.wonOnReturn} of ${w.pooled.periods}`],
    ["won on return, before fees", (w) => `${w.pooled.wonBeforeFees} of ${w.pooled.periods}`],
    ["edge, points a year (95% CI)", (w) => `${pts(w.pooled.edgePerYear.afterFees.meanPct)} (${pts(w.pooled.edgePerYear.afterFees.lowPct)} to ${pts(w.pooled.edgePerYear.afterFees.highPct)})`],
    ["before fees: edge", (w) => `${pts(w.pooled.edgePerYear.beforeFees.meanPct)} (${pts(w.pooled.edgePerYear.beforeFees.lowPct)} to ${pts(w.pooled.edgePerYear.beforeFees.highPct)})`],
    ["fee share of profit before fees", (w) => (w.pooled.feeSharePct === null ? "no profit" : `${w.pooled.feeSharePct.toFixed(0)}%`)],
    ["average exposure", (w) => `${w.pooled.averageExposurePct.toFixed(1)}%`],
    ["AI spend (USDC), all periods", (w) => num(w.rows.reduce((a, r) => a + r.strategy.aiSpend, 0), 4)],
  ];
  return [
    `| | ${runs.map((x) => x.label).join(" | ")} |`,
    `|---|${runs.map(() => "---:").join("|")}|`,
    ...rows.map(([name, f]) => `| ${name} | ${runs.map((x) => f(x.wf)).join(" | ")} |`),
  ].join("\n");
}

/** Every SYMBOL_TIMEFRAME.csv in `dir`, as markets. */
function symbolsIn(dir: string, timeframe: string): string[] {
  if (!existsSync(dir)) return [];
  const tail = `_${timeframe}.csv`;
  return readdirSync(dir)
    .filter((f) => f.endsWith(tail) && /^[A-Z0-9]+_[A-Z0-9]+$/.test(f.slice(0, -tail.length)))
    .sort()
    .map((f) => f.slice(0, -tail.length).replace("_", "/"));
}

/** `env` defaults to .env overridden by the environment, as npm start reads it. */
export async function main(argv: string[], env: Record<string, string | undefined> = { ...readDotEnv(".env"), ...process.env }): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message ? `${err.message}\n` : ""}${USAGE}\n`);
    return err.message ? 2 : 0;
  }
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    process.stderr.write(loaded.message + "\n");
    return 2;
  }
  const config = loaded.config;
  const timeframe = args.timeframe ?? config.market.timeframe;
  const here = fileURLToPath(new URL("../../", import.meta.url));
  // What `npm run data` downloaded comes first, then the shared set beside the checkout, then the slice shipped with it.
  const dirs = args.data ? [resolve(args.data)] : [resolve(config.redis.dataDir, "ohlcv"), resolve(here, "../shared/data/ohlcv"), resolve(here, "data/ohlcv")];
  const fail = (message: string) => {
    process.stderr.write(`${message}\n`);
    return 2;
  };

  // Which symbols: the named ones, or every file in the folder (--symbols all, or a walk-forward over --data).
  let symbols = args.symbols;
  if (args.allSymbols || (args.walkForward && args.data && !args.symbolsGiven)) {
    const dir = dirs.find((d) => symbolsIn(d, timeframe).length > 0);
    if (!dir) return fail(`No *_${timeframe}.csv in ${dirs.map((d) => relative(process.cwd(), d) || d).join(" or ")}: point --data at a folder of SYMBOL_${timeframe}.csv files.`);
    symbols = symbolsIn(dir, timeframe);
  }
  const series: { symbol: string; candles: Candle[]; file: string }[] = [];
  for (const symbol of symbols) {
    const file = `${symbol.replace("/", "_")}_${timeframe}.csv`;
    const dir = dirs.find((d) => existsSync(join(d, file)));
    if (!dir) return fail(`No ${file} in ${dirs.map((d) => relative(process.cwd(), d) || d).join(" or ")}. Download it with: npm run data -- --symbols ${symbol} --timeframe ${timeframe} --from 2021-01-01 (or point --data at recorded candles).`);
    series.push({ symbol, candles: loadCandles(join(dir, file)), file });
  }
  // A walk-forward takes each symbol on its own (its own years); otherwise one period all of them cover.
  const from = args.from ?? Math.max(...series.map((s) => s.candles[0]!.time));
  const to = args.to ?? Math.min(...series.map((s) => s.candles[s.candles.length - 1]!.time));
  const inRange = (s: (typeof series)[number], lo: number, hi: number) => s.candles.some((c) => c.time >= lo && c.time <= hi);
  for (const s of series) {
    const lo = args.walkForward ? (args.from ?? -Infinity) : from;
    const hi = args.walkForward ? (args.to ?? Infinity) : to;
    if (inRange(s, lo, hi)) continue;
    const day = (t: number) => new Date(t).toISOString().slice(0, 10);
    return fail(`${s.file} has no candles between ${Number.isFinite(lo) ? day(lo) : "its start"} and ${Number.isFinite(hi) ? day(hi) : "its end"} (it covers ${day(s.candles[0]!.time)} to ${day(s.candles[s.candles.length - 1]!.time)}). Download them with: npm run data -- --symbols ${s.symbol} --timeframe ${timeframe} --from ${Number.isFinite(lo) ? day(lo) : "YYYY-MM-DD"}`);
  }
  const cadence = args.interval === undefined ? { decideEvery: args.every } : { decisionIntervalSeconds: args.interval === "live" ? config.schedule.decisionIntervalMs / 1000 : args.interval };
  // A partial year too short to annualize (the 12 days of December before a file's first January)
  // is left out of a walk-forward, unless nothing longer is there; the run says so once.
  const periodsMemo = new Map<Candle[], ReturnType<typeof yearlyPeriods>>();
  const periodsOf = (candles: Candle[]) => {
    const known = periodsMemo.get(candles);
    if (known) return known;
    const all = yearlyPeriods(candles, args.from ?? -Infinity, args.to ?? Infinity);
    const long = all.filter((p) => p.to - p.from + 1 >= MIN_ANNUALIZED_DAYS * 86_400_000);
    const kept = long.length > 0 ? long : all;
    const left = all.filter((p) => !kept.includes(p));
    const symbol = series.find((s) => s.candles === candles)?.symbol ?? "";
    if (left.length) process.stderr.write(`${symbol}: left out ${left.map((p) => p.label).join(", ")}: under ${MIN_ANNUALIZED_DAYS} days, too short to count as a year.\n`);
    periodsMemo.set(candles, kept);
    return kept;
  };
  // Only the candles that will be decided: the indicator warm-up is not charged.
  let decisions = 0;
  try {
    if (args.walkForward) {
      for (const s of series) for (const p of periodsOf(s.candles)) decisions += plannedDecisions({ symbol: s.symbol, candles: s.candles, timeframe, ...cadence, from: p.from, to: p.to });
    } else {
      decisions = plannedDecisions({ ...(series.length > 1 ? { series } : { symbol: series[0]!.symbol, candles: series[0]!.candles }), timeframe, ...cadence, from, to });
    }
  } catch (err) {
    return fail((err as Error).message);
  }

  // The deciders: one, or each of --compare.
  const settings: DeciderSettings = {
    config,
    cwd: process.cwd(),
    realCalls: args.realCalls,
    throughCore: args.throughCore,
    ...(args.routerUrl ? { routerUrl: args.routerUrl } : {}),
    ...(args.price !== undefined ? { price: args.price } : {}),
    ...((args.localUrl ?? config.local.url) ? { localUrl: args.localUrl ?? config.local.url } : {}),
  };
  const models: PricedModel[] = [];
  const closeAll = async () => {
    for (const m of models) await m.close().catch(() => {});
  };
  try {
    const specs = args.compare ? args.compare.map((d) => parseDecider(d, here)) : [singleSpec(args, here)];
    for (const spec of specs) {
      if (spec.kind === "offline" && (args.routerUrl || args.realCalls) && !args.compare) throw new DeciderError("--router-url and --real-calls are for a paid model; the offline engine makes no calls");
      models.push(await buildDecider(spec, settings));
    }
  } catch (err) {
    await closeAll();
    if (!(err instanceof DeciderError)) throw err;
    return fail(err.message);
  }

  // What the paid ones would cost, before anything runs; real USDC only after a yes.
  const caps = new Map<PricedModel, number | undefined>();
  let realTotal = 0;
  for (const model of models) {
    const estimate = decisions * model.pricePerCallUsdc;
    const cap = args.maxSpend ?? (model.route === "router" ? estimate : undefined);
    caps.set(model, cap);
    if (model.route === "router") realTotal += cap!;
    if (model.pricePerCallUsdc > 0 || model.route === "stand-in" || model.route === "router") {
      process.stderr.write(
        `Estimated AI spend: ${decisions.toLocaleString("en-US")} decisions × $${model.pricePerCallUsdc} (${model.id}) = $${estimate.toFixed(2)}` +
          (model.route === "router" ? ` of REAL USDC through ${model.path.split(" at ").pop()!.split(",")[0]}; the run stops calling at $${cap!.toFixed(2)}.\n` : `, charged to the report only: ${model.path}.\n`),
      );
    } else if (model.route === "local") {
      process.stderr.write(`${model.id}: ${decisions.toLocaleString("en-US")} decisions, free: ${model.path}.\n`);
    }
  }
  if (realTotal > 0 && !args.yes && !(await confirm(`Spend up to $${realTotal.toFixed(2)} of real USDC on model calls? Type yes to go on: `))) {
    process.stderr.write("Not started: nothing was spent. Add --yes to confirm without a prompt, or drop --real-calls to use the stand-in.\n");
    await closeAll();
    return 1;
  }
  // Every real call (paid, or a local model's) is recorded, so the run can be replayed for free (--replay) or shared.
  const recorded = models.filter((m) => m.route === "router" || m.route === "local");
  const recordFile = recorded.length ? resolve(args.record ?? ".data/recordings.jsonl") : undefined;
  let recordings: MemoryRecordings | undefined;
  try {
    recordings = recordFile ? new MemoryRecordings(existsSync(recordFile) ? fromJsonl(readFileSync(recordFile, "utf8"), recordFile) : []) : undefined;
  } catch (err) {
    await closeAll();
    return fail((err as Error).message);
  }
  const deciders = models.map((m) => (recordings && (m.route === "router" || m.route === "local") ? recordingModel(m, recordings) : m));
  const saveRecordings = async () => {
    if (!recordFile || !recordings) return;
    mkdirSync(resolve(recordFile, ".."), { recursive: true });
    writeFileSync(recordFile, toJsonl(await recordings.all()));
    const rel = relative(process.cwd(), recordFile);
    process.stderr.write(`Recorded decisions: ${rel} (${recordings.size} in all); replay them free with ${recorded.map((m) => `--replay ${rel} --model ${m.id}`).join(", or ")}\n`);
  };

  const dataDir = mkdtempSync(join(tmpdir(), "backtest-redis-"));
  // A private Redis on a free port, started the way npm start does: the run never touches the agent's data.
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  // Real calls pay through the same paid request as live decisions, on this run's Redis, under its cap.
  for (const m of models) if ("attach" in m) await (m as PaidRouterModel).attach(redis, caps.get(m) ?? decisions * m.pricePerCallUsdc);
  // Its failures reach the commands that wait on it; without a listener ioredis prints a stack.
  redis.on("error", () => {});
  // Stopped, or its output cut short (| head): the private Redis must not outlive the run.
  const abandon = () => {
    void saveRecordings()
      .catch(() => {})
      .then(() => server.stop())
      .finally(() => {
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(130);
      });
  };
  process.once("SIGINT", abandon);
  process.once("SIGTERM", abandon);
  const quietPipe = (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  };
  process.stdout.on("error", quietPipe);
  try {
    const single = !args.walkForward && !args.compare;
    const progress = process.stderr.isTTY && single ? (done: number, total: number) => process.stderr.write(`\r  ${Math.floor((done / total) * 100)}% of ${total.toLocaleString("en-US")} candles`) : undefined;
    const shape = { ...(series.length > 1 ? { series } : { symbol: series[0]!.symbol, candles: series[0]!.candles }), timeframe, ...cadence };
    const optionsFor = (model: PricedModel): Omit<BacktestOptions, "from" | "to"> => {
      const cap = caps.get(models[deciders.indexOf(model)] ?? model);
      return {
        ...shape,
        model,
        limits: config.risk,
        feeRate: config.exchange.feeRate,
        slippageBps: config.exchange.slippageBps,
        startingCash: args.cash ?? config.exchange.paperStartUsdt,
        redis,
        ...(cap !== undefined ? { maxAiSpendUsdc: cap } : {}),
        dataLabel: `recorded ${series.map((s) => s.file).join(", ")}`,
        ...(progress ? { onProgress: progress } : {}),
        ...(args.seed !== undefined ? { bootstrap: { seed: args.seed } } : {}),
      };
    };
    const outDir = resolve(args.out ?? ".data/backtests");
    mkdirSync(outDir, { recursive: true });
    const name = `${symbols.length > 3 ? `${symbols.length}-symbols` : symbols.map((s) => s.replace("/", "_")).join("+")}-${timeframe}`;
    const safe = (id: string) => id.replace(/[^A-Za-z0-9.-]+/g, "_");
    const write = (stem: string, json: unknown, md: string) => {
      writeFileSync(`${stem}.json`, JSON.stringify(json, null, 1) + "\n");
      writeFileSync(`${stem}.md`, md + "\n");
      return relative(process.cwd(), stem);
    };
    const walk = async (model: PricedModel) => {
      const cap = caps.get(models[deciders.indexOf(model)] ?? model);
      const periodsCount = args.walkForward ? series.reduce((a, s) => a + periodsOf(s.candles).length, 0) : 1;
      // A spending cap covers the whole walk, not each period.
      const base = { ...optionsFor(model), ...(cap !== undefined ? { maxAiSpendUsdc: cap / periodsCount } : {}) };
      return walkForward(base, { periods: periodsOf, onRow: (row) => process.stderr.write(`  ${model.id} ${row.symbol} ${row.period}: ${row.strategy.totalReturnPct.toFixed(1)}% against ${row.exposureMatched.totalReturnPct.toFixed(1)}% at the same exposure\n`) });
    };

    if (args.compare) {
      const labels = deciders.map((m) => deciderLabel(m));
      if (args.walkForward) {
        const runs: { label: string; wf: WalkForwardResult }[] = [];
        for (const [i, m] of deciders.entries()) runs.push({ label: labels[i]!, wf: await walk(m) });
        const md = [
          `Walk-forward comparison on ${symbols.join(", ")} ${timeframe}, each symbol and year on a fresh account, every decider on the same candles; figures net of fees, slippage and each one's AI spend:`,
          "",
          compareWalkTable(runs),
          "",
          ...runs.map((r) => r.wf.verdict),
        ].join("\n");
        const stem = write(join(outDir, `compare-walkforward-${name}`), runs.map((r) => ({ label: r.label, result: r.wf })), md);
        process.stdout.write(redactSecrets(`${md}\n\nReport: ${stem}.json and .md\n`, config));
        return 0;
      }
      const runs: { label: string; report: BacktestReport }[] = [];
      for (const [i, m] of deciders.entries()) {
        await redis.flushdb();
        runs.push({ label: labels[i]!, report: (await runBacktest({ ...optionsFor(m), from, to })).report });
      }
      const r0 = runs[0]!.report;
      const md = [
        `Comparison on ${r0.symbols.join(" + ")} ${timeframe}, ${r0.from} → ${r0.to} UTC (${r0.candles.toLocaleString("en-US")} candles), every decider on the same candles; figures net of fees, slippage and each one's AI spend:`,
        "",
        compareTable(runs),
        "",
        ...runs.map((r) => `- ${r.label}: decided by ${r.report.decidedBy.summary}${r.report.model.firstRefusal ? `; first refusal: ${r.report.model.firstRefusal}` : ""}`),
        "",
        ...runs.map((r) => r.report.verdict),
      ].join("\n");
      const stem = write(join(outDir, `compare-${name}-${r0.from.slice(0, 10)}-${r0.to.slice(0, 10)}`), runs, md);
      process.stdout.write(redactSecrets(`${md}\n\nReport: ${stem}.json and .md\n`, config));
      return 0;
    }

    const model = deciders[0]!;
    if (args.walkForward) {
      const wf = await walk(model);
      const md = walkForwardMarkdown(wf);
      const stem = write(join(outDir, `walkforward-${name}-${safe(model.id)}`), wf, md);
      process.stdout.write(redactSecrets(`Walk-forward ${symbols.join(", ")} ${timeframe}, ${wf.rows.length} period(s), ${model.id}\nDecided by (last period): ${wf.rows.at(-1)!.decidedBy}\n\n${md}\n\nWall time ${(wf.wallTimeMs / 1000).toFixed(1)} s. Report: ${stem}.json and .md\n`, config));
      return 0;
    }
    const result = await runBacktest({ ...optionsFor(model), from, to });
    if (progress) process.stderr.write("\n");
    const stem = `backtest-${name}-${result.report.from.slice(0, 10)}-${result.report.to.slice(0, 10)}-${safe(model.id)}`;
    const files = { json: join(outDir, `${stem}.json`), png: join(outDir, `${stem}.png`) };
    writeFileSync(files.json, JSON.stringify({ report: result.report, curves: result.curves }, null, 1) + "\n");
    writeFileSync(files.png, renderChart(result));
    const shown = { json: relative(process.cwd(), files.json), png: relative(process.cwd(), files.png) };
    process.stdout.write(redactSecrets(summary(result, shown), config) + "\n");
    return 0;
  } finally {
    process.off("SIGINT", abandon);
    process.off("SIGTERM", abandon);
    process.stdout.off("error", quietPipe);
    await saveRecordings();
    await closeAll();
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`Backtest failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
