import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../bench/results.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { RedisServer } from "../src/redis/redisServer.js";


/** True when a Redis at `url` answers PING. */
async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function withClient<T>(url: string, use: (r: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  try {
    return await use(client);
  } finally {
    await client.quit();
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ensure-redis-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A redis-server started by the test itself, as if the user ran one. */
async function ownServer(port: number, extra: string[] = []): Promise<RedisServer> {
  const server = new RedisServer({ port, dir: tempDir(), appendonly: false, args: extra });
  cleanups.push(() => server.kill());
  await server.start();
  return server;
}

describe("ensureRedis", () => {
  it("uses a Redis that already answers and leaves it running", async () => {
    const port = await freePort();
    await ownServer(port);
    const dataDir = tempDir();
    const url = `redis://127.0.0.1:${port}`;
    const logs: string[] = [];

    const redis = await ensureRedis({ url, autostart: true, dataDir, log: (m) => logs.push(m) });

    expect(redis.started).toBe(false);
    expect(redis.url).toBe(url);
    expect(existsSync(join(dataDir, "redis"))).toBe(false);
    expect(logs.join("\n")).toContain(`Using Redis at ${url}`);
    await redis.stop();
    expect(await answers(url)).toBe(true);
  });

  it("starts redis-server on a free port, keeps data across stop and start, and stop() ends it", async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const url = `redis://127.0.0.1:${port}`;
    expect(await answers(url)).toBe(false);

    const first = await ensureRedis({ url, autostart: true, dataDir });
    cleanups.push(() => first.stop());
    expect(first.started).toBe(true);
    expect(await answers(url)).toBe(true);
    await withClient(url, (r) => r.set("ensure-redis:test", "kept"));
    expect(existsSync(join(dataDir, "redis", "appendonlydir"))).toBe(true);

    // SIGTERM ends it cleanly (its log says so; the SIGKILL fallback would leave no such line).
    await first.stop();
    expect(readFileSync(join(dataDir, "redis", "redis.log"), "utf8")).toMatch(/Redis is now ready to exit, bye bye/);
    expect(await answers(url)).toBe(false);

    const second = await ensureRedis({ url, autostart: true, dataDir });
    cleanups.push(() => second.stop());
    expect(second.started).toBe(true);
    expect(await withClient(url, (r) => r.get("ensure-redis:test"))).toBe("kept");
    await second.stop();
    expect(await answers(url)).toBe(false);
    // A second stop() of an exited server must not hang or throw.
    await second.stop();
  });

  it("without autostart, fails naming both remedies and never the password", async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const error = await ensureRedis({ url: `redis://:hunter2pass@127.0.0.1:${port}`, autostart: false, dataDir }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const message = error!.message;
    expect(message).toContain(
      `No Redis answered at redis://127.0.0.1:${port}. Start one with \`docker compose up -d redis\`, or install Redis ` +
        "(e.g. `apt install redis-server` / `brew install redis`) so `npm start` can start it for you.",
    );
    expect(message).toContain("REDIS_AUTOSTART is false");
    expect(message).not.toContain("hunter2pass");
    expect(existsSync(join(dataDir, "redis"))).toBe(false);
    expect(await answers(`redis://127.0.0.1:${port}`)).toBe(false);
  });

  it("reports a Redis that refuses the password instead of starting another, without echoing it", async () => {
    const port = await freePort();
    await ownServer(port, ["--requirepass", "right-pass"]);
    const error = await ensureRedis({ url: `redis://:wrong-pass@127.0.0.1:${port}`, autostart: true, dataDir: tempDir() }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/answered but refused PING/);
    expect(error?.message).not.toContain("wrong-pass");
  });

  it("takes the redis-server it started down with the process, even when nobody calls stop()", async () => {
    const port = await freePort();
    const dir = tempDir();
    // A process that starts a server and exits at once, as a failed startup does.
    const script = `const { ensureRedis } = await import(${JSON.stringify(new URL("../src/redis/ensureRedis.ts", import.meta.url).pathname)}); await ensureRedis({ url: "redis://127.0.0.1:${port}", autostart: true, dataDir: ${JSON.stringify(dir)} }); process.exit(3);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: "ignore" });
    // Should this fail, the orphan server is shut down all the same.
    cleanups.push(async () => {
      if (!(await answers(`redis://127.0.0.1:${port}`))) return;
      const r = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0 });
      await r.call("SHUTDOWN", "NOSAVE").catch(() => {});
      r.disconnect();
    });
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code).toBe(3);
    let up = true;
    for (let i = 0; i < 50 && up; i++) {
      up = await answers(`redis://127.0.0.1:${port}`);
      if (up) await new Promise((r) => setTimeout(r, 100));
    }
    expect(up).toBe(false);
  }, 30_000);
});
