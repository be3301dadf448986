import { decisionToAgentReply, scriptedModel, type ModelV2 } from "../agent/scriptedModel.js";
import type { DecisionInputs } from "../agent/tradingAgent.js";
import type { Decision, MicroUsdc } from "../domain/types.js";
import { decideOffline, OFFLINE_MODEL_ID } from "../engine/offlineEngine.js";
import { buildCatalogue, type CatalogueModel, type Tier } from "./catalogue.js";
import type { PayWith } from "../payments/paidRequest.js";
import type { CallMeter } from "../payments/paymentMeter.js";
import type { LiveCatalogue } from "./liveCatalogue.js";
import type { RouterRuntime } from "./routerRuntime.js";
import type { FreeDecider } from "../strategy/types.js";

/** The router's smart routing: it picks the model for each request. */
export const AUTO_MODEL = "auto";

export interface ModelEntry {
  id: string;
  kind: "offline" | "router";
  /** Expected price of one call before the gateway quotes one (the list price). */
  estimateMicro: MicroUsdc;
  tier?: Tier;
  timeoutMs?: number;
  /** false: the router's live catalogue does not list it now (it is skipped). */
  offered?: false;
  /** Where its price comes from: MODEL_PRICES, the router's catalogue, or the built-in estimate. */
  priceFrom?: CatalogueModel["priceFrom"];
}

export interface RouterModels {
  /** Builds a Dreams Router model by id whose requests go through `f` (the paid request's fetch). */
  factory: (modelId: string, f: typeof fetch) => ModelV2;
  /** How calls are paid now (a permit session, per call, an account); absent: an account that reports its costs. */
  payWith?: () => Promise<PayWith>;
  /** The router's catalogue as last read from /v1/models: prices, and which models it offers now. */
  live?: LiveCatalogue;
  /** The gateway answered 401: a credential to drop. */
  unauthorized?: () => void;
  primary: string;
  fallbacks: string[];
  /** COST_PER_DECISION_USDC: the estimate for a model with no known price. */
  estimateUsdc: number;
  /** MODEL_PRICES: USDC per call by model. */
  prices?: Record<string, number>;
  /** MODEL_TIMEOUTS, and MODEL_TIMEOUT_MS for the rest. */
  timeouts?: Record<string, number>;
  timeoutMs?: number;
  /** x402: each call paid from the wallet. Otherwise an account is billed and the gateway reports the cost. */
  paysPerCall?: boolean;
  network?: string;
  payer?: string;
}

/**
 * The AI SDK would retry a retryable gateway error itself, after a backoff of seconds, inside one
 * model call: the router's own policy (src/models/failures.ts) decides retries instead, by error
 * class and never after a payment. So the error goes up as a plain one, which the SDK does not retry.
 */
function ownRetries(err: unknown): never {
  if (err instanceof Error && (err as { isRetryable?: boolean }).isRetryable === true) {
    throw Object.assign(new Error(err.message), { name: "RouterCallError", cause: err });
  }
  throw err;
}

/** The cost an OpenRouter-style gateway reports with a reply (`usage.cost`, in USD). */
function reportedCost(metadata: unknown): unknown {
  return (metadata as { openrouter?: { usage?: { cost?: unknown } } } | undefined)?.openrouter?.usage?.cost;
}

/** A cost reported in the reply (usage.cost) counts unless the payment already named one (x-token-cost). */
function observeCost(meter: CallMeter | undefined, usd: unknown): void {
  if (meter && meter.reportedMicro === undefined) meter.observeReportedCost(usd);
}

type StreamPart = Awaited<ReturnType<ModelV2["doStream"]>>["stream"] extends ReadableStream<infer P> ? P : never;

/**
 * Which models can decide, with their tier, list price and timeout. The offline engine is always
 * last: when no model can answer, a deterministic, free decision is still made. The Redis-backed
 * router services (breaker, budget, cache, stats) are attached by the app.
 */
export class ModelLayer {
  private offline: ModelEntry = { id: OFFLINE_MODEL_ID, kind: "offline", estimateMicro: 0 };
  /** A strategy file (STRATEGY) in the offline engine's place, when one is configured. */
  private strategy?: FreeDecider;
  private routerModels: CatalogueModel[];
  runtime?: RouterRuntime;

  /** The catalogue snapshot the router models were last priced from. */
  private pricedFrom?: number;

  constructor(readonly router?: RouterModels) {
    this.routerModels = this.priced();
  }

  /** The configured models priced by MODEL_PRICES, else the live catalogue, else the built-in list. */
  private priced(): CatalogueModel[] {
    const router = this.router;
    if (!router) return [];
    const live = router.live?.current;
    this.pricedFrom = live?.fetchedAt;
    return buildCatalogue({
      primary: router.primary,
      fallbacks: router.fallbacks,
      prices: router.prices ?? {},
      defaultPriceUsdc: router.estimateUsdc,
      timeouts: router.timeouts ?? {},
      defaultTimeoutMs: router.timeoutMs ?? 20_000,
      ...(live ? { offered: live.models } : {}),
    });
  }

  attach(runtime: RouterRuntime): void {
    this.runtime = runtime;
  }

