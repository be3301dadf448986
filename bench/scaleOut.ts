// Scale-out figures: decisions/s with 1, 2 and 4 workers when the model takes 1 s (bound by
// concurrency, not CPU); the frontend lease's failover time; notice delivery latency through the
// stream, p50/p95; and each role's startup time and idle resident memory as its own process.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { scriptedModel, type ModelV2 } from "../src/agent/scriptedModel.js";
import { buildApp } from "../src/app.js";
import { FrontendLease } from "../src/cluster/lease.js";
import { sleep } from "../src/sleep.js";
import { NoticeConsumer, publishNotice } from "../src/cluster/noticeStream.js";
import { loadConfig } from "../src/config/config.js";
import { createLog } from "../src/log.js";
import { ModelLayer } from "../src/models/modelLayer.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { freePort, percentile, saveResults } from "./results.js";

const MODEL_MS = 1000;
const hold = () => `<response><action_call name="RiskManagement">${JSON.stringify({ stance: "hold", confidence: 0.6, reasons: ["bench"] })}</action_call></response>`;

function slowModels(): ModelLayer {
  const factory = (id: string): ModelV2 => {
    const m = scriptedModel(id, hold);
    return { ...m, doStream: async (o) => (await sleep(MODEL_MS), m.doStream(o)) };
  };
  return new ModelLayer({ factory, primary: "bench/one-second", fallbacks: [], estimateUsdc: 0 });
}

async function throughput(url: string, workers: number, concurrency: number): Promise<number> {
  const loaded = loadConfig({ SYMBOLS: "BTC/USDT", LOG_LEVEL: "error", DECISION_CACHE_TTL_SECONDS: "0" });
  if (!loaded.ok) throw new Error(loaded.message);
  const app = await buildApp(loaded.config, url, { models: slowModels(), queuePrefix: `bench-${workers}` });
  const connection = { url, maxRetriesPerRequest: null };
  const name = `decisions-${workers}`;
  const queue = new Queue(name, { connection, prefix: `bench-${workers}` });
  const events = new QueueEvents(name, { connection, prefix: `bench-${workers}` });
  await events.waitUntilReady();
  const pool = Array.from({ length: workers }, () => new Worker(name, (job) => app.decide({ decisionId: `bench:${workers}:${job.id}`, symbol: "BTC/USDT", trigger: "schedule" }), { connection, prefix: `bench-${workers}`, concurrency }));
  const jobs = 8 * workers * concurrency;
  let done = 0;
  const all = new Promise<void>((resolve) => events.on("completed", () => ++done === jobs && resolve()));
  const t0 = performance.now();
  await queue.addBulk(Array.from({ length: jobs }, (_, i) => ({ name: "decide", data: {}, opts: { jobId: `j${i}` } })));
  await all;
  const perSecond = jobs / ((performance.now() - t0) / 1000);
  await Promise.all(pool.map((w) => w.close()));
  await events.close();
  await queue.close();
  await app.stop();
  return perSecond;
}

async function failover(url: string, ttlMs: number, rounds: number): Promise<number[]> {
  const log = createLog("error", (s) => s);
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const key = `bench:lease:${ttlMs}:${i}`;
    const a = new Redis(url, { enableOfflineQueue: false });
    const b = new Redis(url, { enableOfflineQueue: false });
    a.on("error", () => {});
    await Promise.all([new Promise((r) => a.once("ready", r)), new Promise((r) => b.once("ready", r))]);
    let tookOver: number | undefined;
    const first = new FrontendLease(a, { ttlMs, key, log, onActive: async () => {}, onInactive: async () => {} });
    await first.start();
    const second = new FrontendLease(b, { ttlMs, key, log, onActive: async () => void (tookOver = performance.now()), onInactive: async () => {} });
    await second.start();
    // The active one dies: its connection drops with the lease still in Redis, unreleased.
    const diedAt = performance.now();
    a.disconnect();
    await first.stop();
    while (tookOver === undefined) await sleep(20);
    out.push(tookOver - diedAt);
    await second.stop();
    b.disconnect();
  }
  return out;
}

