// A user's strategy file, run where it cannot hurt the agent: in a worker thread, each answer
// bounded in time and checked against the decision schema before anything acts on it.
//
// Why a worker thread: a strategy is arbitrary code. A time-bounded call in the main thread
// (Promise.race with a timer) cannot stop a synchronous endless loop: the loop holds the event
// loop, so the timer never fires, and the whole worker process (its BullMQ jobs, its lock
// renewals, its chat) would hang with it. In a worker thread the loop hangs only that thread;
// the main thread's timer fires, terminate() stops the thread (it interrupts running JavaScript),
// the decision is refused, and the next call starts a fresh thread. The cost is a message round
// trip per decision (the context is copied: about 200 candles).
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { validateDecision } from "../decision/schema.js";
import type { Candle } from "../domain/types.js";
import type { DecisionInputs } from "../agent/tradingAgent.js";
import type { StrategyContext, StrategyOutcome } from "./types.js";

// The thread's code, as a CommonJS script (eval): it needs no file of its own beside the build.
// A TypeScript strategy is loaded with tsx's tsImport when tsx is installed (npm start, tests,
// the backtest); the production image (plain node) needs the strategy compiled to .js.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { pathToFileURL } = require("node:url");
let loading;
async function load() {
  const file = workerData.file;
  const url = pathToFileURL(file).href;
  let mod;
  if (/\\.[cm]?ts$/.test(file)) {
    if (!workerData.tsx) throw new Error(file + " is TypeScript and no TypeScript loader (tsx) is installed here: compile it to .js first, or run under npm start");
    mod = await (await import(workerData.tsx)).tsImport(url, { parentURL: url });
  } else {
    mod = await import(url);
  }
  const pick = (m) => (m && typeof m.default === "function" ? m.default : m && typeof m.decide === "function" ? m.decide : undefined);
  const fn = pick(mod) || pick(mod && mod.default);
  if (!fn) throw new Error("it exports no strategy function: write export default function decide(ctx) { ... } (or export function decide)");
  const name = typeof mod.name === "string" ? mod.name : mod.default && typeof mod.default.name === "string" && typeof mod.default !== "function" ? mod.default.name : undefined;
  return { fn, name };
}
const reply = (msg) => {
  try {
    parentPort.postMessage(msg);
  } catch (err) {
    parentPort.postMessage({ id: msg.id, ok: false, error: "its answer could not be read (" + (err && err.message || err) + "): answer plain data" });
  }
};
parentPort.on("message", async (msg) => {
  try {
    const strategy = await (loading ??= load());
    if (msg.kind === "load") return reply({ id: msg.id, ok: true, name: strategy.name });
    const answer = await strategy.fn(msg.ctx);
    reply({ id: msg.id, ok: true, answer });
  } catch (err) {
    reply({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
`;

let tsxPath: string | null | undefined;
/**
 * The URL of tsx's ESM API (its package's "./esm/api" import entry), or null when tsx is not
 * installed (a production image). Its CommonJS entry cannot be used from an eval'd thread.
 */
function tsxApi(): string | null {
  if (tsxPath === undefined) {
    try {
      const pkgFile = createRequire(import.meta.url).resolve("tsx/package.json");
      const pkg = JSON.parse(readFileSync(pkgFile, "utf8")) as { exports?: Record<string, { import?: { default?: string } }> };
      const entry = pkg.exports?.["./esm/api"]?.import?.default;
      tsxPath = entry ? pathToFileURL(join(dirname(pkgFile), entry)).href : null;
    } catch {
      tsxPath = null;
    }
  }
  return tsxPath;
}

type Reply = { id: number; ok: true; answer?: unknown; name?: string } | { id: number; ok: false; error: string };

export interface StrategyRunnerOptions {
  /** Most milliseconds one answer may take. */
  timeoutMs: number;
  /**
   * Most milliseconds a fresh thread may take to load the file (default 20 s, or timeoutMs if
   * longer): compiling TypeScript takes a second or more, and must not count against an answer.
   */
  loadTimeoutMs?: number;
}

/** The id a strategy's decisions are recorded under: strategy:<file name without extension>. */
export function strategyId(file: string): string {
  return `strategy:${basename(file, extname(file))}`;
}

/**
 * One strategy file in its own thread. Calls are answered one at a time, each within the
 * timeout; a call that throws, runs over, or answers outside the decision schema comes back
 * refused, with a message saying which and how to fix it. It never throws for the strategy's faults.
 */
export class StrategyRunner {
  readonly file: string;
  readonly id: string;
  /** The name the file exports (`export const name`), if any. */
  exportedName?: string;
  private worker?: Worker;
  private nextId = 1;
  /** Calls waiting for an answer, with the thread that was asked. */
  private pending = new Map<number, { done: (r: Reply) => void; w: Worker }>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Answers refused so far, and the first reason (for reports). */
  refused = 0;

  private constructor(file: string, private readonly o: StrategyRunnerOptions) {
    this.file = file;
    this.id = strategyId(file);
  }

  /**
   * Loads `file` and checks it exports a strategy function, within the timeout. Throws one clear
   * line when it cannot be used (no such file, no function, a load that fails or hangs).
   */
  static async load(file: string, o: StrategyRunnerOptions): Promise<StrategyRunner> {
    const path = resolve(file);
    if (!existsSync(path)) throw new Error(`strategy ${file}: no such file (give the path of a .ts or .js file that exports a strategy; see strategies/README.md)`);
    if (!/\.(c|m)?[jt]s$/.test(path)) throw new Error(`strategy ${file}: expected a .ts or .js file`);
    const runner = new StrategyRunner(path, o);
    const first = await runner.call({ kind: "load" });
    if (!first.ok) {
      await runner.close();
      throw new Error(`strategy ${file} cannot be used: ${first.error}`);
    }
    if (first.name) runner.exportedName = first.name;
    return runner;
  }

  /** Asks the strategy for a decision on `ctx`; the answer is checked against the schema and the symbol. */
  async decide(ctx: StrategyContext): Promise<StrategyOutcome> {
    const r = await this.call({ kind: "decide", ctx });
    const name = this.id.slice("strategy:".length);
    const refuse = (why: string): StrategyOutcome => {
      this.refused++;
      return { ok: false, error: `strategy ${name} ${why}; no order` };
    };
    if (!r.ok) return refuse(/^(did not|was stopped|could not|crashed)/.test(r.error) ? r.error : `threw: ${r.error.slice(0, 300)}`);
    return checkAnswer(r.answer, ctx.symbol, refuse);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    for (const [id, p] of this.pending) p.done({ id, ok: false, error: "was stopped: the strategy runner closed" });
    this.pending.clear();
    await w?.terminate();
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: this.file, tsx: tsxApi() }, stdout: false, stderr: false });
    w.on("message", (r: Reply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.done(r);
    });
    // Only this thread's calls: a thread stopped after a hang exits while its successor is asked.
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const [id, p] of this.pending) {
        if (p.w !== w) continue;
        this.pending.delete(id);
        p.done({ id, ok: false, error: why });
      }
    };
    w.on("error", (err) => fail(`crashed its thread: ${err.message}`));
    w.on("exit", (code) => fail(`was stopped: its thread exited (code ${code})`));
    // The agent may exit while a strategy idles; the thread never keeps it alive.
    w.unref();
    return w;
  }

  /**
   * One message at a time: a call's time starts when it is sent, not while it waits its turn. A
   * fresh thread loads the file first, under its own (longer) time limit.
   */
  private call(msg: { kind: "load" } | { kind: "decide"; ctx: StrategyContext }): Promise<Reply> {
    const run = async (): Promise<Reply> => {
      if (this.closed) return { id: 0, ok: false, error: "was stopped: the strategy runner closed" };
      if (!this.worker) {
        this.worker = this.spawn();
        const loaded = await this.send(this.worker, { kind: "load" }, Math.max(this.o.loadTimeoutMs ?? 20_000, this.o.timeoutMs));
        if (msg.kind === "load") return loaded;
        if (!loaded.ok) return { ...loaded, error: loaded.error.startsWith("did not") ? loaded.error : `could not be loaded: ${loaded.error}` };
      }
      return this.send(this.worker, msg, this.o.timeoutMs);
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => {});
    return next;
  }

  private send(w: Worker, msg: { kind: "load" } | { kind: "decide"; ctx: StrategyContext }, timeoutMs: number): Promise<Reply> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<Reply>((done) => {
      this.pending.set(id, { done, w });
      timer = setTimeout(() => {
        this.pending.delete(id);
        // A hang or an endless loop: only stopping the thread ends it. The next call gets a new one.
        if (this.worker === w) this.worker = undefined;
        void w.terminate();
        done({ id, ok: false, error: `did not ${msg.kind === "load" ? "load" : "answer"} within ${timeoutMs} ms (a hang or an endless loop): its thread was stopped and a fresh one will answer the next decision` });
      }, timeoutMs);
    });
    w.postMessage({ id, ...msg });
    return answer.finally(() => clearTimeout(timer));
  }
}

/** The answer, if it is a decision in the schema about `symbol`; else why not. */
export function checkAnswer(answer: unknown, symbol: string, refuse: (why: string) => StrategyOutcome): StrategyOutcome {
  if (answer === undefined || answer === null || typeof answer !== "object") {
    return refuse(`answered ${answer === undefined ? "nothing" : JSON.stringify(answer)?.slice(0, 80)} instead of a decision: return { symbol, action: "buy" | "sell" | "close" | "hold", sizePct, confidence, reasons }`);
  }
  const checked = validateDecision(answer);
  if (!checked.ok) return refuse(`answered outside the decision schema: ${checked.error.replace(/^invalid decision /, "")} (see src/decision/schema.ts)`);
  if (checked.decision.symbol !== symbol) return refuse(`answered for ${checked.decision.symbol} when asked about ${symbol}: a decision is about the symbol it was asked`);
  return { ok: true, decision: checked.decision };
}

/** The context a strategy is shown, from what the models are shown plus the candles. */
export function strategyContext(inputs: DecisionInputs, candles: Candle[], now: number): StrategyContext {
  const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
  return {
    symbol: inputs.symbol,
    now,
    candles,
    indicators: inputs.snapshot,
    ...(position ? { position } : {}),
    portfolio: inputs.portfolio,
    limits: inputs.limits,
    research: inputs.research,
  };
}
