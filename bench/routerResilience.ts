// Resilience of the model chain, with the real provider and the router stand-in over loopback:
//  1. decision latency with a dead primary, before and after its circuit breaker opens (a primary
//     that hangs past its timeout, and one that answers 500 at once), against a healthy primary;
//  2. decision success rate with one and with two of the four models down.
// The design's chain: gpt-4o, then claude-3.5-sonnet, gemini-2.5-flash, llama-3.1 on groq.
import type { StandInFault } from "../test/support/routerStandIn.js";
import { percentile, saveResults } from "./results.js";
import { privateRedis, startRouterBench, type BenchRedis } from "./routerSetup.js";

const GPT = "openai/gpt-4o";
const CLAUDE = "anthropic/claude-3-5-sonnet";
const PRIMARY_TIMEOUT_MS = 3000;
const LATENCY_DECISIONS = 15;
const SUCCESS_DECISIONS = 60;

const ms = (xs: number[], p: number) => Number(percentile([...xs].sort((a, b) => a - b), p).toFixed(1));
const mean = (xs: number[]) => Number((xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length)).toFixed(1));

async function deadPrimary(redis: BenchRedis, fault: StandInFault | undefined) {
  const bench = await startRouterBench(redis, (c) => {
    c.market.symbols = ["BTC/USDT"];
    c.routing.cacheTtlMs = 0;
    c.routing.modelTimeouts = { [GPT]: PRIMARY_TIMEOUT_MS };
  });
  await bench.app.services.state.chooseModel(GPT);
  // One warm-up decision first (module loading, JIT), then the breaker starts clean.
  await bench.app.decide({ decisionId: "warm-up", symbol: "BTC/USDT", trigger: "chat" });
  if (fault) bench.standIn.setFault(GPT, fault);
  const before: number[] = [];
  const after: number[] = [];
  for (let i = 0; i < LATENCY_DECISIONS; i++) {
    bench.clock.now += 1000; // well inside the 60 s cool-down
    const t0 = performance.now();
    const r = await bench.app.decide({ decisionId: `lat:${i}`, symbol: "BTC/USDT", trigger: "chat" });
    const took = performance.now() - t0;
    const primaryTried = r.attempts?.some((a) => a.model === GPT && !a.skipped) ?? false;
    (primaryTried ? before : after).push(took);
  }
  await bench.stop();
  return { before, after };
}

async function successRate(redis: BenchRedis, down: string[]) {
  const bench = await startRouterBench(redis, (c) => {
    c.market.symbols = ["BTC/USDT"];
    c.routing.cacheTtlMs = 0;
  });
  await bench.app.services.state.chooseModel(GPT);
  for (const m of down) bench.standIn.setFault(m, { kind: "http-500" });
  const latencies: number[] = [];
  let answered = 0;
  let fallbacks = 0;
  for (let i = 0; i < SUCCESS_DECISIONS; i++) {
    bench.clock.now += 5 * 60_000; // the cool-down passes between decisions: dead models keep being probed
    const t0 = performance.now();
    const r = await bench.app.decide({ decisionId: `ok:${i}`, symbol: "BTC/USDT", trigger: i % 4 === 0 ? "chat" : "schedule" });
    latencies.push(performance.now() - t0);
    if (r.model !== "offline-engine" && r.model !== "hold" && r.outcome !== "failed") answered++;
    if (r.attempts?.[0] && !r.attempts[0].ok) fallbacks++;
  }
  const paid = Number(bench.standIn.paidAtomic()) / 1e6;
  await bench.stop();
  return {
    modelsDown: down,
    decisions: SUCCESS_DECISIONS,
    successRate: Number((answered / SUCCESS_DECISIONS).toFixed(4)),
    fallbacks,
    p50Ms: ms(latencies, 50),
    p95Ms: ms(latencies, 95),
    avgUsdcPerDecision: Number((paid / SUCCESS_DECISIONS).toFixed(5)),
  };
}

export async function benchRouterResilience(): Promise<Record<string, unknown>> {
  const redis = await privateRedis();
  const figures: Record<string, unknown> = {};
  try {
    console.log(`router resilience: dead primary (${GPT}, timeout ${PRIMARY_TIMEOUT_MS} ms, breaker after 3 failures), ${LATENCY_DECISIONS} decisions each`);
    const healthy = await deadPrimary(redis, undefined);
    figures.healthyPrimary = { decisions: LATENCY_DECISIONS, p50Ms: ms(healthy.before, 50), p95Ms: ms(healthy.before, 95) };
    console.log(`  healthy primary:            p50 ${ms(healthy.before, 50)} ms`);
    for (const [key, label, fault] of [
      ["hangingPrimary", "primary hangs past timeout", { kind: "hang" } as StandInFault],
      ["failingPrimary", "primary answers HTTP 500  ", { kind: "http-500" } as StandInFault],
    ] as const) {
      const r = await deadPrimary(redis, fault);
      figures[key] = {
        decisionsBeforeOpen: r.before.length,
        beforeOpenMeanMs: mean(r.before),
        decisionsAfterOpen: r.after.length,
        afterOpenP50Ms: ms(r.after, 50),
        afterOpenP95Ms: ms(r.after, 95),
      };
      console.log(`  ${label}: before the breaker opens ${mean(r.before)} ms (mean of ${r.before.length}); after ${ms(r.after, 50)} ms (p50 of ${r.after.length}, p95 ${ms(r.after, 95)} ms)`);
    }

    console.log(`router resilience: success rate over ${SUCCESS_DECISIONS} decisions, chain ${GPT} -> claude -> gemini -> llama, down = HTTP 500 on every call`);
    for (const [key, down] of [
      ["noneDown", []],
      ["oneDown", [GPT]],
      ["twoDown", [GPT, CLAUDE]],
    ] as const) {
      const r = await successRate(redis, [...down]);
      figures[key] = r;
      console.log(`  ${String(down.length)} of 4 down: ${(r.successRate * 100).toFixed(1)}% answered by a model, ${r.fallbacks} fallbacks, p50 ${r.p50Ms} ms, p95 ${r.p95Ms} ms, $${r.avgUsdcPerDecision.toFixed(4)} per decision`);
    }
  } finally {
    await redis.stop();
  }
  saveResults("routerResilience", figures);
  return figures;
}
