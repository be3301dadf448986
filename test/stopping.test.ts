// Stopping the agent the ways people do: Ctrl-C in a terminal (SIGINT to the whole foreground
// process group), `kill` on the npm process (systemd, pm2), and several processes on one machine
// sharing the Redis that one of them started for itself. Each case runs the real product as OS
// processes, with a redis-server it starts on a free port.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../bench/results.js";
import { answersPing } from "../src/redis/redisServer.js";

const ROOT = new URL("..", import.meta.url).pathname;
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
  /** Resolves once `text` has been written (stdout or stderr), or rejects when the process exits first. */
  when(text: string | RegExp): Promise<void>;
}

function run(command: string, args: string[], env: Record<string, string>, opts: { detached?: boolean } = {}): Running {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", LOG_LEVEL: "info", ...env },
    stdio: ["pipe", "pipe", "pipe"],
    detached: opts.detached ?? false,
  });
  const r: Running = {
    child,
    out: "",
    exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
    when: (text) =>
      new Promise<void>((resolve, reject) => {
        const seen = () => (typeof text === "string" ? r.out.includes(text) : text.test(r.out));
        if (seen()) return resolve();
        const check = () => {
          if (!seen()) return;
          child.stdout!.off("data", check);
          child.stderr!.off("data", check);
          resolve();
        };
        child.stdout!.on("data", check);
        child.stderr!.on("data", check);
        void r.exited.then((code) => (seen() ? resolve() : reject(new Error(`exited (${code}) before writing ${String(text)}:\n${r.out.slice(-3000)}`))));
      }),
  };
  child.stdout!.on("data", (d: Buffer) => (r.out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (r.out += d.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(opts.detached ? -child.pid! : child.pid!, "SIGKILL");
      } catch {
        // gone already
      }
      await r.exited;
    }
  });
  return r;
}

