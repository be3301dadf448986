// npm run backtest -- --symbol BTC/USDT --from 2022-01-01 --to 2022-12-31 --model <name|offline>
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { loadConfig, readDotEnv, redactSecrets, type Config } from "../config/config.js";
import { loadCandles } from "../market/candles.js";
import { createRouterClient, routerAuthFromConfig } from "../models/dreamsRouter.js";
import { ensureRedis } from "../redis/ensureRedis.js";
import { fromJsonl, MemoryRecordings, toJsonl } from "../decision/recordings.js";
import type { Candle } from "../domain/types.js";
import { renderChart } from "./chart.js";
import { plannedDecisions, runBacktest, type BacktestOptions, type BacktestResult } from "./engine.js";
import type { Metrics } from "./metrics.js";
import { offlineDirect, priceOf, recordingModel, replayModel, standInModel, throughAgent, type PricedModel } from "./models.js";
import { walkForward, walkForwardMarkdown, yearlyPeriods } from "./walkForward.js";

const USAGE = `Usage: npm run backtest -- --symbol BTC/USDT --from 2022-01-01 --to 2022-12-31 --model <name|offline>
       npm run backtest -- --walk-forward --from 2022-01-01     (a row per year, and how often it wins)
Options:
  --symbol SYMBOL      market, e.g. BTC/USDT (default BTC/USDT)
  --symbols A,B,...    several markets on one account under the shared risk limits (a portfolio
                       backtest over the period they all cover), e.g. ETH/USDT,DOGE/USDT
  --from DATE          first day, YYYY-MM-DD (default: the first candle)
  --to DATE            last day, YYYY-MM-DD, inclusive (default: the last candle)
  --model NAME         offline (default), or a model id such as openai/gpt-4o
  --timeframe TF       candle file to use, e.g. 2h (default TIMEFRAME)
  --every N            ask the model every N candles (default 1)
  --interval SECONDS   decide as often as live's DECISION_INTERVAL_SECONDS ("live" reads it), in whole
                       candles; shorter than a candle means once per candle, and the report says so
  --walk-forward       one run per calendar year in the range, a table, and how many years the
                       strategy beats each baseline (net of every cost) on return and on Sharpe
  --replay FILE        answer from recorded decisions of --model (JSONL), free; inputs with no
                       recording are decided by the offline engine, and counted
  --record FILE        where --real-calls records every paid decision (JSONL, added to; default
                       .data/recordings.jsonl)
  --cash AMOUNT        starting cash in the quote currency (default PAPER_START_USDT)
  --price USDC         price of one decision for a paid model (default: the model's list price)
  --router-url URL     a router stand-in on this machine (http://127.0.0.1:PORT/v1) for a paid model
  --real-calls         call the real Dreams Router for a paid model (spends real USDC; asks first)
  --max-spend USDC     most to spend on model calls (default: the estimate)
  --yes                do not ask before spending with --real-calls
  --through-core       run the offline engine through @daydreamsai/core too (slower; same decisions)
  --data DIR           folder of SYMBOL_TIMEFRAME.csv files (default ../shared/data/ohlcv, else data/ohlcv)
  --out DIR            where the JSON report and PNG chart go (default .data/backtests)`;

