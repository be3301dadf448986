// Makes sure a Redis answers before the app starts: use the one at the configured URL, or start a
// private redis-server for a local URL, or fail with a message that says how to get one.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { AGENT_CLIENT_PREFIX, agentClientName, connectionOptions, withoutCredentials } from "./connection.js";
import { RedisServer } from "./redisServer.js";

export interface EnsureRedisOptions {
  url: string;
  autostart: boolean;
  dataDir: string;
  /** REDIS_TLS_CA, for a rediss:// server signed by a private CA. */
  tlsCa?: string | undefined;
  log?: (message: string) => void;
}

export interface EnsuredRedis {
  url: string;
  /**
   * Stops the server this call started (waits for it to exit), unless another process of the agent
   * still uses it; then the last of them stops it. Does nothing for a server someone else runs.
   */
  stop: () => Promise<void>;
  started: boolean;
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost"]);
const STOP_TIMEOUT_MS = 10_000;

export async function ensureRedis(options: EnsureRedisOptions): Promise<EnsuredRedis> {
  const { url, autostart, dataDir, log = () => {} } = options;
  const safeUrl = withoutCredentials(url);
  const tls = connectionOptions({ url, keyPrefix: "", tlsCa: options.tlsCa });

  // A managed Redis across a network (and its TLS handshake) gets longer than a local one.
  const first = await ping(url, tls.tls ? 5000 : 1000, tls);
  if (first === "pong") {
    const shared = await startedByAgent(url, dataDir);
    if (!shared) {
      log(`Using Redis at ${safeUrl}`);
      return { url, started: false, stop: async () => {} };
    }
    log(`Using Redis at ${safeUrl} (redis-server pid ${shared.pid}, started by another process of the agent; the last one to stop stops it)`);
    const dir = resolve(dataDir, "redis");
    return { url, started: false, stop: () => stopUnlessShared({ url, safeUrl, pid: shared.pid, dir, log }, () => stopByPid(shared.pid)).then(() => {}) };
  }
  if (first instanceof Error) {
    // Something is there and speaks Redis, so starting another server on that port would only fail.
    throw new Error(`Redis at ${safeUrl} answered but refused PING: ${first.message}. Check the user name and password in REDIS_URL (redis://USER:PASSWORD@host:port).`);
  }

  const host = new URL(url).hostname;
  const reasons: string[] = [];
  if (tls.tls) {
    reasons.push(
      `it is a rediss:// (TLS) URL, for which no server is started${lastSilence ? ` (the connection said: ${lastSilence})` : ""}; ` +
        "check the host, the port, that the server speaks TLS there, and REDIS_TLS_CA if its certificate is privately signed",
    );
  }
  else if (!autostart) reasons.push("REDIS_AUTOSTART is false, so none was started");
  else if (!LOCAL_HOSTS.has(host)) reasons.push("a server is only started automatically for 127.0.0.1 or localhost");
  else if (!redisServerOnPath()) reasons.push("redis-server is not on PATH");
  if (reasons.length > 0) {
    throw new Error(
      `No Redis answered at ${safeUrl}. Start one with \`docker compose up -d redis\`, or install Redis ` +
        `(e.g. \`apt install redis-server\` / \`brew install redis\`) so \`npm start\` can start it for you. ` +
        `(${reasons.join("; ")}.)`,
    );
  }

  const port = Number(new URL(url).port || 6379);
  const dir = resolve(dataDir, "redis");
  mkdirSync(dir, { recursive: true });
  log(`No Redis at ${safeUrl}; starting redis-server on 127.0.0.1:${port} (data in ${dir})`);
  // Its own process group: Ctrl-C in a terminal reaches the agent, which drains, and not the
  // server, which is stopped last.
  const server = new RedisServer({ port, dir, logFile: resolve(dir, "redis.log"), detached: true });
  await server.start();
  const pid = server.pid!;
  // Whatever way this process ends (an exit call on a failed startup, an uncaught error), the
  // server it started goes with it, unless another process of the agent still uses it. Only
  // synchronous work runs in an exit handler: the check asks redis-cli, and SIGTERM makes the
  // server flush its append-only file and exit on its own.
  const stopOnExit = () => {
    if (server.running && otherAgentProcessesSync(port) === 0) server.stopNow();
  };
  process.once("exit", stopOnExit);
  void server.whenExited().then(() => process.off("exit", stopOnExit));
  const identity = await serverIdentity(url);
  if (identity) writeFileSync(resolve(dir, MARKER), JSON.stringify({ runId: identity.runId, pid, port, by: process.pid }) + "\n");
  log(`Started redis-server (pid ${pid}) at ${safeUrl}`);

  return {
    url,
    started: true,
    stop: () =>
      stopUnlessShared({ url, safeUrl, pid, dir, log }, async () => {
        await server.stop();
        process.off("exit", stopOnExit);
      }).then((stopped) => {
        // Left to the others: this process's exit must not take it after all.
        if (!stopped) process.off("exit", stopOnExit);
      }),
  };
}

/** The file beside the data that says which running server the agent started (its run id). */
const MARKER = "started-by-agent.json";

interface Marker {
  runId: string;
  pid: number;
  port: number;
}

/**
 * A server found running that a process of the agent started for itself (the marker's run id is
 * the server's): this process shares it, and stops it if it is the last of the agent's processes
 * to use it. Undefined for any other server (the user's own, docker's): never stopped by the agent.
 */
async function startedByAgent(url: string, dataDir: string): Promise<Marker | undefined> {
  const u = new URL(url);
  if (u.protocol !== "redis:" || !LOCAL_HOSTS.has(u.hostname)) return undefined;
  const file = resolve(dataDir, "redis", MARKER);
  if (!existsSync(file)) return undefined;
  let marker: Marker;
  try {
    marker = JSON.parse(readFileSync(file, "utf8")) as Marker;
  } catch {
    return undefined;
  }
  const identity = await serverIdentity(url);
  return identity && identity.runId === marker.runId && identity.pid === marker.pid ? marker : undefined;
}

/**
 * The rule for a server the agent started, when several of its processes use it (README, "Several
 * processes"): a process that stops leaves it running while another process of the agent is still
 * connected (they name their connections, see agentClientName), and the last one stops it.
 * Resolves true when it stopped the server.
 */
async function stopUnlessShared(
  s: { url: string; safeUrl: string; pid: number; dir: string; log: (m: string) => void },
  stopServer: () => Promise<void>,
): Promise<boolean> {
  const others = await otherAgentProcesses(s.url);
  if (others > 0) {
    s.log(`Left redis-server (pid ${s.pid}) running at ${s.safeUrl}: ${others} other process${others === 1 ? "" : "es"} of the agent still use${others === 1 ? "s" : ""} it, and the last one to stop stops it`);
    return false;
  }
  await stopServer();
  rmSync(resolve(s.dir, MARKER), { force: true });
  s.log(`Stopped redis-server (pid ${s.pid})`);
  return true;
}

/** Stops a server this process did not spawn (one it shares): SIGTERM to its pid, then waits for it to go. */
async function stopByPid(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (alive()) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      return;
    }
    await sleep(50);
  }
}