/** A data folder and a free local port for a Redis the product starts for itself; the server is shut down after the test, whatever happened. */
async function ownRedisSetting(): Promise<{ env: Record<string, string>; url: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), "stopping-"));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  cleanups.push(async () => {
    const pid = serverPid(dir);
    if (pid && alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return { env: { REDIS_URL: url, REDIS_AUTOSTART: "true", DATA_DIR: dir }, url, port };
}

/** The pid of the redis-server the product started in `dataDir` (from the marker it writes), if any. */
function serverPid(dataDir: string): number | undefined {
  const file = join(dataDir, "redis", "started-by-agent.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { pid: number }).pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every process below `pid` (children, grandchildren...), from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, ppid] of parent) if (ppid === p) (out.push(child), walk(child));
  };
  walk(pid);
  return out;
}

/** Resolves once none of `pids` runs any more (each exit is what the test waits for). */
async function gone(pids: number[], what: string): Promise<void> {
  for (let i = 0; pids.some(alive); i++) {
    if (i > 600) throw new Error(`still running after 60 s: ${what} (${pids.filter(alive).join(", ")})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const redisTrouble = (log: string) => log.split("\n").filter((l) => /ECONNREFUSED|Redis (is )?unreachable|^\s+at /.test(l));

describe("stopping the agent", () => {
  it("on Ctrl-C in a terminal (SIGINT to the whole process group) drains, then stops the Redis it started, last", async () => {
    const { env, url } = await ownRedisSetting();
    // A terminal's foreground job: the agent leads a process group of its own, as a shell puts it.
    const agent = run(process.execPath, ["--import", "tsx", "src/main.ts"], { ...env, CONSOLE: "off", MAX_POSITON_PCT: "5" }, { detached: true });
    await agent.when("\nReady: ");
    expect(agent.out).toMatch(/Started redis-server \(pid \d+\)/);
    // A misspelled key is named, with the key it was probably meant to be.
    expect(agent.out).toContain("Unknown setting MAX_POSITON_PCT in the environment, ignored: did you mean MAX_POSITION_PCT?");

    process.kill(-agent.child.pid!, "SIGINT");
    expect(await agent.exited, agent.out).toBe(0);
    const stopping = agent.out.indexOf("Stopping (Ctrl-C)");
    const stopped = agent.out.indexOf("Stopped redis-server");
    expect(stopping, agent.out).toBeGreaterThan(0);
    expect(stopped, agent.out).toBeGreaterThan(stopping);
    // Redis was there for the whole drain: not one refused connection.
    expect(redisTrouble(agent.out), agent.out).toEqual([]);
    expect(await answersPing({ port: Number(new URL(url).port) })).toBe(false);
  }, 120_000);

  it("on SIGTERM sent to `npm run worker`: the signal reaches the agent, which drains and stops its Redis; nothing is left running", async () => {
    const { env, url } = await ownRedisSetting();
    const npm = run("npm", ["run", "worker"], env);
    await npm.when("\nReady: ");
    // The worker's banner does not ask anyone to type: it reads no input.
    expect(npm.out).not.toMatch(/type \/help/i);
    expect(npm.out).toMatch(/Role: +worker/);
    const below = descendants(npm.child.pid!);
    // npm execs node directly: no shell in between to swallow the signal.
    const commands = below.map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]);
    expect(commands.filter((c) => /(^|\/)(sh|bash|dash)$/.test(c!)), commands.join(", ")).toEqual([]);

    npm.child.kill("SIGTERM");
    await npm.exited;
    await gone(below, "the agent and its redis-server after npm was stopped");
    expect(npm.out).toContain("Stopping (SIGTERM)");
    expect(npm.out).toMatch(/Stopped redis-server \(pid \d+\)/);
    expect(redisTrouble(npm.out), npm.out).toEqual([]);
    expect(await answersPing({ port: Number(new URL(url).port) })).toBe(false);
  }, 120_000);

  it("leaves the Redis one process started to the other process still using it, and the last one to stop stops it", async () => {
    const { env, url } = await ownRedisSetting();
    const first = run(process.execPath, ["--import", "tsx", "src/main.ts", "--role=worker"], env);
    await first.when("\nReady: ");
    expect(first.out).toMatch(/Started redis-server/);
    const second = run(process.execPath, ["--import", "tsx", "src/main.ts", "--role=worker"], env);
    await second.when("\nReady: ");
    expect(second.out).toContain("started by another process of the agent");

    // The one that started it stops first: the server stays, for the other.
    first.child.kill("SIGTERM");
    expect(await first.exited, first.out).toBe(0);
    expect(first.out).toMatch(/Left redis-server \(pid \d+\) running .*1 other process of the agent still uses it/);
    expect(first.out).not.toContain("Stopped redis-server");
    const probe = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true });
    probe.on("error", () => {});
    await probe.connect();
    // The second still works on it: its heartbeat is written after the first has gone.
    const beat = async () => Number((await probe.zrange("cluster:workers", "0", "-1", "WITHSCORES")).at(-1) ?? 0);
    const before = await beat();
    await new Promise<void>((resolve) => {
      const again = async (): Promise<void> => void ((await beat()) > before ? resolve() : setTimeout(() => void again(), 100));
      void again();
    });
    probe.disconnect();

    // The last one stops it.
    second.child.kill("SIGTERM");
    expect(await second.exited, second.out).toBe(0);
    expect(second.out).toMatch(/Stopped redis-server \(pid \d+\)/);
    expect(redisTrouble(first.out + second.out), second.out).toEqual([]);
    expect(await answersPing({ port: Number(new URL(url).port) })).toBe(false);
  }, 180_000);

  it("npm run start:prod before npm run build says what to run, with no stack", () => {
    const script = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["start:prod"]!;
    // Run where nothing is built, exactly as npm runs it (sh -c).
    const dir = mkdtempSync(join(tmpdir(), "unbuilt-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const r = spawnSync("sh", ["-c", script], { cwd: dir, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("npm run build");
    expect(r.stderr).not.toMatch(/MODULE_NOT_FOUND|^\s+at /m);
  });
});
