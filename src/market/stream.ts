// Live candles for one symbol: the exchange's websocket stream through ccxt.pro where it has one,
// else REST polling; either way with backoff on errors. Closed candles and the forming candle are
// reported apart, and a hole between two closed candles is reported as a gap, never filled.
import type { Exchange as CcxtExchange, OHLCV } from "ccxt";
import type { Candle } from "../domain/types.js";
import { abortableSleep } from "../sleep.js";

export interface Gap {
  symbol: string;
  /** Open time of the last candle before the hole. */
  after: number;
  /** Candles that should have been there. */
  missing: number;
}

export interface CandleStreamOptions {
  exchange: CcxtExchange;
  symbol: string;
  timeframe: string;
  /** "auto": websocket when ccxt.pro has a watchOHLCV for the exchange, else polling. */
  mode?: "auto" | "websocket" | "poll";
  /** Time between polls when all is well. */
  pollMs?: number;
  /** First wait after an error; doubles on each further error up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Consecutive websocket failures before falling back to polling. */
  websocketAttempts?: number;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  onClosed?: (candle: Candle) => void;
  onForming?: (candle: Candle) => void;
  onGap?: (gap: Gap) => void;
  onError?: (err: unknown, retryInMs: number, mode: "websocket" | "poll") => void;
}

function toCandle(row: OHLCV): Candle | undefined {
  const [time, open, high, low, close, volume] = row;
  if (time === undefined || open === undefined || high === undefined || low === undefined || close === undefined) return undefined;
  return { time, open, high, low, close, volume: volume ?? 0 };
}

export class CandleStream {
  /** The transport in use now ("websocket" may fall back to "poll"). */
  mode: "websocket" | "poll";
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private readonly tfMs: number;
  private lastClosed: Candle | undefined;
  private forming: Candle | undefined;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The wait that follows the next error (grows while errors continue). */
  nextBackoffMs: number;

  constructor(private readonly o: CandleStreamOptions) {
    this.tfMs = o.exchange.parseTimeframe(o.timeframe) * 1000;
    const canWatch = typeof (o.exchange as unknown as { watchOHLCV?: unknown }).watchOHLCV === "function" && o.exchange.has.watchOHLCV === true;
    this.mode = o.mode === "poll" || (o.mode !== "websocket" && !canWatch) ? "poll" : "websocket";
    if (o.mode === "websocket" && !canWatch) throw new Error(`${o.exchange.id} has no websocket candle stream in ccxt.pro; use polling`);
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? abortableSleep;
    this.nextBackoffMs = o.backoffMs ?? 1000;
  }

  /** The newest closed candle and the forming one, as last seen. */
  latest(): { closed?: Candle; forming?: Candle } {
    return { ...(this.lastClosed ? { closed: { ...this.lastClosed } } : {}), ...(this.forming ? { forming: { ...this.forming } } : {}) };
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const unwatch = (this.o.exchange as unknown as { close?: () => Promise<void> }).close;
    if (this.mode === "websocket" && unwatch) await unwatch.call(this.o.exchange).catch(() => {});
    await this.running;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    let wsFailures = 0;
    while (!signal.aborted) {
      try {
        const rows =
          this.mode === "websocket"
            ? await this.o.exchange.watchOHLCV(this.o.symbol, this.o.timeframe)
            : await this.o.exchange.fetchOHLCV(this.o.symbol, this.o.timeframe, this.lastClosed?.time, 1000);
        if (signal.aborted) break;
        this.ingest(rows);
        this.nextBackoffMs = this.o.backoffMs ?? 1000;
        wsFailures = 0;
        if (this.mode === "poll") await this.sleep(this.o.pollMs ?? 10_000, signal);
      } catch (err) {
        if (signal.aborted) break;
        const wait = this.nextBackoffMs;
        this.nextBackoffMs = Math.min(this.o.maxBackoffMs ?? 300_000, wait * 2);
        this.o.onError?.(err, wait, this.mode);
        if (this.mode === "websocket" && ++wsFailures >= (this.o.websocketAttempts ?? 3)) this.mode = "poll";
        await this.sleep(wait, signal);
      }
    }
  }

  /** Sorts rows into closed candles (each reported once, in order, gaps called out) and the forming one. */
  ingest(rows: OHLCV[]): void {
    const now = this.now();
    const candles = rows.map(toCandle).filter((c): c is Candle => c !== undefined).sort((a, b) => a.time - b.time);
    for (const c of candles) {
      if (this.lastClosed && c.time <= this.lastClosed.time) continue;
      // A stream sends a candle's final state, then the next candle: the one before is closed.
      if (this.forming && c.time > this.forming.time) this.close(this.forming);
      if (c.time + this.tfMs <= now) this.close(c);
      else {
        this.forming = c;
        this.o.onForming?.({ ...c });
      }
    }
  }

  private close(c: Candle): void {
    if (this.lastClosed && c.time - this.lastClosed.time > this.tfMs) {
      const missing = Math.max(1, Math.round((c.time - this.lastClosed.time) / this.tfMs) - 1);
      this.o.onGap?.({ symbol: this.o.symbol, after: this.lastClosed.time, missing });
    }
    this.lastClosed = c;
    if (this.forming && this.forming.time <= c.time) this.forming = undefined;
    this.o.onClosed?.({ ...c });
  }
}
