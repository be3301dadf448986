// What decides in a backtest, named on the command line (--model, --strategy, --compare): the
// offline engine, a strategy file, a local model, a replay of recordings, or a paid model (its
// stand-in, a router stand-in, or real calls). Each becomes a PricedModel.
import { existsSync, readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import type { Config } from "../config/config.js";
import { fromJsonl, MemoryRecordings } from "../models/recordings.js";
import { isLocalModel, localModel, localName } from "../localModels/openaiCompatible.js";
import { createRouterClient, routerAuthFromConfig } from "../models/dreamsRouter.js";
import { paidRouterModel } from "./paidModel.js";
import { StrategyRunner } from "../strategy/runner.js";
import { offlineDirect, priceOf, replayModel, standInModel, strategyModel, throughAgent, type PricedModel } from "./models.js";

/** A decider the command line cannot build: one line saying what to do instead. */
export class DeciderError extends Error {}

export type DeciderSpec =
  | { kind: "offline" }
  | { kind: "strategy"; path: string }
  | { kind: "local"; id: string }
  | { kind: "replay"; file: string; model?: string }
  | { kind: "model"; id: string };

/** The built-in strategy files, by short name. */
export const BUILT_IN_STRATEGIES: Record<string, string> = {
  sma: "strategies/sma-crossover.ts",
  "sma-crossover": "strategies/sma-crossover.ts",
};

/**
 * offline | sma | strategy:PATH | a path to a .ts/.js file | local:NAME | replay:FILE[#MODEL] | a model id.
 * `root` is the project's folder, where the built-in strategies are.
 */
export function parseDecider(text: string, root: string): DeciderSpec {
  const t = text.trim();
  if (t === "") throw new DeciderError("an empty decider: name one, e.g. offline, sma, local:llama3.2, replay:run.jsonl or strategy:strategies/my.ts");
  if (t === "offline" || t === "offline-engine") return { kind: "offline" };
  if (BUILT_IN_STRATEGIES[t]) return { kind: "strategy", path: resolve(root, BUILT_IN_STRATEGIES[t]!) };
  if (t.startsWith("strategy:")) return { kind: "strategy", path: t.slice("strategy:".length) };
  if (/\.(c|m)?[jt]s$/.test(t) && !t.includes(":")) return { kind: "strategy", path: t };
  if (isLocalModel(t)) {
    if (localName(t) === "") throw new DeciderError(`"${t}" names no model: use local:NAME, e.g. local:llama3.2`);
    return { kind: "local", id: t };
  }
  if (t.startsWith("replay:")) {
    const [file, model] = t.slice("replay:".length).split("#");
    if (!file) throw new DeciderError(`"${t}" names no file: use replay:FILE (or replay:FILE#MODEL when it holds several models)`);
    return { kind: "replay", file, ...(model ? { model } : {}) };
  }
  return { kind: "model", id: t };
}

export interface DeciderSettings {
  config: Config;
  /** Where the command runs from (paths in messages are shown relative to it). */
  cwd: string;
  routerUrl?: string;
  realCalls: boolean;
  price?: number;
  throughCore: boolean;
  /** LOCAL_MODEL_URL, or --local-url. */
  localUrl?: string;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** The PricedModel a spec stands for. A paid model never reaches the real router unless realCalls. */
export async function buildDecider(spec: DeciderSpec, s: DeciderSettings): Promise<PricedModel> {
  const { config } = s;
  switch (spec.kind) {
    case "offline":
      if (!s.throughCore) return offlineDirect();
      return throughAgent({ id: "offline-engine", pricePerCallUsdc: 0, route: "offline", path: "offline engine through @daydreamsai/core (the live agent's contexts and actions)", model: standInModel("offline-engine") });
    case "strategy": {
      const timeoutMs = config.strategy.timeoutMs;
      let runner: StrategyRunner;
      try {
        runner = await StrategyRunner.load(spec.path, { timeoutMs });
      } catch (err) {
        throw new DeciderError((err as Error).message);
      }
      return strategyModel(runner, relative(s.cwd, resolve(spec.path)) || spec.path, timeoutMs);
    }
    case "local": {
      const url = s.localUrl;
      if (!url) throw new DeciderError(`${spec.id} needs the server that runs it: --local-url http://127.0.0.1:11434/v1 (Ollama), or LOCAL_MODEL_URL in .env`);
      const timeoutMs = config.routing.modelTimeouts[spec.id] ?? config.router.timeoutMs;
      const apiKey = config.local.apiKey;
      return throughAgent({
        id: spec.id,
        pricePerCallUsdc: 0,
        route: "local",
        path: `@daydreamsai/core agent, local model ${localName(spec.id)} at ${url} (free, no payment), each decision recorded`,
        model: () => localModel({ baseURL: url, model: localName(spec.id), ...(apiKey ? { apiKey } : {}) }),
        deadlineMs: timeoutMs,
      });
    }
    case "replay": {
      if (!existsSync(spec.file)) throw new DeciderError(`replay ${spec.file}: no such file (record one with --real-calls or a local model, or import a shared JSONL file)`);
      let records;
      try {
        records = fromJsonl(readFileSync(spec.file, "utf8"), spec.file);
      } catch (err) {
        throw new DeciderError((err as Error).message);
      }
      const models = [...new Set(records.map((r) => r.model))];
      const id = spec.model ?? (models.length === 1 ? models[0]! : undefined);
      if (!id) throw new DeciderError(`${spec.file} holds recordings of ${models.length ? models.join(", ") : "no model"}: name the one to replay (--model NAME, or replay:FILE#NAME)`);
      return replayModel(new MemoryRecordings(records.filter((r) => r.model === id)), id, spec.file);
    }
    case "model": {
      const id = spec.id;
      const price = s.price ?? priceOf(id, config.router.costPerDecision);
      if (s.realCalls) {
        // The same authentication as live (ROUTER_AUTH and the keys that are set), whatever DECISION_MODEL says.
        const auth = routerAuthFromConfig({ ...config.router, decisionModel: "router" });
        if (!auth) throw new DeciderError("--real-calls needs DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY in .env or the environment");
        const origin = (s.routerUrl ?? config.router.url).replace(/\/+$/, "").replace(/\/v1$/, "");
        const client = createRouterClient({ origin, auth, ...(config.router.rpcUrl ? { rpcUrl: config.router.rpcUrl } : {}) });
        // Paid through the same paid request as live decisions (bound to the run's Redis once it starts).
        return paidRouterModel({ id, pricePerCallUsdc: price, client, config, path: `@daydreamsai/core agent, real Dreams Router calls at ${origin}, paid like live decisions, each decision recorded`, deadlineMs: config.router.timeoutMs });
      }
      if (s.routerUrl) {
        const host = new URL(s.routerUrl).hostname;
        if (!LOOPBACK.has(host)) throw new DeciderError(`--router-url ${s.routerUrl} is not on this machine: a router elsewhere means real calls, which need --real-calls`);
        // A stand-in never gets the real key.
        const client = createRouterClient({ origin: s.routerUrl.replace(/\/+$/, "").replace(/\/v1$/, ""), auth: { kind: "api-key", apiKey: "backtest-stand-in" } });
        return throughAgent({ id, pricePerCallUsdc: price, route: "stand-in", path: `@daydreamsai/core agent, router stand-in at ${s.routerUrl} (no money moves)`, model: () => client.model(id, fetch), deadlineMs: config.router.timeoutMs });
      }
      return throughAgent({
        id,
        pricePerCallUsdc: price,
        route: "stand-in",
        path: "@daydreamsai/core agent, in-process stand-in for the model (answers as the offline engine would; no money moves)",
        model: standInModel(id),
      });
    }
  }
}

/** How a decider is shown in a comparison's header. */
export function deciderLabel(m: PricedModel): string {
  return m.route === "replay" ? `${m.id} (replay)` : m.route === "stand-in" ? `${m.id} (stand-in)` : m.id;
}
