// The one guard sequence every payment meets, whatever it buys (a model call, a research reply):
// before the call, the price cap on the expected price, the per-decision ceiling, the balance rule
// and a budget reservation; when the server names its exact price, the same checks again on it
// and the reservation resized (before anything is signed); after the call, the booking in one
// Redis script and the reservation released. Callers add only what is theirs (journals, stats).
import { usd, type MicroUsdc } from "../domain/types.js";
import type { BookingExtras, PaymentReceipt } from "../ledger/ledger.js";
import type { SpendGuard } from "./refusals.js";
import type { BalanceManager } from "./balanceManager.js";
import type { BudgetGuard, Reservation } from "./budgetGuard.js";
import type { GuardVerdict } from "./paymentMeter.js";


export interface SpendGuards {
  budget: BudgetGuard;
  balance: Pick<BalanceManager, "canMakeDecision" | "trackCost">;
  clock: () => number;
}

export interface SpendPlan {
  /** What is paid for, as the ledger and the messages name it: a model id, "research:host". */
  item: string;
  /** The charge this payment books under (once, whatever retries). */
  chargeId: string;
  expectedMicro: MicroUsdc;
  /** The per-call price cap and the setting that sets it, for the messages. */
  maxPerCallMicro: MicroUsdc;
  capName: string;
  /** What the per-decision ceiling still allows, and how to say it is crossed. */
  ceiling?: { leftMicro: MicroUsdc; describe(micro: MicroUsdc): string };
  /** How long the reservation outlives a process that died mid-call. */
  leaseMs: number;
  /** How long to queue near a cap while calls in flight settle. */
  budgetWaitMs: number;
}

export type HoldResult = { ok: true; spend: HeldSpend } | { ok: false; guard: SpendGuard; reason: string };

/** Runs the guards on the expected price and reserves it; nothing is paid yet. */
export async function holdSpend(guards: SpendGuards, plan: SpendPlan): Promise<HoldResult> {
  const expected = plan.expectedMicro;
  if (expected > plan.maxPerCallMicro) {
    return { ok: false, guard: "price", reason: `${plan.item} costs about ${usd(expected)} per call, above ${plan.capName} ${usd(plan.maxPerCallMicro)}` };
  }
  if (plan.ceiling && expected > plan.ceiling.leftMicro) return { ok: false, guard: "ceiling", reason: plan.ceiling.describe(expected) };
  const balance = await guards.balance.canMakeDecision(expected);
  if (!balance.ok) return { ok: false, guard: "balance", reason: balance.reason };
  const reserved = await guards.budget.reserveWaiting(plan.chargeId, expected, guards.clock(), plan.leaseMs, plan.budgetWaitMs);
  if (!reserved.ok) return { ok: false, guard: reserved.cap === "per-call" ? "price" : "budget", reason: reserved.reason };
  return { ok: true, spend: new HeldSpend(guards, plan, reserved.reservation) };
}

/** A reserved payment: approve the exact price, book what was paid, let the reservation go. */
export class HeldSpend {
  constructor(
    private readonly guards: SpendGuards,
    readonly plan: SpendPlan,
    readonly reservation: Reservation,
  ) {}

  /** The server's exact price, through the same checks; the reservation is resized to it. */
  async approve(micro: MicroUsdc): Promise<GuardVerdict> {
    const { plan, guards } = this;
    if (micro > plan.maxPerCallMicro) return { ok: false, guard: "price", reason: `${plan.item} asked ${usd(micro)}, above ${plan.capName} ${usd(plan.maxPerCallMicro)}` };
    if (plan.ceiling && micro > plan.ceiling.leftMicro) return { ok: false, guard: "ceiling", reason: plan.ceiling.describe(micro) };
    const bal = await guards.balance.canMakeDecision(micro);
    if (!bal.ok) return { ok: false, guard: "balance", reason: bal.reason };
    const resized = await guards.budget.resizeWaiting(this.reservation, micro, guards.clock(), plan.leaseMs, plan.budgetWaitMs);
    if (!resized.ok) return { ok: false, guard: resized.cap === "per-call" ? "price" : "budget", reason: resized.reason };
    return { ok: true };
  }

  /** Books `cost` under the plan's charge id and item, atomically with `marks` (once per charge id). */
  async book(cost: MicroUsdc, more: { receipt?: PaymentReceipt; marks?: BookingExtras["marks"] } = {}): Promise<void> {
    if (cost <= 0) return;
    await this.guards.balance.trackCost(this.plan.chargeId, this.plan.item, cost, this.guards.clock(), more);
  }

  release(): Promise<void> {
    return this.guards.budget.release(this.reservation);
  }
}
