import type { Redis } from "ioredis";
import { BudgetGuard } from "../payments/budgetGuard.js";
import { InflightPayments } from "../payments/inflight.js";
import type { PaymentServices } from "../payments/paidRequest.js";
import { USDC, type MarketSymbol } from "../domain/types.js";
import { spendKeys } from "../ledger/ledger.js";
import { RedisRecordings, type RecordingStore } from "./recordings.js";
import { CircuitBreaker } from "./breaker.js";
import { DecisionCache } from "./decisionCache.js";
import { DecisionJournal } from "./decisionJournal.js";
import { ModelStats } from "./modelStats.js";

export interface RouterPolicy {
  /** What decides when no router model can (or may) answer. */
  fallback: "offline" | "hold";
  cacheTtlMs: number;
  batch: { enabled: boolean; maxSymbols: number; symbols: MarketSymbol[] };
  gate: { enabled: boolean; minScore: number };
  /** After a paid model's invalid reply, how many more paid models one decision may ask (INVALID_REPLY_RETRIES). */
  paidAfterInvalid: number;
}

/** The Redis-backed services of the model loop, shared by every worker and process. */
export interface RouterRuntime {
  policy: RouterPolicy;
  breaker: CircuitBreaker;
  budget: BudgetGuard;
  /** What every payment meets (the one paid request): the budget, the balance rule, the crash index, the books. */
  payments: PaymentServices;
  stats: ModelStats;
  cache: DecisionCache;
  journal: DecisionJournal;
  /** X402_PAYEES: the payees x402 payments may go to (lower-case); empty: any. */
  payees?: string[];
  /** Every paid answer, kept by the content of what the model was shown, for free replays. */
  recordings?: RecordingStore;
  /** Posts one alert to the chat. */
  alert(text: string): Promise<void>;
  /**
   * A seam for crash tests: awaited at each step of a paid call's booking. A test that never
   * resolves it freezes the decision there, as a process killed at that step would stop.
   */
  pauseAt?: (step: BookingStep) => Promise<void>;
}

/** The points between the writes of a paid call, where a crash could fall. */
export type BookingStep = "paid" | "booked" | "released" | "answered";

/** What the runtime is built from (the composition root reads it from the configuration). */
export interface RuntimeSettings {
  fallback: RouterPolicy["fallback"];
  cacheTtlMs: number;
  batch: boolean;
  batchMaxSymbols: number;
  signalGate: boolean;
  signalGateMinScore: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  maxPricePerCall: number;
  maxSpendPerDecision: number;
  payees: string[];
  /** Every watched symbol (a batch may take any of them). */
  symbols: MarketSymbol[];
  /** The longest any model call may take: a breaker's probe lease outlasts it. */
  slowestTimeoutMs: number;
  dailyBudget: number;
  monthlyBudget: number;
  invalidReplyRetries: number;
}

/** What the payments need from outside the model loop: the balance rule and the books. */
export interface RuntimeDeps {
  balance: PaymentServices["balance"];
  refusals: PaymentServices["refusals"];
  clock: () => number;
  /** Posts one alert to the chat. */
  alert(text: string): Promise<void>;
  /** Refused per-call payments are kept watched until the chain says whether they were used. */
  chainWatch?: boolean;
}

export function createRouterRuntime(redis: Redis, r: RuntimeSettings, deps: RuntimeDeps, ledgerPrefix = "ledger:"): RouterRuntime {
  const slowest = r.slowestTimeoutMs;
  const alert = deps.alert;
  const budget = new BudgetGuard(
    redis,
    { dailyMicro: USDC(r.dailyBudget), monthlyMicro: USDC(r.monthlyBudget), maxPerCallMicro: USDC(r.maxPricePerCall), maxPerDecisionMicro: USDC(r.maxSpendPerDecision) },
    spendKeys(ledgerPrefix),
  );
  // Told once per kind and period: the same clock or wallet trouble refuses every payment until fixed.
  const alertOnce = async (kind: "clock" | "wallet", text: string) => {
    if ((await redis.set(`payments:alerted:${kind}`, "1", "EX", 3600, "NX")) === "OK") await alert(text);
  };
  return {
    policy: {
      fallback: r.fallback,
      cacheTtlMs: r.cacheTtlMs,
      batch: { enabled: r.batch, maxSymbols: r.batchMaxSymbols, symbols: r.symbols },
      gate: { enabled: r.signalGate, minScore: r.signalGateMinScore },
      paidAfterInvalid: r.invalidReplyRetries,
    },
    breaker: new CircuitBreaker(redis, { failures: r.breakerFailures, coolDownMs: r.breakerCooldownMs, probeLeaseMs: slowest + 5_000 }),
    budget,
    payments: {
      budget,
      balance: deps.balance,
      inflight: new InflightPayments(redis),
      refusals: deps.refusals,
      clock: deps.clock,
      abandoned: new Set<string>(),
      alert: alertOnce,
      ...(deps.chainWatch ? { chainWatch: true } : {}),
    },
    stats: new ModelStats(redis),
    cache: new DecisionCache(redis),
    journal: new DecisionJournal(redis),
    recordings: new RedisRecordings(redis),
    payees: r.payees,
    alert,
  };
}
