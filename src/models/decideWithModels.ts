// The model half of a decision: which model to ask, whether to pay at all, the fallback chain with
// its timeouts, retries and breakers, the spending guardrails around every payment, and the cost
// savers. runDecision (src/pipeline/decide.ts) calls it and takes the risk and order half from there.
import type { ModelV2 } from "../agent/scriptedModel.js";
import type { DecisionInputs } from "../agent/tradingAgent.js";
import type { ValidationResult } from "../decision/schema.js";
import { fromMicro, type Decision, type MarketSymbol, type MicroUsdc } from "../domain/types.js";
import { OFFLINE_MODEL_ID } from "../engine/offlineEngine.js";
import { computeSnapshot } from "../indicators/snapshot.js";
import type { DecisionRecord, ModelAttempt } from "../ledger/ledger.js";
import type { DecideRequest, DecisionServices } from "../pipeline/decide.js";
import { batchPrompt, parseBatchReply, type BatchContext, type BatchItem } from "../router/batch.js";
import type { CatalogueModel, Tier } from "../router/catalogue.js";
import type { CacheKey, CachedDecision } from "../router/decisionCache.js";
import { adviseAfter, classify, type CallFacts, type FailureClass } from "../router/failures.js";
import { assess, orderForTier } from "../router/selection.js";
import { signalGate } from "../router/signalGate.js";
import type { ModelLayer } from "./modelLayer.js";
import { CallMeter, type GuardVerdict } from "./paymentMeter.js";
import type { RouterRuntime } from "./routerRuntime.js";

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

type Services = Pick<DecisionServices, "agent" | "models" | "balance" | "ledger" | "state" | "market" | "clock">;

interface ExecResult {
  ok: boolean;
  decision?: Decision;
  error?: string;
  /** The model's reply arrived (so a failure is the reply's fault). */
  replied: boolean;
  verdicts?: Map<MarketSymbol, ValidationResult>;
}
type Executor = (model: ModelV2, timeoutMs: number) => Promise<ExecResult>;

interface Walked {
  winner?: CatalogueModel;
  result?: ExecResult;
  /** What the answering call cost. */
  winnerCostMicro: MicroUsdc;
  costMicro: MicroUsdc;
  latencyMs: number;
  attempts: ModelAttempt[];
  errors: string[];
  /** Paid calls must stop for this decision. */
  stop?: "budget" | "balance" | "auth";
}