async function noticeLatency(url: string, count: number): Promise<number[]> {
  const log = createLog("error", (s) => s);
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const reader = new Redis(url, { maxRetriesPerRequest: null });
  await redis.set("cluster:frontend:lease", "bench-frontend");
  const latencies: number[] = [];
  const consumer = new NoticeConsumer({
    redis: reader,
    leaseId: "bench-frontend",
    isActive: () => true,
    lateAfterMs: 60_000,
    log,
    deliver: async (input) => void latencies.push(Date.now() - Number((input as { text: string }).text)),
  });
  consumer.start();
  for (let i = 0; i < count; i++) {
    await publishNotice(redis, { kind: "info", text: String(Date.now()) });
    await sleep(10);
  }
  while (latencies.length < count) await sleep(20);
  await consumer.stop();
  await redis.quit();
  await reader.quit();
  return latencies.sort((x, y) => x - y);
}

/** One role as its own process: milliseconds to the banner, and resident memory after 5 s idle. */
async function roleProcess(url: string, role: string, dataDir: string): Promise<{ startupMs: number; idleRssMb: number }> {
  const root = new URL("..", import.meta.url).pathname;
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? dataDir, REDIS_URL: url, REDIS_AUTOSTART: "false", CONSOLE: "off", LOG_LEVEL: "error", DATA_DIR: dataDir, ROLE: role };
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const startupMs = await new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\nReady: ")) resolve(performance.now() - t0);
    });
    child.on("exit", (code) => reject(new Error(`${role} exited with ${code}: ${out.slice(-500)}`)));
  });
  await sleep(5_000);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1];
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  return { startupMs, idleRssMb: Number(rss ?? 0) / 1024 };
}

export async function benchScaleOut(): Promise<unknown> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-scale-"));
  const redis = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  try {
    const concurrency = 2;
    const perWorkers: Record<string, number> = {};
    for (const n of [1, 2, 4]) perWorkers[String(n)] = Number((await throughput(redis.url, n, concurrency)).toFixed(2));
    const fo = (await failover(redis.url, 3_000, 3)).sort((a, b) => a - b);
    const lat = await noticeLatency(redis.url, 200);
    const roles: Record<string, { startupMs: number; idleRssMb: number }> = {};
    for (const role of ["worker", "frontend", "all"]) {
      const flush = new Redis(redis.url);
      await flush.flushdb();
      await flush.quit();
      const r = await roleProcess(redis.url, role, join(dataDir, role));
      roles[role] = { startupMs: Math.round(r.startupMs), idleRssMb: Number(r.idleRssMb.toFixed(0)) };
    }
    const figures = {
      modelMs: MODEL_MS,
      concurrencyPerWorker: concurrency,
      decisionsPerSecondByWorkers: perWorkers,
      failoverMsAtLease3s: { min: Math.round(fo[0]!), max: Math.round(fo.at(-1)!) },
      noticeLatencyMs: { p50: percentile(lat, 50), p95: percentile(lat, 95) },
      roles,
    };
    console.log(`scale-out (model takes ${MODEL_MS} ms, ${concurrency} decisions at a time per worker):`);
    console.log(`  decisions/s by workers: ${Object.entries(perWorkers).map(([n, v]) => `${n}: ${v}`).join(", ")}`);
    console.log(`  frontend failover (lease 3 s): ${figures.failoverMsAtLease3s.min}-${figures.failoverMsAtLease3s.max} ms`);
    console.log(`  notice delivery through the stream: p50 ${figures.noticeLatencyMs.p50} ms, p95 ${figures.noticeLatencyMs.p95} ms`);
    for (const [role, r] of Object.entries(roles)) console.log(`  ${role}: startup ${r.startupMs} ms to the banner (tsx), idle RSS ${r.idleRssMb} MB`);
    saveResults("scaleOut", figures);
    return figures;
  } finally {
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
