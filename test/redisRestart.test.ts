// A Redis restart under a running cluster: a frontend and a worker as OS processes on a private
// redis-server with its append-only file; the server is killed (-9) for longer than the frontend
// lease lasts, then started again on the same port and data directory. Nobody restarts the agent's
// processes: each must reconnect and resume on its own (the scheduled decisions, the notices
// through the stream, chat, work asked for in chat), then drain and exit on SIGTERM.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEASE_KEY } from "../src/cluster/lease.js";
import { AgentProcesses, freePort, PrivateRedis, sleep, waitUntil } from "./support/cluster.js";
import { RouterStandIn } from "./support/routerStandIn.js";
import { TelegramStandIn, type TgChat, type TgUser } from "./support/telegramStandIn.js";

const ALERT_CHAT = -1002;
const ADMIN: TgUser = { id: 42, is_bot: false, first_name: "Ada" };
const DM: TgChat = { id: 42, type: "private", first_name: "Ada" };
const LEASE_S = 3;

// Two processes under tsx, about 25 s on the loaded 2-core machine: part of npm test.
describe("a Redis restart under a frontend and a worker", () => {
  let dir: string;
  let server: PrivateRedis;
  let telegram: TelegramStandIn;
  let router: RouterStandIn;
  let procs: AgentProcesses;
  let passed = false;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "redis-restart-"));
    server = new PrivateRedis(await freePort(), dir);
    await server.start();
    telegram = await new TelegramStandIn(undefined, { conflicts: "newest-wins" }).start();
    let call = 0;
    router = await RouterStandIn.start({
      prices: { "test/model": 0.01 },
      apiKeys: ["sk-redis-restart-test"],
      delayMs: 200,
      reply: () => `<response><action_call name="RiskManagement">${JSON.stringify({ stance: "hold", confidence: 0.6, reasons: [`call #${++call}`] })}</action_call></response>`,
    });
    procs = new AgentProcesses({
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? dir,
      REDIS_URL: server.url,
      REDIS_AUTOSTART: "false",
      CONSOLE: "off",
      DATA_DIR: join(dir, "data"),
      SYMBOLS: "BTC/USDT",
      DECISION_INTERVAL_SECONDS: "5",
      FIRST_DECISION: "now",
      DECISION_MODEL: "router",
      DREAMS_ROUTER_URL: router.url,
      DREAMS_ROUTER_API_KEY: "sk-redis-restart-test",
      ROUTER_AUTH: "api-key",
      PRIMARY_MODEL: "test/model",
      FALLBACK_MODELS: "test/model",
      DECISION_CACHE_TTL_SECONDS: "0",
      TELEGRAM_BOT_TOKEN: telegram.token,
      TELEGRAM_API_URL: telegram.apiRoot,
      TELEGRAM_CHAT_ID: String(ALERT_CHAT),
      TELEGRAM_ALLOWED_USERS: `${ADMIN.id}:admin`,
      NOTIFY: "decision:on,info:on",
      FRONTEND_LEASE_SECONDS: String(LEASE_S),
      JOB_LOCK_SECONDS: "10",
    });
  }, 60_000);

  afterAll(async () => {
    procs?.killAll();
    if (!passed && procs) process.stderr.write(`redis restart: process logs kept in ${procs.keepLogs("redis-restart")}\n`);
    await server?.stop();
    await telegram?.stop();
    await router?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The user asks; resolves with the reply's text once one comes. */
  const answered = async (text: string, ms: number): Promise<string> => {
    const { messageId } = telegram.userSends(ADMIN, DM, text);
    let reply: string | undefined;
    await waitUntil(() => !!(reply = (telegram.sent(DM.id) as { reply_to?: number; text?: string }[]).find((m) => m.reply_to === messageId)?.text), ms, `an answer to ${text}`);
    return reply!;
  };
  const noticesSince = (at: number) => telegram.calls.filter((c) => c.method === "sendMessage" && c.status === 200 && Number(c.params.chat_id) === ALERT_CHAT && performance.timeOrigin + c.at > at && /call #\d+/.test(String(c.params.text)));

  it("every process reconnects and resumes on its own: decisions, notices, chat, remote commands", async () => {
    const frontend = procs.start("frontend", "frontend");
    const worker = procs.start("worker", "worker", { LOG_LEVEL: "info" });
    await waitUntil(() => frontend.ready && worker.ready, 120_000, "the frontend and the worker");
    const before = Date.now();
    await waitUntil(() => noticesSince(before).length > 0, 30_000, "a scheduled decision's notice before the restart");
    expect(await answered("/positions", 20_000)).toMatch(/position/i);

    // Redis dies for longer than the lease lasts: the frontend must step down, not serve blind.
    await server.kill();
    const downAt = Date.now();
    await sleep(LEASE_S * 1000 + 3_000);
    expect(procs.alive().map((p) => p.name)).toEqual(["frontend", "worker"]);
    await server.start();
    const upAt = Date.now();

    // Everything comes back without a restart of the agent's processes.
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    try {
      await waitUntil(async () => (await redis.get(LEASE_KEY))?.split("-")[0] === String(frontend.child.pid), 30_000, "the frontend to hold the lease again");
      await waitUntil(() => noticesSince(upAt).length >= 2, 40_000, "scheduled decisions' notices after the restart");
      const q = new Queue("decisions", { connection: { url: server.url } });
      const after = (await q.getJobs(["completed"], 0, -1)).filter((j) => j.name === "decide" && (j.finishedOn ?? 0) > upAt);
      await q.close();
      expect(after.length).toBeGreaterThanOrEqual(2);
      expect(await answered("/positions", 20_000)).toMatch(/position/i);
      // Work asked for in chat goes through the queue to the worker and back.
      const decided = await answered("/decide BTC", 60_000);
      expect(decided).toMatch(/BTC/);
      expect(decided).not.toMatch(/No worker|failed/);
      const outage = upAt - downAt;
      process.stdout.write(`redis restart: down ${(outage / 1000).toFixed(1)} s; lease, decisions, notices, chat and /decide back within ${((Date.now() - upAt) / 1000).toFixed(1)} s of the restart\n`);
    } finally {
      await redis.quit();
    }
    expect(procs.alive().map((p) => p.name)).toEqual(["frontend", "worker"]);

    // SIGTERM: each drains and exits cleanly.
    await procs.terminate([worker, frontend], 40_000);
    expect([worker.exitCode, frontend.exitCode]).toEqual([0, 0]);
    // The outage was said, not shouted: no stack trace, one line when it went and one when it came back.
    for (const p of [frontend, worker]) {
      expect(p.log.split("\n").filter((l) => /^\s+at |^\w*Error: /.test(l)), p.log).toEqual([]);
      expect(p.log.match(/Redis unreachable/g) ?? [], p.log).toHaveLength(1);
      expect(p.log.match(/Redis is back/g) ?? [], p.log).toHaveLength(1);
    }
    passed = true;
  }, 300_000);
});
