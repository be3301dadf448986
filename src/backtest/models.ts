// A backtest's model is a price plus a way to decide. The offline engine is free and can be
// asked directly; a paid model is asked through the trading agent (@daydreamsai/core: the same
// contexts, actions and validation as live), over whatever model the route gives: the in-process
// stand-in, a router stand-in on 127.0.0.1, or (only when asked for) the real Dreams Router.
import { InMemoryKeyValueProvider } from "@daydreamsai/core";
import { decisionToAgentReply, scriptedModel, type ModelV2 } from "../agent/scriptedModel.js";
import { TradingAgent, type DecisionInputs } from "../agent/tradingAgent.js";
import { validateDecision } from "../decision/schema.js";
import type { Decision } from "../domain/types.js";
import { decideOffline, OFFLINE_MODEL_ID } from "../engine/offlineEngine.js";
import { inputHash, recordModelDecision, type RecordingStore } from "../models/recordings.js";
import { strategyContext, type StrategyRunner } from "../strategy/runner.js";

/** source: what decided, for the report (e.g. "recording"; "no recording" when a replay had none). */
export type DeciderOutcome = ({ ok: true; decision: Decision; modelCalls: number } | { ok: false; error: string; modelCalls: number }) & { source?: string };

export interface PricedModel {
  id: string;
  /** What one decision costs (USDC), charged whenever the model was called. */
  pricePerCallUsdc: number;
  /**
   * offline: no model call; stand-in: no money moves; router: real calls, real USDC; replay:
   * recorded answers, free; local: real calls to a local model, free; strategy: a strategy file.
   */
  route: "offline" | "stand-in" | "router" | "replay" | "local" | "strategy";
  /** How decisions are made, for the report. */
  path: string;
  /** Give it the closed candles and the time (a strategy file reads them; a model is not shown them). */
  needsCandles?: boolean;
  /** A failed answer is refused and nothing is traded, instead of letting the offline engine decide (a strategy's faults are its own). */
  refuseOnFailure?: boolean;
  decide(inputs: DecisionInputs): Promise<DeciderOutcome>;
  close(): Promise<void>;
}

/**
 * Per-decision prices from the product's design figures (USDC): gpt-4o 0.10, claude-3.5-sonnet
 * 0.05, gemini-2.5-flash 0.02, llama-3.1 on groq 0.01. Other models: COST_PER_DECISION_USDC or
 * --price.
 */
const PRICES: [RegExp, number][] = [
  [/gpt-4o(?!-mini)/i, 0.1],
  [/claude-3[.-]5-sonnet/i, 0.05],
  [/gemini-2\.5-flash/i, 0.02],
  [/llama-3\.1/i, 0.01],
];

export function priceOf(modelId: string, fallbackUsdc: number): number {
  if (modelId === OFFLINE_MODEL_ID || modelId === "offline") return 0;
  return PRICES.find(([re]) => re.test(modelId))?.[1] ?? fallbackUsdc;
}

/** The offline engine asked directly, without @daydreamsai/core; its reply still goes through the decision schema. */
export function offlineDirect(): PricedModel {
  return {
    id: OFFLINE_MODEL_ID,
    pricePerCallUsdc: 0,
    route: "offline",
    path: "offline engine called directly (bypasses @daydreamsai/core); decisions validated by the same zod schema",
    async decide(inputs) {
      const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
      const result = validateDecision(decideOffline(inputs.snapshot, position, inputs.limits));
      return result.ok ? { ok: true, decision: result.decision, modelCalls: 0, source: "offline engine" } : { ok: false, error: result.error, modelCalls: 0 };
    },
    async close() {},
  };
}

/**
 * The stand-in for a paid model when no router stand-in runs: it answers, in core's XML protocol,
 * what the offline engine would decide. The run then shows what the same decisions earn once each
 * one is billed at the paid model's price.
 */
export function standInModel(modelId: string): (inputs: DecisionInputs) => ModelV2 {
  return (inputs) => {
    const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
    return scriptedModel(modelId, () => decisionToAgentReply(decideOffline(inputs.snapshot, position, inputs.limits)));
  };
}

