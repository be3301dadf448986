// One call to one router model, with the money around it: the balance rule and the budget
// reservation before, the payment metered at the provider's fetch, and the booking after.
import type { ModelV2 } from "../agent/scriptedModel.js";
import type { ValidationResult } from "../decision/schema.js";
import type { Decision, MarketSymbol, MicroUsdc } from "../domain/types.js";
import { holdSpend } from "../payments/guardedSpend.js";
import { CallMeter, type GuardVerdict } from "../payments/paymentMeter.js";
import type { CatalogueModel } from "./catalogue.js";
import type { CallFacts } from "./failures.js";
import type { SpendGuard } from "../payments/refusals.js";
import { estimate, type DecisionRun } from "./decisionRun.js";
import { usd } from "../domain/types.js";

export interface ExecResult {
  ok: boolean;
  decision?: Decision;
  error?: string;
  /** The model's reply arrived (so a failure is the reply's fault). */
  replied: boolean;
  verdicts?: Map<MarketSymbol, ValidationResult>;
}
export type Executor = (model: ModelV2, timeoutMs: number) => Promise<ExecResult>;

export interface PaidCall {
  result: ExecResult;
  facts: CallFacts;
  costMicro: MicroUsdc;
  latencyMs: number;
  guardReason?: string;
}

/** `leftMicro`: what the decision's ceiling (MAX_SPEND_PER_DECISION_USDC) still allows this call to cost. */
export async function paidCall(run: DecisionRun, m: CatalogueModel, exec: Executor, chargeId: string, symbols: number, leftMicro: MicroUsdc): Promise<PaidCall> {
  const { svc, rt, layer, req } = run;
  const router = layer.router!;
  const expected = estimate(run, m);
  const caps = rt.budget.caps;
  const leaseMs = m.timeoutMs + 60_000;
  const refused = (guard: SpendGuard, reason: string): PaidCall => ({
    result: { ok: false, replied: false, error: reason },
    facts: { ok: false, timedOut: false, paymentSent: false, paymentRefused: false, guard },
    costMicro: 0,
    latencyMs: 0,
    guardReason: reason,
  });

  // Both ways of paying hold the model's expected price: an x402 call learns the exact one at the
  // 402, an account-billed call settles with the usage.cost the gateway reports afterwards.
  const overCeiling = (micro: MicroUsdc) =>
    `${m.id} would cost ${usd(micro)}, but only ${usd(Math.max(0, leftMicro))} of MAX_SPEND_PER_DECISION_USDC ${usd(caps.maxPerDecisionMicro * Math.max(1, symbols))} is left for this decision`;
  const held = await holdSpend(
    { budget: rt.budget, balance: svc.balance, clock: svc.clock },
    {
      item: m.id,
      chargeId,
      expectedMicro: expected,
      maxPerCallMicro: caps.maxPerCallMicro,
      capName: "MAX_PRICE_PER_CALL_USDC",
      ceiling: { leftMicro, describe: overCeiling },
      leaseMs,
      // Near the cap, wait a while for calls in flight to settle, but well inside this call's deadline.
      budgetWaitMs: Math.min(m.timeoutMs / 3, 10_000),
    },
  );
  if (!held.ok) return refused(held.guard, held.reason);
  const spend = held.spend;
  const reservation = spend.reservation;

  const meter = new CallMeter(
    {
      approve: async (micro): Promise<GuardVerdict> => {
        if (symbols === 1) await rt.stats.rememberPrice(m.id, micro);
        return spend.approve(micro);
      },
      beforeSend: (micro) => rt.journal.paymentSent(req.decisionId, { chargeId, model: m.id, micro, time: svc.clock() }),
    },
    {
      ...(router.network ? { network: router.network as "base" | "base-sepolia" } : {}),
      ...(router.payer ? { payer: router.payer } : {}),
      payees: rt.payees ?? [],
      chargeId,
    },
  );

  let result: ExecResult = { ok: false, replied: false };
  let cost = 0;
  const t0 = performance.now();
  try {
    await rt.journal.callStarted(req.decisionId);
    result = await exec(layer.routerModel(m.id, meter), m.timeoutMs);
  } finally {
    meter.abort();
    // What was paid: the signed x402 amount that left the process, else the gateway's reported
    // cost, else (an account-billed answer with no cost reported) the estimate.
    cost = meter.paidMicro;
    // An `upto` payment settled for less than was signed: the journal, which a retry after a crash
    // books from, learns the settled amount (or, settled for nothing, that nothing is owed).
    if (meter.sentMicro > 0 && cost < meter.sentMicro) {
      if (cost > 0) await rt.journal.paymentSent(req.decisionId, { chargeId, model: m.id, micro: cost, time: svc.clock() });
      else await rt.journal.settled(req.decisionId, chargeId);
    }
    if (meter.sentMicro > 0) await rt.pauseAt?.("paid");
    if (cost === 0 && meter.reportedMicro !== undefined) cost = meter.reportedMicro;
    else if (cost === 0 && !router.paysPerCall && meter.answered) {
      cost = expected;
      run.errors.push(`${m.id}: the gateway reported no cost; booked the estimate ${usd(expected)}`);
    }
    if (cost > 0) {
      if (meter.sentMicro === 0) await rt.journal.paymentSent(req.decisionId, { chargeId, model: m.id, micro: cost, time: svc.clock() });
      await spend.book(cost, {
        marks: [rt.journal.bookedMark(req.decisionId, chargeId)],
        ...(meter.receipt ? { receipt: meter.receipt } : {}),
      });
      await rt.pauseAt?.("booked");
      if (!router.paysPerCall && symbols === 1 && meter.reportedMicro !== undefined) await rt.stats.rememberPrice(m.id, meter.reportedMicro);
      if (cost > reservation.micro) run.errors.push(`${m.id}: the gateway billed ${usd(cost)}, more than the ${usd(reservation.micro)} held for the call`);
    }
    await spend.release();
    if (cost > 0) await rt.pauseAt?.("released");
  }
  const latencyMs = Math.round(performance.now() - t0);
  const facts: CallFacts = {
    ok: result.ok,
    ...(result.error ? { agentError: result.error } : {}),
    ...(meter.status !== undefined ? { status: meter.status } : {}),
    ...(meter.retryAfterMs !== undefined ? { retryAfterMs: meter.retryAfterMs } : {}),
    timedOut: !result.ok && /no decision within/.test(result.error ?? ""),
    paymentSent: meter.paymentSent,
    paymentRefused: meter.paymentRefused,
    ...(meter.guard ? { guard: meter.guard } : {}),
  };
  if (!result.ok && result.replied && facts.status === undefined) facts.status = 200;
  return { result, facts, costMicro: cost, latencyMs, ...(meter.guardReason ? { guardReason: meter.guardReason } : {}) };
}
