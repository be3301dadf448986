import type { ChatPlatformEntry } from "../platform.js";

/** Telegram, when TELEGRAM_BOT_TOKEN is set; grammy is loaded only then. */
export const telegramPlatform: ChatPlatformEntry = {
  name: "telegram",
  offReason: (chat) => (chat.telegram.token ? undefined : "set TELEGRAM_BOT_TOKEN"),
  async create(host) {
    const { TelegramChat } = await import("./telegramChat.js");
    const c = host.config.chat.telegram;
    return new TelegramChat(host, {
      token: c.token!,
      ...(c.apiUrl ? { apiRoot: c.apiUrl } : {}),
      ...(c.chatId ? { chatId: c.chatId } : {}),
      ...(c.threadId ? { threadId: c.threadId } : {}),
      ...(c.webhook ? { webhook: c.webhook } : {}),
    });
  },
};
