// The registry of chat platforms (src/chat/platforms.ts): the console, Telegram and Discord started,
// reported on, handed notices and stopped through one interface, each against its stand-in, and a
// platform that fails (a chat that blocked the bot, a rejected token) told to the others.
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { CHAT_PLATFORMS, startChatPlatforms, type ChatPlatforms } from "../src/chat/platforms.js";
import { PLATFORM_LABEL } from "../src/chat/types.js";
import type { Config } from "../src/config/config.js";
import { startOps } from "../src/ops/serve.js";
import { startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { DiscordStandIn } from "./support/discordStandIn.js";
import { TelegramStandIn } from "./support/telegramStandIn.js";

const ALICE = 101;

let t: TestApp | undefined;
let tg: TelegramStandIn | undefined;
let dc: DiscordStandIn | undefined;
let platforms: ChatPlatforms | undefined;
const cleanup: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await platforms?.stop();
  await t?.app.stop();
  await tg?.stop();
  await dc?.stop();
  platforms = t = tg = dc = undefined;
});

/** Both stand-ins, an app configured for them, and a terminal for the console. */
async function start(edit: (c: Config) => void = () => {}) {
  tg = await new TelegramStandIn().start();
  dc = await new DiscordStandIn().start();
  t = await startTestApp(
    testConfig((c) => {
      c.chat.console = true;
      c.chat.telegram = { ...c.chat.telegram, token: tg!.token, apiUrl: tg!.apiRoot, chatId: String(ALICE), allowedUsers: [{ id: String(ALICE), role: "admin" }] };
      c.chat.discord = { ...c.chat.discord, token: dc!.token, apiUrl: dc!.apiBase, guildIds: [dc!.guildId], channelId: dc!.channelId, allowedUsers: [{ id: "111", role: "admin" }] };
      edit(c);
    }),
  );
  const input = new PassThrough();
  const output = new PassThrough();
  const term = { out: "", ended: false, output };
  output.on("data", (d: Buffer) => (term.out += d.toString()));
  platforms = await startChatPlatforms(t.app, { console: { input, output, onEnd: () => (term.ended = true) } });
  // As the composition root (src/main.ts) does: /status, /metrics and /healthz read it.
  t.app.chatHealth = () => platforms!.health();
  await platforms.started;
  return { t, tg, dc, platforms, input, term };
}

const discordSays = (text: string) => dc!.messagesIn().some((m) => m.content.replace(/\\(.)/g, "$1").includes(text));

describe("chat platforms through one interface", () => {
  it("knows every platform by the one list of names, and each entry by its own name", () => {
    expect(Object.keys(CHAT_PLATFORMS).sort()).toEqual(Object.keys(PLATFORM_LABEL).sort());
    for (const [name, entry] of Object.entries(CHAT_PLATFORMS)) expect(entry.name).toBe(name);
  });

  it("starts the console, Telegram and Discord, hands each every notice, reports each one's health, and stops them", async () => {
    const { t, tg, input, term } = await start();
    const running = platforms!;
    expect([...running.running.keys()]).toEqual(["console", "telegram", "discord"]);
    expect(running.health()).toEqual({ console: { ok: true, problems: [] }, telegram: { ok: true, problems: [] }, discord: { ok: true, problems: [] } });
    expect(t.app.notifier.sinkNames()).toEqual(expect.arrayContaining(["console", "telegram", "discord"]));

    await t.app.notifier.notify({ kind: "alert", text: "one notice for everyone" });
    await waitFor("the notice on Telegram", async () => tg.sent(ALICE).some((m) => (m.text ?? "").includes("one notice for everyone")));
    await waitFor("the notice on Discord", async () => discordSays("one notice for everyone"));
    expect(term.out).toContain("[ALERT] one notice for everyone");

    input.write("/status\n");
    await waitFor("the console's answer", async () => term.out.includes("Chat: every platform works"));

    const telegram = running.running.get("telegram") as unknown as { bot: { isRunning(): boolean } };
    await running.stop();
    platforms = undefined;
    expect(t.app.notifier.sinkNames().filter((n) => ["console", "telegram", "discord"].includes(n))).toEqual([]);
    expect(telegram.bot.isRunning()).toBe(false);
    expect(running.health()).toEqual({});
    // Stopped, the console reads no more, and a stop is not the end of its input: a line typed now
    // waits for the next start (this process taking the frontend lease again).
    expect(input.listenerCount("data")).toBe(0);
    input.write("/help\n");
    expect(term.ended).toBe(false);
    const again = await CHAT_PLATFORMS.console.create(t.app, { console: { input, output: term.output, onEnd: () => (term.ended = true) } });
    cleanup.push(() => again.stop());
    await again.start();
    await waitFor("the line typed while stopped, answered after the new start", async () => term.out.includes("Commands:"));
  });

  it("marks Telegram failing when the alert chat's user blocked the bot (403): /status, /metrics and the other platforms say so", async () => {
    const { t, tg, platforms, input, term } = await start();
    const ops = await startOps(t.app, { host: "127.0.0.1", port: 0 });
    cleanup.push(() => ops.stop());
    tg.blockedBy.add(ALICE);
    await t.app.notifier.notify({ kind: "alert", text: "lost on Telegram" });
    await waitFor("Telegram to be marked failing", async () => platforms.health().telegram?.ok === false);
    expect(platforms.health().telegram!.problems).toEqual([expect.stringContaining("cannot post in chat 101 since")]);
    expect(platforms.health().discord).toEqual({ ok: true, problems: [] });

    // The other platforms were told, with what to do.
    await waitFor("the alert on Discord", async () => discordSays("Telegram: cannot post alerts in chat 101: the user blocked the bot (403 Forbidden: bot was blocked by the user)"));
    await waitFor("the alert on the console", async () => term.out.includes("Telegram: cannot post alerts in chat 101: the user blocked the bot"));

    input.write("/status\n");
    await waitFor("the console's /status", async () => term.out.includes("Chat problems:"));
    expect(term.out).toMatch(/Chat problems:\n {2}Telegram: cannot post in chat 101 since \d\d:\d\d:\d\d UTC: the user blocked the bot/);

    const metrics = await (await fetch(`http://${ops.host}:${ops.port}/metrics`)).text();
    expect(metrics).toMatch(/^agent_chat_ok\{chat="telegram"\} 0$/m);
    expect(metrics).toMatch(/^agent_chat_ok\{chat="discord"\} 1$/m);
    expect(metrics).toMatch(/^agent_chat_problems\{chat="telegram"\} 1$/m);
  });

  it("tells the other platforms when one does not start (Discord refuses the token), and its health says why", async () => {
    // Discord answers GET /gateway/bot with 401 for a token it does not know; discord.js gives up at once.
    const { tg, platforms } = await start((c) => (c.chat.discord.token = "MTAwMDAwMDAwMDAwMDAwMDAx.GtEsT0.a-token-discord-does-not-know"));
    expect(platforms.health().discord).toEqual({ ok: false, problems: [expect.stringMatching(/^Discord did not start: .*An invalid token was provided/)] });
    expect(platforms.health().telegram).toEqual({ ok: true, problems: [] });
    await waitFor("the alert on Telegram", async () => tg.sent(ALICE).some((m) => (m.text ?? "").includes("Discord is down since")));
  });
});
