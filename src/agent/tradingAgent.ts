import "./promiseTry.js";
import {
  action,
  context,
  createDreams,
  InMemoryGraphProvider,
  InMemoryVectorProvider,
  Logger,
  LogLevel,
  MemorySystem,
  type KeyValueProvider,
} from "@daydreamsai/core";
import { z } from "zod";
import { jsonSchema, type JSONSchema7 } from "ai";
import type { Decision, IndicatorSnapshot, MarketSymbol, Position, RiskLimits } from "../domain/types.js";
import type { ResearchReport } from "../research/types.js";
import { ACTION_ARGS, actionToDecision, validateDecision, type ActionName } from "../decision/schema.js";
import { scriptedModel, type ModelV2 } from "./scriptedModel.js";

/** Everything one decision is made from; rendered into the agent's contexts. */
export interface DecisionInputs {
  decisionId: string;
  symbol: MarketSymbol;
  snapshot: IndicatorSnapshot;
  research: ResearchReport;
  portfolio: {
    cash: number;
    equity: number;
    positions: Position[];
    dailyPnl: number;
    exposurePct: number;
    realizedPnl: number;
    recent: { time: number; action: string; outcome: string }[];
  };
  limits: RiskLimits;
}

export type AgentOutcome =
  | { ok: true; decision: Decision; modelCalls: number }
  | { ok: false; error: string; modelCalls: number };

const args = z.object({ decisionId: z.string(), symbol: z.string() });
type Args = z.infer<typeof args>;

const round = (n: number, d = 2) => Number(n.toFixed(d));

/**
 * The trading agent on @daydreamsai/core. The model only emits a signal through one of four
 * actions; the actions capture it and nothing else. Orders are decided later, by the risk rules.
 */
export class TradingAgent {
  private readonly inputs = new Map<string, DecisionInputs>();
  private readonly captured = new Map<string, { decision?: Decision; error?: string; abort: AbortController }>();
  private readonly agent;

