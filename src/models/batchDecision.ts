// Batched decisions: this symbol and every other watched symbol due on the same tier, in one paid
// call. One decision per tier leads the batch (a lock in Redis); the jobs that start with it wait
// for its answers, which reach them through the decision cache, instead of paying their own.
import type { ModelV2 } from "../agent/scriptedModel.js";
import { inputHash, recordModelDecision } from "./recordings.js";
import type { MarketSymbol } from "../domain/types.js";
import { computeSnapshot } from "../indicators/snapshot.js";
import { batchPrompt, parseBatchReply, type BatchContext, type BatchItem } from "./batchPrompt.js";
import type { CatalogueModel, Tier } from "./catalogue.js";
import type { CacheKey } from "./decisionCache.js";
import { assess } from "./selection.js";
import { signalGate } from "./signalGate.js";
import { sleep } from "../sleep.js";
import { estimate, free, lastConfidence, outcome, served, type DecisionRun, type ModelOutcome } from "./decisionRun.js";
import { walk } from "./fallbackWalk.js";
import type { ExecResult } from "./paidCall.js";


export async function batchDecision(run: DecisionRun, order: CatalogueModel[], key: CacheKey, tier: Tier): Promise<ModelOutcome | undefined> {
  const { svc, rt, inputs } = run;
  const leaseMs = Math.max(...order.map((m) => m.timeoutMs)) * 2 + 5_000;
  if (!(await rt.cache.lead(tier, leaseMs))) {
    const deadline = Date.now() + leaseMs;
    while (Date.now() < deadline && (await rt.cache.leading(tier))) await sleep(25);
    const hit = await rt.cache.get(key, svc.clock());
    return hit ? served(run, hit, key, tier) : undefined;
  }
  try {
    const keys: CacheKey[] = [key];
    const items: BatchItem[] = [{ symbol: inputs.symbol, snapshot: inputs.snapshot, ...positionOf(run, inputs.symbol) }];
    for (const symbol of rt.policy.batch.symbols) {
      if (items.length >= rt.policy.batch.maxSymbols) break;
      if (symbol === inputs.symbol) continue;
      const item = await batchItem(run, symbol, tier);
      if (!item) continue;
      const k: CacheKey = { symbol, candleTime: item.snapshot.candleTime, tier, holding: item.position !== undefined };
      if (await rt.cache.get(k, svc.clock())) continue;
      keys.push(k);
      items.push(item);
    }
    if (items.length < 2) return undefined;

    const ctx: BatchContext = { equity: inputs.portfolio.equity, cash: inputs.portfolio.cash, exposurePct: inputs.portfolio.exposurePct, limits: inputs.limits };
    const batchPromptText = batchPrompt(items, ctx).map((m) => m.content).join("\n");
    const walked = await walk(run, order, (model, timeoutMs) => runBatchCall(model, items, ctx, timeoutMs), `${run.req.decisionId}:batch`, items.length);
    // The batch's payments are booked under this decision; its cost is shared out below.
    if (!walked.winner || !walked.result?.verdicts) {
      run.costMicro += walked.costMicro;
      return walked.stop ? { ...(await free(run, walked.stop === "auth" || walked.stop === "invalid" || walked.stop === "session" ? "all-failed" : walked.stop, `paid calls stopped (${walked.stop})`)), tier } : undefined;
    }
    const share = Math.round(walked.costMicro / items.length);
    const singleCall = estimate(run, walked.winner);
    const now = svc.clock();
    for (const [i, item] of items.entries()) {
      const verdict = walked.result.verdicts.get(item.symbol);
      if (!verdict?.ok) continue;
      // A batched answer is recorded by its batch prompt and symbol: that is what the model was shown.
      if (rt.recordings) await recordModelDecision(rt.recordings, { inputHash: inputHash(`${batchPromptText}\u0000${item.symbol}`), model: walked.winner.id, answer: verdict.decision, priceMicro: share, recordedAt: now });
      await rt.cache.put(keys[i]!, { decision: verdict.decision, model: walked.winner.id, costMicro: share, singleCallMicro: singleCall, origin: "batch" }, rt.policy.cacheTtlMs, now);
    }
    const mine = walked.result.verdicts.get(inputs.symbol);
    if (!mine?.ok) {
      // This symbol's answer was bad: it pays its share and asks on its own.
      run.costMicro += share;
      run.errors.push(`${walked.winner.id}: ${mine?.error ?? "no answer"} (batched)`);
      return undefined;
    }
    await rt.cache.firstServe(key);
    await rt.journal.answered(run.req.decisionId, mine.decision, walked.winner.id);
    run.costMicro += share;
    return outcome(run, { decision: mine.decision, model: walked.winner.id, latencyMs: walked.latencyMs, tier, saver: { kind: "batch", savedMicro: Math.max(0, singleCall - share) } });
  } finally {
    await rt.cache.unlead(tier);
  }
}

function positionOf(run: DecisionRun, symbol: MarketSymbol): { position?: BatchItem["position"] } {
  const p = run.inputs.portfolio.positions.find((x) => x.symbol === symbol);
  return p ? { position: p } : {};
}

/** Another symbol for the batch, if it is due on the same tier and would pay for a model. */
async function batchItem(run: DecisionRun, symbol: MarketSymbol, tier: Tier): Promise<BatchItem | undefined> {
  const { svc, rt } = run;
  let snapshot;
  try {
    snapshot = computeSnapshot(symbol, await svc.market.closedCandles(symbol, 200));
  } catch {
    return undefined;
  }
  const { position } = positionOf(run, symbol);
  const holding = position !== undefined;
  const theirs = run.pinned ? tier : assess({ trigger: "schedule", snapshot, holding, ...lastConfidence(run, symbol) }).tier;
  if (theirs !== tier) return undefined;
  if (rt.policy.gate.enabled && !signalGate(snapshot, holding, rt.policy.gate.minScore).pay) return undefined;
  return { symbol, snapshot, ...(position ? { position } : {}) };
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
