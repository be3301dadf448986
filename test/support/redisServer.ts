// Vitest global setup: start a private redis-server on a free port when one is on PATH,
// else use REDIS_URL (or 127.0.0.1:6379). Tests read the address from TEST_REDIS_URL.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisServer } from "../../src/redis/redisServer.js";
import { freePort } from "../../bench/results.js";

let server: RedisServer | undefined;
let dir: string | undefined;

export async function setup(): Promise<void> {
  const onPath = spawnSync("redis-server", ["--version"]).status === 0;
  if (!onPath) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    return;
  }
  dir = mkdtempSync(join(tmpdir(), "test-redis-"));
  server = new RedisServer({ port: await freePort(), dir, appendonly: false });
  await server.start();
  process.env.TEST_REDIS_URL = server.url;
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
