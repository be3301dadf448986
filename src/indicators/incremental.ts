// Streaming indicators: O(1) work per new candle, and the newest candle replaceable while it is
// still forming. Each indicator keeps the state of every candle but the newest ("committed") and
// the newest input apart ("pending"): `push` commits the pending input and takes a new one,
// `replace` swaps the pending input, and the value is always computed from committed state plus
// the pending input. Replacing a forming candle a thousand times costs a thousand O(1) steps and
// never disturbs the committed state.
//
// Definitions and warm-up follow technicalindicators 3.1.0 (the reference the tests compare
// against): SMA-seeded EMA, Wilder RSI/ATR seeded with simple averages, population standard
// deviation for Bollinger bands. RSI is not rounded (the library rounds it to 2 decimals).

/** A value computed from committed state plus one pending input. */
abstract class Streaming<I, O> {
  private pending: I | undefined;
  private pendingSet = false;

  /** Folds one final input into the committed state (low level: for composing indicators). */
  abstract commit(input: I): void;
  /** The value if `input` were the newest input, changing no state (low level: for composing). */
  abstract peek(input: I): O | undefined;

  /** A new candle: the previous newest one is final now. Returns the value with `input` newest. */
  push(input: I): O | undefined {
    if (this.pendingSet) this.commit(this.pending as I);
    this.pending = input;
    this.pendingSet = true;
    return this.peek(input);
  }

  /** The newest candle changed (it is still forming): recompute without committing it. */
  replace(input: I): O | undefined {
    if (!this.pendingSet) return this.push(input);
    this.pending = input;
    return this.peek(input);
  }

  /** The current value (newest input included), or undefined while warming up. */
  value(): O | undefined {
    return this.pendingSet ? this.peek(this.pending as I) : undefined;
  }
}

/** Fixed-capacity ring buffer of numbers. */
class Ring {
  private readonly buf: Float64Array;
  private start = 0;
  length = 0;

  constructor(readonly capacity: number) {
    this.buf = new Float64Array(Math.max(1, capacity));
  }

  /** Appends; returns the value pushed out when full, else undefined. */
  push(x: number): number | undefined {
    if (this.capacity === 0) return x;
    if (this.length < this.capacity) {
      this.buf[(this.start + this.length) % this.capacity] = x;
      this.length++;
      return undefined;
    }
    const out = this.buf[this.start]!;
    this.buf[this.start] = x;
    this.start = (this.start + 1) % this.capacity;
    return out;
  }

  at(i: number): number {
    return this.buf[(this.start + i) % this.capacity]!;
  }

  get full(): boolean {
    return this.length === this.capacity;
  }
}

/**
 * Running sums over the last `n` committed values, with the values shifted by an anchor so that
 * the sum of squares of BTC-sized prices (1e9 each) does not swamp their variance. The sums are
 * recomputed from the ring every `n` commits: O(n) once per n commits is O(1) per commit, and it
 * keeps rounding from drifting over 35,000 candles (technicalindicators' SMA never resyncs).
 */
class WindowSums {
  private readonly ring: Ring;
  private anchor = 0;
  private anchored = false;
  private sum = 0;
  private sumSq = 0;
  private sinceResync = 0;

  constructor(readonly n: number) {
    this.ring = new Ring(n);
  }

  get count(): number {
    return this.ring.length;
  }

  add(x: number): void {
    if (this.n === 0) return;
    if (!this.anchored) {
      this.anchor = x;
      this.anchored = true;
    }
    const out = this.ring.push(x);
    const y = x - this.anchor;
    this.sum += y;
    this.sumSq += y * y;
    if (out !== undefined) {
      const z = out - this.anchor;
      this.sum -= z;
      this.sumSq -= z * z;
    }
    if (++this.sinceResync >= this.n) this.resync();
  }

  private resync(): void {
    this.sinceResync = 0;
    this.anchor = this.ring.at(this.ring.length - 1);
    let s = 0;
    let q = 0;
    for (let i = 0; i < this.ring.length; i++) {
      const y = this.ring.at(i) - this.anchor;
      s += y;
      q += y * y;
    }
    this.sum = s;
    this.sumSq = q;
  }

  /** Mean and population variance of the window plus `x`. */
  withExtra(x: number): { mean: number; variance: number } {
    const n = this.ring.length + 1;
    const y = x - this.anchor;
    const s = this.sum + y;
    const q = this.sumSq + y * y;
    const m = s / n;
    return { mean: m + this.anchor, variance: Math.max(0, q / n - m * m) };
  }
}

export class Sma extends Streaming<number, number> {
  private readonly window: WindowSums;
  constructor(readonly period: number) {
    super();
    if (!(period >= 1)) throw new Error(`SMA period must be at least 1, got ${period}`);
    this.window = new WindowSums(period - 1);
  }
  commit(x: number): void {
    this.window.add(x);
  }
  peek(x: number): number | undefined {
    return this.window.count === this.period - 1 ? this.window.withExtra(x).mean : undefined;
  }
}

/** EMA seeded with the SMA of its first `period` inputs. */
export class Ema extends Streaming<number, number> {
  private readonly k: number;
  private readonly seed: WindowSums;
  private ema: number | undefined;
  constructor(readonly period: number, smoothing?: number) {
    super();
    if (!(period >= 1)) throw new Error(`EMA period must be at least 1, got ${period}`);
    this.k = smoothing ?? 2 / (period + 1);
    this.seed = new WindowSums(period - 1);
  }
  commit(x: number): void {
    this.ema = this.peek(x);
    if (this.ema === undefined) this.seed.add(x);
  }
  peek(x: number): number | undefined {
    if (this.ema !== undefined) return this.ema + (x - this.ema) * this.k;
    return this.seed.count === this.period - 1 ? this.seed.withExtra(x).mean : undefined;
  }
}

