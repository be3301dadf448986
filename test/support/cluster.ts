// The agent as separate OS processes (one per role) on a private redis-server of their own, for
// the tests that kill processes and Redis itself. Each process is `tsx src/main.ts`, as `npm run
// worker` / `npm run frontend` start it.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../bench/results.js";
import { RedisServer } from "../../src/redis/redisServer.js";

const ROOT = new URL("../..", import.meta.url).pathname;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { freePort };

export async function waitUntil(ok: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * A redis-server on a fixed port and data directory, so it can be killed and started again as the
 * same server (append-only file on: what was written survives a kill, bar the last second).
 */
export class PrivateRedis extends RedisServer {
  constructor(port: number, dir: string, appendonly = true) {
    super({ port, dir, appendonly });
  }
}

export type Role = "worker" | "frontend" | "all";

export interface AgentProcess {
  name: string;
  role: Role;
  child: ChildProcess;
  /** Printed its banner. */
  ready: boolean;
  exited: boolean;
  exitCode: number | null;
  /** Sent a SIGKILL: dead from here on, though its exit event may come later on a loaded machine. */
  killed: boolean;
  log: string;
}

/** The processes of one test, started with one environment (plus ROLE). */
export class AgentProcesses {
  readonly all: AgentProcess[] = [];
  constructor(private readonly env: Record<string, string>) {}

  start(name: string, role: Role, extra: Record<string, string> = {}): AgentProcess {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      env: { ...this.env, ROLE: role, LOG_LEVEL: role === "worker" ? "error" : "info", ...extra },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p: AgentProcess = { name, role, child, ready: false, exited: false, exitCode: null, killed: false, log: "" };
    const take = (b: Buffer) => {
      p.log += b.toString();
      if (!p.ready && p.log.includes("\nReady: ")) p.ready = true;
    };
    child.stdout!.on("data", take);
    child.stderr!.on("data", take);
    child.on("exit", (code) => {
      p.exited = true;
      p.exitCode = code;
    });
    this.all.push(p);
    return p;
  }

  alive(role?: Role): AgentProcess[] {
    return this.all.filter((p) => (!role || p.role === role) && !p.exited && !p.killed);
  }

  kill9(p: AgentProcess): void {
    p.killed = true;
    p.child.kill("SIGKILL");
  }

  /** SIGTERM to each, then waits for every one to exit (each role drains its work first). */
  async terminate(ps: AgentProcess[], ms: number): Promise<void> {
    for (const p of ps) p.child.kill("SIGTERM");
    await waitUntil(() => ps.every((p) => p.exited), ms, `${ps.map((p) => p.name).join(", ")} to drain and exit`);
  }

  killAll(): void {
    for (const p of this.all) if (!p.exited) p.child.kill("SIGKILL");
  }

  /** Keeps every process's whole output in a new folder (the run's own goes); returns its path. */
  keepLogs(prefix: string): string {
    const keep = mkdtempSync(join(tmpdir(), `${prefix}-logs-`));
    for (const p of this.all) writeFileSync(join(keep, `${p.name.replace(/'/g, "_")}-${p.child.pid}.log`), p.log);
    return keep;
  }
}
