import "./promiseTry.js";
import type { KeyValueProvider } from "@daydreamsai/core";
import { randomUUID } from "node:crypto";
import type { Decision } from "../domain/types.js";
import { validateDecision } from "../decision/schema.js";
import type { CoreRuntime } from "./coreRuntime.js";
import type { DecisionInputs } from "./decisionInputs.js";
import { scriptedModel, type ModelV2 } from "./scriptedModel.js";
import { RunMemory } from "./runMemory.js";
import { auditKey, DEFAULT_AUDIT_TTL_SECONDS, promptText, type DecisionAudit } from "./auditRecord.js";

export type { DecisionInputs } from "./decisionInputs.js";

export type AgentOutcome =
  | { ok: true; decision: Decision; modelCalls: number }
  | { ok: false; error: string; modelCalls: number };

export interface TradingAgentOptions {
  /** How long a decision's audit record (its prompt and reply) is kept in the store. Default 3 days. */
  auditTtlSeconds?: number;
  /** Write the audit record at all (a backtest, whose audit trail is its report, can turn it off). */
  audit?: boolean;
  /**
   * Load @daydreamsai/core at start (the default), or with the first decision that asks a model:
   * a process on the offline engine never needs core or the ai SDK.
   */
  loadCore?: "at-start" | "on-first-model-call";
}

/** What the agent holds right now; all of it returns to zero once the decisions in flight end. */
export interface AgentHeld {
  /** Decisions between decide() being called and core's run ending. */
  runs: number;
  /** Decisions that returned while core's run had not ended yet (a deadline or a hung model). */
  cleanups: number;
  /** Audit records being written. */
  auditWrites: number;
  /** Contexts core keeps in its own maps. */
  contexts: number;
  /** Keys in core's in-process memory (the contexts index alone when idle). */
  memoryKeys: number;
  /** Core's task queues (two of its own when idle: "main" and "llm"). */
  queues: number;
}

type Args = { decisionId: string; symbol: string };

/**
 * The trading agent on @daydreamsai/core. The model only emits a signal through one of four
 * actions; the actions capture it and nothing else. Orders are decided later, by the risk rules.
 */
export class TradingAgent {
  private readonly inputs = new Map<string, DecisionInputs>();
  private readonly captured = new Map<string, { decision?: Decision; error?: string; abort: AbortController }>();
  /** Core's agent, contexts and actions (src/agent/coreRuntime.ts), once loaded and started. */
  private core: Promise<CoreRuntime> | undefined;
  private coreLoaded: CoreRuntime | undefined;
  /** Core's memory: in process, per run, forgotten when the run ends. */
  private readonly memory = new RunMemory();
  private readonly auditTtlSeconds: number;
  private readonly auditOn: boolean;
  private readonly loadCoreAt: NonNullable<TradingAgentOptions["loadCore"]>;

  /**
   * @param store where each decision's audit record is written once, when it ends (Redis live).
   *   Core's own memory no longer goes there: it stays in process for the length of a run.
   */
  constructor(
    private readonly store: KeyValueProvider & { drain?: () => Promise<void> },
    options: TradingAgentOptions = {},
  ) {
    this.auditTtlSeconds = options.auditTtlSeconds ?? DEFAULT_AUDIT_TTL_SECONDS;
    if (!(Number.isFinite(this.auditTtlSeconds) && this.auditTtlSeconds >= 1)) {
      throw new Error(`auditTtlSeconds must be a whole number of seconds, at least 1 (got ${options.auditTtlSeconds})`);
    }
    this.auditTtlSeconds = Math.round(this.auditTtlSeconds);
    this.auditOn = options.audit ?? true;
    this.loadCoreAt = options.loadCore ?? "at-start";
  }

  /** Core, loaded and started once, on the first call. */
  private loadCore(): Promise<CoreRuntime> {
    this.core ??= import("./coreRuntime.js").then(async ({ buildCore }) => {
      const core = buildCore({
        lookup: (decisionId) => {
          const found = this.inputs.get(decisionId);
          if (!found) throw new Error(`no inputs for decision ${decisionId}`);
          return found;
        },
        captured: this.captured,
        memory: this.memory,
      });
      await core.agent.start();
      this.coreLoaded = core;
      return core;
    });
    return this.core;
  }

