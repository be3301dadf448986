// The state one model decision carries while it walks the models, and the small steps every part
// of that walk shares: the expected price of a call, the free answer, and a cached answer served.
import type { DecisionInputs, TradingAgent } from "../agent/tradingAgent.js";
import type { DecideRequest } from "../decision/request.js";
import type { Decision, MicroUsdc } from "../domain/types.js";
import type { DecisionRecord, Ledger, ModelAttempt } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import type { BalanceManager } from "../payments/balanceManager.js";
import type { CatalogueModel, Tier } from "./catalogue.js";
import type { CacheKey, CachedDecision } from "./decisionCache.js";
import type { RouterRuntime } from "./routerRuntime.js";
import type { AgentState } from "../state/agentState.js";
import type { ModelLayer } from "./modelLayer.js";

/** What the model half of a decision uses. */
export interface ModelDecisionServices {
  agent: TradingAgent;
  models: ModelLayer;
  balance: BalanceManager;
  ledger: Ledger;
  state: AgentState;
  market: MarketData;
  clock: () => number;
}

export interface ModelOutcome {
  decision?: Decision;
  /** Who decided: a router model, the offline engine, or "hold". */
  model: string;
  /** What this decision paid (its share, for a batched call). */
  costMicro: MicroUsdc;
  latencyMs: number;
  attempts: ModelAttempt[];
  /** One line per model that failed or was skipped. */
  errors: string[];
  tier?: Tier;
  saver?: { kind: "cache" | "batch" | "gate"; savedMicro: MicroUsdc };
  freeBecause?: DecisionRecord["freeBecause"];
}

/** The fields a ModelOutcome adds to a decision record. */
export function modelFields(o: ModelOutcome): Partial<DecisionRecord> {
  return {
    ...(o.attempts.length ? { attempts: o.attempts } : {}),
    ...(o.tier ? { tier: o.tier } : {}),
    ...(o.saver ? { saver: o.saver.kind, savedMicro: o.saver.savedMicro } : {}),
    ...(o.freeBecause ? { freeBecause: o.freeBecause } : {}),
  };
}

/** One router decision in progress. */
export interface DecisionRun {
  svc: ModelDecisionServices;
  layer: ModelLayer;
  rt: RouterRuntime;
  req: DecideRequest;
  inputs: DecisionInputs;
  pinned: string | undefined;
  /** The decision's symbol is held now. */
  holding: boolean;
  attempts: ModelAttempt[];
  errors: string[];
  /** What this decision has paid so far. */
  costMicro: MicroUsdc;
  /** What the gateway last asked per model. */
  learnedPrices: Record<string, MicroUsdc>;
  recent: DecisionRecord[];
}

export function newRun(svc: ModelDecisionServices, layer: ModelLayer, rt: RouterRuntime, req: DecideRequest, inputs: DecisionInputs, pinned: string | undefined): DecisionRun {
  return {
    svc,
    layer,
    rt,
    req,
    inputs,
    pinned,
    holding: inputs.portfolio.positions.some((p) => p.symbol === inputs.symbol),
    attempts: [],
    errors: [],
    costMicro: 0,
    learnedPrices: {},
    recent: [],
  };
}

/** Expected price of one call: what the gateway last asked for it, else its list price. */
export function estimate(run: DecisionRun, m: CatalogueModel): MicroUsdc {
  return run.learnedPrices[m.id] ?? m.listPriceMicro;
}

export function outcome(run: DecisionRun, o: Pick<ModelOutcome, "decision" | "model" | "latencyMs"> & Partial<ModelOutcome>): ModelOutcome {
  return { costMicro: run.costMicro, attempts: run.attempts, errors: run.errors, ...o };
}

/** The last confidence the model gave this symbol, for the tier choice. */
export function lastConfidence(run: DecisionRun, symbol: string): { lastConfidence?: number } {
  const last = run.recent.find((r) => r.symbol === symbol && r.id !== run.req.decisionId && r.confidence !== undefined);
  return last?.confidence !== undefined ? { lastConfidence: last.confidence } : {};
}

export async function served(run: DecisionRun, hit: CachedDecision, key: CacheKey, tier: Tier): Promise<ModelOutcome> {
  // A batched answer is paid for once, in shares: the first decision served from it takes its share.
  const share = hit.origin === "batch" && (await run.rt.cache.firstServe(key));
  const costMicro = share ? hit.costMicro : 0;
  const savedMicro = Math.max(0, hit.singleCallMicro - costMicro);
  await run.rt.journal.answered(run.req.decisionId, hit.decision, hit.model);
  return { decision: hit.decision, model: hit.model, costMicro, latencyMs: 0, attempts: [], errors: [], tier, saver: { kind: share ? "batch" : "cache", savedMicro } };
}

/** The configured free behaviour: the offline engine, or hold. */
export async function free(run: DecisionRun, because: ModelOutcome["freeBecause"], why: string): Promise<ModelOutcome> {
  const { svc, inputs } = run;
  if (run.rt.policy.fallback === "hold") {
    const decision: Decision = { symbol: inputs.symbol, action: "hold", sizePct: 0, confidence: 0, reasons: [`No model decided (${why.slice(0, 200)}): holding.`] };
    return outcome(run, { decision, model: "hold", latencyMs: 0, ...(because ? { freeBecause: because } : {}) });
  }
  const t0 = performance.now();
  const id = run.layer.freeId;
  const out = await svc.agent.decideWithout(inputs, id, (i) => run.layer.freeDecision(i));
  const latencyMs = Math.round(performance.now() - t0);
  if (!out.ok) run.errors.push(`${id}: ${out.error}`);
  return outcome(run, { ...(out.ok ? { decision: out.decision } : {}), model: id, latencyMs, ...(because ? { freeBecause: because } : {}) });
}
