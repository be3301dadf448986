// src/redis/outage.ts in process, on a private redis-server: which lines it folds into one, and
// the pause and resume of job workers around refused writes (the processes' view of the same is
// test/redisFaults.test.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../bench/results.js";
import type { Log } from "../src/log.js";
import { RedisOutage } from "../src/redis/outage.js";
import { RedisServer } from "../src/redis/redisServer.js";
import { waitFor } from "./support/app.js";

let dir: string;
let server: RedisServer;
let redis: Redis;
let admin: Redis;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "redis-outage-"));
  server = new RedisServer({ port: await freePort(), dir, appendonly: false });
  await server.start();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
  await redis.ping();
});

afterAll(async () => {
  redis?.disconnect();
  admin?.disconnect();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function capture(): { log: Log; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (msg: string, extra?: unknown) => lines.push(`${level} ${msg}${extra instanceof Error ? `: ${extra.message}` : ""}`);
  return { lines, log: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } };
}

describe("RedisOutage", () => {
  it("leaves a refused connection to another service alone: only Redis's own trouble is folded", () => {
    const { log, lines } = capture();
    const outage = new RedisOutage({ redis, log, where: server.url });
    const port = new URL(server.url).port;
    const telegram = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    outage.log.warn("Telegram polling failed", telegram);
    expect(lines).toEqual(["warn Telegram polling failed: connect ECONNREFUSED 127.0.0.1:1"]);
    // Redis's own address, while the main connection is ready: a straggler, said nowhere.
    outage.log.error("worker monitors", new Error(`connect ECONNREFUSED 127.0.0.1:${port}`));
    expect(lines).toHaveLength(1);
    outage.stop();
  });

  it("pauses the workers once when writes are refused, those registered later too, and resumes them when memory is free again", async () => {
    const { log, lines } = capture();
    const outage = new RedisOutage({ redis, log, where: server.url, firstProbeMs: 50, maxProbeMs: 200 });
    const calls: string[] = [];
    outage.pauseWhileRefused({ pause: async () => void calls.push("a paused"), resume: async () => void calls.push("a resumed") });

    await admin.config("SET", "maxmemory-policy", "noeviction");
    const filler = "x".repeat(64 * 1024);
    for (let i = 0; i < 32; i++) await admin.set(`filler:${i}`, filler);
    const used = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))?.[1]);
    await admin.config("SET", "maxmemory", String(used - 512 * 1024));
    const refused = await admin.set("one-more", "x").then(() => undefined, (e: Error) => e);
    expect(refused?.message).toMatch(/^OOM/);

    // The same refusal from three places: one line.
    for (const source of ["worker monitors", "worker decisions", "monitors queue"]) outage.listener(source)(refused!);
    outage.log.warn("decisions job decide failed, attempt 1", refused);
    expect(lines.filter((l) => l.includes("Redis refuses writes"))).toHaveLength(1);
    expect(lines).toHaveLength(1);
    expect(outage.condition()).toMatchObject({ reachable: true, writable: false });
    // A worker started while writes are refused waits like the others.
    outage.pauseWhileRefused({ pause: async () => void calls.push("b paused"), resume: async () => void calls.push("b resumed") });
    await waitFor("both paused", async () => calls.includes("a paused") && calls.includes("b paused"));

    for (let i = 0; i < 32; i++) await admin.del(`filler:${i}`);
    await waitFor("both resumed", async () => calls.includes("a resumed") && calls.includes("b resumed"));
    expect(lines.filter((l) => l.includes("Redis takes writes again"))).toHaveLength(1);
    expect(outage.condition()).toEqual({ reachable: true, writable: true });
    await admin.config("SET", "maxmemory", "0");
    outage.stop();
  });
});
