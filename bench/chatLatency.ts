// Chat latency: the time from an incoming command to its reply leaving the process, for /balance
// and /status, on Telegram (grammy) and Discord (discord.js), against the stand-ins on 127.0.0.1.
//   Telegram: from the stand-in handing the update out (its getUpdates answer) to the reply's
//             sendMessage request reaching the stand-in.
//   Discord:  from INTERACTION_CREATE leaving the stand-in's gateway to the deferral (the 3-second
//             deadline) and to the final edit of the reply reaching its REST API.
// Both ends are timed by the stand-in, so the figures include grammy, discord.js, the command,
// Redis and the loopback hops. For latency, Telegram's pacing is set wide open (every post still
// passes through it): its limits only add waiting when a chat goes over them, which one command at
// a time never does.
// A button press whose work is slow: a /refill confirmed while the refill is held BENCH_SLOW_REFILL_MS
// (8 s, as an on-chain refill waiting for its receipt), timed from the stand-in handing the press
// out to the answerCallbackQuery reaching it, and to the message edited with the outcome.
// Bursts: 12 notices at once to one chat with the real pacing (Telegram: telegramLimiter; Discord: discord.js's REST queue against the stand-in's 5-per-5-s channel
// bucket), timed from the first message to the 10th and the last reaching the stand-in, with the
// count of 429s the stand-in had to send.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { buildApp } from "../src/app.js";
import { DiscordChat } from "../src/chat/discord/discordChat.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { TelegramChat } from "../src/chat/telegram/telegramChat.js";
import { loadConfig } from "../src/config/config.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { DiscordStandIn } from "../test/support/discordStandIn.js";
import { TelegramStandIn } from "../test/support/telegramStandIn.js";
import { freePort, percentile, saveResults } from "./results.js";

const ROUNDS = Number(process.env.BENCH_CHAT_ROUNDS ?? 200);
const WARMUP = 10;

const SLOW_REFILL_MS = Number(process.env.BENCH_SLOW_REFILL_MS ?? 8000);
const PRESSES = 3;

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: Number(percentile(s, 50).toFixed(2)), p95: Number(percentile(s, 95).toFixed(2)) };
};

const BURST = 12;

/** Delivers BURST notices at once to one chat on each platform, with the pacing the product uses. */
async function bursts(app: Awaited<ReturnType<typeof buildApp>>, tg: TelegramStandIn, dc: DiscordStandIn): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const chatId = 202;
  const telegram = new TelegramChat(app, { token: tg.token, apiRoot: tg.apiRoot, chatId: String(chatId) });
  const discord = new DiscordChat(app, { token: dc.token, guildIds: [dc.guildId], apiUrl: dc.apiBase, channelId: dc.channelId });
  await telegram.start();
  await discord.start();
  const notices = Array.from({ length: BURST }, (_, i) => ({ kind: "alert" as const, text: `burst ${i}` }));

  const tg429 = tg.calls.filter((c) => c.status === 429).length;
  await Promise.all(notices.map((n) => telegram.deliver(n)));
  const tgAt = tg.calls.filter((c) => c.method === "sendMessage" && Number(c.params.chat_id) === chatId && c.status === 200).map((c) => c.at);
  out.telegram_burst_10th_ms = Number((tgAt[9]! - tgAt[0]!).toFixed(1));
  out.telegram_burst_last_ms = Number((tgAt.at(-1)! - tgAt[0]!).toFixed(1));
  out.telegram_burst_429s = tg.calls.filter((c) => c.status === 429).length - tg429;

  const dc429 = dc.calls.filter((c) => c.status === 429).length;
  await Promise.all(notices.map((n) => discord.deliver(n)));
  const dcAt = dc.calls.filter((c) => c.method === "POST" && c.path === `/channels/${dc.channelId}/messages` && c.status === 200).map((c) => c.at);
  out.discord_burst_10th_ms = Number((dcAt[9]! - dcAt[0]!).toFixed(1));
  out.discord_burst_last_ms = Number((dcAt.at(-1)! - dcAt[0]!).toFixed(1));
  out.discord_burst_429s = dc.calls.filter((c) => c.status === 429).length - dc429;
  await telegram.stop();
  await discord.stop();
  return out;
}

/** Confirms /refill with the refill held SLOW_REFILL_MS: when the presser is answered, and when the message says how it ended. */
async function slowPress(app: Awaited<ReturnType<typeof buildApp>>, tg: TelegramStandIn, limiter: RateLimiter): Promise<Record<string, number>> {
  const telegram = new TelegramChat(app, { token: tg.token, apiRoot: tg.apiRoot, limiter });
  await telegram.start();
  const balance = app.services.balance;
  const refill = balance.refill.bind(balance);
  balance.refill = async (...args) => {
    await new Promise((r) => setTimeout(r, SLOW_REFILL_MS));
    return refill(...args);
  };
  const admin = { id: 303, is_bot: false, first_name: "Admin" };
  const chat = { id: 303, type: "private" as const };
  const answered: number[] = [];
  const edited: number[] = [];
  for (let i = 0; i < PRESSES; i++) {
    const { messageId } = tg.userSends(admin, chat, "/refill 1");
    await until("the confirmation question", () => tg.sent(303).some((m) => m.reply_to === messageId));
    const question = tg.sent(303).find((m) => m.reply_to === messageId)!;
    const data = question.reply_markup!.inline_keyboard[0]![0]!.callback_data!;
    const queryId = tg.userPresses(admin, question, data);
    await until("the press's answer", () => tg.answers.has(queryId), SLOW_REFILL_MS + 10_000);
    await until("the edit with the outcome", () => (tg.sent(303).find((m) => m.message_id === question.message_id)?.text ?? "").includes("Refilled"), SLOW_REFILL_MS + 10_000);
    const handed = tg.deliveredAt.get(tg.callbackUpdates.get(queryId)!)!;
    const answer = tg.calls.find((c) => c.method === "answerCallbackQuery" && c.params.callback_query_id === queryId)!;
    const edit = tg.calls.filter((c) => c.method === "editMessageText" && Number(c.params.message_id) === question.message_id).at(-1)!;
    answered.push(answer.at - handed);
    edited.push(edit.at - handed);
  }
  balance.refill = refill;
  await telegram.stop();
  const a = stats(answered);
  const e = stats(edited);
  return { telegram_slow_press_answer_p50_ms: a.p50, telegram_slow_press_edit_p50_ms: e.p50, slow_refill_ms: SLOW_REFILL_MS };
}

