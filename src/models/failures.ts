// What went wrong with one model call, and what to do about it. Pure: the facts come from the
// call's meter (what crossed the wire) and the agent's verdict on the reply.
import type { SpendGuard } from "../payments/refusals.js";

export type FailureClass =
  | "timeout"
  | "rate-limited"
  | "server"
  | "unavailable"
  | "payment"
  | "invalid-reply"
  | "auth"
  | "over-price"
  | "over-ceiling"
  | "over-budget"
  | "low-balance"
  /** A permit session waits for the router to settle the last one: no paid call for now, nobody's fault. */
  | "session-wait"
  /** The server refused this request as it is (400, 413, 422: e.g. a prompt longer than the model's context): asking again would not help. */
  | "rejected";

export interface CallFacts {
  ok: boolean;
  agentError?: string;
  /** HTTP status of the last response the gateway sent, if any. */
  status?: number;
  retryAfterMs?: number;
  /** The call ran into its deadline. */
  timedOut: boolean;
  /** An x402 payment left this process during the call. */
  paymentSent: boolean;
  /** The gateway turned a payment down (402 again, or 412). */
  paymentRefused: boolean;
  /** Our own guardrails refused to pay. */
  guard?: SpendGuard;
}


export function classify(f: CallFacts): FailureClass | undefined {
  if (f.ok) return undefined;
  if (f.guard === "price") return "over-price";
  if (f.guard === "ceiling") return "over-ceiling";
  if (f.guard === "budget") return "over-budget";
  if (f.guard === "balance") return "low-balance";
  if (f.guard === "session") return "session-wait";
  if (f.paymentRefused || f.status === 402) return "payment";
  if (f.status === 401 || f.status === 403) return "auth";
  if (f.status === 429) return "rate-limited";
  if (f.status !== undefined && f.status >= 500) return "server";
  if (f.timedOut) return "timeout";
  if (f.status === 404) return "unavailable";
  if (f.status === 400 || f.status === 413 || f.status === 422) return "rejected";
  if (f.status === 200) return "invalid-reply";
  // No answer at all: the connection failed.
  return "server";
}

export interface RetryAdvice {
  /** Ask the same model again (once), after `delayMs`. */
  retrySameModel: boolean;
  delayMs: number;
  /** What the model's circuit breaker should learn. */
  breaker: "failure" | "cool-down" | "none";
  /** For "cool-down": how long to leave the model alone (else the breaker's cool-down). */
  coolDownMs?: number;
  /** Stop asking router models for this decision (budget, balance, or the gateway refuses us). */
  stopPaidCalls: boolean;
}

/**
 * The retry policy, by class. A call that sent a payment is never repeated on the same model:
 * the repeat would be a second payment for the same answer. Only a server error before any
 * payment is worth one quick retry; for everything else the next model is the faster way out.
 */
export function adviseAfter(cls: FailureClass, f: CallFacts, attempt: number): RetryAdvice {
  const next = (breaker: RetryAdvice["breaker"], extra: Partial<RetryAdvice> = {}): RetryAdvice => ({
    retrySameModel: false,
    delayMs: 0,
    breaker,
    stopPaidCalls: false,
    ...extra,
  });
  switch (cls) {
    case "server":
      return next("failure", { retrySameModel: !f.paymentSent && attempt === 1, delayMs: 250 });
    case "rate-limited":
      // Without a Retry-After the breaker's own cool-down applies.
      return next("cool-down", f.retryAfterMs !== undefined ? { coolDownMs: Math.max(1000, f.retryAfterMs) } : {});
    case "timeout":
    case "unavailable":
    case "rejected":
    case "payment":
    case "invalid-reply":
      return next("failure");
    case "over-price":
    // A cheaper model may still fit under what is left of the decision's ceiling.
    case "over-ceiling":
      return next("none");
    case "auth":
    case "over-budget":
    case "low-balance":
    case "session-wait":
      return next("none", { stopPaidCalls: true });
  }
}
