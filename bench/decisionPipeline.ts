// The decision pipeline with the offline engine over the real BTC 2h candles (a model with next to
// no latency), on a private redis-server. One run reports, side by side:
// - the per-decision overhead of everything except the model (market, indicators, agent, risk,
//   paper order, ledger, Redis), p50 and p99, beside a BullMQ no-op job on the same Redis; the
//   offline engine decides outside core's run (issue 14 allows it, with the same validation, ledger
//   and audit), so the same engine is also served as a zero-latency router model, which goes
//   through core's run and the router's paid-call path, for what a model route costs;
// - Redis commands and bytes sent to Redis per decision (INFO stats and commandstats, no MONITOR);
// - the heap after a forced GC every 1,000 decisions, and resident memory idle and after the run.
// The measuring runs in a child process started with --expose-gc. Decision count: --decisions=N
// (or BENCH_DECISIONS); default 10,000.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { DecisionInputs } from "../src/agent/tradingAgent.js";
import { buildApp, type App } from "../src/app.js";
import { loadConfig } from "../src/config/config.js";
import { decisionToAgentReply, scriptedModel } from "../src/agent/scriptedModel.js";
import { ReplayMarketData } from "../src/market/replay.js";
import { ModelLayer } from "../src/models/modelLayer.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { freePort, percentile, saveResults } from "./results.js";

const STEP_MS = 2 * 3600 * 1000;
const CHECKPOINT_EVERY = 1000;

/** Benchmark figures, not tests: what issue 14 asks the pipeline to reach. */
const TARGETS = {
  overheadP50Ms: 3,
  overheadP99Ms: 10,
  overheadVsBullmqP50: 3,
  decisionsPerSecond: 300,
  redisCommandsPerDecision: 35,
  redisKbWrittenPerDecision: 20,
  heapGrowthBytesPerDecision: 1024,
};

function decisionCount(): number {
  const flag = process.argv.find((a) => a.startsWith("--decisions="));
  const n = Number(flag ? flag.slice("--decisions=".length) : (process.env.BENCH_DECISIONS ?? 10_000));
  if (!Number.isInteger(n) || n < 100) throw new Error(`--decisions must be a whole number of at least 100 (got ${flag ?? process.env.BENCH_DECISIONS})`);
  return n;
}

/**
 * The offline engine's answer served as a router model with no latency: the decision travels
 * core's run (prompt, XML reply, action schema) and the router's call path (breaker, budget,
 * stats, ledger), with the time inside the model measured so it can be taken out.
 */
class ZeroLatencyRouterModel extends ModelLayer {
  modelMs = 0;
  /** The inputs of the decision being made (set by the bench around the agent's decide). */
  current?: DecisionInputs;
  constructor() {
    super({ factory: (id) => this.timed(id), primary: "bench/zero-latency", fallbacks: [], estimateUsdc: 0 });
  }
  private timed(id: string) {
    const m = scriptedModel(id, () => decisionToAgentReply(this.offlineDecision(this.current!)));
    return {
      ...m,
      doStream: async (o: Parameters<typeof m.doStream>[0]) => {
        const t0 = performance.now();
        const r = await m.doStream(o);
        this.modelMs += performance.now() - t0;
        return r;
      },
    };
  }
}

const ms = (n: number) => Number(n.toFixed(3));
const mb = (n: number) => Number((n / 1024 / 1024).toFixed(1));
const gc = () => {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error("run with node --expose-gc");
  collect();
  collect();
};

interface RedisCounters {
  commands: number;
  inputBytes: number;
  usedMemory: number;
  byCommand: Record<string, number>;
}

async function redisCounters(r: Redis): Promise<RedisCounters> {
  const stats = await r.info("stats");
  const memory = await r.info("memory");
  const commandstats = await r.info("commandstats");
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  const byCommand: Record<string, number> = {};
  for (const m of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) byCommand[m[1]!] = Number(m[2]);
  return { commands: field(stats, "total_commands_processed"), inputBytes: field(stats, "total_net_input_bytes"), usedMemory: field(memory, "used_memory"), byCommand };
}

