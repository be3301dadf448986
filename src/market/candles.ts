import { readFileSync } from "node:fs";
import type { Candle } from "../domain/types.js";

const HEADER = "timestamp,open,high,low,close,volume";
// "2017-08-17 04:00:00", "2017-08-17T04:00", "2017-08-17": the files carry no zone, and they are UTC.
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$/;

function parseUtc(text: string): number | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0"] = m;
  const time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  // Date.UTC silently rolls "2025-02-30" over into March; reject instead of shifting the candle.
  const check = new Date(time);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d)) return undefined;
  return time;
}

/** Parses `timestamp,open,high,low,close,volume` CSV text (header optional) into candles, oldest first. */
export function parseOhlcvCsv(text: string): Candle[] {
  const candles: Candle[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const lineNo = i + 1;
    if (line === "" || (lineNo === 1 && line.toLowerCase() === HEADER)) return;
    const fail = (why: string): never => {
      throw new Error(`OHLCV CSV line ${lineNo}: ${why}: "${line.slice(0, 80)}"`);
    };
    const fields = line.split(",");
    if (fields.length !== 6) fail(`expected 6 fields, got ${fields.length}`);
    const time = parseUtc(fields[0]!.trim());
    if (time === undefined) fail(`bad timestamp "${fields[0]}"`);
    const nums = fields.slice(1).map((f) => (f.trim() === "" ? NaN : Number(f)));
    if (nums.some((n) => !Number.isFinite(n) || n < 0)) fail("open/high/low/close/volume must be non-negative numbers");
    const [open, high, low, close, volume] = nums as [number, number, number, number, number];
    if (low > Math.min(open, close) || high < Math.max(open, close)) fail("high/low do not contain open/close");
    const prev = candles[candles.length - 1];
    if (prev && time! <= prev.time) fail("timestamps must increase");
    candles.push({ time: time!, open, high, low, close, volume });
  });
  return candles;
}

export function loadCandles(path: string): Candle[] {
  try {
    return parseOhlcvCsv(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Places where the exchange produced no candle: `after` is the open time of the candle before the
 * hole and `missing` how many candles of `stepMs` fit in it.
 */
export function findGaps(candles: Candle[], stepMs: number): { after: number; missing: number }[] {
  const gaps: { after: number; missing: number }[] = [];
  for (let i = 1; i < candles.length; i++) {
    const prev = candles[i - 1]!;
    const delta = candles[i]!.time - prev.time;
    // An off-grid step (e.g. 2.5 steps) still counts as a gap of at least one candle.
    if (delta > stepMs) gaps.push({ after: prev.time, missing: Math.max(1, Math.round(delta / stepMs) - 1) });
  }
  return gaps;
}