  constructor(private readonly kv: KeyValueProvider & { drain?: () => Promise<void> }) {
    const lookup = (decisionId: string): DecisionInputs => {
      const found = this.inputs.get(decisionId);
      if (!found) throw new Error(`no inputs for decision ${decisionId}`);
      return found;
    };

    const market = context({
      type: "market",
      schema: args,
      key: ({ decisionId }: Args) => decisionId,
      description: "Latest closed candle and technical indicators for the symbol.",
      render: ({ args: a }: { args: Args }) => {
        const s = lookup(a.decisionId).snapshot;
        return JSON.stringify({
          symbol: s.symbol,
          candleTime: new Date(s.candleTime).toISOString(),
          price: s.price,
          sma20: round(s.sma20),
          sma50: round(s.sma50),
          rsi14: round(s.rsi14),
          macd: { macd: round(s.macd.macd), signal: round(s.macd.signal), histogram: round(s.macd.histogram) },
          bollinger: { upper: round(s.bollinger.upper), middle: round(s.bollinger.middle), lower: round(s.bollinger.lower) },
          atr14: round(s.atr14),
          volatility: round(s.volatility, 4),
          signal: s.signal,
          signalScore: round(s.signalScore, 3),
        });
      },
    });

    const research = context({
      type: "research",
      schema: args,
      key: ({ decisionId }: Args) => decisionId,
      description: "Outside research signals, if a source is configured.",
      render: ({ args: a }: { args: Args }) => JSON.stringify(lookup(a.decisionId).research),
    });

    const portfolio = context({
      type: "portfolio",
      schema: args,
      key: ({ decisionId }: Args) => decisionId,
      description: "Cash, equity, open positions, today's P&L and recent decisions.",
      render: ({ args: a }: { args: Args }) => JSON.stringify(lookup(a.decisionId).portfolio),
    });

    const risk = context({
      type: "risk",
      schema: args,
      key: ({ decisionId }: Args) => decisionId,
      description: "Hard limits enforced in code after your decision.",
      render: ({ args: a }: { args: Args }) => {
        const i = lookup(a.decisionId);
        return JSON.stringify({ limits: i.limits, exposurePct: round(i.portfolio.exposurePct) });
      },
    });

    const trading = context({
      type: "trading",
      schema: args,
      // One context per decision: its working memory in Redis is that decision's audit trail.
      // (A run stopped by abort cannot be reused by core, so a per-symbol key would not do.)
      key: ({ decisionId }: Args) => decisionId,
      maxWorkingMemorySize: 6,
      instructions: [
        "You decide for a crypto trading agent, one symbol at a time (long-only spot).",
        "Read the market, research, portfolio and risk contexts, then call exactly ONE action:",
        "ExecuteTrade (buy or sell a percent of equity), ClosePosition, Rebalance (target weight), or RiskManagement (hold or reduce exposure).",
        "Give 1-4 short reasons that cite the numbers. Hard risk limits are enforced in code after you answer: they may resize or refuse your order.",
      ],
      render: ({ args: a }: { args: Args }) => `Decide now on ${a.symbol}. Decision id ${a.decisionId}.`,
    }).use((state: { args: Args }) => [
      { context: market, args: state.args },
      { context: research, args: state.args },
      { context: portfolio, args: state.args },
      { context: risk, args: state.args },
    ]);

    const settle = (decisionId: string, candidate: unknown) => {
      const slot = this.captured.get(decisionId);
      if (!slot) return { ok: false };
      const result = validateDecision(candidate);
      if (result.ok) slot.decision = result.decision;
      else slot.error = result.error;
      // One signal per decision: stop the run so the model is never asked (and paid) again.
      slot.abort.abort();
      return { ok: result.ok };
    };

    /**
     * An action that only captures the model's signal. Core is given the JSON Schema (so the model
     * sees it in the prompt) and a parser that never throws: core's own validation raises an
     * unhandled rejection on bad arguments, which would take the process down. The strict check
     * is ours, with zod, in the handler.
     */
    const signalAction = <S extends z.ZodType>(
      name: string,
      description: string,
      schema: S,
      toDecision: (x: z.infer<S>, inputs: DecisionInputs) => unknown,
    ) =>
      action({
        name,
        description,
        schema: jsonSchema(z.toJSONSchema(schema) as JSONSchema7) as never,
        templateResolver: false,
        parser: (call: { content: string }) => {
          try {
            return JSON.parse(call.content.trim()) as never;
          } catch {
            return { unparsable: call.content.slice(0, 200) } as never;
          }
        },
        handler: (async (raw: unknown, ctx: { args: Args }) => {
          const parsed = schema.safeParse(raw);
          if (!parsed.success) {
            const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`);
            return settle(ctx.args.decisionId, { invalid: `${name} ${issues.join("; ")}` });
          }
          const inputs = lookup(ctx.args.decisionId);
          return settle(ctx.args.decisionId, toDecision(parsed.data, inputs));
        }) as never,
      });

    const heldPct = (i: DecisionInputs): number => {
      const held = i.portfolio.positions.find((p) => p.symbol === i.symbol);
      return held && i.portfolio.equity > 0 ? ((held.qty * i.snapshot.price) / i.portfolio.equity) * 100 : 0;
    };

    const described: Record<ActionName, string> = {
      ExecuteTrade: "Buy or sell the symbol, sized as a percent of equity.",
      ClosePosition: "Close the whole open position in the symbol.",
      Rebalance: "Move the symbol's weight in the portfolio to a target percent of equity.",
      RiskManagement: "Hold, or reduce exposure by selling half the position.",
    };
    const actions = (Object.keys(ACTION_ARGS) as ActionName[]).map((name) =>
      signalAction(name, described[name], ACTION_ARGS[name], (x, i) => actionToDecision(name, x as never, i.symbol, heldPct(i))),
    );

    this.trading = trading;
    this.contextDefs = [trading, market, research, portfolio, risk];
    this.agent = createDreams({
      // Core's console logger reports aborted runs (our normal stop after one action) as errors;
      // our outcomes carry what matters, so it gets no transport.
      logger: new Logger({ level: LogLevel.ERROR, transports: [] }),
      contexts: [trading],
      actions,
      inputs: { text: { schema: z.string() } },
      memory: new MemorySystem({
        providers: { kv, vector: new InMemoryVectorProvider(), graph: new InMemoryGraphProvider() },
      }),
    } as unknown as Parameters<typeof createDreams>[0]);
  }

  private readonly trading;
  private readonly contextDefs: { type: string }[];
  private readonly retiring = new Set<Promise<void>>();

  async start(): Promise<void> {
    await this.agent.start();
  }

  async stop(): Promise<void> {
    while (this.retiring.size > 0) await Promise.allSettled([...this.retiring]);
    await this.agent.stop();
    // Let core's background memory writes land before the caller closes Redis.
    await new Promise((r) => setTimeout(r, 20));
    await this.kv.drain?.();
  }

  /**
   * Core keeps every context it has run in process memory, and rewrites one index of all of them
   * to the store on each save (and loads them all at start): with one context per decision, both
   * grow without end. A finished decision's working memory (its prompt and the model's reply) is
   * kept under audit:<decisionId>, with the store's expiry, and its contexts are dropped from core.
   */
  private retire(a: Args): void {
    const job = (async () => {
      await this.kv.drain?.();
      const ids = this.contextDefs.map((context) => this.agent.getContextId({ context: context as never, args: a as never }));
      const working = await this.kv.get(`working-memory:${ids[0]}`);
      if (working !== null) await this.kv.set(`audit:${a.decisionId}`, working);
      for (const id of ids) await this.agent.deleteContext(id);
    })().catch(() => {
      // Cleanup only: a failure leaves the contexts to expire from the store.
    });
    this.retiring.add(job);
    void job.finally(() => this.retiring.delete(job));
  }

  /** Runs one decision with the given model. Never throws for a model failure: it reports it. */
  async decide(inputs: DecisionInputs, model: ModelV2, deadlineMs = 60_000): Promise<AgentOutcome> {
    const abort = new AbortController();
    const slot: { decision?: Decision; error?: string; abort: AbortController } = { abort };
    let modelCalls = 0;
    const refuse = (why: string) => {
      slot.error ??= why;
      abort.abort();
    };
    const empty = scriptedModel(model.modelId, () => "");
    // The model is asked at most once per decision: a second step would be a second payment.
    // Its reply is read in full and screened before core sees it, because core hangs on an
    // action name it does not know; anything but one known action call is a failed call.
    const once: ModelV2 = {
      ...model,
      doGenerate: (opts) => empty.doGenerate(opts),
      doStream: async (opts) => {
        if (modelCalls >= 1) {
          refuse("the model was asked twice");
          return empty.doStream(opts);
        }
        modelCalls++;
        const { stream, ...rest } = await model.doStream(opts);
        const parts: StreamPart[] = [];
        let text = "";
        const reader = stream.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parts.push(value);
          if (value.type === "text-delta") text += value.delta;
          if (value.type === "error") throw value.error instanceof Error ? value.error : new Error(String(value.error));
        }
        const problem = screenReply(text);
        if (problem) {
          refuse(`invalid reply: ${problem}`);
          return empty.doStream(opts);
        }
        return { ...rest, stream: replay(parts) };
      },
    };
    this.inputs.set(inputs.decisionId, inputs);
    this.captured.set(inputs.decisionId, slot);
    let timer: NodeJS.Timeout | undefined;
    try {
      const run = this.agent.send({
        context: this.trading,
        args: { decisionId: inputs.decisionId, symbol: inputs.symbol },
        input: { type: "text", data: `Decide on ${inputs.symbol}.` },
        model: once,
        abortSignal: abort.signal,
      });
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          refuse(`no decision within ${deadlineMs} ms`);
          resolve();
        }, deadlineMs);
      });
      await Promise.race([run, deadline]);
    } catch (err) {
      if (!slot.decision) refuse(`model call failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
      this.inputs.delete(inputs.decisionId);
      this.captured.delete(inputs.decisionId);
      this.retire({ decisionId: inputs.decisionId, symbol: inputs.symbol });
    }
    if (slot.decision) return { ok: true, decision: slot.decision, modelCalls };
    return { ok: false, error: slot.error ?? "the model answered without a valid action", modelCalls };
  }
}

type StreamPart = Awaited<ReturnType<ModelV2["doStream"]>>["stream"] extends ReadableStream<infer P> ? P : never;

const ACTIONS = new Set(["ExecuteTrade", "ClosePosition", "Rebalance", "RiskManagement"]);

/** Why a reply cannot be a decision, or undefined when it is one known action call. */
export function screenReply(text: string): string | undefined {
  const calls = [...text.matchAll(/<action_call\s+name\s*=\s*"([^"]*)"/g)].map((m) => m[1] ?? "");
  if (calls.length === 0) return "no action call in the reply";
  if (calls.length > 1) return `${calls.length} action calls in one reply (expected one)`;
  if (!ACTIONS.has(calls[0]!)) return `unknown action "${calls[0]!.slice(0, 40)}"`;
  return undefined;
}

function replay(parts: StreamPart[]): ReadableStream<StreamPart> {
  return new ReadableStream<StreamPart>({
    start(controller) {
      for (const p of parts) controller.enqueue(p);
      controller.close();
    },
  });
}
