import type { ChatPlatformEntry } from "../platform.js";
import { ConsoleChat } from "./consoleChat.js";

/** The terminal the process runs in; off with CONSOLE=off, and where the process has no terminal to give. */
export const consolePlatform: ChatPlatformEntry = {
  name: "console",
  offReason: (chat, io) => (!chat.console ? "CONSOLE=off" : !io?.console ? "no terminal in this process" : undefined),
  create: async (host, io) => new ConsoleChat(host, io.console!),
};
