// What the strategy is measured against, over the same candles with the same fee and slippage as
// the paper exchange: buy-and-hold, and a plain SMA crossover. Plain functions over candles.
import type { Candle } from "../domain/types.js";
import { Sma } from "../indicators/incremental.js";

export interface BaselineRun {
  name: string;
  times: number[];
  equity: number[];
  tradePnls: number[];
  orders: number;
  fees: number;
}

export interface Costs {
  feeRate: number;
  slippageBps: number;
  /** Candle length: equity is marked at each candle's close, after a first point of cash at the first open. */
  candleMs: number;
}

/**
 * Buys with `fraction` of the cash (all of it by default) at the first candle's open, marks at each
 * close, never sells; the rest stays in cash. With the strategy's average exposure as the fraction
 * it is the fair comparison for a strategy that is only partly invested: the same market risk on
 * average, with no timing.
 */
export function buyAndHold(candles: Candle[], cash: number, costs: Costs, fraction = 1): BaselineRun {
  const first = candles[0];
  if (!first) throw new Error("buyAndHold: no candles");
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`buyAndHold: fraction ${fraction} is not between 0 and 1`);
  const price = first.open * (1 + costs.slippageBps / 10_000);
  const invested = cash * fraction;
  const idle = cash - invested;
  // qty * price * (1 + fee) = invested
  const qty = invested / (price * (1 + costs.feeRate));
  const fee = qty * price * costs.feeRate;
  return {
    name: fraction === 1 ? "buy-and-hold" : `buy-and-hold at ${(fraction * 100).toFixed(1)}%`,
    times: [first.time, ...candles.map((c) => c.time + costs.candleMs)],
    equity: [cash, ...candles.map((c) => idle + qty * c.close)],
    tradePnls: [],
    orders: qty > 0 ? 1 : 0,
    fees: fee,
  };
}

/**
 * Several runs side by side (one per symbol, each with its share of the cash) as one account on
 * the clock `times`: each run's last mark at or before a time counts, its starting cash before it.
 */
export function combineRuns(runs: BaselineRun[], times: number[]): BaselineRun {
  if (runs.length === 1) return runs[0]!;
  const equity = times.map(() => 0);
  for (const r of runs) {
    let j = 0;
    times.forEach((t, k) => {
      while (j + 1 < r.times.length && r.times[j + 1]! <= t) j++;
      equity[k]! += r.equity[j]!;
    });
  }
  return {
    name: runs[0]!.name,
    times,
    equity,
    tradePnls: runs.flatMap((r) => r.tradePnls),
    orders: runs.reduce((a, r) => a + r.orders, 0),
    fees: runs.reduce((a, r) => a + r.fees, 0),
  };
}

/**
 * Long while SMA(fast) is above SMA(slow) on closed candles, flat otherwise; the switch trades at
 * the next candle's open with all the cash (or all the holding). `history` warms the averages up
 * so the first signal is ready at the first candle.
 */
export function smaCrossover(history: Candle[], candles: Candle[], cash: number, costs: Costs, fast = 20, slow = 50): BaselineRun {
  const f = new Sma(fast);
  const s = new Sma(slow);
  let above: boolean | undefined;
  for (const c of history) {
    const a = f.push(c.close);
    const b = s.push(c.close);
    above = a !== undefined && b !== undefined ? a > b : undefined;
  }
  const slip = costs.slippageBps / 10_000;
  let qty = 0;
  let money = cash;
  let entryCost = 0;
  let orders = 0;
  let fees = 0;
  const tradePnls: number[] = [];
  const times: number[] = candles[0] ? [candles[0].time] : [];
  const equity: number[] = candles[0] ? [cash] : [];
  for (const c of candles) {
    // The signal known at this candle's open is the one from the last closed candle.
    if (above === true && qty === 0) {
      const price = c.open * (1 + slip);
      qty = money / (price * (1 + costs.feeRate));
      const fee = qty * price * costs.feeRate;
      entryCost = money;
      fees += fee;
      money = 0;
      orders++;
    } else if (above === false && qty > 0) {
      const price = c.open * (1 - slip);
      const fee = qty * price * costs.feeRate;
      money = qty * price - fee;
      fees += fee;
      tradePnls.push(money - entryCost);
      qty = 0;
      orders++;
    }
    times.push(c.time + costs.candleMs);
    equity.push(money + qty * c.close);
    const a = f.push(c.close);
    const b = s.push(c.close);
    above = a !== undefined && b !== undefined ? a > b : undefined;
  }
  return { name: `SMA ${fast}/${slow} crossover`, times, equity, tradePnls, orders, fees };
}
