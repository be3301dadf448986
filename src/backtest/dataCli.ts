// npm run data -- --symbols BTC/USDT,SOL/USDT --timeframe 2h --from 2021-01-01
import { mkdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, readDotEnv, redactSecrets } from "../config/config.js";
import { createCcxtExchange } from "../exchange/ccxtClient.js";
import { sleep } from "../sleep.js";
import { csvTime, DownloadError, downloadHistory, progressLine, timeframeMs, type DownloadProgress, type OhlcvSource } from "./history.js";

export const DATA_USAGE = `Usage: npm run data -- --symbols BTC/USDT,ETH/USDT --timeframe 2h --from 2021-01-01
Downloads candles with ccxt into SYMBOL_TIMEFRAME.csv files the backtest reads. Run it again to
continue: it starts after the last stored candle (and fills in before the first, for an earlier --from).
Options:
  --symbols A,B,...    markets, BASE/QUOTE (--symbol for one)
  --timeframe TF       candle length, e.g. 15m, 2h, 1d (default TIMEFRAME)
  --from DATE          first day, YYYY-MM-DD (needed the first time; later runs continue the file)
  --to DATE            last day, YYYY-MM-DD, inclusive (default: up to the newest closed candle)
  --exchange ID        a ccxt exchange id (default EXCHANGE; public market data, no keys, never the testnet)
  --out DIR            folder of the CSV files (default DATA_DIR/ohlcv, which the backtest reads first)`;

export interface DataArgs {
  symbols: string[];
  timeframe?: string;
  from?: number;
  to?: number;
  exchange?: string;
  out?: string;
}

export class DataUsageError extends Error {}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
function parseDay(flag: string, v: string): number {
  const m = DAY.exec(v);
  const t = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  if (!m || !Number.isFinite(t) || new Date(t).getUTCMonth() !== Number(m[2]) - 1 || new Date(t).getUTCDate() !== Number(m[3])) throw new DataUsageError(`${flag} "${v}" is not a date: use YYYY-MM-DD, e.g. 2021-01-01`);
  return t;
}

export function parseDataArgs(argv: string[]): DataArgs {
  const args: DataArgs = { symbols: [] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--help" || flag === "-h") throw new DataUsageError("");
    if (!flag.startsWith("--")) throw new DataUsageError(`Unexpected "${flag}": options start with --`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new DataUsageError(`${flag} needs a value`);
    i++;
    switch (flag) {
      case "--symbol":
      case "--symbols": {
        const list = v.split(",").map((x) => x.trim()).filter((x) => x !== "");
        for (const s of list) if (!/^[A-Za-z0-9]+\/[A-Za-z0-9]+$/.test(s)) throw new DataUsageError(`${flag}: "${s}" is not a market: use BASE/QUOTE, e.g. BTC/USDT`);
        args.symbols.push(...list.map((s) => s.toUpperCase()));
        break;
      }
      case "--timeframe":
        if (!/^\d+[smhdw]$/.test(v)) throw new DataUsageError(`--timeframe "${v}" is not a timeframe: use e.g. 15m, 2h or 1d`);
        args.timeframe = v;
        break;
      case "--from": args.from = parseDay(flag, v); break;
      // Inclusive: every candle opening on that day.
      case "--to": args.to = parseDay(flag, v) + 86_400_000; break;
      case "--exchange":
        if (!/^[a-z][a-z0-9_]*$/.test(v)) throw new DataUsageError(`--exchange "${v}" is not a ccxt exchange id: use e.g. binance`);
        args.exchange = v;
        break;
      case "--out": args.out = v; break;
      default:
        throw new DataUsageError(`Unknown option ${flag}`);
    }
  }
  args.symbols = [...new Set(args.symbols)];
  if (args.symbols.length === 0) throw new DataUsageError("--symbols is needed: the markets to download, e.g. --symbols BTC/USDT,ETH/USDT");
  if (args.from !== undefined && args.to !== undefined && args.to <= args.from) throw new DataUsageError("--to is before --from");
  return args;
}

export interface DataIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Waits before retries, 1-based (shortened in tests). */
  backoffMs?: (n: number) => number;
}

