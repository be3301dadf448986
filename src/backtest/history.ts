// Candle history for backtests: pages of an exchange's OHLCV appended to the CSV files the
// backtest reads (src/market/candles.ts), so an interrupted download loses at most one page and the
// next run continues from the last stored candle.
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Candle } from "../domain/types.js";
import { isCcxtError, exchangeReason } from "../exchange/ccxtErrors.js";
import { parseOhlcvCsv } from "../market/candles.js";

const HEADER = "timestamp,open,high,low,close,volume";

/** The one call of an exchange the download makes: ccxt's `fetchOHLCV` (rows of [time, o, h, l, c, v]). */
export interface OhlcvSource {
  fetchOHLCV(symbol: string, timeframe: string, since?: number, limit?: number): Promise<(number | undefined)[][]>;
}

export interface DownloadProgress {
  symbol: string;
  /** Candles stored by this run so far. */
  done: number;
  /** Candles the range can hold (an upper bound: gaps and a late listing make it fewer). */
  total: number;
  /** Newest candle stored, epoch ms. */
  at: number;
}

export interface DownloadOptions {
  source: OhlcvSource;
  /** Exchange name, for messages. */
  exchange: string;
  symbol: string;
  timeframe: string;
  /** The CSV file to fill (created, continued, or extended backwards to `from`). */
  file: string;
  /** First candle wanted, epoch ms; without it, continue the file (which must then exist). */
  from?: number;
  /** Candles opening before this time only (default: every closed candle). */
  to?: number;
  now: () => number;
  /** Rows asked per request (Binance serves up to 1,000). */
  pageLimit?: number;
  /** Tries of one page before giving up (the first included). */
  tries?: number;
  /** Wait before retry `n` (1-based). */
  backoffMs?: (n: number) => number;
  sleep: (ms: number) => Promise<void>;
  onProgress?: (p: DownloadProgress) => void;
  /** A retry about to happen, for the log. */
  onRetry?: (why: string, n: number, waitMs: number) => void;
}

export interface DownloadResult {
  file: string;
  /** Candles added by this run. */
  added: number;
  /** Candles in the file now. */
  candles: number;
  first?: number;
  last?: number;
}

/** A download that stopped: the message says how far it got and how to continue. */
export class DownloadError extends Error {}

