// Which of the wallet's outgoing USDC transfers are a permit session's batches, and whether each one
// is exactly what was booked. The facilitator settles a session's pending calls in one
// `transferFrom` (after 2 min idle, at 90% of the cap, before the deadline, on close), so a batch is
// the sum of the session's next booked calls since the last batch, to the µUSDC. Pure.
import { usd, type MicroUsdc } from "../domain/types.js";

export interface SessionForMatching {
  id: string;
  spender: string;
  /** Its booked calls, oldest first, and how many of them batches already paid. */
  calls: { chargeId: string; micro: MicroUsdc }[];
  settledCalls: number;
  signedAt: number;
  /** Unix seconds. */
  deadline: number;
}

export interface TransferOut {
  transaction: string;
  to: string;
  valueMicro: MicroUsdc;
  block: bigint;
}

export interface BatchMatch {
  sessionId: string;
  transaction: string;
  micro: MicroUsdc;
  calls: number;
  block: bigint;
}

export interface SessionDrift {
  kind: "batch-unmatched" | "batch-larger" | "never-settled" | "allowance-open";
  sessionId?: string;
  transaction?: string;
  message: string;
}

/**
 * Matches each new transfer to a session's spender against the session's unsettled calls: the
 * first session (oldest first) where the next k calls sum exactly to it takes it. A transfer no
 * session explains is a drift: larger than everything booked and unsettled, or not a run of calls.
 */
export function matchSessionBatches(sessions: SessionForMatching[], transfers: TransferOut[]): { matches: BatchMatch[]; drifts: SessionDrift[] } {
  const next = new Map(sessions.map((s) => [s.id, s.settledCalls]));
  const ordered = [...sessions].sort((a, b) => a.signedAt - b.signedAt);
  const matches: BatchMatch[] = [];
  const drifts: SessionDrift[] = [];
  for (const t of [...transfers].sort((a, b) => (a.block < b.block ? -1 : a.block > b.block ? 1 : 0))) {
    const candidates = ordered.filter((s) => s.spender.toLowerCase() === t.to.toLowerCase());
    if (candidates.length === 0) continue;
    let matched = false;
    let unsettled = 0;
    for (const s of candidates) {
      const from = next.get(s.id)!;
      let sum = 0;
      for (let k = from; k < s.calls.length; k++) {
        sum += s.calls[k]!.micro;
        if (sum === t.valueMicro) {
          matches.push({ sessionId: s.id, transaction: t.transaction, micro: t.valueMicro, calls: k - from + 1, block: t.block });
          next.set(s.id, k + 1);
          matched = true;
          break;
        }
        if (sum > t.valueMicro) break;
      }
      if (matched) break;
      unsettled += s.calls.slice(from).reduce((a, c) => a + c.micro, 0);
    }
    if (matched) continue;
    drifts.push(
      t.valueMicro > unsettled
        ? { kind: "batch-larger", transaction: t.transaction, message: `the router drew ${usd(t.valueMicro, 6)} in ${t.transaction}, more than the ${usd(unsettled, 6)} booked and not yet settled on its permit sessions` }
        : { kind: "batch-unmatched", transaction: t.transaction, message: `the router drew ${usd(t.valueMicro, 6)} in ${t.transaction}, which is no run of the calls booked on its permit sessions (${usd(unsettled, 6)} unsettled)` },
    );
  }
  return { matches, drifts };
}

/** A session whose deadline passed `graceMs` ago with booked calls no batch paid. */
export function neverSettled(s: SessionForMatching & { bookedMicro: MicroUsdc; settledMicro: MicroUsdc }, now: number, graceMs: number): SessionDrift | undefined {
  const owed = s.bookedMicro - s.settledMicro;
  if (owed <= 0 || now < s.deadline * 1000 + graceMs) return undefined;
  return { kind: "never-settled", sessionId: s.id, message: `permit session ${s.id.slice(0, 8)} ended ${new Date(s.deadline * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC with ${usd(owed, 6)} booked that the router never drew` };
}
