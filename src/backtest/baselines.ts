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

/** Buys with all the cash at the first candle's open, marks at each close, never sells. */
export function buyAndHold(candles: Candle[], cash: number, costs: Costs): BaselineRun {
  const first = candles[0];
  if (!first) throw new Error("buyAndHold: no candles");
  const price = first.open * (1 + costs.slippageBps / 10_000);
  // qty * price * (1 + fee) = cash
  const qty = cash / (price * (1 + costs.feeRate));
  const fee = qty * price * costs.feeRate;
  return {
    name: "buy-and-hold",
    times: [first.time, ...candles.map((c) => c.time + costs.candleMs)],
    equity: [cash, ...candles.map((c) => qty * c.close)],
    tradePnls: [],
    orders: 1,
    fees: fee,
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
