// Average USDC per symbol-decision on a fixed reference workload, under several policies: always
// gpt-4o, selection alone, selection plus cache, all savers on, and selection plus cache with paid
// research included (the research stand-in at the design's $0.07 per cycle). The real provider pays the
// router stand-in (design prices: gpt-4o $0.10, claude $0.05, gemini $0.02, llama $0.01 per call)
// over loopback; the figure is what the stand-in was paid, divided by the decisions made.
//
// Reference workload (fixed): BTC/USDT, ETH/USDT and DOGE/USDT on real Binance 2h candles, one
// simulated day (12 candles each); a scheduled decision per symbol every 5 minutes (the default
// DECISION_INTERVAL_SECONDS), the three of a tick at once as the job queue runs them; plus 48
// /decide from chat at seeded random times and symbols.
import type { Config } from "../src/config/config.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";
import { ResearchStandIn } from "../test/support/researchStandIn.js";
import { saveResults } from "./results.js";
import { privateRedis, startRouterBench, type BenchRedis } from "./routerSetup.js";

const SYMBOLS = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"];
const INTERVAL_MS = 5 * 60_000;
const DAY_MS = 24 * 3600_000;
const CHAT_PER_DAY = 48;

interface Event {
  at: number;
  trigger: "schedule" | "chat";
  symbols: string[];
}

/** The day's decisions, the same for every policy. */
function workload(): Event[] {
  const events: Event[] = [];
  for (let at = 0; at < DAY_MS; at += INTERVAL_MS) events.push({ at, trigger: "schedule", symbols: SYMBOLS });
  let seed = 20260105;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < CHAT_PER_DAY; i++) {
    events.push({ at: Math.floor(rand() * DAY_MS) + 1, trigger: "chat", symbols: [SYMBOLS[Math.floor(rand() * SYMBOLS.length)]!] });
  }
  return events.sort((a, b) => a.at - b.at);
}

interface Policy {
  name: string;
  key: string;
  pin?: string;
  edit(c: Config): void;
  /** Paid research from the research stand-in: USDC per call, and how long one reply serves. */
  research?: { price: number; ttlMs: number };
}

const POLICIES: Policy[] = [
  { name: "always gpt-4o", key: "alwaysGpt4o", pin: "openai/gpt-4o", edit: (c) => (c.routing.cacheTtlMs = 0) },
  { name: "selection alone", key: "selection", edit: (c) => (c.routing.cacheTtlMs = 0) },
  { name: "selection + cache (TTL 30 min)", key: "selectionCache", edit: (c) => (c.routing.cacheTtlMs = 30 * 60_000) },
  {
    name: "all savers (selection, cache 30 min, batch, signal gate 0.3)",
    key: "allSavers",
    edit: (c) => {
      c.routing.cacheTtlMs = 30 * 60_000;
      c.routing.batch = true;
      c.routing.signalGate = true;
      c.routing.signalGateMinScore = 0.3;
    },
  },
  // The default TTL equals the default interval, so the next scheduled decision always just misses.
  { name: "selection + cache (default TTL 5 min)", key: "selectionCacheDefaultTtl", edit: (c) => (c.routing.cacheTtlMs = 5 * 60_000) },
  // The design's research line: about $0.07 per cycle. One reply per 5-minute cycle serves the
  // cycle's three scheduled decisions and the chat decisions until the next one.
  {
    name: "selection + cache 30 min + paid research ($0.07 per 5-min cycle)",
    key: "selectionCacheResearch",
    edit: (c) => (c.routing.cacheTtlMs = 30 * 60_000),
    research: { price: 0.07, ttlMs: INTERVAL_MS },
  },
];

async function runPolicy(redis: BenchRedis, policy: Policy, events: Event[]) {
  const research = policy.research ? await ResearchStandIn.start({ price: policy.research.price }) : undefined;
  const bench = await startRouterBench(redis, (c) => {
    c.market.symbols = SYMBOLS;
    policy.edit(c);
    if (research && policy.research) {
      c.research.url = research.url;
      c.research.ttlMs = policy.research.ttlMs;
    }
  });
  const start = bench.clock.now;
  if (policy.pin) await bench.app.services.state.chooseModel(policy.pin);
  const records: DecisionRecord[] = [];
  const wall0 = performance.now();
  let n = 0;
  for (const e of events) {
    bench.clock.now = start + e.at;
    const made = await Promise.all(
      e.symbols.map((symbol) => bench.app.decide({ decisionId: `${e.trigger}:${symbol}:${++n}`, symbol, trigger: e.trigger })),
    );
    records.push(...made);
  }
  const wallS = (performance.now() - wall0) / 1000;
  const modelMicro = Number(bench.standIn.paidAtomic());
  const researchMicro = Number(research?.paidAtomic() ?? 0n);
  const paidMicro = modelMicro + researchMicro;
  const byModel: Record<string, number> = {};
  for (const p of bench.standIn.payments) byModel[p.model] = (byModel[p.model] ?? 0) + 1;
  const savers = { cache: 0, batch: 0, gate: 0 };
  for (const r of records) if (r.saver) savers[r.saver]++;
  const decided = records.filter((r) => r.outcome !== "failed" && r.outcome !== "skipped").length;
  await bench.stop();
  await research?.close();
  return {
    policy: policy.name,
    decisions: records.length,
    decided,
    paidCalls: bench.standIn.payments.length,
    paidUsdc: Number((paidMicro / 1e6).toFixed(6)),
    ...(research ? { researchCalls: research.payments.length, researchUsdc: Number((researchMicro / 1e6).toFixed(6)), modelUsdcPerSymbolDecision: Number((modelMicro / 1e6 / records.length).toFixed(5)) } : {}),
    avgUsdcPerSymbolDecision: Number((paidMicro / 1e6 / records.length).toFixed(5)),
    callsByModel: byModel,
    servedByCache: savers.cache,
    servedByBatch: savers.batch,
    gated: savers.gate,
    wallSeconds: Number(wallS.toFixed(1)),
  };
}

export async function benchRouterCost(): Promise<Record<string, unknown>> {
  const events = workload();
  const decisions = events.reduce((s, e) => s + e.symbols.length, 0);
  console.log(`router cost: ${decisions} symbol-decisions (${SYMBOLS.join(", ")}; every 5 min + ${CHAT_PER_DAY} from chat) over one day of real 2h candles`);
  const redis = await privateRedis();
  const figures: Record<string, unknown> = { workload: { symbols: SYMBOLS, intervalMinutes: 5, chatDecisions: CHAT_PER_DAY, days: 1, decisions } };
  try {
    for (const p of POLICIES) {
      const r = await runPolicy(redis, p, events);
      figures[p.key] = r;
      console.log(
        `  ${p.name.padEnd(62)} $${r.avgUsdcPerSymbolDecision.toFixed(5)} per symbol-decision ($${r.paidUsdc.toFixed(2)} for ${r.paidCalls} paid calls; cache ${r.servedByCache}, batch ${r.servedByBatch}, gate ${r.gated}; ${r.wallSeconds} s)` +
          (r.researchCalls !== undefined ? `\n  ${"".padEnd(62)} of which research: $${r.researchUsdc!.toFixed(2)} for ${r.researchCalls} calls (models alone $${r.modelUsdcPerSymbolDecision!.toFixed(5)} per symbol-decision)` : ""),
      );
    }
  } finally {
    await redis.stop();
  }
  saveResults("routerCost", figures);
  return figures;
}