const usd = (m: MicroUsdc, d = 4) => `$${fromMicro(m).toFixed(d)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function decideWithModels(svc: Services, req: DecideRequest, inputs: DecisionInputs): Promise<ModelOutcome> {
  const layer = svc.models;
  const rt = layer.runtime;
  const pinned = await svc.state.chosenModel();
  const pinnedEntry = pinned ? layer.find(pinned) : undefined;
  if (!layer.routerEnabled || !rt || pinnedEntry?.kind === "offline") return offlineOnly(svc, inputs);
  return new RouterDecision(svc, layer, rt, req, inputs, pinnedEntry?.id).run();
}

async function offlineOnly(svc: Services, inputs: DecisionInputs): Promise<ModelOutcome> {
  const t0 = performance.now();
  const out = await svc.agent.decide(inputs, svc.models.languageModel(svc.models.offlineEntry, inputs));
  const latencyMs = Math.round(performance.now() - t0);
  return out.ok
    ? { decision: out.decision, model: OFFLINE_MODEL_ID, costMicro: 0, latencyMs, attempts: [], errors: [] }
    : { model: OFFLINE_MODEL_ID, costMicro: 0, latencyMs, attempts: [], errors: [`${OFFLINE_MODEL_ID}: ${out.error}`] };
}

class RouterDecision {
  private readonly attempts: ModelAttempt[] = [];
  private readonly errors: string[] = [];
  private costMicro = 0;
  private readonly holding: boolean;
  private learnedPrices: Record<string, MicroUsdc> = {};
  private recent: DecisionRecord[] = [];

  constructor(
    private readonly svc: Services,
    private readonly layer: ModelLayer,
    private readonly rt: RouterRuntime,
    private readonly req: DecideRequest,
    private readonly inputs: DecisionInputs,
    private readonly pinned: string | undefined,
  ) {
    this.holding = inputs.portfolio.positions.some((p) => p.symbol === inputs.symbol);
  }

  async run(): Promise<ModelOutcome> {
    const { svc, rt, req, inputs } = this;
    // A retried job: reuse a paid answer, book a payment a crash left unbooked, never pay twice.
    const journal = await rt.journal.read(req.decisionId);
    if (journal) {
      for (const p of journal.unsettled) {
        await svc.balance.trackCost(p.chargeId, p.model, p.micro, p.time);
        await rt.journal.settled(req.decisionId, p.chargeId);
        this.costMicro += p.micro;
      }
      if (journal.answer) return this.outcome({ decision: journal.answer.decision, model: journal.answer.model, latencyMs: 0 });
      if (journal.calls > 0) {
        return this.free("interrupted", "this decision was interrupted while a model was being asked; it is not asked (or paid) again");
      }
    }

    [this.learnedPrices, this.recent] = await Promise.all([rt.stats.lastPrices(), svc.ledger.recent(20)]);
    const models = this.layer.routerCatalogue();
    const assessment = assess({
      trigger: req.trigger,
      snapshot: inputs.snapshot,
      holding: this.holding,
      ...this.lastConfidence(inputs.symbol),
    });
    const pinnedModel = this.pinned ? models.find((m) => m.id === this.pinned) : undefined;
    const tier = pinnedModel?.tier ?? assessment.tier;
    const order = orderForTier(models, tier, pinnedModel?.id);
    const key: CacheKey = { symbol: inputs.symbol, candleTime: inputs.snapshot.candleTime, tier, holding: this.holding };

    // Saver 1: a paid decision on this very candle, tier and position, still fresh.
    if (rt.policy.cacheTtlMs > 0) {
      const hit = await rt.cache.get(key, svc.clock());
      if (hit) return this.served(hit, key, tier);
    }

    // Saver 2: a scheduled decision with nothing to decide pays for no model.
    if (rt.policy.gate.enabled && req.trigger === "schedule") {
      const verdict = signalGate(inputs.snapshot, this.holding, rt.policy.gate.minScore);
      if (!verdict.pay) {
        const out = await this.free(undefined, `signal gate: ${verdict.why}`);
        return { ...out, tier, saver: { kind: "gate", savedMicro: this.estimate(order[0]!) } };
      }
    }

    // Saver 3: every due symbol of the same tier in one paid call.
    if (rt.policy.batch.enabled && req.trigger === "schedule" && rt.policy.cacheTtlMs > 0) {
      const batched = await this.batch(order, key, tier);
      if (batched) return batched;
    }

    const walked = await this.walk(order, (model, timeoutMs) => this.single(model, timeoutMs), req.decisionId, 1);
    if (walked.winner && walked.result?.decision) {
      const decision = walked.result.decision;
      await rt.journal.answered(req.decisionId, decision, walked.winner.id);
      await rt.cache.put(key, { decision, model: walked.winner.id, costMicro: walked.winnerCostMicro, singleCallMicro: walked.winnerCostMicro || this.estimate(walked.winner), origin: "call" }, rt.policy.cacheTtlMs, svc.clock());
      await rt.cache.firstServe(key);
      return this.outcome({ decision, model: walked.winner.id, latencyMs: walked.latencyMs, tier });
    }
    const why = walked.stop === "budget" ? "budget" : walked.stop === "balance" ? "balance" : "all-failed";
    const out = await this.free(why, walked.stop ? `paid calls stopped (${walked.stop})` : "no router model gave a valid decision");
    return { ...out, tier };
  }

  private lastConfidence(symbol: MarketSymbol): { lastConfidence?: number } {
    const last = this.recent.find((r) => r.symbol === symbol && r.id !== this.req.decisionId && r.confidence !== undefined);
    return last?.confidence !== undefined ? { lastConfidence: last.confidence } : {};
  }

  /** Expected price of one call: what the gateway last asked for it, else its list price. */
  private estimate(m: CatalogueModel): MicroUsdc {
    return this.learnedPrices[m.id] ?? m.listPriceMicro;
  }

  private outcome(o: Pick<ModelOutcome, "decision" | "model" | "latencyMs"> & Partial<ModelOutcome>): ModelOutcome {
    return { costMicro: this.costMicro, attempts: this.attempts, errors: this.errors, ...o };
  }

  private async served(hit: CachedDecision, key: CacheKey, tier: Tier): Promise<ModelOutcome> {
    // A batched answer is paid for once, in shares: the first decision served from it takes its share.
    const share = hit.origin === "batch" && (await this.rt.cache.firstServe(key));
    const costMicro = share ? hit.costMicro : 0;
    const savedMicro = Math.max(0, hit.singleCallMicro - costMicro);
    await this.rt.journal.answered(this.req.decisionId, hit.decision, hit.model);
    return {
      decision: hit.decision,
      model: hit.model,
      costMicro,
      latencyMs: 0,
      attempts: [],
      errors: [],
      tier,
      saver: { kind: share ? "batch" : "cache", savedMicro },
    };
  }

  /** The configured free behaviour: the offline engine, or hold. */
  private async free(because: ModelOutcome["freeBecause"], why: string): Promise<ModelOutcome> {
    const { svc, inputs } = this;
    if (this.rt.policy.fallback === "hold") {
      const decision: Decision = { symbol: inputs.symbol, action: "hold", sizePct: 0, confidence: 0, reasons: [`No model decided (${why.slice(0, 200)}): holding.`] };
      return this.outcome({ decision, model: "hold", latencyMs: 0, ...(because ? { freeBecause: because } : {}) });
    }
    const t0 = performance.now();
    const out = await svc.agent.decide(inputs, this.layer.languageModel(this.layer.offlineEntry, inputs));
    const latencyMs = Math.round(performance.now() - t0);
    if (!out.ok) this.errors.push(`${OFFLINE_MODEL_ID}: ${out.error}`);
    return this.outcome({ ...(out.ok ? { decision: out.decision } : {}), model: OFFLINE_MODEL_ID, latencyMs, ...(because ? { freeBecause: because } : {}) });
  }

  private single: Executor = async (model, timeoutMs) => {
    const out = await this.svc.agent.decide(this.inputs, model, timeoutMs);
    return out.ok ? { ok: true, decision: out.decision, replied: true } : { ok: false, error: out.error, replied: /^invalid (reply|decision)/.test(out.error) };
  };

  /**
   * Walks the models in order. Each is skipped while its breaker is open; each call reserves its
   * expected price, pays at most the approved quote, and books what it actually paid. A failure is
   * retried on the same model only when the policy allows (never after a payment).
   */
  private async walk(order: CatalogueModel[], exec: Executor, chargeBase: string, symbols: number): Promise<Walked> {
    const { svc, rt } = this;
    const walked: Walked = { costMicro: 0, winnerCostMicro: 0, latencyMs: 0, attempts: [], errors: [] };
    for (const m of order) {
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
        const call = await this.callOnce(m, exec, chargeId, symbols);
        walked.costMicro += call.costMicro;
        this.costMicro += symbols > 1 ? 0 : call.costMicro;
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
          return this.merge(walked);
        }
        const advice = adviseAfter(cls!, call.facts, attempt);
        const detail = call.facts.guard ? call.guardReason : call.result.error;
        walked.errors.push(`${m.id}: ${cls}${detail ? `, ${detail.slice(0, 160)}` : ""}`);
        let opened = false;
        if (advice.breaker !== "none") {
          await rt.stats.record(m.id, { time: svc.clock(), ok: false, latencyMs: call.latencyMs, costMicro: call.costMicro, failure: cls! });
          opened = await rt.breaker.failure(m.id, svc.clock(), advice.breaker === "cool-down" ? { immediate: true, ...(advice.coolDownMs ? { coolDownMs: advice.coolDownMs } : {}) } : {});
        }
        if (cls === "over-budget" || cls === "over-price") await this.alertGuard(cls, m, call.guardReason ?? "");
        if (advice.stopPaidCalls) {
          walked.stop = cls === "over-budget" ? "budget" : cls === "low-balance" ? "balance" : "auth";
          return this.merge(walked);
        }
        if (!advice.retrySameModel || opened) break;
        await sleep(advice.delayMs);
      }
    }
    return this.merge(walked);
  }

  private merge(w: Walked): Walked {
    this.attempts.push(...w.attempts);
    this.errors.push(...w.errors);
    return w;
  }

  /** One call to one model, with its reservation, its metered payment and its booking. */
  private async callOnce(
    m: CatalogueModel,
    exec: Executor,
    chargeId: string,
    symbols: number,
  ): Promise<{ result: ExecResult; facts: CallFacts; costMicro: MicroUsdc; latencyMs: number; guardReason?: string }> {
    const { svc, rt, layer, req } = this;
    const router = layer.router!;
    const estimate = this.estimate(m);
    const caps = rt.budget.caps;
    const leaseMs = m.timeoutMs + 60_000;
    const refused = (guard: "price" | "budget" | "balance", reason: string) => ({
      result: { ok: false, replied: false, error: reason },
      facts: { ok: false, timedOut: false, paymentSent: false, paymentRefused: false, guard },
      costMicro: 0,
      latencyMs: 0,
      guardReason: reason,
    });

    // An account-billed call names its cost only afterwards: hold the most one call may cost.
    const hold = router.paysPerCall ? Math.min(estimate, caps.maxPerCallMicro) : caps.maxPerCallMicro;
    if (router.paysPerCall && estimate > caps.maxPerCallMicro) {
      return refused("price", `${m.id} costs about ${usd(estimate)} per call, above MAX_PRICE_PER_CALL_USDC ${usd(caps.maxPerCallMicro)}`);
    }
    const balance = await svc.balance.canMakeDecision(hold);
    if (!balance.ok) return refused("balance", balance.reason);
    // Near the cap, wait a while for calls in flight to settle, but well inside this call's deadline.
    const budgetWaitMs = Math.min(m.timeoutMs / 3, 10_000);
    const reserved = await rt.budget.reserveWaiting(chargeId, hold, svc.clock(), leaseMs, budgetWaitMs);
    if (!reserved.ok) return refused(reserved.cap === "per-call" ? "price" : "budget", reserved.reason);
    const reservation = reserved.reservation;

    const meter = new CallMeter(
      {
        approve: async (micro): Promise<GuardVerdict> => {
          if (symbols === 1) await rt.stats.rememberPrice(m.id, micro);
          if (micro > caps.maxPerCallMicro) {
            return { ok: false, guard: "price", reason: `${m.id} asked ${usd(micro)}, above MAX_PRICE_PER_CALL_USDC ${usd(caps.maxPerCallMicro)}` };
          }
          const bal = await svc.balance.canMakeDecision(micro);
          if (!bal.ok) return { ok: false, guard: "balance", reason: bal.reason };
          const resized = await rt.budget.resizeWaiting(reservation, micro, svc.clock(), leaseMs, budgetWaitMs);
          if (!resized.ok) return { ok: false, guard: resized.cap === "per-call" ? "price" : "budget", reason: resized.reason };
          return { ok: true };
        },
        beforeSend: (micro) => rt.journal.paymentSent(req.decisionId, { chargeId, model: m.id, micro, time: svc.clock() }),
      },
      { ...(router.network ? { network: router.network } : {}), ...(router.payer ? { payer: router.payer } : {}) },
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
      cost = meter.sentMicro;
      if (cost === 0 && meter.reportedMicro !== undefined) cost = meter.reportedMicro;
      else if (cost === 0 && !router.paysPerCall && meter.answered) {
        cost = estimate;
        this.errors.push(`${m.id}: the gateway reported no cost; booked the estimate ${usd(estimate)}`);
      }
      if (cost > 0) {
        if (meter.sentMicro === 0) await rt.journal.paymentSent(req.decisionId, { chargeId, model: m.id, micro: cost, time: svc.clock() });
        await svc.balance.trackCost(chargeId, m.id, cost, svc.clock());
        await rt.journal.settled(req.decisionId, chargeId);
        if (!router.paysPerCall && symbols === 1 && meter.reportedMicro !== undefined) await rt.stats.rememberPrice(m.id, meter.reportedMicro);
        if (cost > reservation.micro) this.errors.push(`${m.id}: the gateway billed ${usd(cost)}, more than the ${usd(reservation.micro)} held for the call`);
      }
      await rt.budget.release(reservation);
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

  private async alertGuard(cls: FailureClass, m: CatalogueModel, reason: string): Promise<void> {
    const { rt, svc } = this;
    const now = svc.clock();
    const free = rt.policy.fallback === "hold" ? "hold" : "the offline engine";
    if (cls === "over-price") {
      if (await rt.budget.firstAlert("per-call", now)) {
        await rt.alert(`Model price above the cap: ${reason}. It is skipped while that holds; the next model in the chain answers. Raise MAX_PRICE_PER_CALL_USDC to allow it.`);
      }
      return;
    }
    const status = await rt.budget.status(now);
    const monthly = status.spentMonthMicro + status.reservedMonthMicro + this.estimate(m) > status.caps.monthlyMicro;
    if (await rt.budget.firstAlert(monthly ? "monthly" : "daily", now)) {
      const [spent, cap, until, key] = monthly
        ? [status.spentMonthMicro, status.caps.monthlyMicro, "the start of next month (UTC)", "MONTHLY_BUDGET_USDC"]
        : [status.spentTodayMicro, status.caps.dailyMicro, "midnight UTC", "DAILY_BUDGET_USDC"];
      await rt.alert(
        `Model budget reached: ${usd(spent)} of the ${monthly ? "monthly" : "daily"} ${usd(cap, 2)} is spent. No paid model calls until ${until}; decisions use ${free} meanwhile. Raise ${key} to change it.`,
      );
    }
  }

  /**
   * Batched decisions: this symbol and every other watched symbol due on the same tier, in one
   * paid call. One decision per tier leads the batch (a lock in Redis); the jobs that start with it
   * wait for its answers, which reach them through the decision cache, instead of paying their own.
   */
  private async batch(order: CatalogueModel[], key: CacheKey, tier: Tier): Promise<ModelOutcome | undefined> {
    const { svc, rt, inputs } = this;
    const leaseMs = Math.max(...order.map((m) => m.timeoutMs)) * 2 + 5_000;
    if (!(await rt.cache.lead(tier, leaseMs))) {
      const deadline = Date.now() + leaseMs;
      while (Date.now() < deadline && (await rt.cache.leading(tier))) await sleep(25);
      const hit = await rt.cache.get(key, svc.clock());
      return hit ? this.served(hit, key, tier) : undefined;
    }
    try {
      const keys: CacheKey[] = [key];
      const items: BatchItem[] = [{ symbol: inputs.symbol, snapshot: inputs.snapshot, ...this.positionOf(inputs.symbol) }];
      for (const symbol of rt.policy.batch.symbols) {
        if (items.length >= rt.policy.batch.maxSymbols) break;
        if (symbol === inputs.symbol) continue;
        const item = await this.batchItem(symbol, tier);
        if (!item) continue;
        const k: CacheKey = { symbol, candleTime: item.snapshot.candleTime, tier, holding: item.position !== undefined };
        if (await rt.cache.get(k, svc.clock())) continue;
        keys.push(k);
        items.push(item);
      }
      if (items.length < 2) return undefined;

      const ctx: BatchContext = { equity: inputs.portfolio.equity, cash: inputs.portfolio.cash, exposurePct: inputs.portfolio.exposurePct, limits: inputs.limits };
      const walked = await this.walk(order, (model, timeoutMs) => runBatchCall(model, items, ctx, timeoutMs), `${this.req.decisionId}:batch`, items.length);
      // The batch's payments are booked under this decision; its cost is shared out below.
      if (!walked.winner || !walked.result?.verdicts) {
        this.costMicro += walked.costMicro;
        return walked.stop ? { ...(await this.free(walked.stop === "auth" ? "all-failed" : walked.stop, `paid calls stopped (${walked.stop})`)), tier } : undefined;
      }
      const share = Math.round(walked.costMicro / items.length);
      const singleCall = this.estimate(walked.winner);
      const now = svc.clock();
      for (const [i, item] of items.entries()) {
        const verdict = walked.result.verdicts.get(item.symbol);
        if (!verdict?.ok) continue;
        await rt.cache.put(keys[i]!, { decision: verdict.decision, model: walked.winner.id, costMicro: share, singleCallMicro: singleCall, origin: "batch" }, rt.policy.cacheTtlMs, now);
      }
      const mine = walked.result.verdicts.get(inputs.symbol);
      if (!mine?.ok) {
        // This symbol's answer was bad: it pays its share and asks on its own.
        this.costMicro += share;
        this.errors.push(`${walked.winner.id}: ${mine?.error ?? "no answer"} (batched)`);
        return undefined;
      }
      await rt.cache.firstServe(key);
      await rt.journal.answered(this.req.decisionId, mine.decision, walked.winner.id);
      this.costMicro += share;
      return this.outcome({ decision: mine.decision, model: walked.winner.id, latencyMs: walked.latencyMs, tier, saver: { kind: "batch", savedMicro: Math.max(0, singleCall - share) } });
    } finally {
      await rt.cache.unlead(tier);
    }
  }

  private positionOf(symbol: MarketSymbol): { position?: BatchItem["position"] } {
    const p = this.inputs.portfolio.positions.find((x) => x.symbol === symbol);
    return p ? { position: p } : {};
  }

  /** Another symbol for the batch, if it is due on the same tier and would pay for a model. */
  private async batchItem(symbol: MarketSymbol, tier: Tier): Promise<BatchItem | undefined> {
    const { svc, rt } = this;
    let snapshot;
    try {
      snapshot = computeSnapshot(symbol, await svc.market.closedCandles(symbol, 200));
    } catch {
      return undefined;
    }
    const { position } = this.positionOf(symbol);
    const holding = position !== undefined;
    const theirs = this.pinned ? tier : assess({ trigger: "schedule", snapshot, holding, ...this.lastConfidence(symbol) }).tier;
    if (theirs !== tier) return undefined;
    if (rt.policy.gate.enabled && !signalGate(snapshot, holding, rt.policy.gate.minScore).pay) return undefined;
    return { symbol, snapshot, ...(position ? { position } : {}) };
  }
}

/** One batched call: the prompt straight to the model, the reply parsed and validated per symbol. */
async function runBatchCall(model: ModelV2, items: BatchItem[], ctx: BatchContext, timeoutMs: number): Promise<ExecResult> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const prompt = batchPrompt(items, ctx).map((m) =>
      m.role === "system" ? { role: "system" as const, content: m.content } : { role: "user" as const, content: [{ type: "text" as const, text: m.content }] },
    );
    const { stream } = await model.doStream({ prompt, abortSignal: abort.signal } as Parameters<ModelV2["doStream"]>[0]);
    let text = "";
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.type === "text-delta") text += value.delta;
      if (value.type === "error") throw value.error instanceof Error ? value.error : new Error(String(value.error));
    }
    const verdicts = parseBatchReply(text, items, ctx);
    const good = [...verdicts.values()].filter((v) => v.ok).length;
    if (good === 0) return { ok: false, replied: true, error: `invalid reply: no valid action for any of ${items.length} symbols`, verdicts };
    return { ok: true, replied: true, verdicts };
  } catch (err) {
    return { ok: false, replied: false, error: abort.signal.aborted ? `no decision within ${timeoutMs} ms` : `model call failed: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}