export async function benchChatLatency(): Promise<Record<string, number>> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-chat-redis-"));
  const redis = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const flush = new Redis(redis.url);
  await flush.flushdb();
  await flush.quit();

  const tg = await new TelegramStandIn().start();
  const dc = await new DiscordStandIn().start();
  const loaded = loadConfig({ LOG_LEVEL: "error", TELEGRAM_ALLOWED_USERS: "101:viewer,303:admin", DISCORD_ALLOWED_USERS: "111111111111111111:viewer" });
  if (!loaded.ok) throw new Error(loaded.message);
  const app = await buildApp(loaded.config, redis.url);
  const open = new RateLimiter(() => ({ burst: 1e9, perSecond: 1e9 }), { burst: 1e9, perSecond: 1e9 });
  const telegram = new TelegramChat(app, { token: tg.token, apiRoot: tg.apiRoot, limiter: open });
  const discord = new DiscordChat(app, { token: dc.token, guildIds: [dc.guildId], apiUrl: dc.apiBase });
  await telegram.start();
  await discord.start();

  const figures: Record<string, number> = { rounds: ROUNDS };
  const user = { id: 101, is_bot: false, first_name: "Bench" };
  for (const command of ["balance", "status"]) {
    // Telegram
    const tgTimes: number[] = [];
    for (let i = 0; i < ROUNDS + WARMUP; i++) {
      const { updateId, messageId } = tg.userSends(user, { id: 101, type: "private" }, `/${command}`);
      await until(`the Telegram reply to /${command}`, () => tg.sent(101).some((m) => m.reply_to === messageId));
      const reply = tg.calls.find((c) => c.method === "sendMessage" && (c.params.reply_parameters as { message_id?: number } | undefined)?.message_id === messageId)!;
      if (i >= WARMUP) tgTimes.push(reply.at - tg.deliveredAt.get(updateId)!);
    }
    await telegram.idle();
    const t = stats(tgTimes);
    figures[`telegram_${command}_p50_ms`] = t.p50;
    figures[`telegram_${command}_p95_ms`] = t.p95;

    // Discord
    const ackTimes: number[] = [];
    const replyTimes: number[] = [];
    for (let i = 0; i < ROUNDS + WARMUP; i++) {
      const r = dc.slash({ id: "111111111111111111", username: "bench" }, command);
      await until(`the Discord reply to /${command}`, () => dc.calls.some((c) => c.method === "PATCH" && c.path.includes(r.token)));
      const edit = dc.calls.find((c) => c.method === "PATCH" && c.path.includes(r.token))!;
      if (i >= WARMUP) {
        ackTimes.push(r.ackAt! - r.sentAt);
        replyTimes.push(edit.at - r.sentAt);
      }
    }
    await discord.idle();
    const a = stats(ackTimes);
    const d = stats(replyTimes);
    figures[`discord_${command}_ack_p50_ms`] = a.p50;
    figures[`discord_${command}_ack_p95_ms`] = a.p95;
    figures[`discord_${command}_p50_ms`] = d.p50;
    figures[`discord_${command}_p95_ms`] = d.p95;
  }

  await telegram.stop();
  await discord.stop();
  Object.assign(figures, await slowPress(app, tg, open));
  Object.assign(figures, await bursts(app, tg, dc));
  await app.stop();
  await tg.stop();
  await dc.stop();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });

  console.log(`chat latency, command in to reply out (${ROUNDS} of each, one at a time, against the stand-ins):`);
  for (const command of ["balance", "status"]) {
    console.log(`  /${command}: Telegram p50 ${figures[`telegram_${command}_p50_ms`]} ms, p95 ${figures[`telegram_${command}_p95_ms`]} ms`);
    console.log(
      `  /${command}: Discord  p50 ${figures[`discord_${command}_p50_ms`]} ms, p95 ${figures[`discord_${command}_p95_ms`]} ms (deferred after p50 ${figures[`discord_${command}_ack_p50_ms`]} ms, p95 ${figures[`discord_${command}_ack_p95_ms`]} ms; Discord allows 3000)`,
    );
  }
  console.log(
    `  12 notices at once, real pacing: Telegram 10th after ${figures.telegram_burst_10th_ms} ms, last after ${figures.telegram_burst_last_ms} ms, ${figures.telegram_burst_429s} 429s; ` +
      `Discord 10th after ${figures.discord_burst_10th_ms} ms, last after ${figures.discord_burst_last_ms} ms, ${figures.discord_burst_429s} 429s`,
  );
  console.log(
    `  a press confirming a refill held ${figures.slow_refill_ms} ms: answered after ${figures.telegram_slow_press_answer_p50_ms} ms, message edited with the outcome after ${figures.telegram_slow_press_edit_p50_ms} ms (p50 of ${PRESSES})`,
  );
  saveResults("chatLatency", figures);
  return figures;
}
