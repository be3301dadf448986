// npm run backtest -- --symbol BTC/USDT --from 2022-01-01 --to 2022-12-31 --model <name|offline>
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
import { renderChart } from "./chart.js";
import { runBacktest, type BacktestResult } from "./engine.js";
import type { Metrics } from "./metrics.js";
import { offlineDirect, priceOf, standInModel, throughAgent, type PricedModel } from "./models.js";

const USAGE = `Usage: npm run backtest -- --symbol BTC/USDT --from 2022-01-01 --to 2022-12-31 --model <name|offline>
Options:
  --symbol SYMBOL      market, e.g. BTC/USDT (default BTC/USDT)
  --from DATE          first day, YYYY-MM-DD (default: the first candle)
  --to DATE            last day, YYYY-MM-DD, inclusive (default: the last candle)
  --model NAME         offline (default), or a model id such as openai/gpt-4o
  --timeframe TF       candle file to use, e.g. 2h (default TIMEFRAME)
  --every N            ask the model every N candles (default 1)
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
  const args: Args = { symbol: "BTC/USDT", model: "offline", every: 1, realCalls: false, yes: false, throughCore: false };
  const flags = new Set(["--real-calls", "--yes", "--through-core"]);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--help" || flag === "-h") throw new UsageError("");
    if (flags.has(flag)) {
      if (flag === "--real-calls") args.realCalls = true;
      if (flag === "--yes") args.yes = true;
      if (flag === "--through-core") args.throughCore = true;
      continue;
    }
    const v = argv[i + 1];
    if (!flag.startsWith("--")) throw new UsageError(`Unexpected "${flag}": options start with --`);
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    i++;
    switch (flag) {
      case "--symbol": {
        const s = v.toUpperCase().replace(/[-_]/, "/");
        if (!/^[A-Z0-9]+\/[A-Z0-9]+$/.test(s)) throw new UsageError(`--symbol "${v}" is not a market: use BASE/QUOTE, e.g. BTC/USDT`);
        args.symbol = s;
        break;
      }
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
  return args;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const isOffline = (m: string) => m === "offline" || m === "offline-engine";

/** The priced model for the run; a paid model never reaches the real router unless --real-calls. */
async function pickModel(args: Args, config: Config): Promise<PricedModel> {
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
    return throughAgent({ id: args.model, pricePerCallUsdc: price, route: "router", path: `@daydreamsai/core agent, real Dreams Router calls at ${baseURL}`, model: () => client.model(args.model), deadlineMs: config.router.timeoutMs });
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
  const cols: [string, Metrics][] = [["strategy", r.strategy], ["buy&hold", r.buyAndHold], ["SMA 20/50", r.smaCrossover]];
  const row = (label: string, f: (m: Metrics) => string) => `  ${label.padEnd(22)}${cols.map(([, m]) => f(m).padStart(14)).join("")}`;
  return [
    `Backtest ${r.symbol} ${r.timeframe}, ${r.from} → ${r.to} UTC: ${r.candles.toLocaleString("en-US")} candles, ${r.gaps.length} gap(s) in the data (reported, not filled)`,
    `Model ${r.model.id}: ${r.model.path}; $${r.model.pricePerCallUsdc} per decision, ${r.model.decisions.toLocaleString("en-US")} decisions, ${r.model.modelCalls.toLocaleString("en-US")} model calls${r.model.failed ? `, ${r.model.failed} failed` : ""}${r.model.skippedForBudget ? `, ${r.model.skippedForBudget} skipped (spending cap)` : ""}`,
    `  ${"".padEnd(22)}${cols.map(([n]) => n.padStart(14)).join("")}`,
    row("total return", (m) => pct(m.totalReturnPct)),
    row("annualized return", (m) => pct(m.annualizedReturnPct)),
    row("Sharpe", (m) => m.sharpe.toFixed(2)),
    row("Sortino", (m) => m.sortino.toFixed(2)),
    row("max drawdown", (m) => `${m.maxDrawdownPct.toFixed(2)}%`),
    row("win rate", (m) => (m.trades ? `${m.winRatePct.toFixed(1)}%` : "-")),
    row("trades (round trips)", (m) => String(m.trades)),
    row("fees", (m) => num(m.fees)),
    row("AI spend (USDC)", (m) => num(m.aiSpend, 4)),
    row("net P&L", (m) => num(m.netPnl)),
    row("net P&L after AI spend", (m) => num(m.netPnlAfterAi)),
    `Risk: ${r.risk.stopLosses} stop losses (${r.risk.gapExits} through a gap), ${r.risk.takeProfits} take profits, ${r.risk.trailingMoves} trailing-stop moves; refused ${JSON.stringify(r.risk.refusedByRule)}, resized ${JSON.stringify(r.risk.resizedByRule)}, market breaches ${JSON.stringify(r.risk.breaches)}; in the market ${r.timeInMarketPct}% of the time`,
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
  const file = `${args.symbol.replace("/", "_")}_${timeframe}.csv`;
  const here = fileURLToPath(new URL("../../", import.meta.url));
  const dirs = args.data ? [resolve(args.data)] : [resolve(here, "../shared/data/ohlcv"), resolve(here, "data/ohlcv")];
  const dir = dirs.find((d) => existsSync(join(d, file)));
  if (!dir) {
    process.stderr.write(`No ${file} in ${dirs.map((d) => relative(process.cwd(), d) || d).join(" or ")}. Pick a --symbol and --timeframe that have recorded candles (e.g. BTC/USDT 2h), or point --data at them.\n`);
    return 2;
  }
  const candles = loadCandles(join(dir, file));
  const from = args.from ?? candles[0]!.time;
  const to = args.to ?? candles[candles.length - 1]!.time;
  const inRange = candles.filter((c) => c.time >= from && c.time <= to).length;
  if (inRange === 0) {
    process.stderr.write(`${file} has no candles between ${new Date(from).toISOString().slice(0, 10)} and ${new Date(to).toISOString().slice(0, 10)} (it covers ${new Date(candles[0]!.time).toISOString().slice(0, 10)} to ${new Date(candles[candles.length - 1]!.time).toISOString().slice(0, 10)}).\n`);
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
  const decisions = Math.ceil(inRange / args.every);
  const estimate = decisions * model.pricePerCallUsdc;
  const cap = args.maxSpend ?? (model.route === "router" ? estimate : undefined);
  if (model.pricePerCallUsdc > 0 || model.route !== "offline") {
    process.stderr.write(
      `Estimated AI spend: ${decisions.toLocaleString("en-US")} decisions × $${model.pricePerCallUsdc} (${model.id}) = $${estimate.toFixed(2)}` +
        (model.route === "router" ? ` of REAL USDC through ${model.path.split(" at ").pop()}; the run stops calling at $${cap!.toFixed(2)}.\n` : `, charged to the report only: ${model.path}.\n`),
    );
  }
  if (model.route === "router" && !args.yes && !(await confirm(`Spend up to $${cap!.toFixed(2)} of real USDC on model calls? Type yes to go on: `))) {
    process.stderr.write("Not started: nothing was spent. Add --yes to confirm without a prompt, or drop --real-calls to use the stand-in.\n");
    await model.close();
    return 1;
  }

  const dataDir = mkdtempSync(join(tmpdir(), "backtest-redis-"));
  // A private Redis on a free port, started the way npm start does: the run never touches the agent's data.
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  // Stopped, or its output cut short (| head): the private Redis must not outlive the run.
  const abandon = () => {
    void server.stop().finally(() => {
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
    const progress = process.stderr.isTTY ? (done: number, total: number) => process.stderr.write(`\r  ${Math.floor((done / total) * 100)}% of ${total.toLocaleString("en-US")} candles`) : undefined;
    const result = await runBacktest({
      symbol: args.symbol,
      timeframe,
      candles,
      from,
      to,
      model,
      limits: config.risk,
      feeRate: config.exchange.feeRate,
      slippageBps: config.exchange.slippageBps,
      startingCash: args.cash ?? config.exchange.paperStartUsdt,
      redis,
      decideEvery: args.every,
      ...(cap !== undefined ? { maxAiSpendUsdc: cap } : {}),
      dataLabel: `recorded ${file}`,
      ...(progress ? { onProgress: progress } : {}),
    });
    if (progress) process.stderr.write("\n");
    const outDir = resolve(args.out ?? ".data/backtests");
    mkdirSync(outDir, { recursive: true });
    const stem = `backtest-${args.symbol.replace("/", "_")}-${timeframe}-${result.report.from.slice(0, 10)}-${result.report.to.slice(0, 10)}-${model.id.replace(/[^A-Za-z0-9.-]+/g, "_")}`;
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
