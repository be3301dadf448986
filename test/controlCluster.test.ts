// Control across OS processes: a worker started as `npm run worker` starts it (tsx src/main.ts,
// ROLE=worker), and a frontend in this test process on the same Redis. What the frontend's
// /limits answers "in force" the worker's next order obeys; a symbol the frontend adds, the
// worker decides on.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { afterAll, describe, expect, it } from "vitest";
import { AgentProcesses, waitUntil } from "./support/cluster.js";
import { freshRedisUrl, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";

let procs: AgentProcesses | undefined;
let front: TestApp | undefined;
let dir: string | undefined;
let passed = false;

afterAll(async () => {
  await front?.app.stop();
  if (procs) {
    await procs.terminate(procs.alive(), 30_000).catch(() => procs!.killAll());
    if (!passed) process.stderr.write(`control cluster: process logs kept in ${procs.keepLogs("control-cluster")}\n`);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("control across processes", () => {
  it("a worker process obeys a frontend's /limits from its next order, and decides on a symbol the frontend added", async () => {
    const url = await freshRedisUrl();
    dir = mkdtempSync(join(tmpdir(), "control-cluster-"));
    procs = new AgentProcesses({
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? dir,
      REDIS_URL: url,
      REDIS_AUTOSTART: "false",
      CONSOLE: "off",
      DATA_DIR: join(dir, "data"),
      SYMBOLS: "BTC/USDT",
      DECISION_INTERVAL_SECONDS: "5",
      FIRST_DECISION: "now",
      TRADE_CONFIRM_ABOVE_USDT: "1000000",
    });
    const worker = procs.start("worker", "worker", { LOG_LEVEL: "warn" });
    await waitUntil(() => worker.ready || worker.exited, 90_000, "the worker's banner");
    expect(worker.exited, worker.log).toBe(false);

    // The frontend: this process, on the worker's Redis and queues, with the real clock.
    front = await startTestApp(
      testConfig((c) => {
        c.market.symbols = ["BTC/USDT"];
        c.cluster.role = "frontend";
        c.chat.tradeConfirmAbove = 1_000_000;
      }),
      { url, clock: Date.now, queuePrefix: "bull" },
    );
    const first = await front.run("/trade buy BTC 500", "trader");
    expect(first.text, worker.log).toMatch(/^Manual BUY 0\.\d+ BTC @ [\d,.]+ = 50\d\.\d\d USDT/);

    expect((await front.run("/limits min_order 1000")).text).toMatch(/In force now on every process \(limits version 1\)\.$/);
    const second = await front.run("/trade buy BTC 500", "trader");
    expect(second.error, second.text).toBe(true);
    expect(second.text).toMatch(/under the minimum of 1,?000(\.00)? \(min-order rule\): no order/);

    expect((await front.run("/symbols add ETH")).text).toMatch(/^Added ETH\/USDT/);
    const eth = await waitFor("the worker's first ETH decision", async () => (await front!.app.services.ledger.recent(100)).find((r) => r.symbol === "ETH/USDT" && r.trigger === "schedule"), 45_000);
    expect(eth.id).toMatch(/^sched:ETH\/USDT:/);
    passed = true;
  }, 180_000);

  it("a product started on a fresh Redis schedules its first decision one interval out, says when, and decides nothing before", async () => {
    const url = await freshRedisUrl();
    const home = mkdtempSync(join(tmpdir(), "control-fresh-"));
    const fresh = new AgentProcesses({
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? home,
      REDIS_URL: url,
      REDIS_AUTOSTART: "false",
      CONSOLE: "off",
      DATA_DIR: join(home, "data"),
      SYMBOLS: "BTC/USDT,DOGE/USDT",
      DECISION_INTERVAL_SECONDS: "120",
    });
    try {
      const startedAt = Date.now();
      const p = fresh.start("all", "all", { LOG_LEVEL: "warn" });
      await waitUntil(() => p.ready || p.exited, 90_000, "the banner");
      expect(p.exited, p.log).toBe(false);
      const line = /\n {2}First decision: (\d\d:\d\d:\d\d) UTC \(in about [12] min\): a first start waits one decision interval/.exec(p.log);
      expect(line, p.log).not.toBeNull();
      const decisions = new Queue("decisions", { connection: { url } });
      const monitors = new Queue("monitors", { connection: { url } });
      try {
        const next = (await decisions.getJobSchedulers()).map((s) => s.next!);
        expect(next).toHaveLength(2);
        for (const n of next) expect(n).toBeGreaterThanOrEqual(startedAt + 120_000);
        // The workers run (a monitor scheduled at once is done), and no decision job has run.
        await waitFor("a monitor job to run", async () => (await monitors.getCompletedCount()) > 0, 30_000);
        expect(await decisions.getJobCounts("active", "completed", "failed", "waiting")).toEqual({ active: 0, completed: 0, failed: 0, waiting: 0 });
        expect(await decisions.getDelayedCount()).toBe(2);
      } finally {
        await decisions.close();
        await monitors.close();
      }
    } finally {
      await fresh.terminate(fresh.alive(), 30_000).catch(() => fresh.killAll());
      rmSync(home, { recursive: true, force: true });
    }
  }, 120_000);
});