interface Args {
  symbol: string;
  symbols: string[];
  interval?: number | "live";
  walkForward: boolean;
  replay?: string;
  record?: string;
  from?: number;
  to?: number;
  model: string;
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

export function parseArgs(argv: string[]): Args {
  const args: Args = { symbol: "BTC/USDT", symbols: [], model: "offline", every: 1, realCalls: false, yes: false, throughCore: false, walkForward: false };
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
      case "--symbol": args.symbol = market(flag, v); break;
      case "--symbols": {
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
      case "--timeframe":
        if (!/^\d+[smhdw]$/.test(v)) throw new UsageError(`--timeframe "${v}" is not a timeframe: use e.g. 15m, 2h or 1d`);
        args.timeframe = v;
        break;
      case "--every": args.every = positive(flag, v, true); break;
      case "--cash": args.cash = positive(flag, v); break;
      case "--price": args.price = positive(flag, v, false, true); break;
      case "--max-spend": args.maxSpend = positive(flag, v, false, true); break;
      case "--router-url":
        try {
          if (!["http:", "https:"].includes(new URL(v).protocol)) throw new Error();
        } catch {
          throw new UsageError(`--router-url "${v}" is not an http(s) URL`);
        }
        args.routerUrl = v;
        break;
      case "--data": args.data = v; break;
      case "--out": args.out = v; break;
      default:
        throw new UsageError(`Unknown option ${flag}`);
    }
  }
  if (args.from !== undefined && args.to !== undefined && args.to < args.from) throw new UsageError("--to is before --from");
  if (args.symbols.length === 0) args.symbols = [args.symbol];
  if (args.replay && (args.realCalls || args.routerUrl)) throw new UsageError("--replay answers from recordings and makes no calls: drop --real-calls and --router-url");
  if (args.record && !args.realCalls) throw new UsageError("--record is for --real-calls: only real model decisions are recorded (replay a file with --replay)");
  if (args.interval !== undefined && argv.includes("--every")) throw new UsageError("use --every or --interval, not both");
  return args;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const isOffline = (m: string) => m === "offline" || m === "offline-engine";

/** The priced model for the run; a paid model never reaches the real router unless --real-calls. */
async function pickModel(args: Args, config: Config): Promise<PricedModel> {
  if (args.replay) {
    if (!existsSync(args.replay)) throw new UsageError(`--replay ${args.replay}: no such file (record one with --real-calls --record FILE, or import a shared JSONL file)`);
    let records;
    try {
      records = fromJsonl(readFileSync(args.replay, "utf8"), args.replay);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const models = [...new Set(records.map((r) => r.model))];
    const id = isOffline(args.model) ? (models.length === 1 ? models[0]! : undefined) : args.model;
    if (!id) throw new UsageError(`--replay ${args.replay} holds recordings of ${models.length ? models.join(", ") : "no model"}: name the one to replay with --model`);
    return replayModel(new MemoryRecordings(records.filter((r) => r.model === id)), id, args.replay);
  }
  if (isOffline(args.model)) {
    if (args.routerUrl || args.realCalls) throw new UsageError("--router-url and --real-calls are for a paid model; the offline engine makes no calls");
    if (!args.throughCore) return offlineDirect();
    return throughAgent({ id: "offline-engine", pricePerCallUsdc: 0, route: "offline", path: "offline engine through @daydreamsai/core (the live agent's contexts and actions)", model: standInModel("offline-engine") });
  }
  const price = args.price ?? priceOf(args.model, config.router.costPerDecision);
  if (args.realCalls) {
    // The same authentication as live (ROUTER_AUTH and the keys that are set), whatever DECISION_MODEL says.
    const auth = routerAuthFromConfig({ ...config.router, decisionModel: "router" });
    if (!auth) throw new UsageError("--real-calls needs DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY in .env or the environment");
    const baseURL = args.routerUrl ?? config.router.url;
    const client = createRouterClient({ baseURL, auth });
    return throughAgent({ id: args.model, pricePerCallUsdc: price, route: "router", path: `@daydreamsai/core agent, real Dreams Router calls at ${baseURL}, each decision recorded`, model: () => client.model(args.model), deadlineMs: config.router.timeoutMs });
  }
  if (args.routerUrl) {
    const host = new URL(args.routerUrl).hostname;
    if (!LOOPBACK.has(host)) throw new UsageError(`--router-url ${args.routerUrl} is not on this machine: a router elsewhere means real calls, which need --real-calls`);
    // A stand-in never gets the real key.
    const client = createRouterClient({ baseURL: args.routerUrl, auth: { kind: "api-key", apiKey: "backtest-stand-in" } });
    return throughAgent({ id: args.model, pricePerCallUsdc: price, route: "stand-in", path: `@daydreamsai/core agent, router stand-in at ${args.routerUrl} (no money moves)`, model: () => client.model(args.model), deadlineMs: config.router.timeoutMs });
  }
  return throughAgent({
    id: args.model,
    pricePerCallUsdc: price,
    route: "stand-in",
    path: "@daydreamsai/core agent, in-process stand-in for the model (answers as the offline engine would; no money moves)",
    model: standInModel(args.model),
  });
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

export function summary(result: BacktestResult, files: { json: string; png: string }): string {
  const r = result.report;
  const cols: [string, Metrics][] = [["strategy (net)", r.strategy], ["before AI", r.strategyGross], [`B&H@${r.exposureMatched.exposurePct.toFixed(0)}%`, r.exposureMatched], ["buy&hold", r.buyAndHold], ["SMA 20/50", r.smaCrossover]];
  const row = (label: string, f: (m: Metrics) => string) => `  ${label.padEnd(22)}${cols.map(([, m]) => f(m).padStart(15)).join("")}`;
  return [
    `Backtest ${r.symbols.join(" + ")} ${r.timeframe}, ${r.from} → ${r.to} UTC: ${r.candles.toLocaleString("en-US")} candles${r.symbols.length > 1 ? " on one account under the shared limits" : ""}, ${r.gaps.length} gap(s) in the data (reported, not filled)`,
    `Model ${r.model.id}: ${r.model.path}; $${r.model.pricePerCallUsdc} per decision, ${r.model.decisions.toLocaleString("en-US")} decisions, ${r.model.modelCalls.toLocaleString("en-US")} model calls${r.model.failed ? `, ${r.model.failed} failed` : ""}${r.model.skippedForBudget ? `, ${r.model.skippedForBudget} skipped (spending cap)` : ""}`,
    `Decided by: ${r.decidedBy.summary}`,
    `Cadence: ${r.cadence.note}`,
    `  ${"".padEnd(22)}${cols.map(([n]) => n.padStart(15)).join("")}`,
    row("total return", (m) => pct(m.totalReturnPct)),
    row("annualized return", (m) => pct(m.annualizedReturnPct)),
    row("Sharpe", (m) => m.sharpe.toFixed(2)),
    row("Sortino", (m) => m.sortino.toFixed(2)),
    row("max drawdown", (m) => `${m.maxDrawdownPct.toFixed(2)}%`),
    row("win rate", (m) => (m.trades ? `${m.winRatePct.toFixed(1)}%` : "-")),
    row("trades (round trips)", (m) => String(m.trades)),
    row("fees", (m) => num(m.fees)),
    row("AI spend (USDC)", (m) => num(m.aiSpend, 4)),
    row("net P&L after AI spend", (m) => num(m.netPnlAfterAi)),
    `Strategy (net) is after fees, slippage and AI spend; "before AI" leaves the AI spend out. B&H@${r.exposureMatched.exposurePct.toFixed(0)}% holds the strategy's average exposure, the rest in cash.`,
    `Risk: ${r.risk.stopLosses} stop losses (${r.risk.gapExits} through a gap), ${r.risk.takeProfits} take profits, ${r.risk.trailingMoves} trailing-stop moves; refused ${JSON.stringify(r.risk.refusedByRule)}, resized ${JSON.stringify(r.risk.resizedByRule)}, market breaches ${JSON.stringify(r.risk.breaches)}; in the market ${r.timeInMarketPct}% of the time, average exposure ${r.averageExposurePct}% of equity`,
    `Wall time ${(r.wallTimeMs / 1000).toFixed(1)} s (${r.candlesPerSecond.toLocaleString("en-US")} candles/s). Report: ${files.json}  Chart: ${files.png}`,
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
  const dirs = args.data ? [resolve(args.data)] : [resolve(here, "../shared/data/ohlcv"), resolve(here, "data/ohlcv")];
  const series: { symbol: string; candles: Candle[]; file: string }[] = [];
  for (const symbol of args.symbols) {
    const file = `${symbol.replace("/", "_")}_${timeframe}.csv`;
    const dir = dirs.find((d) => existsSync(join(d, file)));
    if (!dir) {
      process.stderr.write(`No ${file} in ${dirs.map((d) => relative(process.cwd(), d) || d).join(" or ")}. Pick a --symbol and --timeframe that have recorded candles (e.g. BTC/USDT 2h), or point --data at them.\n`);
      return 2;
    }
    series.push({ symbol, candles: loadCandles(join(dir, file)), file });
  }
  const candles = series[0]!.candles;
  const from = args.from ?? Math.max(...series.map((s) => s.candles[0]!.time));
  const to = args.to ?? Math.min(...series.map((s) => s.candles[s.candles.length - 1]!.time));
  for (const s of series) {
    if (s.candles.some((c) => c.time >= from && c.time <= to)) continue;
    process.stderr.write(`${s.file} has no candles between ${new Date(from).toISOString().slice(0, 10)} and ${new Date(to).toISOString().slice(0, 10)} (it covers ${new Date(s.candles[0]!.time).toISOString().slice(0, 10)} to ${new Date(s.candles[s.candles.length - 1]!.time).toISOString().slice(0, 10)}).\n`);
    return 2;
  }
  const cadence = args.interval === undefined ? { decideEvery: args.every } : { decisionIntervalSeconds: args.interval === "live" ? config.schedule.decisionIntervalMs / 1000 : args.interval };
  const shape = { ...(series.length > 1 ? { series } : { symbol: args.symbol, candles }), timeframe, ...cadence };
  const periods = args.walkForward ? yearlyPeriods(candles, from, to) : [{ label: "", from, to }];
  // Only the candles that will be decided: the indicator warm-up is not charged.
  let decisions = 0;
  try {
    for (const p of periods) decisions += plannedDecisions({ ...shape, from: p.from, to: p.to });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }

  let model: PricedModel;
  try {
    model = await pickModel(args, config);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  const estimate = decisions * model.pricePerCallUsdc;
  const cap = args.maxSpend ?? (model.route === "router" ? estimate : undefined);
  if (model.pricePerCallUsdc > 0 || model.route !== "offline") {
    process.stderr.write(
      `Estimated AI spend: ${decisions.toLocaleString("en-US")} decisions × $${model.pricePerCallUsdc} (${model.id}) = $${estimate.toFixed(2)}` +
        (model.route === "router" ? ` of REAL USDC through ${model.path.split(" at ").pop()!.split(",")[0]}; the run stops calling at $${cap!.toFixed(2)}.\n` : `, charged to the report only: ${model.path}.\n`),
    );
  }
  if (model.route === "router" && !args.yes && !(await confirm(`Spend up to $${cap!.toFixed(2)} of real USDC on model calls? Type yes to go on: `))) {
    process.stderr.write("Not started: nothing was spent. Add --yes to confirm without a prompt, or drop --real-calls to use the stand-in.\n");
    await model.close();
    return 1;
  }
  // Every paid decision is recorded, so the run can be replayed for free (--replay) or shared.
  const recordFile = model.route === "router" ? resolve(args.record ?? ".data/recordings.jsonl") : undefined;
  const recordings = recordFile ? new MemoryRecordings(existsSync(recordFile) ? fromJsonl(readFileSync(recordFile, "utf8"), recordFile) : []) : undefined;
  if (recordings) model = recordingModel(model, recordings);
  const saveRecordings = async () => {
    if (!recordFile || !recordings) return;
    mkdirSync(resolve(recordFile, ".."), { recursive: true });
    writeFileSync(recordFile, toJsonl(await recordings.all()));
    process.stderr.write(`Recorded decisions: ${relative(process.cwd(), recordFile)} (${recordings.size} in all); replay them free with --replay ${relative(process.cwd(), recordFile)} --model ${model.id}\n`);
  };

  const dataDir = mkdtempSync(join(tmpdir(), "backtest-redis-"));
  // A private Redis on a free port, started the way npm start does: the run never touches the agent's data.
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
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
    const progress = process.stderr.isTTY && !args.walkForward ? (done: number, total: number) => process.stderr.write(`\r  ${Math.floor((done / total) * 100)}% of ${total.toLocaleString("en-US")} candles`) : undefined;
    const options: Omit<BacktestOptions, "from" | "to"> = {
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
    };
    const outDir = resolve(args.out ?? ".data/backtests");
    mkdirSync(outDir, { recursive: true });
    const name = `${args.symbols.map((s) => s.replace("/", "_")).join("+")}-${timeframe}`;
    const modelName = model.id.replace(/[^A-Za-z0-9.-]+/g, "_");
    if (args.walkForward) {
      // A spending cap covers the whole walk, not each year.
      const perPeriod = cap !== undefined ? { ...options, maxAiSpendUsdc: cap / periods.length } : options;
      const wf = await walkForward(perPeriod, periods, (row) => process.stderr.write(`  ${row.period}: strategy ${row.strategy.totalReturnPct.toFixed(1)}%, Sharpe ${row.strategy.sharpe.toFixed(2)}\n`));
      const md = walkForwardMarkdown(wf);
      const stem = join(outDir, `walkforward-${name}-${modelName}`);
      writeFileSync(`${stem}.json`, JSON.stringify(wf, null, 1) + "\n");
      writeFileSync(`${stem}.md`, md + "\n");
      process.stdout.write(redactSecrets(`Walk-forward ${args.symbols.join(" + ")} ${timeframe}, ${wf.rows.length} period(s), model ${model.id}\nDecided by (last period): ${wf.rows.at(-1)!.decidedBy}\n\n${md}\n\nWall time ${(wf.wallTimeMs / 1000).toFixed(1)} s. Report: ${relative(process.cwd(), stem)}.json and .md\n`, config));
      return 0;
    }
    const result = await runBacktest({ ...options, from, to });
    if (progress) process.stderr.write("\n");
    const stem = `backtest-${name}-${result.report.from.slice(0, 10)}-${result.report.to.slice(0, 10)}-${modelName}`;
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
    await model.close();
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
