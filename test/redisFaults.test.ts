// Redis faults as the agent's operator sees them, on its console: Redis killed and started again,
// and Redis at maxmemory with noeviction (refusing every write), then freed. The agent runs as an
// OS process (ROLE=all, every queue, worker and metrics handle it has) on a private redis-server.
// Each fault is one line when it starts and one when it ends: no stack trace, no flood.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { AgentProcesses, freePort, PrivateRedis, sleep, waitUntil, type AgentProcess } from "./support/cluster.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp(extra: Record<string, string> = {}): Promise<{ server: PrivateRedis; agent: AgentProcess; procs: AgentProcesses; healthz(): Promise<{ code: number; failing: string[]; parts: Record<string, { ok: boolean; detail?: string }> }>; passed(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "redis-faults-"));
  const server = new PrivateRedis(await freePort(), dir);
  await server.start();
  const metrics = await freePort();
  const procs = new AgentProcesses({
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? dir,
    REDIS_URL: server.url,
    REDIS_AUTOSTART: "false",
    CONSOLE: "off",
    DATA_DIR: join(dir, "data"),
    METRICS_PORT: String(metrics),
    // The monitors run often, so a fault meets a busy worker loop.
    POSITION_CHECK_SECONDS: "1",
    BALANCE_CHECK_SECONDS: "1",
    ...extra,
  });
  let passed = false;
  cleanups.push(async () => {
    procs.killAll();
    if (!passed) process.stderr.write(`redis faults: process logs kept in ${procs.keepLogs("redis-faults")}\n`);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const agent = procs.start("agent", "all", { LOG_LEVEL: "info" });
  await waitUntil(() => agent.ready || agent.exited, 120_000, "the agent's banner");
  expect(agent.ready, agent.log).toBe(true);
  // The metrics' own queue handles are opened by a scrape: they meet the fault too.
  expect((await fetch(`http://127.0.0.1:${metrics}/metrics`)).status).toBe(200);
  const healthz = async () => {
    const res = await fetch(`http://127.0.0.1:${metrics}/healthz`);
    return { code: res.status, ...((await res.json()) as { failing: string[]; parts: Record<string, { ok: boolean; detail?: string }> }) };
  };
  return { server, agent, procs, healthz, passed: () => void (passed = true) };
}

/** What the operator sees of a fault: the lines written from `from` on, and any stack trace in them. */
function linesSince(agent: AgentProcess, from: number): string[] {
  return agent.log.slice(from).split("\n").filter((l) => l.trim() !== "");
}
const stackLines = (lines: string[]) => lines.filter((l) => /^\s+at |^\w*Error: /.test(l));

describe("Redis faults under a running agent", () => {
  it("Redis killed and started again: one line when it goes, one when it is back, and no stack trace", async () => {
    const { server, agent, procs, healthz, passed } = await setUp();
    const from = agent.log.length;
    await server.kill();
    await waitUntil(() => agent.log.includes("Redis unreachable"), 30_000, "the outage line");
    const down = await healthz();
    expect(down.code).toBe(503);
    expect(down.failing).toContain("redis");
    // The outage lasts a while: every connection, queue and worker retries through it.
    await sleep(6_000);
    await server.start();
    await waitUntil(() => agent.log.includes("Redis is back"), 60_000, "the line saying Redis is back");
    await procs.terminate([agent], 60_000);
    expect(agent.exitCode, agent.log).toBe(0);

    const lines = linesSince(agent, from);
    expect(stackLines(lines), lines.join("\n")).toEqual([]);
    expect(lines.filter((l) => l.includes("Redis unreachable")), lines.join("\n")).toHaveLength(1);
    expect(lines.filter((l) => l.includes("Redis is back")), lines.join("\n")).toHaveLength(1);
    expect(lines.filter((l) => /ECONNREFUSED|Connection is closed/.test(l) && !l.includes("Redis unreachable")), lines.join("\n")).toEqual([]);
    // The outage, the recovery, and the stop: a handful of lines, not one per retry.
    expect(lines.length, lines.join("\n")).toBeLessThan(15);
    passed();
  }, 240_000);

  it("Redis at maxmemory (noeviction) refusing writes, then freed: the job loop backs off, says so once, and says when it recovers", async () => {
    const { server, agent, procs, healthz, passed } = await setUp();
    const admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    cleanups.push(() => void admin.disconnect());
    // Full: about 3 MB of filler, then maxmemory 1 MB below what is used, so every write is refused
    // (at the limit itself, one small write passes now and then) until the filler goes.
    await admin.config("SET", "maxmemory-policy", "noeviction");
    const filler = "x".repeat(64 * 1024);
    const n = 48;
    for (let i = 0; i < n; i++) await admin.set(`filler:${i}`, filler);
    const from = agent.log.length;
    const used = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))?.[1]);
    await admin.config("SET", "maxmemory", String(used - 1024 * 1024));
    await expect(admin.set("one-more", "x")).rejects.toThrow(/^OOM/);
    await waitUntil(() => agent.log.includes("Redis refuses writes"), 60_000, "the line saying Redis refuses writes");
    // Redis answers PING, and /healthz still says it is failing: it takes no writes.
    const full = await healthz();
    expect(full.code).toBe(503);
    expect(full.parts.redis).toMatchObject({ ok: false, detail: expect.stringMatching(/^refuses writes \(OOM command not allowed/) });
    // Full for a while: a worker loop that retries at once would write thousands of lines here, and
    // send Redis thousands of refused scripts.
    const refusedScripts = async () => Number(/cmdstat_evalsha:.*failed_calls=(\d+)/.exec(await admin.info("commandstats"))?.[1] ?? 0);
    const refused0 = await refusedScripts();
    await sleep(8_000);
    const refusedWhileFull = (await refusedScripts()) - refused0;
    const whileFull = linesSince(agent, from).length;
    for (let i = 0; i < n; i++) await admin.del(`filler:${i}`);
    await waitUntil(() => agent.log.includes("Redis takes writes again"), 90_000, "the line saying Redis takes writes again");
    // The monitors run again: a position check completes after the recovery.
    const done = async () => Number((await admin.call("ZCARD", "bull:monitors:completed")) ?? 0);
    const before = await done();
    await waitUntil(async () => (await done()) > before, 30_000, "a monitors job completing after the recovery");
    expect((await healthz()).parts.redis).toEqual({ ok: true });
    await procs.terminate([agent], 60_000);
    expect(agent.exitCode, agent.log).toBe(0);

    const lines = linesSince(agent, from);
    expect(stackLines(lines), lines.join("\n")).toEqual([]);
    expect(lines.filter((l) => l.includes("Redis refuses writes")), lines.join("\n")).toHaveLength(1);
    expect(lines.filter((l) => l.includes("Redis takes writes again")), lines.join("\n")).toHaveLength(1);
    expect(whileFull, lines.join("\n")).toBeLessThan(20);
    // Backed off: a few probes and stalled checks in 8 s, not a loop.
    expect(refusedWhileFull).toBeLessThan(100);
    expect(lines.length, lines.join("\n")).toBeLessThan(100);
    passed();
  }, 240_000);
});