  /** STRATEGY: the strategy decides where the offline engine would (alone, or after the models). */
  useStrategy(strategy: FreeDecider): void {
    this.strategy = strategy;
    this.offline = { id: strategy.id, kind: "offline", estimateMicro: 0 };
  }

  /** Who decides for free: the offline engine, or the strategy file. */
  get freeId(): string {
    return this.offline.id;
  }

  /** The free decision: the strategy's (throws when its answer is refused), else the offline engine's. */
  async freeDecision(inputs: DecisionInputs): Promise<Decision> {
    return this.strategy ? this.strategy.decide(inputs) : this.offlineDecision(inputs);
  }

  get routerEnabled(): boolean {
    return this.router !== undefined;
  }

  /**
   * Router models in the configured order (primary first), with tier, list price and timeout; with
   * `pinned` = auto, the router's own smart routing joins them (it is asked only when chosen).
   */
  routerCatalogue(pinned?: string): CatalogueModel[] {
    // Re-priced when a newer catalogue was read (by this process or, through Redis, another one).
    if (this.router?.live?.current?.fetchedAt !== this.pricedFrom) this.routerModels = this.priced();
    const auto = pinned === AUTO_MODEL ? this.autoModel() : undefined;
    return auto ? [...this.routerModels, auto] : this.routerModels;
  }

  /** The router's `auto` (it picks the model per request), when it is not configured in the chain already. */
  private autoModel(): CatalogueModel | undefined {
    const r = this.router;
    if (!r || this.routerModels.some((m) => m.id === AUTO_MODEL)) return undefined;
    const live = r.live?.current;
    const listed = live?.models.find((m) => m.id === AUTO_MODEL);
    const micro = r.prices?.[AUTO_MODEL] !== undefined ? Math.round(r.prices[AUTO_MODEL]! * 1e6) : listed?.priceMicro ?? Math.round(r.estimateUsdc * 1e6);
    return {
      id: AUTO_MODEL,
      tier: "standard",
      listPriceMicro: micro,
      priceFrom: r.prices?.[AUTO_MODEL] !== undefined ? "configured" : listed?.priceMicro !== undefined ? "catalogue" : "estimate",
      timeoutMs: r.timeouts?.[AUTO_MODEL] ?? r.timeoutMs ?? 20_000,
      ...(live && !listed ? { offered: false as const } : {}),
    };
  }

  catalogue(): ModelEntry[] {
    const auto = this.autoModel();
    return [...this.routerCatalogue().map((m) => this.entry(m)), ...(auto ? [this.entry(auto)] : []), this.offline];
  }

  entry(m: CatalogueModel): ModelEntry {
    return { id: m.id, kind: "router", estimateMicro: m.listPriceMicro, tier: m.tier, timeoutMs: m.timeoutMs, ...(m.offered === false ? { offered: false } : {}), priceFrom: m.priceFrom };
  }

  get offlineEntry(): ModelEntry {
    return this.offline;
  }

  find(id: string): ModelEntry | undefined {
    const wanted = id.trim().toLowerCase();
    return this.catalogue().find((m) => m.id.toLowerCase() === wanted || m.id.toLowerCase().endsWith("/" + wanted) || m.id.toLowerCase().endsWith(":" + wanted));
  }

  /** The configured order in which models are tried: the chosen one (or the primary) first. */
  chain(chosen?: string): ModelEntry[] {
    const all = this.catalogue();
    const first = chosen ? this.find(chosen) : undefined;
    if (!first) return all;
    return [first, ...all.filter((m) => m.id !== first.id)];
  }

  languageModel(entry: ModelEntry, inputs: DecisionInputs, f: typeof fetch = fetch, meter?: CallMeter): ModelV2 {
    if (entry.kind === "offline") {
      const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
      return scriptedModel(OFFLINE_MODEL_ID, () => decisionToAgentReply(decideOffline(inputs.snapshot, position, inputs.limits)));
    }
    return this.routerModel(entry.id, f, meter);
  }

  /** The offline engine's decision for these inputs (no model, no cost). */
  offlineDecision(inputs: DecisionInputs): Decision {
    const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
    return decideOffline(inputs.snapshot, position, inputs.limits);
  }

  /** A router model for one call through `f`, whose reported cost (`usage.cost`) reaches `meter`. */
  routerModel(id: string, f: typeof fetch = fetch, meter?: CallMeter): ModelV2 {
    if (!this.router) throw new Error(`model ${id} needs the Dreams Router, which is not configured`);
    const model = this.router.factory(id, f);
    return {
      ...model,
      doGenerate: async (o) => {
        const result = await Promise.resolve(model.doGenerate(o)).catch(ownRetries);
        observeCost(meter, reportedCost(result.providerMetadata));
        return result;
      },
      doStream: async (o) => {
        const result = await Promise.resolve(model.doStream(o)).catch(ownRetries);
        if (!meter) return result;
        const watch = new TransformStream<StreamPart, StreamPart>({
          transform(part, controller) {
            if (part.type === "finish") observeCost(meter, reportedCost(part.providerMetadata));
            controller.enqueue(part);
          },
        });
        return { ...result, stream: result.stream.pipeThrough(watch) };
      },
    };
  }
}
