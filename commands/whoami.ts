import { defineCommand, noArgs, type Needs } from "./types.js";

/** Who you are to the bot and where you are: the ids that TELEGRAM_CHAT_ID and DISCORD_CHANNEL_ID want. */
export const whoami = defineCommand<undefined, Needs>({
  name: "whoami",
  summary: "Your user id and role, and the id of this chat (for the configuration)",
  usage: "/whoami",
  minRole: "viewer",
  personal: true,
  parse: noArgs("/whoami"),
  async run(_, { user, where }) {
    return { text: `You are ${user.name} (${user.platform} user ${user.id}), ${user.role === "admin" ? "an" : "a"} ${user.role}.\nHere: ${where ?? user.platform}.` };
  },
});
