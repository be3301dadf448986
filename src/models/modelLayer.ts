import { decisionToAgentReply, scriptedModel, type ModelV2 } from "../agent/scriptedModel.js";
import type { DecisionInputs } from "../agent/tradingAgent.js";
import { USDC, type MicroUsdc } from "../domain/types.js";
import { decideOffline, OFFLINE_MODEL_ID } from "../engine/offlineEngine.js";

export interface ModelEntry {
  id: string;
  kind: "offline" | "router";
  /** Expected price of one call, checked against the balance before the call is made. */
  estimateMicro: MicroUsdc;
}

export interface RouterModels {
  /** Builds a Dreams Router model by id. */
  factory: (modelId: string) => ModelV2;
  primary: string;
  fallbacks: string[];
  estimateUsdc: number;
}

/**
 * Which models can decide, in what order. The offline engine is always last: when no model can
 * answer, a deterministic, free decision is still made.
 */
export class ModelLayer {
  private readonly offline: ModelEntry = { id: OFFLINE_MODEL_ID, kind: "offline", estimateMicro: 0 };

  constructor(private readonly router?: RouterModels) {}

  get routerEnabled(): boolean {
    return this.router !== undefined;
  }

  catalogue(): ModelEntry[] {
    if (!this.router) return [this.offline];
    const ids = [this.router.primary, ...this.router.fallbacks.filter((m) => m !== this.router!.primary)];
    const estimate = USDC(this.router.estimateUsdc);
    return [...ids.map((id) => ({ id, kind: "router" as const, estimateMicro: estimate })), this.offline];
  }

  find(id: string): ModelEntry | undefined {
    const wanted = id.trim().toLowerCase();
    return this.catalogue().find((m) => m.id.toLowerCase() === wanted || m.id.toLowerCase().endsWith("/" + wanted));
  }

  /** The order in which models are tried: the chosen one (or the primary) first. */
  chain(chosen?: string): ModelEntry[] {
    const all = this.catalogue();
    const first = chosen ? this.find(chosen) : undefined;
    if (!first) return all;
    return [first, ...all.filter((m) => m.id !== first.id)];
  }

  languageModel(entry: ModelEntry, inputs: DecisionInputs): ModelV2 {
    if (entry.kind === "offline") {
      const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
      return scriptedModel(OFFLINE_MODEL_ID, () => decisionToAgentReply(decideOffline(inputs.snapshot, position, inputs.limits)));
    }
    if (!this.router) throw new Error(`model ${entry.id} needs the Dreams Router, which is not configured`);
    return this.router.factory(entry.id);
  }
}
