// The one way this project starts a redis-server of its own: the product (ensureRedis, when none
// answers at a local REDIS_URL), the test suite's shared server, the tests that kill and restart
// one, and the benches. It waits for the server to answer, and stops it (SIGTERM: an append-only
// file is flushed first) or kills it (SIGKILL: a crash, as the fault tests need).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

export interface RedisServerOptions {
  /** 0 to listen on no plain port (a TLS-only server names its tls-port in `args`). */
  port: number;
  /** Its working folder: the append-only files go here. */
  dir: string;
  /** Append-only persistence (on by default: what was written survives a kill, bar the last second). */
  appendonly?: boolean;
  /** Where the server logs; unset, it logs nowhere (an unread stdout pipe would fill up and block it). */
  logFile?: string;
  /**
   * In a process group of its own. The product's server must be: a terminal sends Ctrl-C to the
   * whole foreground group, and the server must outlive the agent's drain, to be stopped last.
   */
  detached?: boolean;
  /** More arguments (e.g. --requirepass, --maxmemory, TLS settings). */
  args?: string[];
  /** Set for a TLS-only server: the port and CA the readiness probe uses. */
  tls?: { port: number; ca: string };
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly options: RedisServerOptions) {}

  get port(): number {
    return this.options.port;
  }

  get url(): string {
    return this.options.tls ? `rediss://127.0.0.1:${this.options.tls.port}` : `redis://127.0.0.1:${this.options.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True while the process it started runs. */
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the server and resolves once it answers; throws with the end of its log when it cannot start. */
  async start(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const o = this.options;
    const args = [
      "--port", String(o.port),
      "--bind", "127.0.0.1",
      "--dir", o.dir,
      "--save", "",
      "--appendonly", o.appendonly === false ? "no" : "yes",
      ...(o.logFile ? ["--logfile", o.logFile] : []),
      ...(o.args ?? []),
    ];
    const child = spawn("redis-server", args, { cwd: o.dir, stdio: "ignore", detached: o.detached ?? false });
    this.child = child;
    this.exited = new Promise<void>((done) => child.once("exit", () => done()));
    // A spawn failure (not on PATH) arrives as an event, not a throw.
    let spawnError: Error | undefined;
    child.once("error", (err) => (spawnError = err));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError || !this.running) {
        throw new Error(`redis-server could not start on port ${o.tls?.port ?? o.port}: ${spawnError?.message ?? `it exited (${child.exitCode ?? child.signalCode})`}.${this.logTail()}`);
      }
      if (await answersPing(o.tls ? { port: o.tls.port, ca: o.tls.ca } : { port: o.port })) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`redis-server on port ${o.tls?.port ?? o.port} did not answer within ${Math.round(timeoutMs / 1000)} s.${this.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM, and waits for the exit (SIGKILL after 10 s). Does nothing once it has exited. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child!.kill("SIGTERM");
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, as a crash or an OOM kill would: no shutdown, no final write. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM now, without waiting: for a process's "exit" handler, where nothing asynchronous runs. */
  stopNow(): void {
    if (this.running) this.child!.kill("SIGTERM");
  }

  /** Resolves when the server has exited, however it ended. */
  whenExited(): Promise<void> {
    return this.exited;
  }

  private logTail(): string {
    const file = this.options.logFile;
    if (!file || !existsSync(file)) return "";
    const lines = readFileSync(file, "utf8").trim().split("\n").slice(-5);
    return `\nLast lines of ${file}:\n${lines.join("\n")}`;
  }
}

/**
 * True when a server at 127.0.0.1:port answers anything to PING: PONG, or an error such as NOAUTH
 * from a server with a password (it is up, which is all a start waits for).
 */
export function answersPing(at: { port: number; ca?: string }, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, socket?: Socket) => {
      if (done) return;
      done = true;
      socket?.destroy();
      resolve(ok);
    };
    const socket: Socket = at.ca ? tlsConnect({ host: "127.0.0.1", port: at.port, ca: at.ca, servername: "127.0.0.1" }) : tcpConnect({ host: "127.0.0.1", port: at.port });
    socket.setTimeout(timeoutMs, () => finish(false, socket));
    socket.once("error", () => finish(false, socket));
    socket.once(at.ca ? "secureConnect" : "connect", () => socket.write("PING\r\n"));
    socket.once("data", (d: Buffer) => finish(d[0] === 0x2b /* + */ || d[0] === 0x2d /* - */, socket));
  });
}