/** Wilder's RSI: average gain and loss seeded with simple averages, then smoothed by 1/period. */
export class Rsi extends Streaming<number, number> {
  private prev: number | undefined;
  private count = 0; // changes committed
  private gainSum = 0;
  private lossSum = 0;
  private avgGain: number | undefined;
  private avgLoss: number | undefined;
  constructor(readonly period: number) {
    super();
    if (!(period >= 1)) throw new Error(`RSI period must be at least 1, got ${period}`);
  }
  private next(x: number): { avgGain?: number; avgLoss?: number; gainSum: number; lossSum: number } {
    if (this.prev === undefined) return { gainSum: 0, lossSum: 0 };
    const d = x - this.prev;
    const gain = d > 0 ? d : 0;
    const loss = d < 0 ? -d : 0;
    if (this.avgGain !== undefined && this.avgLoss !== undefined) {
      const p = this.period;
      return { avgGain: (this.avgGain * (p - 1) + gain) / p, avgLoss: (this.avgLoss * (p - 1) + loss) / p, gainSum: 0, lossSum: 0 };
    }
    const gainSum = this.gainSum + gain;
    const lossSum = this.lossSum + loss;
    if (this.count + 1 === this.period) return { avgGain: gainSum / this.period, avgLoss: lossSum / this.period, gainSum, lossSum };
    return { gainSum, lossSum };
  }
  commit(x: number): void {
    const n = this.next(x);
    if (this.prev !== undefined) this.count++;
    this.gainSum = n.gainSum;
    this.lossSum = n.lossSum;
    this.avgGain = n.avgGain;
    this.avgLoss = n.avgLoss;
    this.prev = x;
  }
  peek(x: number): number | undefined {
    const { avgGain, avgLoss } = this.next(x);
    if (avgGain === undefined || avgLoss === undefined) return undefined;
    if (avgLoss === 0) return 100;
    if (avgGain === 0) return 0;
    return 100 - 100 / (1 + avgGain / avgLoss);
  }
}

export interface MacdValue {
  macd: number;
  /** Undefined until the signal line has `signalPeriod` MACD values. */
  signal: number | undefined;
  histogram: number | undefined;
}

/** MACD with EMA oscillator and EMA signal (technicalindicators with SimpleMAOscillator/SimpleMASignal false). */
export class Macd extends Streaming<number, MacdValue> {
  private readonly fast: Ema;
  private readonly slow: Ema;
  private readonly signal: Ema;
  constructor(fastPeriod = 12, slowPeriod = 26, signalPeriod = 9) {
    super();
    this.fast = new Ema(fastPeriod);
    this.slow = new Ema(slowPeriod);
    this.signal = new Ema(signalPeriod);
  }
  private macdOf(x: number): number | undefined {
    const f = this.fast.peek(x);
    const s = this.slow.peek(x);
    return f === undefined || s === undefined ? undefined : f - s;
  }
  commit(x: number): void {
    const m = this.macdOf(x);
    this.fast.commit(x);
    this.slow.commit(x);
    if (m !== undefined) this.signal.commit(m);
  }
  peek(x: number): MacdValue | undefined {
    const m = this.macdOf(x);
    if (m === undefined) return undefined;
    const signal = this.signal.peek(m);
    return { macd: m, signal, histogram: signal === undefined ? undefined : m - signal };
  }
}

export interface BollingerValue {
  upper: number;
  middle: number;
  lower: number;
}

export class Bollinger extends Streaming<number, BollingerValue> {
  private readonly window: WindowSums;
  constructor(readonly period = 20, readonly k = 2) {
    super();
    if (!(period >= 1)) throw new Error(`Bollinger period must be at least 1, got ${period}`);
    this.window = new WindowSums(period - 1);
  }
  commit(x: number): void {
    this.window.add(x);
  }
  peek(x: number): BollingerValue | undefined {
    if (this.window.count !== this.period - 1) return undefined;
    const { mean, variance } = this.window.withExtra(x);
    const sd = Math.sqrt(variance);
    return { upper: mean + this.k * sd, middle: mean, lower: mean - this.k * sd };
  }
}

export interface Hlc {
  high: number;
  low: number;
  close: number;
}

/** Wilder's ATR: true range from the second candle on, seeded with the SMA of `period` true ranges. */
export class Atr extends Streaming<Hlc, number> {
  private prevClose: number | undefined;
  private readonly smooth: Ema;
  constructor(readonly period = 14) {
    super();
    this.smooth = new Ema(period, 1 / period);
  }
  private trueRange(c: Hlc): number | undefined {
    if (this.prevClose === undefined) return undefined;
    return Math.max(c.high - c.low, Math.abs(c.high - this.prevClose), Math.abs(c.low - this.prevClose));
  }
  commit(c: Hlc): void {
    const tr = this.trueRange(c);
    if (tr !== undefined) this.smooth.commit(tr);
    this.prevClose = c.close;
  }
  peek(c: Hlc): number | undefined {
    const tr = this.trueRange(c);
    return tr === undefined ? undefined : this.smooth.peek(tr);
  }
}

/** Population standard deviation of the last `count` close-to-close simple returns. */
export class ReturnsStdDev extends Streaming<number, number> {
  private prev: number | undefined;
  private readonly window: WindowSums;
  constructor(readonly count = 20) {
    super();
    this.window = new WindowSums(count - 1);
  }
  commit(x: number): void {
    if (this.prev !== undefined) this.window.add(x / this.prev - 1);
    this.prev = x;
  }
  peek(x: number): number | undefined {
    if (this.prev === undefined || this.window.count !== this.count - 1) return undefined;
    return Math.sqrt(this.window.withExtra(x / this.prev - 1).variance);
  }
}
