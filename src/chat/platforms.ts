import type { ChatHost } from "./host.js";
import type { PlatformHealth } from "./types.js";
import { installNoticeCharts } from "./charts/hooks.js";
import type { DiscordChat } from "./discord/discordChat.js";
import type { TelegramChat } from "./telegram/telegramChat.js";

export interface ChatPlatforms {
  telegram?: TelegramChat;
  discord?: DiscordChat;
  /** Resolves when every configured platform has started or failed (each failure is logged). */
  started: Promise<void>;
  /** Every platform's problems, as /status shows them and /metrics reads them. */
  health(): PlatformHealth;
  stop(): Promise<void>;
}

/**
 * Starts Telegram and Discord beside the console, each only when its token is set. They start in
 * the background: a platform that cannot be reached is logged and retried by its library, and
 * never holds up the console or the trading loop.
 */
export async function startChatPlatforms(app: ChatHost): Promise<ChatPlatforms> {
  const c = app.config.chat;
  const chat = app.chat;
  installNoticeCharts(app);
  chat.startSweeper();
  const out: ChatPlatforms = {
    started: Promise.resolve(),
    health: () => {
      const problems = [out.telegram?.health(), out.discord?.health()].flatMap((h) => h?.problems ?? []);
      return { ok: problems.length === 0, problems };
    },
    stop: async () => {},
  };
  const starting: Promise<void>[] = [];

  // Each platform's library (grammy, discord.js) is loaded only when its token is set.
  if (c.telegram.token) {
    const { TelegramChat } = await import("./telegram/telegramChat.js");
    const telegram = new TelegramChat(app, {
      token: c.telegram.token,
      ...(c.telegram.apiUrl ? { apiRoot: c.telegram.apiUrl } : {}),
      ...(c.telegram.chatId ? { chatId: c.telegram.chatId } : {}),
      ...(c.telegram.threadId ? { threadId: c.telegram.threadId } : {}),
      ...(c.telegram.webhook ? { webhook: c.telegram.webhook } : {}),
    });
    out.telegram = telegram;
    app.notifier.add(telegram);
    starting.push(
      telegram.start().then(
        () => app.log.info(`Telegram: @${telegram.bot.botInfo.username} ready (${c.telegram.webhook ? "webhook" : "long polling"})`),
        (err: unknown) => {
          app.notifier.remove(telegram);
          telegram.failedToStart(app.redact(String(err)));
          app.log.error("Telegram did not start", app.redact(String(err)));
          void app.notifier.notify({ type: "chat-down", platform: "telegram", since: Date.now(), reason: `it did not start: ${app.redact(String(err))}` });
        },
      ),
    );
  }
  if (c.discord.token) {
    const { DiscordChat } = await import("./discord/discordChat.js");
    const discord = new DiscordChat(app, {
      token: c.discord.token,
      guildIds: c.discord.guildIds,
      ...(c.discord.appId ? { appId: c.discord.appId } : {}),
      ...(c.discord.channelId ? { channelId: c.discord.channelId } : {}),
      ...(c.discord.apiUrl ? { apiUrl: c.discord.apiUrl } : {}),
    });
    out.discord = discord;
    app.notifier.add(discord);
    starting.push(
      discord.start().then(
        () => {
          const failed = discord.health().problems.filter((p) => p.includes("no slash commands in server")).length;
          const guilds = c.discord.guildIds.length;
          app.log.info(`Discord: ${discord.client.user?.tag ?? "bot"} ready, slash commands in ${guilds ? `${guilds - failed} of ${guilds} server(s)` : "every server and DMs (global)"}`);
        },
        (err: unknown) => {
          app.notifier.remove(discord);
          discord.failedToStart(app.redact(String(err)));
          app.log.error("Discord did not start", app.redact(String(err)));
          void app.notifier.notify({ type: "chat-down", platform: "discord", since: Date.now(), reason: `it did not start: ${app.redact(String(err))}` });
        },
      ),
    );
  }
  out.started = Promise.all(starting).then(() => {});
  out.stop = async () => {
    await chat.stop();
    await Promise.allSettled([out.telegram?.stop(), out.discord?.stop()]);
  };
  return out;
}
