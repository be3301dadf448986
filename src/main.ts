import { buildApp } from "./app.js";
import { banner } from "./banner.js";
import { startChatPlatforms, type PlatformIo } from "./chat/platforms.js";
import { loadConfig, readDotEnv, redactSecrets, unknownKeyWarnings, type Config } from "./config/config.js";
import { startOps } from "./ops/serve.js";
import { ensureRedis } from "./redis/ensureRedis.js";
import { forwardAllNotices, startFrontend } from "./cluster/frontend.js";

// What startup has begun so far, stopped in reverse on a failure or a signal.
const started: Array<() => Promise<void>> = [];
const STOP_TIMEOUT_MS = 15_000;

async function stopStarted(): Promise<void> {
  const all = (async () => {
    for (const stop of started.splice(0).reverse()) await stop().catch(() => {});
  })();
  await Promise.race([all, new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS).unref())]);
}

/** One line saying why it could not start (no stack: it is not a bug report), after stopping what had started. */
async function failStartup(err: unknown, config?: Config): Promise<never> {
  const raw = err instanceof Error ? err.message : String(err);
  const message = (config ? redactSecrets(raw, config) : raw).replace(/\s*\n\s*/g, " ").replace(/[.\s]*$/, ".");
  process.stderr.write(`Cannot start: ${message} Change the setting it names (in .env or the environment; every setting is in docs/configuration.md) and start again.\n`);
  await stopStarted();
  process.exit(1);
}

/**
 * The role given on the command line (`--role=worker`), which wins over ROLE: the package scripts
 * pass it as an argument, because an assignment (`ROLE=worker node ...`) needs a shell between
 * npm and node, and a shell does not pass npm's signals on.
 */
function roleArgument(argv: string[]): { role?: string; error?: string } {
  let role: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("--role=")) role = a.slice("--role=".length);
    else if (a === "--role" && argv[i + 1] !== undefined) role = argv[++i];
    else return { error: `Unknown argument ${JSON.stringify(a.slice(0, 40))}: the only one is --role=all|worker|frontend (every other setting is in .env or the environment; see docs/configuration.md).` };
  }
  return role === undefined ? {} : { role };
}

async function main(): Promise<void> {
  const args = roleArgument(process.argv.slice(2));
  if (args.error) {
    process.stderr.write(args.error + "\n");
    process.exit(1);
  }
  // Real environment variables win over .env, and --role over both.
  const dotEnv = readDotEnv(".env");
  const loaded = loadConfig({ ...dotEnv, ...process.env, ...(args.role !== undefined ? { ROLE: args.role } : {}) });
  if (!loaded.ok) {
    process.stderr.write(loaded.message + "\n");
    process.exit(1);
  }
  const config = loaded.config;
  for (const warning of unknownKeyWarnings(dotEnv, process.env)) process.stderr.write(warning + "\n");

  let redis;
  try {
    redis = await ensureRedis({
      url: config.redis.url,
      autostart: config.redis.autostart,
      dataDir: config.redis.dataDir,
      tlsCa: config.redis.tlsCa,
      log: (m: string) => process.stderr.write(m + "\n"),
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  started.push(redis.stop);

  // Signals are handled from here on, so a Ctrl-C during startup still stops the Redis started above.
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`Stopping (${why}): finishing jobs and replies in flight…\n`);
    try {
      await stopStarted();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGINT", () => void shutdown("Ctrl-C"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  try {
    const app = await buildApp(config, redis.url);
    started.push(() => app.stop());
    // Before the chats and the jobs, so /healthz answers while they start.
    if (config.ops.metrics) {
      const ops = await startOps(app, { ...config.ops.metrics, role: () => config.cluster.role, extraQueues: ["commands"] });
      app.metrics.gauge("workers_live", async () => (await app.liveWorkers()).length, { help: "Workers with a live heartbeat, anywhere in the cluster" });
      started.push(() => ops.stop());
    }
    // A bug in one handler must not take the agent down with open positions to watch.
    process.on("unhandledRejection", (err) => app.log.error("unhandled rejection", err));
    const role = config.cluster.role;
    // Input is read only once the banner is out, so replies to typed or piped lines follow it.
    let bannerDone!: () => void;
    const bannerShown = new Promise<void>((resolve) => (bannerDone = resolve));
    // At a terminal the console writes log lines (stderr) above its prompt; NO_COLOR and FORCE_COLOR are read from the environment.
    const io: PlatformIo = { console: { input: process.stdin, output: process.stdout, readAfter: bannerShown, onEnd: () => void shutdown("end of input"), logs: process.stderr, env: process.env } };
    if (role !== "worker") {
      // Chat runs while this process holds the frontend lease; a standby starts it when it takes over.
      const frontend = await startFrontend(app, async () => {
        const platforms = await startChatPlatforms(app, io);
        app.chatHealth = () => platforms.health();
        return () => platforms.stop();
      });
      started.push(() => frontend.stop());
      if (config.ops.metrics) app.metrics.gauge("frontend_active", () => (frontend.state().active ? 1 : 0), { help: "1 while this process holds the frontend lease and serves chat" });
      if (!frontend.state().active) process.stdout.write("Standing by: another frontend holds the lease; this one takes over chat when it stops.\n");
    } else {
      forwardAllNotices(app);
    }
    // The dashboard is served where chat is (role all or frontend), read-only.
    const board = config.ops.dashboard;
    if (role !== "worker" && board.port !== undefined) {
      // Loaded only when it is served: Fastify and the page's schemas cost ~20-40 MB of a process that has no dashboard.
      const { startDashboardFor } = await import("./dashboard/serve.js");
      const server = await startDashboardFor(app, { host: board.host, port: board.port });
      started.push(() => server.stop());
    }
    if (stopping) return;
    if (role !== "frontend") await app.startJobs();
    const redisNote = redis.started ? `started for this run (append-only data in ${config.redis.dataDir}/redis)` : "connected";
    process.stdout.write((await banner(app, redisNote)) + "\n");
    bannerDone();
  } catch (err) {
    if (stopping) return;
    stopping = true;
    await failStartup(err, config);
  }
}

void main().catch((err: unknown) => failStartup(err));
