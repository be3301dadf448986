import type { ChatPlatformEntry } from "../platform.js";

/** Discord, when DISCORD_BOT_TOKEN is set; discord.js is loaded only then. */
export const discordPlatform: ChatPlatformEntry = {
  name: "discord",
  offReason: (chat) => (chat.discord.token ? undefined : "set DISCORD_BOT_TOKEN"),
  async create(host) {
    const { DiscordChat } = await import("./discordChat.js");
    const c = host.config.chat.discord;
    return new DiscordChat(host, {
      token: c.token!,
      guildIds: c.guildIds,
      ...(c.appId ? { appId: c.appId } : {}),
      ...(c.channelId ? { channelId: c.channelId } : {}),
      ...(c.apiUrl ? { apiUrl: c.apiUrl } : {}),
    });
  },
};