/** How many other processes of the agent are connected to the server at `url` (0 when it cannot tell). */
export async function otherAgentProcesses(url: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on("error", () => {});
  try {
    await client.connect();
    return countOtherAgentProcesses(String(await client.call("CLIENT", "LIST")));
  } catch {
    return 0;
  } finally {
    client.disconnect();
  }
}

/** The same, for an exit handler (synchronous): asks redis-cli; 0 when it cannot tell. */
function otherAgentProcessesSync(port: number): number {
  const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "CLIENT", "LIST"], { encoding: "utf8", timeout: 2000 });
  return r.status === 0 && typeof r.stdout === "string" ? countOtherAgentProcesses(r.stdout) : 0;
}

/** Distinct processes of the agent (by connection name) in CLIENT LIST's reply, this one left out. */
export function countOtherAgentProcesses(clientList: string, own = agentClientName()): number {
  const names = new Set<string>();
  for (const line of clientList.split("\n")) {
    const name = / name=(\S*)/.exec(line)?.[1];
    if (name && name.startsWith(AGENT_CLIENT_PREFIX) && name !== own) names.add(name);
  }
  return names.size;
}

/** The server's run id and pid (INFO server), or undefined when it will not say. */
async function serverIdentity(url: string): Promise<{ runId: string; pid: number } | undefined> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on("error", () => {});
  try {
    await client.connect();
    const info = await client.info("server");
    const runId = /^run_id:(\S+)/m.exec(info)?.[1];
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
    return runId && pid ? { runId, pid } : undefined;
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

// Why the last ping got no answer (a refused connection, a TLS certificate error), for the message.
let lastSilence: string | undefined;

/** "pong"; "silent" when nothing answered in time; or the error a Redis replied with. */
async function ping(url: string, timeoutMs: number, extra: RedisOptions = {}): Promise<"pong" | "silent" | Error> {
  const client = new Redis(url, {
    ...extra,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis reports an auth failure only as an "error" event; the awaited call just sees a closed connection.
  let lastError: Error | undefined;
  client.on("error", (err: Error) => (lastError = err));
  try {
    await client.connect();
    return (await client.ping()) === "PONG" ? "pong" : "silent";
  } catch (err) {
    const e = lastError ?? (err as Error);
    if (e.name === "ReplyError") return e;
    lastSilence = e.message;
    return "silent";
  } finally {
    client.disconnect();
  }
}

function redisServerOnPath(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
