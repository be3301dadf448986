// The fallback chain: the models in order, each skipped while its breaker is open, each failure
// retried on the same model only when the policy allows it (never after a payment).
import type { MicroUsdc } from "../domain/types.js";
import type { ModelAttempt } from "../ledger/ledger.js";
import type { CatalogueModel } from "./catalogue.js";
import { adviseAfter, classify } from "./failures.js";
import type { DecisionRun } from "./decisionRun.js";
import { alertGuard } from "./guardAlerts.js";
import { paidCall, type ExecResult, type Executor } from "./paidCall.js";
import { sleep } from "../sleep.js";

export interface Walked {
  winner?: CatalogueModel;
  result?: ExecResult;
  /** What the answering call cost. */
  winnerCostMicro: MicroUsdc;
  costMicro: MicroUsdc;
  latencyMs: number;
  attempts: ModelAttempt[];
  errors: string[];
  /** Paid calls must stop for this decision. */
  stop?: "budget" | "balance" | "auth" | "invalid" | "session";
}


export async function walk(run: DecisionRun, order: CatalogueModel[], exec: Executor, chargeBase: string, symbols: number): Promise<Walked> {
  const { svc, rt } = run;
  const walked: Walked = { costMicro: 0, winnerCostMicro: 0, latencyMs: 0, attempts: [], errors: [] };
  // The ceiling holds for the whole decision (a batch: per symbol it covers), payments a crashed
  // first run made included, however many models fail: a hostile gateway cannot drain the chain.
  const ceiling = rt.budget.caps.maxPerDecisionMicro * symbols;
  const paidBefore = symbols > 1 ? 0 : run.costMicro;
  const merge = (w: Walked): Walked => {
    run.attempts.push(...w.attempts);
    run.errors.push(...w.errors);
    return w;
  };
  // After a paid model's invalid reply, only so many more paid models (INVALID_REPLY_RETRIES): a
  // gateway whose every reply is bad must not be paid by the whole chain on every decision.
  let paidLeftAfterInvalid: number | undefined;
  // Paid calls stopped (budget, balance, auth, invalid replies): a free local model later in the
  // chain is still asked, since asking it costs nothing.
  let paidStopped = false;
  const freeAfter = (m: CatalogueModel) => order.slice(order.indexOf(m) + 1).some((x) => x.free && x.offered !== false);
  for (const m of order) {
    if (paidStopped && !m.free) continue;
    if (m.offered === false) {
      const why = "not in the router's catalogue now";
      walked.attempts.push({ model: m.id, ok: false, latencyMs: 0, costMicro: 0, failure: why, skipped: true });
      walked.errors.push(`${m.id}: skipped, ${why}`);
      continue;
    }
    if (!m.free && paidLeftAfterInvalid !== undefined && paidLeftAfterInvalid <= 0) {
      walked.errors.push(`${m.id}: not asked, INVALID_REPLY_RETRIES (${rt.policy.paidAfterInvalid}) more paid models were asked after an invalid reply`);
      walked.stop = "invalid";
      if (!freeAfter(m)) return merge(walked);
      paidStopped = true;
      continue;
    }
    const gate = await rt.breaker.allow(m.id, svc.clock());
    if (!gate.call) {
      const until = gate.until ? ` until ${new Date(gate.until).toISOString().slice(11, 19)} UTC` : "";
      const why = gate.as === "open" ? `cooling down${until}` : "being probed by another decision";
      walked.attempts.push({ model: m.id, ok: false, latencyMs: 0, costMicro: 0, failure: why, skipped: true });
      walked.errors.push(`${m.id}: skipped, ${why}`);
      continue;
    }
    for (let attempt = 1; attempt <= 2; attempt++) {
      const chargeId = `${chargeBase}:${m.id}${attempt > 1 ? `:${attempt}` : ""}`;
      const call = await paidCall(run, m, exec, chargeId, symbols, ceiling - paidBefore - walked.costMicro);
      const paid = call.costMicro > 0 || call.facts.paymentSent;
      if (paidLeftAfterInvalid !== undefined && paid) paidLeftAfterInvalid--;
      walked.costMicro += call.costMicro;
      run.costMicro += symbols > 1 ? 0 : call.costMicro;
      walked.latencyMs = call.latencyMs;
      const cls = classify(call.facts);
      walked.attempts.push({
        model: m.id,
        ok: call.result.ok,
        latencyMs: call.latencyMs,
        costMicro: call.costMicro,
        ...(cls ? { failure: cls } : {}),
        ...(symbols > 1 ? { batch: symbols } : {}),
      });
      if (call.result.ok) {
        await rt.breaker.success(m.id);
        await rt.stats.record(m.id, { time: svc.clock(), ok: true, latencyMs: call.latencyMs, costMicro: call.costMicro });
        walked.winner = m;
        walked.result = call.result;
        walked.winnerCostMicro = call.costMicro;
        return merge(walked);
      }
      if (cls === "invalid-reply" && paid && paidLeftAfterInvalid === undefined) paidLeftAfterInvalid = rt.policy.paidAfterInvalid;
      const advice = adviseAfter(cls!, call.facts, attempt);
      const detail = call.facts.guard ? call.guardReason : call.result.error;
      walked.errors.push(`${m.id}: ${cls}${detail ? `, ${detail.slice(0, 160)}` : ""}`);
      let opened = false;
      if (advice.breaker !== "none") {
        await rt.stats.record(m.id, { time: svc.clock(), ok: false, latencyMs: call.latencyMs, costMicro: call.costMicro, failure: cls! });
        opened = await rt.breaker.failure(m.id, svc.clock(), advice.breaker === "cool-down" ? { immediate: true, ...(advice.coolDownMs ? { coolDownMs: advice.coolDownMs } : {}) } : {});
      }
      if (cls === "over-budget" || cls === "over-price") await alertGuard(run, cls, m, call.guardReason ?? "");
      // A free model's refusal (its own server's 401) stops nothing paid: the next model is asked.
      if (advice.stopPaidCalls && !m.free) {
        walked.stop = cls === "over-budget" ? "budget" : cls === "low-balance" ? "balance" : cls === "session-wait" ? "session" : "auth";
        if (!freeAfter(m)) return merge(walked);
        paidStopped = true;
        break;
      }
      if (advice.stopPaidCalls) break;
      if (!advice.retrySameModel || opened) break;
      await sleep(advice.delayMs);
    }
  }
  return merge(walked);
}