/** What happened in Redis between two readings, per decision; the readings' own INFO calls left out. */
function perDecision(a: RedisCounters, b: RedisCounters, n: number) {
  const infoCalls = 3;
  const byCommand: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(b.byCommand)) {
    const d = calls - (a.byCommand[cmd] ?? 0) - (cmd === "info" ? infoCalls : 0);
    if (d > 0) byCommand[cmd] = Number((d / n).toFixed(2));
  }
  return {
    commands: Number(((b.commands - a.commands - infoCalls) / n).toFixed(1)),
    kbWritten: Number(((b.inputBytes - a.inputBytes) / n / 1024).toFixed(2)),
    redisMemoryKb: Number(((b.usedMemory - a.usedMemory) / n / 1024).toFixed(2)),
    byCommand: Object.fromEntries(Object.entries(byCommand).sort((x, y) => y[1] - x[1])),
  };
}

/** The floor: one BullMQ no-op job at a time, added and seen completed, on the same Redis. */
async function bullmqFloor(url: string, jobs: number) {
  const connection = { url, maxRetriesPerRequest: null };
  const queue = new Queue("bench-floor", { connection });
  const waiting = new Map<string, () => void>();
  const worker = new Worker("bench-floor", async () => undefined, { connection, concurrency: 1 });
  worker.on("completed", (job) => waiting.get(job.id!)?.());
  await worker.waitUntilReady();
  const times: number[] = [];
  const warmup = Math.min(200, jobs / 10);
  for (let i = 0; i < jobs + warmup; i++) {
    const t0 = performance.now();
    const done = new Promise<void>((resolve) => waiting.set(`j${i}`, resolve));
    await queue.add("noop", {}, { jobId: `j${i}`, removeOnComplete: true, removeOnFail: true });
    await done;
    waiting.delete(`j${i}`);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  times.sort((a, b) => a - b);
  return { jobs, p50Ms: ms(percentile(times, 50)), p99Ms: ms(percentile(times, 99)) };
}

/** The measuring half, in the child process. */
async function measure(decisions: number) {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-redis-"));
  // A private Redis on its own port, so the benchmark never touches a user's data.
  const redis = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const probe = new Redis(redis.url);
  await probe.flushdb();

  const floor = await bullmqFloor(redis.url, Math.min(2000, decisions));

  const loaded = loadConfig({ SYMBOLS: "BTC/USDT", LOG_LEVEL: "error" });
  if (!loaded.ok) throw new Error(loaded.message);
  const clock = { now: 0 };
  const market = new ReplayMarketData({
    dir: fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url)),
    timeframe: "2h",
    clock: () => clock.now,
    epoch: 0,
    stepMs: STEP_MS,
  });
  // The product's default: the offline engine, which decides outside core's run. Its own work (a
  // few comparisons on the snapshot) counts as overhead here: there is no model to take out.
  const app = await buildApp(loaded.config, redis.url, { clock: () => clock.now, market });
  const agent = app.services.agent;

  let n = 0;
  const one = async (on: App = app, models?: ZeroLatencyRouterModel) => {
    const modelBefore = models?.modelMs ?? 0;
    const t0 = performance.now();
    const r = await on.decide({ decisionId: `bench:${n++}`, symbol: "BTC/USDT", trigger: "schedule" });
    const total = performance.now() - t0;
    clock.now += STEP_MS; // one real candle later
    return { total, overhead: total - ((models?.modelMs ?? 0) - modelBefore), outcome: r.outcome, model: r.model };
  };

  // Idle: the app built, nothing decided yet.
  gc();
  await new Promise((r) => setTimeout(r, 200));
  const idleRedis0 = await redisCounters(probe);
  await new Promise((r) => setTimeout(r, 1000));
  const idleRedis1 = await redisCounters(probe);
  const idle = { rssMb: mb(process.memoryUsage().rss), heapMb: mb(process.memoryUsage().heapUsed), redisCommandsPerSecond: idleRedis1.commands - idleRedis0.commands - 3 };

  const warmup = Math.min(200, Math.floor(decisions / 10));
  for (let i = 0; i < warmup; i++) await one();

  const overheads: number[] = [];
  const totals: number[] = [];
  const outcomes: Record<string, number> = {};
  const heap: { decisions: number; heapMb: number; rssMb: number }[] = [];
  const checkpoint = (done: number) => {
    gc();
    const mem = process.memoryUsage();
    heap.push({ decisions: done, heapMb: Number((mem.heapUsed / 1024 / 1024).toFixed(2)), rssMb: mb(mem.rss) });
    return mem.heapUsed;
  };
  const heap0 = checkpoint(0);
  let heapEnd = heap0;
  const redis0 = await redisCounters(probe);
  let busyMs = 0;
  for (let i = 1; i <= decisions; i++) {
    const r = await one();
    busyMs += r.total;
    overheads.push(r.overhead);
    totals.push(r.total);
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    if (i % CHECKPOINT_EVERY === 0 || i === decisions) heapEnd = checkpoint(i);
  }
  const redis1 = await redisCounters(probe);
  const heap1 = heap[heap.length - 1]!;
  const held = await agent.held();

  await app.stop();

  // A model route: the same engine as a zero-latency router model, through core's run and the
  // router's call path, on a fresh database (API-key mode, nothing paid).
  await probe.flushdb();
  const routed = new ZeroLatencyRouterModel();
  const routeApp = await buildApp(loaded.config, redis.url, { clock: () => clock.now, market, models: routed });
  // The agent's share: its decide() less the model inside it.
  let agentMs = 0;
  const realDecide = routeApp.services.agent.decide.bind(routeApp.services.agent);
  routeApp.services.agent.decide = async (inputs, model, deadlineMs) => {
    routed.current = inputs;
    const t0 = performance.now();
    const m0 = routed.modelMs;
    const out = await realDecide(inputs, model, deadlineMs);
    agentMs += performance.now() - t0 - (routed.modelMs - m0);
    return out;
  };
  const routeCount = Math.min(2000, decisions);
  for (let i = 0; i < Math.min(200, routeCount / 10); i++) await one(routeApp, routed);
  agentMs = 0;
  const route: number[] = [];
  const routeModels: Record<string, number> = {};
  let routeBusyMs = 0;
  const modelMs0 = routed.modelMs;
  const redisRoute0 = await redisCounters(probe);
  for (let i = 0; i < routeCount; i++) {
    const r = await one(routeApp, routed);
    route.push(r.overhead);
    routeBusyMs += r.total;
    routeModels[r.model] = (routeModels[r.model] ?? 0) + 1;
  }
  const redisRoute1 = await redisCounters(probe);
  await routeApp.stop();

  await probe.quit();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });

  overheads.sort((a, b) => a - b);
  totals.sort((a, b) => a - b);
  route.sort((a, b) => a - b);
  const overheadP50Ms = ms(percentile(overheads, 50));
  const redisPer = perDecision(redis0, redis1, decisions);
  const heapGrowthBytesPerDecision = Math.round((heapEnd - heap0) / decisions);
  const decisionsPerSecond = Number((decisions / (busyMs / 1000)).toFixed(1));
  const figures = {
    decisions,
    warmupDecisions: warmup,
    decisionsPerSecond,
    overheadP50Ms,
    overheadP99Ms: ms(percentile(overheads, 99)),
    totalP50Ms: ms(percentile(totals, 50)),
    bullmqNoopJob: floor,
    overheadVsBullmqP50: Number((overheadP50Ms / floor.p50Ms).toFixed(2)),
    modelRoute: {
      decisions: routeCount,
      overheadP50Ms: ms(percentile(route, 50)),
      overheadP99Ms: ms(percentile(route, 99)),
      decisionsPerSecond: Number((routeCount / (routeBusyMs / 1000)).toFixed(1)),
      agentMsPerDecision: ms(agentMs / routeCount),
      modelMsPerDecision: ms((routed.modelMs - modelMs0) / routeCount),
      answeredBy: routeModels,
      redis: perDecision(redisRoute0, redisRoute1, routeCount),
    },
    redisCommandsPerDecision: redisPer.commands,
    redisKbWrittenPerDecision: redisPer.kbWritten,
    redisMemoryKbPerDecision: redisPer.redisMemoryKb,
    redisCommandsByType: redisPer.byCommand,
    heapGrowthBytesPerDecision,
    heapAfterGc: heap,
    idle,
    rssAfterMb: heap1.rssMb,
    heldByAgentAfter: held,
    outcomes,
  };
  const reached = {
    overheadP50Ms: figures.overheadP50Ms <= TARGETS.overheadP50Ms,
    overheadP99Ms: figures.overheadP99Ms <= TARGETS.overheadP99Ms,
    overheadVsBullmqP50: figures.overheadVsBullmqP50 <= TARGETS.overheadVsBullmqP50,
    decisionsPerSecond: decisionsPerSecond >= TARGETS.decisionsPerSecond,
    redisCommandsPerDecision: redisPer.commands <= TARGETS.redisCommandsPerDecision,
    redisKbWrittenPerDecision: redisPer.kbWritten <= TARGETS.redisKbWrittenPerDecision,
    heapGrowthBytesPerDecision: heapGrowthBytesPerDecision <= TARGETS.heapGrowthBytesPerDecision,
  };
  return { ...figures, targets: TARGETS, reached };
}