  /** Every decision whose core run has not been cleaned up yet, by id: it ends when the run does. */
  private readonly active = new Map<string, Promise<void>>();
  /** Those among them whose decide() already returned (a deadline passed, the model hung). */
  private readonly lingering = new Set<string>();
  private readonly auditWrites = new Set<Promise<void>>();
  private started = false;

  async start(): Promise<void> {
    await this.store.initialize();
    if (this.loadCoreAt === "at-start") await this.loadCore();
    this.started = true;
  }

  /** Resolves once every run started so far has ended and been forgotten, and its audit written. */
  async settled(): Promise<void> {
    while (this.active.size > 0 || this.auditWrites.size > 0) {
      await Promise.allSettled([...this.active.values(), ...this.auditWrites]);
    }
  }

  /** Waits for the runs still in flight and their audit records, then stops core. */
  async stop(): Promise<void> {
    this.started = false;
    await this.settled();
    if (this.core) await (await this.core).agent.stop();
    await this.store.drain?.();
  }

  /** Counters of what the agent holds, for leak checks and the benchmark. */
  async held(): Promise<AgentHeld> {
    return {
      runs: this.inputs.size,
      cleanups: this.lingering.size,
      auditWrites: this.auditWrites.size,
      contexts: this.coreLoaded ? (await this.coreLoaded.agent.getContexts()).length : 0,
      memoryKeys: this.memory.size,
      queues: this.coreLoaded ? (this.coreLoaded.agent as unknown as { taskRunner: { queues: Map<unknown, unknown> } }).taskRunner.queues.size : 0,
    };
  }

  /**
   * Core keeps every context it has run in its own maps and in its memory; with one context per
   * decision both would grow without end. When a run has ended, its five contexts are dropped
   * from core and their keys from the in-process memory. Nothing is written anywhere.
   */
  private async forget(core: CoreRuntime, a: Args): Promise<void> {
    const ids = core.contextDefs.map((context) => core.agent.getContextId({ context: context as never, args: a as never }));
    for (const id of ids) await core.agent.deleteContext(id);
    this.memory.forget(ids);
  }

  private writeAudit(audit: DecisionAudit): void {
    if (!this.auditOn) return;
    const write = this.store.set(auditKey(audit.decisionId), audit, { ttl: this.auditTtlSeconds }).catch(() => {
      // The audit is an explanation, not state: losing one never changes a decision.
    });
    this.auditWrites.add(write);
    void write.finally(() => this.auditWrites.delete(write));
  }

  /**
   * A decision made in process by a deterministic rule (the offline engine), with no language
   * model to ask: core's run would only render a prompt nobody reads and parse a reply we wrote,
   * at 3-5 ms a decision. The same schema validates the decision and the same audit record
   * explains it (what the rule was shown, and what it answered).
   */
  async decideWithout(inputs: DecisionInputs, modelId: string, decide: (inputs: DecisionInputs) => Decision | Promise<Decision>): Promise<AgentOutcome> {
    if (!this.started) return { ok: false, error: "the agent is not started", modelCalls: 0 };
    let reply = "";
    let outcome: AgentOutcome;
    try {
      const candidate = await decide(inputs);
      reply = JSON.stringify(candidate);
      const checked = validateDecision(candidate);
      outcome = checked.ok ? { ok: true, decision: checked.decision, modelCalls: 0 } : { ok: false, error: `invalid decision: ${checked.error}`, modelCalls: 0 };
    } catch (err) {
      // The caller names who decided; the message says what went wrong (a strategy's says how to fix it).
      outcome = { ok: false, error: (err as Error).message, modelCalls: 0 };
    }
    const { decisionId, candles: _candles, now: _now, ...shown } = inputs;
    this.writeAudit({
      decisionId,
      symbol: inputs.symbol,
      time: Date.now(),
      modelId,
      modelCalls: 0,
      prompt: JSON.stringify(shown),
      reply,
      outcome: outcome.ok ? { ok: true, decision: outcome.decision } : { ok: false, error: outcome.error },
    });
    return outcome;
  }

