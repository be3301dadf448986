import { buildApp } from "./app.js";
import { banner } from "./banner.js";
import { ConsoleChat } from "./chat/console.js";
import { startChatPlatforms } from "./chat/platforms.js";
import { loadConfig, readDotEnv } from "./config/config.js";
import { ensureRedis } from "./redis/ensureRedis.js";

async function main(): Promise<void> {
  // Real environment variables win over .env.
  const loaded = loadConfig({ ...readDotEnv(".env"), ...process.env });
  if (!loaded.ok) {
    process.stderr.write(loaded.message + "\n");
    process.exit(1);
  }
  const config = loaded.config;

  let redis;
  try {
    redis = await ensureRedis({
      url: config.redis.url,
      autostart: config.redis.autostart,
      dataDir: config.redis.dataDir,
      log: (m: string) => process.stderr.write(m + "\n"),
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }

  // Signals are handled from here on, so a Ctrl-C during startup still stops the Redis started above.
  let stopping = false;
  let stopApp = async (): Promise<void> => {};
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`Stopping (${why}): finishing jobs and replies in flight…\n`);
    try {
      await stopApp();
      await redis.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGINT", () => void shutdown("Ctrl-C"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  const app = await buildApp(config, redis.url);
  // A bug in one handler must not take the agent down with open positions to watch.
  process.on("unhandledRejection", (err) => app.log.error("unhandled rejection", err));
  const chat = new ConsoleChat(app, process.stdin, process.stdout);
  app.notifier.add(chat);
  const platforms = await startChatPlatforms(app);
  stopApp = async () => {
    await platforms.stop();
    await app.stop();
  };
  if (stopping) return;
  await app.startJobs();
  const redisNote = redis.started ? `started for this run (append-only data in ${config.redis.dataDir}/redis)` : "connected";
  process.stdout.write((await banner(app, redisNote)) + "\n");
  if (config.chat.console) chat.start(() => void shutdown("end of input"));
}

void main();
