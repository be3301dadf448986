// Makes sure a Redis answers before the app starts: use the one at the configured URL, or start a
// private redis-server for a local URL, or fail with a message that says how to get one.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { connectionOptions } from "./connection.js";

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
  /** Stops the server this call started (waits for it to exit); does nothing for a server found running. */
  stop: () => Promise<void>;
  started: boolean;
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost"]);
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

export async function ensureRedis(options: EnsureRedisOptions): Promise<EnsuredRedis> {
  const { url, autostart, dataDir, log = () => {} } = options;
  const safeUrl = withoutCredentials(url);
  const tls = connectionOptions({ url, keyPrefix: "", tlsCa: options.tlsCa });

  // A managed Redis across a network (and its TLS handshake) gets longer than a local one.
  const first = await ping(url, tls.tls ? 5000 : 1000, tls);
  if (first === "pong") {
    log(`Using Redis at ${safeUrl}`);
    return { url, started: false, stop: async () => {} };
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
  const logFile = resolve(dir, "redis.log");
  log(`No Redis at ${safeUrl}; starting redis-server on 127.0.0.1:${port} (data in ${dir})`);
  const child = spawn(
    "redis-server",
    // The log goes to a file because an unread stdout pipe would fill up and block the server.
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "", "--logfile", logFile],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  // Whatever way this process ends (an exit call on a failed startup, an uncaught error), the
  // server it started goes with it: SIGTERM, sent synchronously here, makes redis-server flush
  // its append-only file and exit on its own.
  const stopOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  process.once("exit", stopOnExit);
  void exited.then(() => process.off("exit", stopOnExit));
  // A spawn failure (e.g. PATH changed since the check) arrives as an event, not a throw.
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (true) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `redis-server could not start on port ${port}: ${spawnError?.message ?? `it exited (${child.exitCode ?? child.signalCode})`}.` +
          tail(logFile),
      );
    }
    if ((await ping(url, 500)) === "pong") break;
    if (Date.now() > deadline) {
      await stopChild(child, exited);
      throw new Error(`redis-server on port ${port} did not answer within ${START_TIMEOUT_MS / 1000} s.${tail(logFile)}`);
    }
    await sleep(100);
  }
  log(`Started redis-server (pid ${child.pid}) at ${safeUrl}`);

  return {
    url,
    started: true,
    stop: async () => {
      await stopChild(child, exited);
      log(`Stopped redis-server (pid ${child.pid})`);
    },
  };
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

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // SIGTERM makes redis-server flush the append-only file and exit cleanly.
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function redisServerOnPath(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** The URL without user or password, for messages and logs. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(unparseable REDIS_URL)";
  }
}

function tail(logFile: string): string {
  if (!existsSync(logFile)) return "";
  const lines = readFileSync(logFile, "utf8").trim().split("\n").slice(-5);
  return `\nLast lines of ${logFile}:\n${lines.join("\n")}`;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
