// `npm start` with both tokens set: Telegram and Discord start beside the console, answer, and stop
// cleanly, and no token is ever printed. The product runs as a real process against the stand-ins.
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { freshRedisUrl, waitFor } from "./support/app.js";
import { DiscordStandIn } from "./support/discordStandIn.js";
import { TelegramStandIn } from "./support/telegramStandIn.js";

let tg: TelegramStandIn | undefined;
let dc: DiscordStandIn | undefined;
afterEach(async () => {
  await tg?.stop();
  await dc?.stop();
});

describe("npm start with Telegram and Discord", () => {
  it("serves commands on both platforms beside the console, then stops cleanly", async () => {
    tg = await new TelegramStandIn().start();
    dc = await new DiscordStandIn().start();
    // This test is about the wiring; a freshly started process on a busy machine may be slow to
    // answer its first interaction (test/discord.test.ts holds it to Discord's 3 s), and no clock
    // may decide whether it passes: the stand-in takes the answer whenever it comes, and the test
    // waits for it (the bounds below only stop a hung run).
    dc.ackDeadlineMs = Infinity;
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        REDIS_URL: await freshRedisUrl(),
        REDIS_AUTOSTART: "false",
        TELEGRAM_BOT_TOKEN: tg.token,
        TELEGRAM_API_URL: tg.apiRoot,
        TELEGRAM_ALLOWED_USERS: "101:admin",
        TELEGRAM_CHAT_ID: "-100777",
        DISCORD_BOT_TOKEN: dc.token,
        DISCORD_API_URL: dc.apiBase,
        // The first server is one the bot is not in: the second must still get its commands.
        DISCORD_GUILD_IDS: `2999999999999999999,${dc.guildId}`,
        DISCORD_CHANNEL_ID: dc.channelId,
        DISCORD_ALLOWED_USERS: "111111111111111111:trader",
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await waitFor("the Telegram command menu", async () => tg!.commands.length > 0, 90_000);
      await waitFor("Discord's slash commands", async () => dc!.commands.size > 0, 90_000);
      await waitFor("the banner", async () => out.includes("Telegram on; Discord on"), 90_000);

      tg.userSends({ id: 101, is_bot: false, first_name: "Alice" }, { id: 101, type: "private" }, "/balance");
      await waitFor("the Telegram answer", async () => tg!.sent(101).length > 0, 90_000);
      expect(tg.sent(101)[0]!.text).toMatch(/^USDC for model calls: \$10\.00/);

      const r = dc.slash({ id: "111111111111111111", username: "bob" }, "status");
      await waitFor("the Discord answer", async () => r.original && !(r.original.flags & 128), 90_000);
      expect(r.original!.content).toMatch(/^Trading: running/);
      // /status carries the platforms' health: the server without commands, named.
      expect(r.original!.content).toMatch(/Chat problems:\n {2}no slash commands in server 2999999999999999999: Missing Access \(50001\)/);
      expect(out + err).toMatch(/Discord: no slash commands in server 2999999999999999999: Missing Access \(50001\)/);
      expect(out + err).toMatch(/slash commands in 1 of 2 server\(s\)/);
      // And the other platform was told.
      await waitFor("the Telegram alert about it", async () => tg!.sent(-100777).some((m) => (m.text ?? "").includes("no slash commands in server 2999999999999999999")), 90_000);

      child.stdin.write("/pause\n");
      await waitFor("the pause notice on Telegram", async () => tg!.sent(-100777).some((m) => (m.text ?? "").includes("Trading paused by")), 90_000);
      await waitFor("the pause notice on Discord", async () => dc!.messagesIn().some((m) => m.content.includes("Trading paused by")), 90_000);
    } finally {
      child.stdin.end();
    }
    expect(await exited).toBe(0);
    expect(err).toContain("end of input");
    for (const secret of [tg.token, dc.token, tg.token.split(":")[1]!]) expect(out + err).not.toContain(secret);
  }, 300_000);
});
