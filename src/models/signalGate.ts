import type { IndicatorSnapshot } from "../domain/types.js";

export interface GateVerdict {
  pay: boolean;
  why: string;
}

/**
 * "Decide only when conditions are met": a scheduled decision pays for a model only when there is
 * something to decide. Pure. Chat decisions never pass through it: a person asked.
 *  - the signal score is at least `minScore` either way;
 *  - or RSI is at an extreme (under 30 or over 70);
 *  - or a position is open and the signal turned bearish (an exit may be due).
 */
export function signalGate(s: IndicatorSnapshot, holding: boolean, minScore: number): GateVerdict {
  if (Math.abs(s.signalScore) >= minScore) return { pay: true, why: `signal score ${s.signalScore.toFixed(2)} is decisive` };
  if (s.rsi14 < 30 || s.rsi14 > 70) return { pay: true, why: `RSI ${s.rsi14.toFixed(0)} is at an extreme` };
  if (holding && s.signal === "bearish") return { pay: true, why: "an open position faces a bearish signal" };
  return {
    pay: false,
    why: `signal score ${s.signalScore.toFixed(2)} is under ${minScore} with RSI ${s.rsi14.toFixed(0)}: nothing worth paying a model for`,
  };
}