export function timeframeMs(timeframe: string): number {
  const m = /^(\d+)([smhdw])$/.exec(timeframe);
  if (!m || Number(m[1]) <= 0) throw new DownloadError(`"${timeframe}" is not a timeframe: use e.g. 15m, 2h or 1d`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s" | "m" | "h" | "d" | "w"];
}

/** "2021-01-01 02:00:00", as the shipped files write it (UTC, no zone). */
export const csvTime = (t: number) => new Date(t).toISOString().slice(0, 19).replace("T", " ");
const csvRow = (c: Candle) => `${csvTime(c.time)},${c.open},${c.high},${c.low},${c.close},${c.volume}`;
const day = (t: number) => csvTime(t).slice(0, 16);

function readCandles(file: string): Candle[] {
  if (!existsSync(file)) return [];
  try {
    return parseOhlcvCsv(readFileSync(file, "utf8"));
  } catch (err) {
    throw new DownloadError(`${file} cannot be continued: ${(err as Error).message}. Move it away to download it afresh.`);
  }
}

function append(file: string, candles: Candle[]): void {
  if (candles.length === 0) return;
  const fresh = !existsSync(file) || readFileSync(file, "utf8").trim() === "";
  appendFileSync(file, (fresh ? `${HEADER}\n` : "") + candles.map(csvRow).join("\n") + "\n");
}

/**
 * Exchange errors worth another try of a read: rate limits, 5xx, timeouts, a dropped connection
 * (ccxt's OperationFailed family), and a bare ExchangeError, which is what ccxt makes of an error
 * code it has no class for (Binance's 503 "server busy", -1008, arrives so). A refused symbol, a
 * bad request or a missing feature is not retried.
 */
export function retryable(err: unknown): boolean {
  return isCcxtError(err, "OperationFailed") || (err instanceof Error && err.name === "ExchangeError");
}

/**
 * Downloads `symbol`'s candles into `file`: from `from` (or the file's last candle) to the newest
 * closed candle (or `to`), page by page. A file that starts after `from` is extended backwards
 * through `FILE.head` (itself resumable), then merged in. Only closed candles are stored, each once.
 */
export async function downloadHistory(o: DownloadOptions): Promise<DownloadResult> {
  const step = timeframeMs(o.timeframe);
  const limit = o.pageLimit ?? 1000;
  const tries = o.tries ?? 5;
  const backoff = o.backoffMs ?? ((n: number) => Math.min(30_000, 1_000 * 2 ** (n - 1)));
  const stored = readCandles(o.file);
  if (stored.length === 0 && o.from === undefined) throw new DownloadError(`${o.file} does not exist yet: give --from YYYY-MM-DD for the first candle`);
  const until = Math.min(o.to ?? Infinity, o.now() - step + 1);
  const from = o.from === undefined ? undefined : Math.ceil(o.from / step) * step;

  // The ranges still missing: before the file (when --from is earlier), then after it.
  const head = stored.length > 0 && from !== undefined && from < stored[0]!.time ? { since: from, before: Math.min(stored[0]!.time, until) } : undefined;
  const tailSince = stored.length > 0 ? stored[stored.length - 1]!.time + step : from!;
  let total = Math.max(0, Math.ceil((head ? head.before - head.since : 0) / step)) + Math.max(0, Math.ceil((until - tailSince) / step));
  let done = 0;
  let newest = stored.at(-1)?.time ?? from ?? 0;

  /** Pages of [since, before) appended to `target`; continues after what `target` already holds. */
  const fill = async (target: string, since: number, before: number) => {
    const have = readCandles(target);
    let next = have.length > 0 ? Math.max(since, have[have.length - 1]!.time + step) : since;
    while (next < before) {
      const rows = await page(next);
      const fresh: Candle[] = [];
      for (const r of rows) {
        const [time, open, high, low, close, volume] = r;
        if (time === undefined || time < next || time >= before) continue;
        if ([open, high, low, close].some((x) => x === undefined || !Number.isFinite(x))) continue;
        if (fresh.length > 0 && time <= fresh[fresh.length - 1]!.time) continue;
        fresh.push({ time, open: open!, high: high!, low: low!, close: close!, volume: volume ?? 0 });
      }
      // Nothing newer in range: the exchange has no more (or the rest is still forming).
      if (fresh.length === 0) break;
      // A market listed after `since` (or a gap): the candles skipped over are not coming.
      total -= Math.floor((fresh[0]!.time - next) / step);
      append(target, fresh);
      done += fresh.length;
      newest = Math.max(newest, fresh[fresh.length - 1]!.time);
      o.onProgress?.({ symbol: o.symbol, done, total: Math.max(total, done), at: newest });
      next = fresh[fresh.length - 1]!.time + step;
    }
  };

  const page = async (since: number) => {
    for (let n = 1; ; n++) {
      try {
        return await o.source.fetchOHLCV(o.symbol, o.timeframe, since, limit);
      } catch (err) {
        if (isCcxtError(err, "BadSymbol")) throw new DownloadError(`${o.exchange} has no market ${o.symbol}: check the symbol (BASE/QUOTE, e.g. BTC/USDT)`);
        if (!retryable(err) || n >= tries) {
          const got = readCandles(o.file).at(-1);
          const where = got ? `${o.file} holds candles up to ${day(got.time)} UTC` : `nothing of ${o.symbol} is stored yet`;
          throw new DownloadError(
            `${o.exchange} did not serve ${o.symbol} ${o.timeframe} candles from ${day(since)} UTC${retryable(err) ? ` after ${n} tries` : ""}: ${exchangeReason(err)}. ` +
              `${where}; run the same command again to continue from there.`,
            { cause: err },
          );
        }
        const wait = backoff(n);
        o.onRetry?.(exchangeReason(err), n, wait);
        await o.sleep(wait);
      }
    }
  };

  if (head) {
    const part = `${o.file}.head`;
    await fill(part, head.since, head.before);
    const before = readCandles(part).filter((c) => c.time < stored[0]!.time);
    if (before.length > 0) {
      // Written whole, then renamed over the file: a crash leaves the old file or the new one.
      const merged = `${o.file}.merging`;
      writeFileSync(merged, `${HEADER}\n${[...before, ...readCandles(o.file)].map(csvRow).join("\n")}\n`);
      renameSync(merged, o.file);
    }
    rmSync(part, { force: true });
  }
  await fill(o.file, tailSince, until);
  const all = readCandles(o.file);
  return { file: o.file, added: done, candles: all.length, ...(all.length ? { first: all[0]!.time, last: all[all.length - 1]!.time } : {}) };
}

/** "[#####.....] 52% 18,200 of 35,000 candles, 4,100/s, 4 s left" in `width` characters of bar. */
export function progressLine(p: DownloadProgress, elapsedMs: number, width = 24): string {
  const share = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(share * width);
  const rate = elapsedMs > 0 ? (p.done / elapsedMs) * 1000 : 0;
  const left = rate > 0 ? Math.max(0, p.total - p.done) / rate : undefined;
  const n = (x: number) => Math.round(x).toLocaleString("en-US");
  return `${p.symbol} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${Math.floor(share * 100)}% ${n(p.done)} of ${n(p.total)} candles, ${n(rate)}/s, ${left === undefined ? "? left" : `${duration(left)} left`} (at ${day(p.at)})`;
}

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
