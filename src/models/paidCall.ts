// One call to one router model. The money around it is the one paid request (src/payments/
// paidRequest.ts); what is the model call's own is here: its expected price, the decision's
// ceiling, the decision journal a retried job reads, the prices the gateway quotes, and the facts
// the retry policy classifies.
import type { ModelV2 } from "../agent/scriptedModel.js";
import type { ValidationResult } from "../decision/schema.js";
import { usd, type Decision, type MarketSymbol, type MicroUsdc } from "../domain/types.js";
import { paidRequest } from "../payments/paidRequest.js";
import type { CatalogueModel } from "./catalogue.js";
import { estimate, type DecisionRun } from "./decisionRun.js";
import type { CallFacts } from "./failures.js";

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
  const journalSent = (micro: MicroUsdc) => rt.journal.paymentSent(req.decisionId, { chargeId, model: m.id, micro, time: svc.clock() });
  const t0 = performance.now();
  const paid = await paidRequest(
    rt.payments,
    {
      item: m.id,
      chargeId,
      expectedMicro: expected,
      maxPerCallMicro: caps.maxPerCallMicro,
      capName: "MAX_PRICE_PER_CALL_USDC",
      ceiling: {
        leftMicro,
        describe: (micro) => `${m.id} would cost ${usd(micro)}, but only ${usd(Math.max(0, leftMicro))} of MAX_SPEND_PER_DECISION_USDC ${usd(caps.maxPerDecisionMicro * Math.max(1, symbols))} is left for this decision`,
      },
      leaseMs: m.timeoutMs + 60_000,
      // Near the cap, wait a while for calls in flight to settle, but well inside this call's deadline.
      budgetWaitMs: Math.min(m.timeoutMs / 3, 10_000),
      // A local model is free: its requests never go through a payer or a permit session.
      pay: m.free || !router.payWith ? { kind: "account" } : await router.payWith(),
      expect: {
        ...(router.network ? { network: router.network as "base" | "base-sepolia" } : {}),
        ...(router.payer ? { payer: router.payer } : {}),
        payees: rt.payees ?? [],
        chargeId,
      },
      journal: { sent: journalSent, mark: rt.journal.bookedMark(req.decisionId, chargeId), nothingOwed: () => rt.journal.settled(req.decisionId, chargeId) },
      onQuote: async (micro) => {
        if (symbols === 1) await rt.stats.rememberPrice(m.id, micro);
      },
      ...(rt.pauseAt ? { pauseAt: rt.pauseAt } : {}),
      onUnauthorized: () => router.unauthorized?.(),
    },
    async (f, meter) => {
      await rt.journal.callStarted(req.decisionId);
      return exec(layer.routerModel(m.id, f, meter), m.timeoutMs);
    },
  );
  const latencyMs = Math.round(performance.now() - t0);
  const meter = paid.meter;
  run.errors.push(...paid.notes);
  if (paid.refused && !meter.paymentSent && !meter.permit) {
    return {
      result: { ok: false, replied: false, error: paid.refused.reason },
      facts: { ok: false, timedOut: false, paymentSent: false, paymentRefused: false, guard: paid.refused.guard },
      costMicro: 0,
      latencyMs: 0,
      guardReason: paid.refused.reason,
    };
  }
  if (paid.costMicro > 0 && !router.paysPerCall && symbols === 1 && meter.reportedMicro !== undefined) await rt.stats.rememberPrice(m.id, meter.reportedMicro);
  const result: ExecResult = paid.value ?? { ok: false, replied: false, error: `model call failed: ${(paid.error as Error | undefined)?.message ?? "no answer"}` };
  // The server turned the payment down: say so, rather than blame the model's answer.
  const refusedBy = meter.refusal && !meter.answered ? `the ${meter.permit ? "router" : "gateway"} refused the payment (${meter.refusal.text.slice(0, 120)}); nothing was paid` : undefined;
  const facts: CallFacts = {
    ok: result.ok,
    ...(refusedBy ? { agentError: refusedBy } : result.error ? { agentError: result.error } : {}),
    ...(meter.status !== undefined ? { status: meter.status } : {}),
    ...(meter.retryAfterMs !== undefined ? { retryAfterMs: meter.retryAfterMs } : {}),
    timedOut: !result.ok && /no decision within/.test(result.error ?? ""),
    // A call on a permit that the router may have charged counts as paid: it is never asked again.
    paymentSent: meter.paymentSent || meter.sessionCharged || meter.sessionUnconfirmed,
    paymentRefused: meter.paymentRefused,
    ...(meter.guard ? { guard: meter.guard } : {}),
  };
  if (!result.ok && result.replied && facts.status === undefined) facts.status = 200;
  const out: PaidCall = { result: refusedBy && !result.ok ? { ...result, error: refusedBy } : result, facts, costMicro: paid.costMicro, latencyMs, ...(meter.guardReason ? { guardReason: meter.guardReason } : {}) };
  return out;
}
