import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { freePort } from "../bench/results.js";
import { freshRedisUrl } from "./support/app.js";
import { runProduct, startProduct } from "./support/product.js";

/** True while a process with this id exists. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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

describe("npm start, as a new user runs it", () => {
  it("starts offline, answers commands typed on stdin, and exits cleanly at end of input", async () => {
    const url = await freshRedisUrl();
    const { code, out, err } = await runProduct("/help\n/decide BTC\n/balance\n/decide NOPE\n/refill abc\n", {
      REDIS_URL: url,
      REDIS_AUTOSTART: "false",
    });
    expect(code, err).toBe(0);
    expect(out).toContain("SIMULATED TRADING (paper exchange)");
    expect(out).toMatch(/Decisions: offline engine/);
    expect(out).toMatch(/Market: +replay of real Binance 2h candles/);
    expect(out).toContain("/decide SYMBOL");
    expect(out).toMatch(/BTC\/USDT: (BUY|SELL|HOLD|CLOSE)/);
    expect(out).toContain("USDC for model calls: $10.00");
    expect(out).toContain('Unknown symbol "NOPE"');
    expect(out).toContain('"abc" is not an amount');
    expect(err).toContain("end of input");
  }, 60_000);

  it("stops on SIGTERM after its replies, and keeps its state for the next start", async () => {
    const url = await freshRedisUrl();
    const env = { REDIS_URL: url, REDIS_AUTOSTART: "false" };
    const { child, io, exited } = startProduct(env);
    child.stdin.write("/pause\n");
    for (let i = 0; i < 900 && !io.out.includes("Trading paused"); i++) await new Promise((r) => setTimeout(r, 50));
    expect(io.out).toContain("Trading paused");
    child.kill("SIGTERM");
    expect(await exited, io.err).toBe(0);
    expect(io.err).toContain("Stopping (SIGTERM)");
    const again = await runProduct("/status\n", env);
    expect(again.out).toMatch(/Trading: PAUSED \(manual/);
  }, 120_000);

  it("refuses a bad configuration with one message listing every bad key, and no secret", async () => {
    const secret = "0x" + "ab".repeat(31) + "zz"; // not valid hex: rejected, must not be echoed
    const { code, out, err } = await runProduct("", {
      X402_NETWORK: "mainnet",
      MAX_POSITION_PCT: "abc",
      X402_PRIVATE_KEY: secret,
      REDIS_AUTOSTART: "false",
    });
    expect(code).toBe(1);
    expect(err).toContain("X402_NETWORK");
    expect(err).toContain("MAX_POSITION_PCT");
    expect(err).toContain("X402_PRIVATE_KEY");
    expect(err + out).not.toContain(secret);
    expect(err + out).not.toContain("ab".repeat(31));
  }, 60_000);

  it("refuses symbols the market lacks with one line and no stack, and stops the redis-server it started", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "e2e-symbols-"));
    try {
      const url = `redis://127.0.0.1:${await freePort()}`;
      const { code, err } = await runProduct("", { SYMBOLS: "FOO/BAR", REDIS_URL: url, REDIS_AUTOSTART: "true", DATA_DIR: dataDir });
      expect(code, err).toBe(1);
      const pid = Number(/Started redis-server \(pid (\d+)\)/.exec(err)?.[1]);
      expect(pid, err).toBeGreaterThan(0);
      const failures = err.split("\n").filter((l) => l.startsWith("Cannot start:"));
      expect(failures, err).toHaveLength(1);
      expect(failures[0]).toMatch(/SYMBOLS \(FOO\/BAR\).*BTC\/USDT.*Change the setting it names/);
      expect(err).not.toMatch(/^\s+at /m);
      expect(err).not.toContain("app.ts");
      expect(running(pid)).toBe(false);
      expect(await answers(url)).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it("names both remedies when no Redis answers and it may not start one", async () => {
    const { code, err } = await runProduct("", { REDIS_URL: "redis://127.0.0.1:1", REDIS_AUTOSTART: "false" });
    expect(code).toBe(1);
    expect(err).toContain("docker compose up -d redis");
    expect(err).toMatch(/install Redis/i);
  }, 60_000);
});

describe("npm start on the offline default", () => {
  // Each of these costs 10-70 MB of an idle process, and the offline default uses none of them (the
  // chart canvas it does load, for the decision's chart). An import at the top of a module that every
  // process loads brings one back without a word.
  const UNUSED = ["viem", "ccxt", "discord.js", "grammy", "fastify", "ai", "@ai-sdk", "@daydreamsai", "@x402", "prom-client", "playwright-core"];

  it("loads none of the libraries its mode does not use, through a decision", async () => {
    const dir = mkdtempSync(join(tmpdir(), "loaded-"));
    try {
      const seen = join(dir, "resolved.txt");
      // A module resolve hook, as node documents it: every module the process resolves, one per line.
      writeFileSync(join(dir, "hooks.mjs"), `import { appendFileSync } from "node:fs";\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(seen)}, r.url + "\\n"); return r; }\n`);
      writeFileSync(join(dir, "register.mjs"), `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});\n`);
      const child = spawn(process.execPath, ["--import", "tsx", "--import", join(dir, "register.mjs"), "src/main.ts"], {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", REDIS_URL: await freshRedisUrl(), REDIS_AUTOSTART: "false", DATA_DIR: join(dir, "data") },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      child.stdin.end("/help\n/decide BTC\n/status\n");
      expect(await exited, err).toBe(0);
      expect(out).toMatch(/BTC\/USDT: (BUY|SELL|HOLD|CLOSE)/);
      const packages = new Set([...readFileSync(seen, "utf8").matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1]!));
      // The hook sees the product's own packages: a check that it ran at all.
      expect(packages).toContain("ioredis");
      const loaded = [...packages].filter((p) => UNUSED.some((u) => p === u || p.startsWith(`${u}/`)));
      expect(loaded).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
