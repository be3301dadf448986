// Vitest global setup: start a private redis-server on a free port when one is on PATH,
// else use REDIS_URL (or 127.0.0.1:6379). Tests read the address from TEST_REDIS_URL.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "ping"], { encoding: "utf8" });
    if (r.stdout?.trim() === "PONG") return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error("redis-server did not answer PING");
}

let child: ChildProcess | undefined;
let dir: string | undefined;

export async function setup(): Promise<void> {
  const onPath = spawnSync("redis-server", ["--version"]).status === 0;
  if (!onPath) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    return;
  }
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), "test-redis-"));
  child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  await waitForPing(port, child);
  process.env.TEST_REDIS_URL = `redis://127.0.0.1:${port}`;
}

export async function teardown(): Promise<void> {
  child?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
}