  /** Runs one decision with the given model. Never throws for a model failure: it reports it. */
  async decide(inputs: DecisionInputs, model: ModelV2, deadlineMs = 60_000): Promise<AgentOutcome> {
    if (!this.started) return { ok: false, error: "the agent is not started", modelCalls: 0 };
    // Without an await once core is loaded: a decision is held from the moment it is asked for.
    const core = this.coreLoaded ?? (await this.loadCore());
    // A retry of a decision whose earlier run has not ended yet waits for it: one run per context.
    for (let earlier = this.active.get(inputs.decisionId); earlier; earlier = this.active.get(inputs.decisionId)) await earlier;

    const abort = new AbortController();
    const slot: { decision?: Decision; error?: string; abort: AbortController } = { abort };
    let modelCalls = 0;
    let prompt = "";
    let reply = "";
    const refuse = (why: string) => {
      slot.error ??= why;
      abort.abort();
    };
    const aborted = new Promise<never>((_, reject) => {
      abort.signal.addEventListener("abort", () => reject(new Error("decision stopped")), { once: true });
    });
    aborted.catch(() => {});
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
        prompt = promptText(opts.prompt);
        // A stopped decision (its deadline passed) lets go of a model that never answers, so
        // core's run can end and be cleaned up.
        const parts: StreamPart[] = [];
        let text = "";
        let rest: Omit<Awaited<ReturnType<ModelV2["doStream"]>>, "stream">;
        try {
          const started = await Promise.race([model.doStream(opts), aborted]);
          const { stream, ...others } = started;
          rest = others;
          const reader = stream.getReader();
          for (;;) {
            const { done, value } = await Promise.race([reader.read(), aborted]);
            if (done) break;
            parts.push(value);
            if (value.type === "text-delta") text += value.delta;
            if (value.type === "error") throw value.error instanceof Error ? value.error : new Error(String(value.error));
          }
        } catch (err) {
          // Core swallows a failed model call: keep what the server said (a 404's "model not
          // found", a 400's "exceeds the context"), or the decision only says it got no action.
          if (!abort.signal.aborted) slot.error ??= `model call failed: ${(err as Error).message}`;
          throw err;
        }
        reply = text;
        const problem = screenReply(text);
        if (problem) {
          refuse(`invalid reply: ${problem}`);
          return empty.doStream(opts);
        }
        return { ...rest, stream: replay(parts) };
      },
    };
    const a: Args = { decisionId: inputs.decisionId, symbol: inputs.symbol };
    this.inputs.set(inputs.decisionId, inputs);
    this.captured.set(inputs.decisionId, slot);
    let timer: NodeJS.Timeout | undefined;
    // Core's run task is called directly, not through agent.send: send settles as soon as the run
    // is aborted (our normal stop after one action), while core's run goes on saving its state.
    // The task's own promise ends when the run does, so its contexts are forgotten then, and
    // never while core still writes them.
    const run = Promise.resolve(
      core.runAgentContext.handler(
        {
          agent: core.agent as never,
          context: core.trading as never,
          args: a,
          model: once,
          chain: [{ id: randomUUID(), ref: "input", type: "text", content: `Decide on ${inputs.symbol}.`, data: undefined, timestamp: Date.now(), processed: false } as never],
        },
        { taskId: randomUUID(), abortSignal: abort.signal } as never,
      ),
    ).then(
      () => undefined,
      (err: unknown) => {
        if (!slot.decision) refuse(`model call failed: ${(err as Error).message}`);
      },
    );
    const ended = run
      .then(() => {
        this.inputs.delete(inputs.decisionId);
        this.captured.delete(inputs.decisionId);
        return this.forget(core, a);
      })
      .catch(() => {})
      .finally(() => {
        this.active.delete(inputs.decisionId);
        this.lingering.delete(inputs.decisionId);
      });
    this.active.set(inputs.decisionId, ended);
    let inTime = true;
    try {
      const deadline = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          refuse(`no decision within ${deadlineMs} ms`);
          resolve(false);
        }, deadlineMs);
      });
      inTime = await Promise.race([run.then(() => true), deadline]);
    } finally {
      clearTimeout(timer);
    }
    // Normally core's run has ended and forgetting it is a few in-process deletes. After a
    // deadline it may not have: its contexts are then forgotten when it does end.
    if (inTime) await ended;
    else if (this.active.get(inputs.decisionId) === ended) this.lingering.add(inputs.decisionId);
    const outcome: AgentOutcome = slot.decision
      ? { ok: true, decision: slot.decision, modelCalls }
      : { ok: false, error: slot.error ?? "the model answered without a valid action", modelCalls };
    this.writeAudit({
      decisionId: inputs.decisionId,
      symbol: inputs.symbol,
      time: Date.now(),
      modelId: model.modelId,
      modelCalls,
      prompt,
      reply,
      outcome: outcome.ok ? { ok: true, decision: outcome.decision } : { ok: false, error: outcome.error },
    });
    return outcome;
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