/** `env` defaults to .env overridden by the environment, as npm start reads it. Returns the exit code. */
export async function dataMain(argv: string[], env: Record<string, string | undefined> = { ...readDotEnv(".env"), ...process.env }, io: DataIo = { stdout: process.stdout, stderr: process.stderr, now: Date.now, sleep }): Promise<number> {
  let args: DataArgs;
  try {
    args = parseDataArgs(argv);
  } catch (err) {
    if (!(err instanceof DataUsageError)) throw err;
    io.stderr.write(`${err.message ? `${err.message}\n` : ""}${DATA_USAGE}\n`);
    return err.message ? 2 : 0;
  }
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    io.stderr.write(loaded.message + "\n");
    return 2;
  }
  const config = loaded.config;
  const timeframe = args.timeframe ?? config.market.timeframe;
  const exchangeId = args.exchange ?? config.exchange.id;
  const outDir = resolve(args.out ?? join(config.redis.dataDir, "ohlcv"));
  const fail = (message: string, code = 1) => {
    io.stderr.write(redactSecrets(message, config) + "\n");
    return code;
  };
  try {
    timeframeMs(timeframe);
  } catch (err) {
    return fail((err as Error).message, 2);
  }

  let exchange;
  try {
    // Public market data only: no keys, and the real exchange's history rather than a testnet's.
    exchange = createCcxtExchange({ id: exchangeId, sandbox: false, apiUrl: config.exchange.apiUrl });
  } catch (err) {
    return fail((err as Error).message, 2);
  }
  if (!exchange.has.fetchOHLCV) return fail(`${exchangeId} has no candle history in ccxt (fetchOHLCV): pick another --exchange`, 2);
  if (exchange.timeframes && !(timeframe in exchange.timeframes)) return fail(`${exchangeId} has no ${timeframe} candles: use one of ${Object.keys(exchange.timeframes).join(", ")}`, 2);

  mkdirSync(outDir, { recursive: true });
  const tty = Boolean(io.stderr.isTTY);
  const rel = (p: string) => relative(process.cwd(), p) || p;
  for (const symbol of args.symbols) {
    const file = join(outDir, `${symbol.replace("/", "_")}_${timeframe}.csv`);
    const started = io.now();
    let shownTenth = -1;
    const onProgress = (p: DownloadProgress) => {
      const line = progressLine(p, io.now() - started);
      if (tty) io.stderr.write(`\r\x1b[2K${line}`);
      else {
        // Piped: a plain line every tenth of the way, not a line per page.
        const tenth = Math.floor((p.done / Math.max(1, p.total)) * 10);
        if (tenth !== shownTenth) io.stderr.write(line + "\n");
        shownTenth = tenth;
      }
    };
    try {
      const result = await downloadHistory({
        source: exchange as unknown as OhlcvSource,
        exchange: exchangeId,
        symbol,
        timeframe,
        file,
        ...(args.from !== undefined ? { from: args.from } : {}),
        ...(args.to !== undefined ? { to: args.to } : {}),
        now: io.now,
        sleep: io.sleep,
        ...(io.backoffMs ? { backoffMs: io.backoffMs } : {}),
        onProgress,
        onRetry: (why, n, wait) => io.stderr.write(`${tty ? "\r\x1b[2K" : ""}${symbol}: ${why}; try ${n + 1} in ${(wait / 1000).toFixed(1)} s\n`),
      });
      if (tty && result.added > 0) io.stderr.write("\n");
      const span = result.first !== undefined ? `${csvTime(result.first).slice(0, 16)} to ${csvTime(result.last!).slice(0, 16)} UTC` : "no candles";
      io.stdout.write(`${symbol} ${timeframe}: ${result.added.toLocaleString("en-US")} new candle(s); ${rel(file)} holds ${result.candles.toLocaleString("en-US")} (${span})\n`);
    } catch (err) {
      if (tty) io.stderr.write("\n");
      if (!(err instanceof DownloadError)) throw err;
      return fail(err.message);
    }
  }
  const dataFlag = args.out ? ` --data ${args.out}` : "";
  io.stdout.write(`Backtest them with: npm run backtest -- --symbols ${args.symbols.join(",")} --timeframe ${timeframe}${dataFlag}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  dataMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`Download failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
