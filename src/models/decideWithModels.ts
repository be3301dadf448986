// The model half of a decision: whether to pay at all (the savers), which tier of model to ask,
// and the fallback chain. The money around each call is in paidCall.ts, the chain in
// fallbackWalk.ts, batching in batchDecision.ts. runDecision (src/pipeline/decide.ts) calls this
// and takes the risk and order half from there.
import type { DecisionInputs } from "../agent/tradingAgent.js";
import { inputHash, recordModelDecision } from "./recordings.js";
import type { DecideRequest } from "../decision/request.js";
import type { DecisionRecord } from "../ledger/ledger.js";
import type { CacheKey } from "./decisionCache.js";
import { assess, orderForTier } from "./selection.js";
import { signalGate } from "./signalGate.js";
import { batchDecision } from "./batchDecision.js";
import { estimate, free, lastConfidence, newRun, outcome, served, type DecisionRun, type ModelDecisionServices, type ModelOutcome } from "./decisionRun.js";
import { walk } from "./fallbackWalk.js";
import type { Executor } from "./paidCall.js";

export { modelFields, type ModelDecisionServices, type ModelOutcome } from "./decisionRun.js";

/** What the caller read already, with its own reads in the same round trips. */
export interface ReadBefore {
  /** The ledger's latest decisions, newest first. */
  recent: DecisionRecord[];
  /** The model chosen with /model, if any. */
  chosenModel: string | undefined;
}

export async function decideWithModels(svc: ModelDecisionServices, req: DecideRequest, inputs: DecisionInputs, read: ReadBefore): Promise<ModelOutcome> {
  const layer = svc.models;
  const rt = layer.runtime;
  const pinned = read.chosenModel;
  const pinnedEntry = pinned ? layer.find(pinned) : undefined;
  if (!layer.routerEnabled || !rt || pinnedEntry?.kind === "offline") return offlineOnly(svc, inputs);
  return routerDecision(newRun(svc, layer, rt, req, inputs, pinnedEntry?.id), read.recent);
}

async function offlineOnly(svc: ModelDecisionServices, inputs: DecisionInputs): Promise<ModelOutcome> {
  const t0 = performance.now();
  const id = svc.models.freeId;
  const out = await svc.agent.decideWithout(inputs, id, (i) => svc.models.freeDecision(i));
  const latencyMs = Math.round(performance.now() - t0);
  return out.ok
    ? { decision: out.decision, model: id, costMicro: 0, latencyMs, attempts: [], errors: [] }
    : { model: id, costMicro: 0, latencyMs, attempts: [], errors: [`${id}: ${out.error}`] };
}

async function routerDecision(run: DecisionRun, recent: DecisionRecord[]): Promise<ModelOutcome> {
  const { svc, rt, req, inputs } = run;
  run.recent = recent;
  await run.layer.router?.live?.sync();
  const models = run.layer.routerCatalogue(run.pinned);
  const assessment = assess({ trigger: req.trigger, snapshot: inputs.snapshot, holding: run.holding, ...lastConfidence(run, inputs.symbol) });
  const pinnedModel = run.pinned ? models.find((m) => m.id === run.pinned) : undefined;
  const tier = pinnedModel?.tier ?? assessment.tier;
  const order = orderForTier(models, tier, pinnedModel?.id);
  const key: CacheKey = { symbol: inputs.symbol, candleTime: inputs.snapshot.candleTime, tier, holding: run.holding };

  // Three reads that do not depend on each other, in one round trip; the cache is looked at only
  // when no earlier try of this decision left anything in the journal.
  const [journal, learnedPrices, cached] = await Promise.all([
    rt.journal.read(req.decisionId),
    rt.stats.lastPrices(),
    rt.policy.cacheTtlMs > 0 ? rt.cache.get(key, svc.clock()) : undefined,
  ]);
  run.learnedPrices = learnedPrices;
  // A retried job: reuse a paid answer, book a payment a crash left unbooked, never pay twice.
  if (journal) {
    for (const p of journal.unsettled) {
      await svc.balance.trackCost(p.chargeId, p.model, p.micro, p.time, { marks: [rt.journal.bookedMark(req.decisionId, p.chargeId)] });
      run.costMicro += p.micro;
    }
    if (journal.answer) return outcome(run, { decision: journal.answer.decision, model: journal.answer.model, latencyMs: 0 });
    if (journal.calls > 0) {
      return free(run, "interrupted", "this decision was interrupted while a model was being asked; it is not asked (or paid) again");
    }
  }

  // Saver 1: a paid decision on this very candle, tier and position, still fresh.
  if (cached) return served(run, cached, key, tier);

  // Saver 2: a scheduled decision with nothing to decide pays for no model.
  if (rt.policy.gate.enabled && req.trigger === "schedule") {
    const verdict = signalGate(inputs.snapshot, run.holding, rt.policy.gate.minScore);
    if (!verdict.pay) {
      const out = await free(run, undefined, `signal gate: ${verdict.why}`);
      return { ...out, tier, saver: { kind: "gate", savedMicro: estimate(run, order[0]!) } };
    }
  }

  // Saver 3: every due symbol of the same tier in one paid call.
  if (rt.policy.batch.enabled && req.trigger === "schedule" && rt.policy.cacheTtlMs > 0) {
    const batched = await batchDecision(run, order, key, tier);
    if (batched) return batched;
  }

  const single: Executor = async (model, timeoutMs) => {
    const out = await svc.agent.decide(inputs, model, timeoutMs);
    return out.ok ? { ok: true, decision: out.decision, replied: true } : { ok: false, error: out.error, replied: /^invalid (reply|decision)/.test(out.error) };
  };
  const walked = await walk(run, order, single, req.decisionId, 1);
  if (walked.winner && walked.result?.decision) {
    const decision = walked.result.decision;
    await rt.journal.answered(req.decisionId, decision, walked.winner.id);
    // Recorded once, by what the model was shown, so a backtest can replay it for free.
    if (rt.recordings) await recordModelDecision(rt.recordings, { inputHash: inputHash(inputs), model: walked.winner.id, answer: decision, priceMicro: walked.winnerCostMicro, recordedAt: svc.clock() });
    await rt.pauseAt?.("answered");
    await rt.cache.put(key, { decision, model: walked.winner.id, costMicro: walked.winnerCostMicro, singleCallMicro: walked.winnerCostMicro || estimate(run, walked.winner), origin: "call" }, rt.policy.cacheTtlMs, svc.clock());
    await rt.cache.firstServe(key);
    return outcome(run, { decision, model: walked.winner.id, latencyMs: walked.latencyMs, tier });
  }
  const why = walked.stop === "budget" ? "budget" : walked.stop === "balance" ? "balance" : "all-failed";
  const out = await free(run, why, walked.stop ? `paid calls stopped (${walked.stop})` : "no router model gave a valid decision");
  return { ...out, tier };
}
