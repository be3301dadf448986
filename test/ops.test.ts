// /healthz and /metrics, read over real HTTP on 127.0.0.1 and parsed as Prometheus text.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { startDevChain } from "../src/chain/devChain.js";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { MetricsRegistry } from "../src/ops/metrics.js";
import { startOps } from "../src/ops/serve.js";
import { startOpsServer, type OpsServer } from "../src/ops/server.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { buyReply, scriptedModels, startTestApp, testConfig, type TestApp } from "./support/app.js";

/** Each sample line of an exposition, as "name{label="v",...}" -> value (labels in the order written). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const get = async (s: OpsServer, path: string) => {
  const res = await fetch(`http://${s.host}:${s.port}${path}`);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
};

let t: TestApp | undefined;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await t?.app.stop();
  t = undefined;
});

describe("/metrics and /healthz", () => {
  it("reports decisions, orders, spend against the caps, breakers, balance, pause, queues and added gauges", async () => {
    t = await startTestApp(testConfig((c) => (c.market.symbols = ["BTC/USDT"])), { models: scriptedModels(() => buyReply(5), 0.05), clock: Date.now });
    const ops = await startOps(t.app, { host: "127.0.0.1", port: 0 });
    cleanup.push(() => ops.stop());
    expect(ops.host).toBe("127.0.0.1");
    // Another part of the agent (the frontend's lease, say) adds its own gauge.
    let active = false;
    t.app.metrics.gauge("frontend_active", () => active, { help: "1 while this process holds the frontend lease" });

    await t.run("/decide BTC", "trader");
    await t.app.startJobs();
    active = true;
    const first = await get(ops, "/metrics");
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parse(first.body);
    expect(m.get('agent_decisions_today{outcome="order",trigger="chat"}')).toBe(1);
    expect(m.get('agent_orders_today{side="buy",status="filled"}')).toBe(1);
    expect(m.get('agent_spend_usdc{period="day"}')).toBeCloseTo(0.05, 6);
    expect(m.get('agent_spend_usdc{period="month"}')).toBeCloseTo(0.05, 6);
    expect(m.get('agent_spend_cap_usdc{period="day"}')).toBe(5);
    expect(m.get('agent_spend_cap_usdc{period="month"}')).toBe(100);
    expect(m.get('agent_model_breaker_state{model="test/scripted"}')).toBe(0);
    expect(m.get("agent_usdc_balance")).toBeCloseTo(9.95, 6);
    expect(m.get("agent_trading_paused")).toBe(0);
    expect(m.get("agent_frontend_active")).toBe(1);
    expect(m.get('agent_info{role="all"}')).toBe(1);
    expect(m.get('agent_chat_connected{chat="captured"}')).toBe(1);
    const decisionJobs = [...m].filter(([k]) => k.startsWith('agent_queue_jobs{queue="decisions"')).reduce((n, [, v]) => n + v, 0);
    expect(decisionJobs).toBeGreaterThanOrEqual(1);
    expect(m.has('agent_queue_jobs{queue="monitors",state="failed"}')).toBe(true);
    expect(m.get("process_resident_memory_bytes")).toBeGreaterThan(10e6);
    expect([...m.keys()].some((k) => k.startsWith("agent_metrics_collect_errors_total"))).toBe(false);

    await t.run("/pause", "trader");
    const after = parse((await get(ops, "/metrics")).body);
    expect(after.get("agent_trading_paused")).toBe(1);

    const h = await get(ops, "/healthz");
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ status: "ok", role: "all", redis: "ok", pid: process.pid, failing: [], parts: { redis: { ok: true }, queues: { ok: true }, workers: { ok: true, detail: "1 live" } } });
    expect((await get(ops, "/nothing")).status).toBe(404);
  });

  it("answers 503 on /healthz and still serves /metrics when Redis is down", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ops-redis-"));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const server = await ensureRedis({ url: `redis://127.0.0.1:${port}`, autostart: true, dataDir: dir });
    cleanup.push(() => server.stop());
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    redis.on("error", () => {});
    cleanup.push(async () => redis.disconnect());
    const metrics = new MetricsRegistry({ timeoutMs: 300, defaultMetrics: false });
    metrics.gauge("redis_keys", () => redis.dbsize());
    const ops = await startOpsServer({ host: "127.0.0.1", port: 0, metrics, redis, role: () => "worker", startedAt: Date.now() - 5_000, pingTimeoutMs: 300 });
    cleanup.push(() => ops.stop());

    const up = await get(ops, "/healthz");
    expect(up.status).toBe(200);
    expect(JSON.parse(up.body)).toMatchObject({ status: "ok", role: "worker", uptimeSeconds: 5 });
    expect(parse((await get(ops, "/metrics")).body).get("agent_redis_keys")).toBe(0);

    await server.stop();
    const down = await get(ops, "/healthz");
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body)).toMatchObject({ status: "unavailable", redis: expect.stringMatching(/^down: /) });
    const m = await get(ops, "/metrics");
    expect(m.status).toBe(200);
    const parsed = parse(m.body);
    expect(parsed.has("agent_redis_keys")).toBe(false);
    expect(parsed.get('agent_metrics_collect_errors_total{gauge="agent_redis_keys"}')).toBe(1);
  });

  it("names each failing part with 503: the queues when a due job waits, the workers when none runs, a chat platform, the chain's RPC; the metrics say the same", async () => {
    t = await startTestApp(testConfig((c) => {
      c.market.symbols = ["BTC/USDT"];
      c.chat.telegram.token = "123456789:AAE-Valid_Telegram_Token_Value_1234";
    }), { clock: Date.now });
    const chain = await startDevChain();
    cleanup.push(() => chain.close());
    t.app.chainWallet = { address: chain.account(1).address, network: "base-sepolia", rpcUrl: chain.url, blocks: 10 };
    let chatProblems: string[] = [];
    t.app.chatHealth = () => ({ telegram: { ok: chatProblems.length === 0, problems: chatProblems } });
    const ops = await startOps(t.app, { host: "127.0.0.1", port: 0 });
    cleanup.push(() => ops.stop());
    const healthz = async () => {
      const r = await get(ops, "/healthz");
      return { status: r.status, body: JSON.parse(r.body) as { failing: string[]; parts: Record<string, { ok: boolean; detail?: string }> } };
    };

    // No worker has started: nothing would run the jobs.
    let h = await healthz();
    expect(h.status).toBe(503);
    expect(h.body.failing).toEqual(["workers"]);
    expect(h.body.parts.workers!.detail).toMatch(/no worker is running/);
    expect(h.body.parts["chat:telegram"]).toEqual({ ok: true });
    expect(h.body.parts.chain).toMatchObject({ ok: true, detail: expect.stringMatching(/^block \d+/) });

    await t.app.startJobs();
    h = await healthz();
    expect(h.status, JSON.stringify(h.body)).toBe(200);

    // A job due ten minutes ago that no worker took: the workers are stuck, though Redis answers.
    const q = new Queue("decisions", { connection: t.app.bull.connection, prefix: t.app.bull.prefix });
    cleanup.push(() => q.close());
    await t.app.stop();
    await q.add("decide", { symbol: "BTC/USDT" }, { timestamp: Date.now() - 600_000 });
    t = await startTestApp(testConfig((c) => {
      c.market.symbols = ["BTC/USDT"];
      c.chat.telegram.token = "123456789:AAE-Valid_Telegram_Token_Value_1234";
    }), { clock: Date.now, url: t.url });
    t.app.chainWallet = { address: chain.account(1).address, network: "base-sepolia", rpcUrl: chain.url, blocks: 10 };
    t.app.chatHealth = () => ({ telegram: { ok: chatProblems.length === 0, problems: chatProblems } });
    const ops2 = await startOps(t.app, { host: "127.0.0.1", port: 0 });
    cleanup.push(() => ops2.stop());
    // A worker heartbeat of another process, so only the queue is at fault.
    await t.app.redis.zadd("cluster:workers", Date.now() + 60_000, "elsewhere:1:x");
    chatProblems = ["Telegram polling down for 42 s: 401 Unauthorized"];
    await chain.stopServing();
    const r = await get(ops2, "/healthz");
    expect(r.status).toBe(503);
    const body = JSON.parse(r.body) as { failing: string[]; parts: Record<string, { ok: boolean; detail?: string }> };
    expect(body.failing.sort()).toEqual(["chain", "chat:telegram", "queues"]);
    expect(body.parts.queues!.detail).toMatch(/^decisions: a job has waited 6\d\d s for a worker/);
    expect(body.parts["chat:telegram"]!.detail).toBe("Telegram polling down for 42 s: 401 Unauthorized");
    expect(body.parts.chain!.detail).toMatch(/^RPC unreachable/);
    expect(body.parts.redis).toEqual({ ok: true });

    const m = parse((await get(ops2, "/metrics")).body);
    expect(m.get("agent_healthy")).toBe(0);
    expect(m.get('agent_health{part="queues"}')).toBe(0);
    expect(m.get('agent_health{part="chain"}')).toBe(0);
    expect(m.get('agent_health{part="chat:telegram"}')).toBe(0);
    expect(m.get('agent_health{part="redis"}')).toBe(1);
    expect(m.get('agent_health{part="workers"}')).toBe(1);
  }, 120_000);

  it("is configured once: off by default, on loopback when a port is given, with a clear error for a taken port", async () => {
    const off = loadConfig({});
    expect(off.ok && off.config.ops.metrics).toBeUndefined();
    const on = loadConfig({ METRICS_PORT: "9464" });
    expect(on.ok && on.config.ops.metrics).toEqual({ port: 9464, host: "127.0.0.1" });
    const bad = loadConfig({ METRICS_PORT: "http" });
    expect(!bad.ok && bad.message).toMatch(/METRICS_PORT: expected a whole number between 1 and 65535, got "http"/);

    const metrics = new MetricsRegistry({ defaultMetrics: false });
    const opts = { host: "127.0.0.1", metrics, redis: { ping: async () => "PONG" }, role: () => "all", startedAt: Date.now() };
    const a = await startOpsServer({ ...opts, port: 0 });
    cleanup.push(() => a.stop());
    await expect(startOpsServer({ ...opts, port: a.port })).rejects.toThrow(new RegExp(`METRICS_PORT ${a.port} is already in use on 127\\.0\\.0\\.1`));
    expect(() => metrics.gauge("frontend-active", () => 1)).toThrow(/letters, digits and _/);
  });
});