export async function benchDecisionPipeline(): Promise<Record<string, unknown>> {
  const decisions = decisionCount();
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", self, `--child-decisions=${decisions}`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const line = out.trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{")) throw new Error(`decision pipeline bench failed (exit ${code}): ${out.slice(-2000)}`);
  const f = JSON.parse(line) as Awaited<ReturnType<typeof measure>>;
  const ok = (k: keyof typeof f.reached) => (f.reached[k] ? "ok" : "MISSED");
  console.log(`decision pipeline (offline engine, ${f.decisions} decisions over real BTC/USDT 2h candles, after ${f.warmupDecisions} warm-up):`);
  console.log(`  overhead excluding the model p50 ${f.overheadP50Ms} ms [${ok("overheadP50Ms")} <= ${TARGETS.overheadP50Ms}], p99 ${f.overheadP99Ms} ms [${ok("overheadP99Ms")} <= ${TARGETS.overheadP99Ms}]`);
  console.log(`  BullMQ no-op job p50 ${f.bullmqNoopJob.p50Ms} ms, p99 ${f.bullmqNoopJob.p99Ms} ms; overhead/floor ${f.overheadVsBullmqP50}x [${ok("overheadVsBullmqP50")} <= ${TARGETS.overheadVsBullmqP50}x]`);
  const r = f.modelRoute;
  console.log(`  a zero-latency router model (core's run, the router's call path; not a target): p50 ${r.overheadP50Ms} ms, p99 ${r.overheadP99Ms} ms, ${r.decisionsPerSecond} decisions/s, core's run ${r.agentMsPerDecision} ms per decision, ${r.redis.commands} Redis commands; answered by ${JSON.stringify(r.answeredBy)}`);
  console.log(`  ${f.decisionsPerSecond} decisions/s [${ok("decisionsPerSecond")} >= ${TARGETS.decisionsPerSecond}]`);
  console.log(`  Redis per decision: ${f.redisCommandsPerDecision} commands [${ok("redisCommandsPerDecision")} <= ${TARGETS.redisCommandsPerDecision}], ${f.redisKbWrittenPerDecision} KB sent [${ok("redisKbWrittenPerDecision")} <= ${TARGETS.redisKbWrittenPerDecision}], ${f.redisMemoryKbPerDecision} KB kept`);
  console.log(`  heap after GC: ${f.heapAfterGc.map((h) => `${h.decisions}:${h.heapMb}MB`).join(" ")}; growth ${f.heapGrowthBytesPerDecision} B/decision [${ok("heapGrowthBytesPerDecision")} <= ${TARGETS.heapGrowthBytesPerDecision}]`);
  console.log(`  resident memory idle ${f.idle.rssMb} MB, after ${f.rssAfterMb} MB; held by the agent after: ${JSON.stringify(f.heldByAgentAfter)}`);
  saveResults("decisionPipeline", f as unknown as Record<string, unknown>);
  return f as unknown as Record<string, unknown>;
}

const childFlag = process.argv.find((a) => a.startsWith("--child-decisions="));
if (childFlag) {
  const figures = await measure(Number(childFlag.slice("--child-decisions=".length)));
  process.stdout.write("\n" + JSON.stringify(figures) + "\n");
  process.exit(0);
}