/** A decision through the trading agent on @daydreamsai/core, as live trading makes it. */
export async function throughAgent(o: {
  id: string;
  pricePerCallUsdc: number;
  route: PricedModel["route"];
  path: string;
  model: (inputs: DecisionInputs) => ModelV2;
  deadlineMs?: number;
}): Promise<PricedModel> {
  // Working memory stays in the process: a backtest's audit trail is its report.
  // No audit copy: a backtest keeps its own report, and would otherwise hold one per candle.
  const agent = new TradingAgent(new InMemoryKeyValueProvider(), { audit: false });
  await agent.start();
  return {
    id: o.id,
    pricePerCallUsdc: o.pricePerCallUsdc,
    route: o.route,
    path: o.path,
    async decide(inputs) {
      const out = await agent.decide(inputs, o.model(inputs), o.deadlineMs);
      return out.ok ? { ok: true, decision: out.decision, modelCalls: out.modelCalls } : { ok: false, error: out.error, modelCalls: out.modelCalls };
    },
    async close() {
      await agent.stop();
    },
  };
}

/**
 * Records every decision `model` makes with a real call (modelCalls > 0 and a valid answer), through
 * the same recordModelDecision live trading uses. The decisions themselves are unchanged.
 */
export function recordingModel(model: PricedModel, store: RecordingStore, now: () => number = Date.now): PricedModel & { recorded: () => number } {
  let recorded = 0;
  return {
    ...model,
    recorded: () => recorded,
    async decide(inputs) {
      const out = await model.decide(inputs);
      if (out.ok && out.modelCalls > 0) {
        await recordModelDecision(store, { inputHash: inputHash(inputs), model: model.id, answer: out.decision, priceMicro: Math.round(model.pricePerCallUsdc * out.modelCalls * 1e6), recordedAt: now() });
        recorded++;
      }
      return out;
    },
    close: () => model.close(),
  };
}

/**
 * Answers from recordings of `modelId`, free: the same input gets the recorded answer, so a
 * recorded run replays to the same trades. An input with no recording is a "no recording"
 * outcome (the backtest lets the offline engine decide it, and counts it).
 */
export function replayModel(store: RecordingStore, modelId: string, from: string): PricedModel {
  return {
    id: modelId,
    pricePerCallUsdc: 0,
    route: "replay",
    path: `replay of recorded ${modelId} decisions from ${from} (no calls, no spend); inputs with no recording decided by the offline engine`,
    async decide(inputs) {
      const hit = await store.get(inputHash(inputs), modelId);
      if (!hit) return { ok: false, error: "no recording of this input", modelCalls: 0, source: "no recording" };
      const result = validateDecision(hit.answer);
      return result.ok ? { ok: true, decision: result.decision, modelCalls: 0, source: "recording" } : { ok: false, error: result.error, modelCalls: 0, source: "recording (invalid)" };
    },
    async close() {},
  };
}

/**
 * A strategy file run by `runner` (its own thread, bounded in time), its answers checked against
 * the decision schema. An answer it gets wrong is refused and places no order: the offline engine
 * does not stand in for it, so its report is its own.
 */
export function strategyModel(runner: StrategyRunner, shownPath: string, timeoutMs: number): PricedModel {
  return {
    id: runner.id,
    pricePerCallUsdc: 0,
    route: "strategy",
    path: `strategy file ${shownPath}${runner.exportedName ? ` (${runner.exportedName})` : ""}, in a worker thread, each answer within ${timeoutMs} ms and checked against the decision schema`,
    needsCandles: true,
    refuseOnFailure: true,
    async decide(inputs) {
      const out = await runner.decide(strategyContext(inputs, inputs.candles ?? [], inputs.now ?? Date.now()));
      return out.ok ? { ok: true, decision: out.decision, modelCalls: 0, source: runner.id } : { ok: false, error: out.error, modelCalls: 0, source: "refused" };
    },
    close: () => runner.close(),
  };
}
