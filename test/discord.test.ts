// discord.js itself, over loopback, against a Discord stand-in (REST + gateway) in test/support.
import { loadImage } from "@napi-rs/canvas";
import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS, handleCommand } from "../commands/registry.js";
import { runBalanceMonitor } from "../jobs/balanceMonitor.js";
import { installNoticeCharts } from "../src/chat/charts/hooks.js";
import { isPng } from "../src/chat/charts/render.js";
import { DiscordChat, type DiscordOptions } from "../src/chat/discord/discordChat.js";
import type { ChatHost } from "../src/chat/host.js";
import type { Notice } from "../src/chat/notices.js";
import { ChatServices } from "../src/chat/services.js";
import type { Config } from "../src/config/config.js";
import { USDC } from "../src/domain/types.js";
import { sleep } from "../src/sleep.js";
import { snapshot, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { DiscordStandIn, type DMessage, type DUser, type InteractionRecord } from "./support/discordStandIn.js";
import type { AppOptions } from "../src/app.js";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { SteeredMarket } from "./support/market.js";

const alice: DUser = { id: "111", username: "alice" }; // admin
const bob: DUser = { id: "222", username: "bob" }; // trader
const vera: DUser = { id: "333", username: "vera" }; // viewer
const dana: DUser = { id: "444", username: "dana" }; // not listed: gets her role from a server role
const mallory: DUser = { id: "666", username: "mallory" }; // not allowed
const TRADER_ROLE = "4000000000000000001";

let t: TestApp | undefined;
let dc: DiscordStandIn | undefined;
let chat: DiscordChat | undefined;

afterEach(async () => {
  await chat?.stop();
  await t?.app.stop();
  await dc?.stop();
  chat = undefined;
  t = undefined;
  dc = undefined;
});

interface StartOptions {
  chat?: Partial<DiscordOptions>;
  /** Changes what the adapter is given (more watched markets, say). */
  host?: (app: ChatHost) => ChatHost;
  /** Runs before chat.start(): set the stand-in up, send notices early. */
  before?: (dc: DiscordStandIn, chat: DiscordChat, t: TestApp) => Promise<void> | void;
  /** What the app is built with (a steered market, say). */
  app?: AppOptions;
}

/** Notices as every sink receives them (here: what the other platforms would be told). */
let told: Notice[] = [];

async function start(edit: (c: Config) => void = () => {}, o: StartOptions = {}): Promise<{ t: TestApp; dc: DiscordStandIn; chat: DiscordChat }> {
  dc = await new DiscordStandIn().start();
  t = await startTestApp(
    testConfig((c) => {
      c.chat.discord = {
        ...c.chat.discord,
        token: dc!.token,
        guildIds: [dc!.guildId],
        channelId: dc!.channelId,
        apiUrl: dc!.apiBase,
        allowedUsers: [
          { id: "111", role: "admin" },
          { id: "222", role: "trader" },
          { id: "333", role: "viewer" },
        ],
        roleMap: [{ roleId: TRADER_ROLE, role: "trader" }],
      };
      edit(c);
    }),
    o.app ?? {},
  );
  told = [];
  t.app.notifier.add({ name: "other-platforms", deliver: async (n) => void told.push(n) });
  chat = new DiscordChat(o.host ? o.host(t.app) : t.app, { token: dc.token, guildIds: [dc.guildId], channelId: dc.channelId, apiUrl: dc.apiBase, ...o.chat });
  t.app.notifier.add(chat);
  await o.before?.(dc, chat, t);
  await chat.start();
  return { t, dc, chat };
}

const toldOf = (type: string) => told.filter((n) => n.event?.type === type).map((n) => n.text);

/** What Discord shows: the markdown escapes removed. */
const shown = (m: DMessage | string | undefined) => (typeof m === "string" ? m : (m?.content ?? "")).replace(/\\([\\*_~`|>[\]#.\-+])/g, "$1");

/** Runs a slash command and waits until its answer is complete. */
async function slash(user: DUser, name: string, options: Record<string, string | number> = {}, opts: { roles?: string[]; dm?: boolean } = {}): Promise<InteractionRecord> {
  const r = dc!.slash(user, name, options, opts);
  // Answered: the reply edited in, or (a refusal under a public "thinking") replaced by a private one.
  await waitFor(`the answer to /${name}`, async () => r.ackType !== undefined && ((r.original && !(r.original.flags & 128) && r.original.content !== "") || r.deleted));
  await chat!.idle();
  return structuredClone(r);
}

/** What is left of an interaction's answer, shown to the asker alone: exactly one message, ephemeral. */
function privately(r: InteractionRecord): string {
  const visible = [r.original, ...r.followUps].filter((m): m is DMessage => m !== undefined);
  expect(visible.map((m) => dc!.isEphemeral(m))).toEqual([true]);
  return shown(visible[0]);
}

const answerText = (r: InteractionRecord) => [r.original, ...r.followUps].map(shown).join("\n");
const customIdOf = (m: DMessage | undefined, yes = true) => m?.components[0]?.components.find((c) => c.custom_id?.endsWith(yes ? ":ok" : ":no"))?.custom_id;

async function press(user: DUser, message: DMessage, customId: string, roles: string[] = []): Promise<InteractionRecord> {
  const r = dc!.press(user, message, customId, { roles });
  await waitFor("the press to be acknowledged", async () => r.ackType !== undefined);
  await chat!.idle();
  return structuredClone(r);
}

const paperBalance = async () => (await t!.app.services.balance.getBalance()) / 1_000_000;
const withoutAudit = async () => Object.fromEntries(Object.entries(await snapshot(t!.url)).filter(([k]) => !k.startsWith("audit:")));

/** Example options for each command, as a person would fill in the slash command. */
const EXAMPLES: Record<string, Record<string, string | number>> = {
  decide: { symbol: "BTC" },
  refill: { amount: 10 },
  trade: { side: "buy", symbol: "BTC", amount: "50" },
  grant: { platform: "discord", id: "555555555555555555", role: "trader" },
  revoke: { platform: "discord", id: "555555555555555555" },
  confirm: { id: "abcdefgh" },
  cancel: { id: "abcdefgh" },
  export: { what: "trades" },
  cancel_order: { id: "abcdef" },
  stop: { symbol: "BTC", price: "1" },
  tp: { symbol: "BTC", price: "1" },
  close: { symbol: "BTC" },
};

describe("Discord: startup", () => {
  it("registers every command as a slash command with typed options in the configured server", async () => {
    const { dc } = await start();
    const registered = dc.commands.get(`guild:${dc.guildId}`)!;
    expect(registered.map((c) => c.name).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
    const option = (command: string, name: string) => ((registered.find((c) => c.name === command)!.options ?? []) as Record<string, unknown>[]).find((o) => o.name === name)!;
    expect(option("decide", "symbol")).toMatchObject({ type: 3, required: true, choices: [{ name: "BTC", value: "BTC" }, { name: "ETH", value: "ETH" }, { name: "DOGE", value: "DOGE" }] });
    expect(option("refill", "amount")).toMatchObject({ type: 10, required: true, min_value: 0.01, max_value: 1000 });
    expect(option("trade", "side")).toMatchObject({ choices: [{ name: "buy", value: "buy" }, { name: "sell", value: "sell" }] });
    expect(option("pause", "scope")).toMatchObject({ required: false, choices: [{ name: "all", value: "all" }] });
    expect(dc.identified).toBe(true);
  });
});

describe("Discord: every command", () => {
  it("answers every command for an allowed user, deferred within 3 s and then edited", async () => {
    const { dc } = await start();
    const expected: Record<string, RegExp> = {
      help: /Commands:[\s\S]*\/decide SYMBOL/,
      decide: /BTC\/USDT: (BUY|SELL|HOLD|CLOSE)[\s\S]*Model: offline-engine/,
      balance: /USDC for model calls: \$10\.00 — OK/,
      refill: /Refill: add \$10\.00 to the paper USDC wallet[\s\S]*Confirm within 60 s/,
      pause: /Trading paused/,
      resume: /Trading resumed/,
      model: /1\. offline-engine/,
      status: /Trading: running · PAPER/,
      positions: /No open positions \[PAPER\]/,
      report: /Cost report \(today/,
      profit: /Profit \[PAPER\], from the books\nSince start: realized [+-]\d+\.\d\d USDT/,
      daily: /Daily profit \[PAPER\][\s\S]*Total/,
      weekly: /Weekly profit \[PAPER\][\s\S]*Total/,
      monthly: /Monthly profit \[PAPER\][\s\S]*Total/,
      // /decide BTC ran first, and the offline engine may have bought.
      performance: /Performance \[PAPER\]|No trades on the books yet/,
      trades: /Last \d+ trade\(s\) \[PAPER\]|No trades on the books yet/,
      export: /trade\(s\) \[PAPER\] as CSV|No trades on the books: no file sent/,
      session: /No permit sessions: the router is not paid from a wallet by permit/,
      trade: /Manual BUY 0\.\d+ BTC @ [\d,.]+ = 50\.0\d USDT/,
      orders: /No open orders \[PAPER\]/,
      cancel_order: /No open order with id abcdef: nothing was cancelled/,
      stop: /wider than the 10% allowed/,
      tp: /at or below the price now/,
      close: /Closed BTC\/USDT: Manual SELL 0\.\d+ BTC/,
      stopentry: /New entries stopped/,
      limits: /Risk limits:/,
      symbols: /Symbols: BTC\/USDT, ETH\/USDT, DOGE\/USDT \(from SYMBOLS=/,
      interval: /Decisions every 5 min \(from DECISION_INTERVAL_SECONDS=300/,
      users: /discord 111: admin \(configuration\)[\s\S]*discord role 4000000000000000001: trader/,
      grant: /discord user 555555555555555555 is now a trader/,
      revoke: /discord user 555555555555555555 has no access any more/,
      audit: /Audit log, last \d+[\s\S]*@alice \(discord 111, admin\) in discord #trading \(3000000000000000001\) in server "Trading desk" \(2000000000000000001\): \/trade buy BTC 50 → ok/,
      dashboard: /The dashboard is not served: an admin sets DASHBOARD_PORT/,
      whoami: /You are @alice \(discord user 111\), an admin\.\nHere: discord #trading \(3000000000000000001\) in server "Trading desk" \(2000000000000000001\)\./,
      confirm: /Nothing is waiting under that id/,
      cancel: /Nothing is waiting under that id/,
    };
    expect(Object.keys(expected).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
    for (const c of COMMANDS) {
      const r = await slash(alice, c.name, EXAMPLES[c.name] ?? {});
      expect(answerText(r), c.name).toMatch(expected[c.name]!);
      expect(r.ackType, c.name).toBe(5);
      expect(r.ackAt! - r.sentAt, c.name).toBeLessThan(3000);
      // Personal output (the help for your role, the user list, the audit log) goes to the asker alone.
      expect(dc.isEphemeral(r.original), c.name).toBe(Boolean(c.personal));
    }
    expect(COMMANDS.filter((c) => c.personal).map((c) => c.name).sort()).toEqual(["audit", "dashboard", "export", "help", "users", "whoami"]);
    expect(dc.callsTo("POST /interactions")).toHaveLength(COMMANDS.length);
  });

  it("refuses every command, privately and changing nothing, from someone not allowed", async () => {
    const { t } = await start();
    await slash(alice, "balance");
    const before = await withoutAudit();
    for (const c of COMMANDS) {
      const r = await slash(mallory, c.name, EXAMPLES[c.name] ?? {});
      // Acknowledged at once (before the role lookup), and refused to the asker alone.
      expect(r.ackType, c.name).toBe(5);
      expect(privately(r), c.name).toBe("Sorry, you are not on this bot's allow-list, so I can't run that. Nothing was changed.\nAn admin can add you with: /grant discord 666 viewer");
    }
    expect(await withoutAudit()).toEqual(before);
    const refused = (await ChatServices.of(t.app).audit.recent(50)).filter((e) => e.userId === "666");
    expect(refused.map((e) => e.command)).toEqual(expect.arrayContaining(["/refill 10", "/decide BTC", "/trade buy BTC 50"]));
  });

  it("maps a Discord server role onto a role here, and refuses above it", async () => {
    await start();
    const withRole = await slash(dana, "decide", { symbol: "ETH" }, { roles: [TRADER_ROLE] });
    expect(answerText(withRole)).toMatch(/^ETH\/USDT: /);
    const without = await slash(dana, "status", {}, { roles: [] });
    expect(privately(without)).toMatch(/not on this bot's allow-list/);
    const before = await withoutAudit();
    const above = await slash(dana, "refill", { amount: 5 }, { roles: [TRADER_ROLE] });
    expect(privately(above)).toBe("Sorry, /refill needs the admin role; you are a trader. Nothing was changed.");
    const viewer = await slash(vera, "pause");
    expect(privately(viewer)).toMatch(/needs the trader role; you are a viewer/);
    expect(await withoutAudit()).toEqual(before);
  });

  it("answers in a direct message through global commands; guild commands never reach a DM", async () => {
    const guildOnly = await start();
    // Discord offers a server's commands in that server only: no DM interaction can carry them.
    expect(() => guildOnly.dc.slash(bob, "balance", {}, { dm: true })).toThrow(/not offered in DMs/);
    await chat!.stop();
    await t!.app.stop();
    await dc!.stop();

    const { dc: global } = await start(() => {}, { chat: { guildIds: [] } });
    expect(global.commands.get(`guild:${global.guildId}`)).toBeUndefined();
    const registered = global.commands.get("global")!;
    expect(registered.map((c) => c.contexts)).toEqual(registered.map(() => [0, 1]));
    const r = await slash(bob, "balance", {}, { dm: true });
    expect(answerText(r)).toMatch(/USDC for model calls/);
    // In a DM there is no member and no server roles: the allow-list alone decides.
    const refused = await slash(dana, "status", {}, { dm: true });
    expect(privately(refused)).toMatch(/not on this bot's allow-list/);
  });

  it("shows /decide's progress at once, then the result with its chart as a PNG", async () => {
    const { dc } = await start();
    const r = await slash(bob, "decide", { symbol: "DOGE" });
    const edits = dc.calls.filter((c) => c.method === "PATCH" && c.path.includes(r.token));
    expect(shown(edits[0]!.body!.content as string)).toBe("Deciding on DOGE with offline-engine…");
    expect(shown(edits.at(-1)!.body!.content as string)).toMatch(/^DOGE\/USDT: (BUY|SELL|HOLD|CLOSE)/);
    const png = edits.at(-1)!.files[0]!;
    expect(png.filename).toBe("doge-decision.png");
    expect(isPng(png.data)).toBe(true);
    const image = await loadImage(png.data);
    expect([image.width, image.height]).toEqual([900, 450]);
    expect(r.original!.attachments[0]!.filename).toBe("doge-decision.png");
  });
});

describe("Discord: confirmation buttons", () => {
  it("confirms in time for the requester, once; refuses others and late presses", async () => {
    const { dc, t } = await start();
    const asked = await slash(bob, "trade", { side: "buy", symbol: "ETH", amount: "300" });
    const question = asked.original!;
    expect(question.components[0]!.components.map((c) => c.label)).toEqual(["Confirm", "Cancel"]);

    const stranger = await press(vera, question, customIdOf(question)!);
    expect(stranger.ackType).toBe(6);
    expect(shown(stranger.followUps[0])).toBe("Only @bob (who asked) or an admin can answer this. Nothing was changed.");
    expect(dc.isEphemeral(stranger.followUps[0])).toBe(true);
    expect(await t.app.services.portfolio.positions()).toHaveLength(0);

    const ok = await press(bob, question, customIdOf(question)!);
    expect(ok.followUps).toHaveLength(0);
    expect(await t.app.services.portfolio.positions()).toHaveLength(1);
    const edited = dc.interactions.get(asked.id)!.original!;
    expect(shown(edited)).toMatch(/Buy 300\.00 USDT of ETH\/USDT[\s\S]*✅ Confirmed by @bob\.\nManual BUY/);
    expect(edited.components).toEqual([]);

    const twice = await press(alice, question, customIdOf(question)!);
    expect(shown(twice.followUps[0])).toMatch(/^Too late: this was already confirmed by @bob/);
    expect(await t.app.services.portfolio.positions()).toHaveLength(1);

    const late = await slash(alice, "refill", { amount: 10 });
    t.clock.advance(60_001);
    const tooLate = await press(alice, late.original!, customIdOf(late.original)!);
    expect(shown(tooLate.followUps[0])).toMatch(/^Too late: this expired at/);
    expect(shown(dc.interactions.get(late.id)!.original)).toMatch(/⌛ Expired at .* Nobody confirmed in time/);
    expect(await paperBalance()).toBe(10);

    const cancelled = await slash(alice, "refill", { amount: 10 });
    await press(alice, cancelled.original!, customIdOf(cancelled.original, false)!);
    expect(shown(dc.interactions.get(cancelled.id)!.original)).toMatch(/✖ Cancelled by @alice\. Nothing was done\./);
    expect(await paperBalance()).toBe(10);
  });
});

describe("Discord: platform limits and notifications", () => {
  it("splits a reply of over 5,000 characters into messages of at most 2000, on line boundaries", async () => {
    const { t } = await start();
    const audit = ChatServices.of(t.app).audit;
    for (let i = 0; i < 24; i++) {
      await audit.record({ platform: "discord", userId: "111", user: "@alice", role: "admin", where: "discord #trading", command: `/decide ${"BTC".repeat(20)}-${i}`, result: "failed", detail: `Unknown symbol *${"x".repeat(40)}* _and_ \`more\`` });
    }
    const full = (await handleCommand("/audit 24", { user: { id: "111", name: "@alice", platform: "discord", role: "admin" }, app: t.app })).text;
    expect(full.length).toBeGreaterThan(5000);
    const r = await slash(alice, "audit", { count: 24 });
    const parts = [r.original!, ...r.followUps];
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const p of parts) expect(p.content.length).toBeLessThanOrEqual(2000);
    for (const p of parts) expect(dc!.isEphemeral(p)).toBe(true);
    expect(parts.map(shown).join("\n")).toBe(full);
    // Markdown characters are escaped, so Discord shows them as typed.
    expect(parts[0]!.content).toContain("\\*xxxx");
  });

  it("obeys a 429 and its Retry-After, then delivers the alert to the oversight channel", async () => {
    const { t, dc } = await start();
    dc.flood("POST /channels/", 1);
    await t.app.services.balance.trackCost("drain", "test/model", USDC(9.7), t.clock.now);
    await runBalanceMonitor(t.app);
    const posts = dc.calls.filter((c) => c.method === "POST" && c.path.startsWith("/channels/"));
    expect(posts.map((c) => c.status)).toEqual([429, 200]);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(990);
    const alert = dc.messagesIn()[0]!;
    expect(alert.content).toMatch(/^\*\*🚨 CRITICAL\*\*\nCRITICAL: USDC balance \$0\.30 is under \$0\.50/);
    expect(alert.flags & 4096).toBe(0);
    expect(posts[1]!.body!.allowed_mentions).toEqual({ parse: [] });
  });

  it("follows the channel's X-RateLimit bucket, waiting for its reset instead of earning a 429", async () => {
    const { t, dc } = await start();
    dc.channelBucket = { limit: 3, windowMs: 1000 };
    await Promise.all(Array.from({ length: 5 }, (_, i) => t.app.notifier.notify({ kind: "alert", text: `alert ${i}` })));
    await waitFor("5 alerts", async () => dc.messagesIn().length === 5);
    const posts = dc.calls.filter((c) => c.method === "POST" && c.path.startsWith("/channels/"));
    expect(posts.map((c) => c.status)).toEqual([200, 200, 200, 200, 200]);
    expect(dc.rateLimited).toBe(0);
    expect(posts[3]!.at - posts[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it("waits out a global 429 with a fractional retry_after before any further request", async () => {
    const { t, dc } = await start();
    dc.flood("POST /channels/", 1.25, 1, { global: true });
    await t.app.notifier.notify({ kind: "alert", text: "first" });
    const posts = dc.calls.filter((c) => c.method === "POST" && c.path.startsWith("/channels/"));
    expect(posts.map((c) => c.status)).toEqual([429, 200]);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(1250);
    expect(dc.messagesIn().map((m) => m.content)).toEqual([expect.stringContaining("first")]);
  });

  it("posts silent kinds without a notification, marks paper trades, and attaches the report chart", async () => {
    const { t, dc } = await start();
    installNoticeCharts(t.app);
    await slash(bob, "pause");
    await t.app.notifier.notify({ kind: "trade", text: "Take profit hit on BTC/USDT: sold 0.01" });
    await t.app.notifier.notify({ kind: "report", text: await t.app.costReport() });
    const info = dc.messagesIn().find((m) => m.content.includes("Trading paused by @bob"))!;
    expect(info.flags & 4096).toBe(4096);
    expect(dc.messagesIn().find((m) => m.content.includes("Take profit"))!.content).toMatch(/^\*\*Trade \\\[PAPER\\\]\*\*\n/);
    const report = dc.messagesIn().find((m) => m.content.includes("Cost report"))!;
    expect(report.attachments[0]!.filename).toMatch(/^cost-\d{4}-\d\d-\d\d\.png$/);
    expect(isPng(report.files[0]!)).toBe(true);
  });
});

describe("Discord as it really behaves", () => {
  it("registers in every server it can: a server the bot is not in (50001) is named in the log, an alert and the health", async () => {
    const missing = "2999999999999999999";
    const { dc, chat } = await start(() => {}, { chat: { guildIds: [missing, "2000000000000000001"] } });
    const puts = dc.calls.filter((c) => c.method === "PUT");
    expect(puts.map((c) => [c.path.split("/")[4], c.status])).toEqual([[missing, 403], [dc.guildId, 200]]);
    expect(dc.commands.get(`guild:${dc.guildId}`)!.length).toBe(COMMANDS.length);
    const health = chat.health();
    expect(health.ok).toBe(false);
    expect(health.problems).toEqual([expect.stringMatching(new RegExp(`no slash commands in server ${missing}: Missing Access \\(50001\\).*applications\\.commands`))]);
    expect(toldOf("chat-problem")).toEqual([expect.stringContaining(`Discord: no slash commands in server ${missing}`)]);
    // The good server works in full: commands and alerts.
    const r = await slash(bob, "balance");
    expect(answerText(r)).toMatch(/USDC for model calls/);
    await t!.app.notifier.notify({ kind: "alert", text: "still here" });
    // The alert channel works too: it got the problem notice, then this one.
    expect(dc.messagesIn().map((m) => shown(m).split("\n")[1])).toEqual([expect.stringContaining(`Discord: no slash commands in server ${missing}`), "still here"]);
  });

  it("checks the alert channel at startup: unknown (10003) or out of reach (50001), alerts go elsewhere and the health says so", async () => {
    for (const [channelId, why] of [
      ["3000000000000000777", /Unknown Channel \(10003\).*DISCORD_CHANNEL_ID/],
      ["3000000000000000099", /Missing Access \(50001\)/],
    ] as const) {
      const { dc, chat: adapter } = await start(() => {}, { chat: { channelId } });
      expect(adapter.health().problems).toEqual([expect.stringMatching(why)]);
      expect(toldOf("chat-problem")).toEqual([expect.stringMatching(why)]);
      await t!.app.notifier.notify({ kind: "alert", text: "nobody sees this on Discord" });
      // Nothing is sent into a wall; the count shows in the health.
      expect(dc.calls.filter((c) => c.method === "POST" && c.path.startsWith("/channels/"))).toHaveLength(0);
      await waitFor("the count of lost notices", async () => /1 notice\(s\) could not be posted/.test(adapter.health().problems.at(-1) ?? ""));
      await adapter.stop();
      await t!.app.stop();
      await dc.stop();
      [chat, t] = [undefined, undefined];
    }
  });

  it("finds missing Send Messages at startup, and loses it at run time (50013) without losing the alerts silently", async () => {
    const denied = await start(() => {}, { before: (dc) => void (dc.channelDeny = 2048n) });
    expect(denied.chat.health().problems).toEqual([expect.stringMatching(/cannot post alerts in channel .*Missing Permissions \(50013\): the bot lacks Send Messages in #trading/)]);
    await denied.chat.stop();
    await t!.app.stop();
    await dc!.stop();

    const { dc: live, chat: fine } = await start();
    expect(fine.health()).toEqual({ ok: true, problems: [] });
    live.channelDeny = 2048n; // an admin takes the permission away while the bot runs
    await t!.app.notifier.notify({ kind: "alert", text: "first after the change" });
    expect(live.calls.filter((c) => c.path.startsWith("/channels/") && c.method === "POST").map((c) => c.status)).toEqual([403]);
    expect(toldOf("chat-problem")).toEqual([expect.stringMatching(/Missing Permissions \(50013/)]);
    await t!.app.notifier.notify({ kind: "alert", text: "second" });
    expect(live.calls.filter((c) => c.path.startsWith("/channels/") && c.method === "POST")).toHaveLength(1);
    expect(fine.health().problems).toEqual([expect.stringMatching(/cannot post alerts/), expect.stringMatching(/2 notice\(s\) could not be posted/)]);
  });

  it("posts charts as text where Attach Files is missing", async () => {
    const { dc, chat, t } = await start(() => {}, { before: (dc) => void (dc.channelDeny = 32768n) });
    expect(chat.health().problems).toEqual([expect.stringMatching(/lacks Attach Files in #trading.*text only/)]);
    installNoticeCharts(t.app);
    await t.app.notifier.notify({ kind: "report", text: await t.app.costReport() });
    await waitFor("the report", async () => dc.messagesIn().some((m) => m.content.includes("Cost report")));
    const posts = dc.calls.filter((c) => c.method === "POST" && c.path.startsWith("/channels/") && String(c.body?.content).includes("Cost report"));
    // Known at startup, so no request is refused: the report goes as text, saying the chart was left out.
    expect(posts.map((c) => [c.status, c.files.length])).toEqual([[200, 0]]);
    expect(shown(dc.messagesIn().at(-1))).toMatch(/Cost report[\s\S]*chart left out, the bot may not attach files here/);
  });

  it("settles a confirmation older than the interaction token's 15 minutes (50027), by the press and by the sweep", async () => {
    const { dc, t } = await start();
    const asked = await slash(bob, "trade", { side: "buy", symbol: "ETH", amount: "300" });
    const expiring = await slash(alice, "refill", { amount: 10 });
    expect(dc.calls.filter((c) => c.path.includes(asked.token) && c.method === "PATCH").every((c) => c.status === 200)).toBe(true);
    // 15 minutes pass for these two interactions: their tokens run out.
    dc.tokensExpiredBefore = performance.now();

    const ok = await press(bob, asked.original!, customIdOf(asked.original)!);
    // Edited through the press's own, fresh interaction.
    expect(dc.calls.filter((c) => c.method === "PATCH" && c.path.includes(ok.token)).map((c) => c.status)).toEqual([200]);
    expect(shown(dc.interactions.get(asked.id)!.original)).toMatch(/✅ Confirmed by @bob\.\nManual BUY/);
    expect(dc.interactions.get(asked.id)!.original!.components).toEqual([]);
    expect(await t.app.services.portfolio.positions()).toHaveLength(1);

    // Nobody presses: the sweep's edit finds the old token dead and edits the channel message with the bot's token.
    t.clock.advance(60_001);
    await ChatServices.of(t.app).sweep();
    await waitFor("the expiry edit", async () => shown(dc.interactions.get(expiring.id)!.original).includes("⌛ Expired"));
    const edits = dc.calls.filter((c) => c.method === "PATCH" && (c.path.includes(expiring.token) || c.path.includes(expiring.original!.id)));
    expect(edits.slice(-2).map((c) => [c.path.startsWith("/webhooks/") ? "webhook" : "channel", c.status])).toEqual([["webhook", 401], ["channel", 200]]);
    expect(await paperBalance()).toBe(10);
  });

  it("offers the watched markets by autocomplete past Discord's 25 choices", async () => {
    const extra = Array.from({ length: 30 }, (_, i) => `C${String(i).padStart(2, "0")}/USDT`);
    const { dc } = await start(() => {}, { host: (app) => ({ ...app, symbols: [...app.symbols, ...extra] }) });
    const decide = dc.commands.get(`guild:${dc.guildId}`)!.find((c) => c.name === "decide")!;
    expect((decide.options as Record<string, unknown>[])[0]).toMatchObject({ name: "symbol", autocomplete: true });
    expect((decide.options as Record<string, unknown>[])[0]!.choices).toBeUndefined();
    const all = dc.autocomplete(bob, "decide", "symbol", "");
    await waitFor("the suggestions", async () => all.choices);
    expect(all.ackType).toBe(8);
    expect(all.choices).toHaveLength(25);
    const typed = dc.autocomplete(bob, "decide", "symbol", "c2");
    await waitFor("the suggestions", async () => typed.choices);
    expect(typed.choices!.map((c) => c.value)).toEqual(["C20", "C21", "C22", "C23", "C24", "C25", "C26", "C27", "C28", "C29"]);
    const inside = dc.autocomplete(bob, "decide", "symbol", "2");
    await waitFor("the suggestions", async () => inside.choices);
    expect(inside.choices!.map((c) => c.value)).toEqual(["C02", "C12", "C20", "C21", "C22", "C23", "C24", "C25", "C26", "C27", "C28", "C29"]);
    // A market past the 25th is chosen by typing it; the command itself still checks it.
    const r = await slash(bob, "decide", { symbol: "ETH" });
    expect(answerText(r)).toMatch(/^ETH\/USDT: /);
  });

  it("holds notices sent before the client is ready and posts them in order once it is", async () => {
    const { dc } = await start(() => {}, {
      before: async (dc, chat, t) => {
        for (const text of ["one", "two", "three"]) await t.app.notifier.notify({ kind: "alert", text });
        expect(dc.calls.filter((c) => c.path.startsWith("/channels/") && c.method === "POST")).toHaveLength(0);
      },
    });
    await waitFor("the held notices", async () => dc.messagesIn().length === 3);
    expect(dc.messagesIn().map((m) => shown(m).split("\n")[1])).toEqual(["one", "two", "three"]);
  });

  it("waits out a global limit across routes, as discord.js's own bucket handling does", async () => {
    const { t, dc } = await start();
    dc.globalLimit = { limit: 2, windowMs: 1000 };
    await Promise.all(Array.from({ length: 4 }, (_, i) => t.app.notifier.notify({ kind: "alert", text: `global ${i}` })));
    await waitFor("4 alerts", async () => dc.messagesIn().length === 4);
    const limited = dc.calls.filter((c) => c.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(dc.messagesIn().map((m) => m.content).sort()).toEqual([0, 1, 2, 3].map((i) => expect.stringContaining(`global ${i}`)));
  });
});

describe("Discord: gateway closes discord.js does not recover from", () => {
  it("fails start on 4004 saying what to fix, and alerts the other platforms", async () => {
    await expect(start(() => {}, { before: (dc) => void (dc.closeOnIdentify = 4004) })).rejects.toThrow(/4004, Authentication failed\): reset the token/);
    expect(toldOf("chat-down")).toEqual([expect.stringMatching(/^Discord is down since .*4004/)]);
    expect(dc!.identifies).toBe(1);
  });

  it("logs in again after 4013 and after a close mid-session, and says when it is back", async () => {
    const { dc, chat } = await start(() => {}, {
      chat: { retry: { firstMs: 50, maxMs: 100 } },
      before: (dc) => {
        dc.closeOnIdentify = 4013;
        setTimeout(() => (dc.closeOnIdentify = undefined), 300);
      },
    });
    expect(dc.identifies).toBeGreaterThanOrEqual(2);
    expect(toldOf("chat-down")).toEqual([expect.stringContaining("4013")]);
    await waitFor("the recovery notice", async () => toldOf("chat-up").length === 1);
    expect(chat.health()).toEqual({ ok: true, problems: [] });

    const before = dc.identifies;
    dc.closeGateway(4010);
    await waitFor("a fresh login", async () => dc.identifies > before && chat.client.isReady());
    await waitFor("the second recovery notice", async () => toldOf("chat-up").length === 2);
    expect(toldOf("chat-down")).toEqual([expect.stringContaining("4013"), expect.stringContaining("4010")]);
    const r = await slash(bob, "balance");
    expect(answerText(r)).toMatch(/USDC for model calls/);
  });
});

describe("Discord: acknowledged in time, and once", () => {
  /** The adapter's log lines, as "LEVEL message". */
  let logged: string[] = [];
  const capturing = (app: ChatHost): ChatHost => {
    const line = (level: string) => (m: string, extra?: unknown) => void logged.push(`${level} ${m}${extra === undefined ? "" : ` ${String(extra)}`}`);
    return Object.assign(Object.create(app) as ChatHost, { log: { debug() {}, info: line("info"), warn: line("warn"), error: line("error") } });
  };

  it("says \"thinking\" before looking the person's role up in Redis, so a slow Redis cannot miss Discord's 3 s", async () => {
    const { t, dc } = await start();
    const access = t.app.chat.access;
    const roleOf = access.roleOf.bind(access);
    let asked!: () => void;
    const lookedUp = new Promise<void>((r) => (asked = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    access.roleOf = async (...args) => {
      asked();
      await released;
      return roleOf(...args);
    };
    const r = dc.slash(bob, "status");
    // The lookup is under way and cannot end: Discord has its acknowledgement all the same.
    await lookedUp;
    await waitFor("the deferred acknowledgement", async () => r.ackType === 5);
    expect(r.original!.flags & 128).toBe(128);
    release();
    await waitFor("the answer", async () => r.original && !(r.original.flags & 128));
    await chat!.idle();
    expect(shown(r.original)).toMatch(/^Trading: running/);
  });

  it("ends \"thinking\" with what went wrong when answering fails, instead of leaving it to \"did not respond\"", async () => {
    const { t, dc } = await start();
    t.app.chat.access.roleOf = async () => {
      throw new Error("Connection is closed.");
    };
    const r = dc.slash(bob, "status");
    await waitFor("the answer", async () => r.original && !(r.original.flags & 128));
    await chat!.idle();
    expect(shown(r.original)).toBe("That failed: Connection is closed. Nothing more was done; try again.");
  });

  it("does nothing more with an interaction Discord no longer knows (10062): one clear line, nothing run", async () => {
    logged = [];
    const { t, dc } = await start(() => {}, { host: capturing });
    const asked = await slash(alice, "refill", { amount: 10 });
    // From here every acknowledgement comes too late, as from a process that stalled for 3 s.
    dc.ackDeadlineMs = 0;
    const late = dc.slash(bob, "pause");
    await waitFor("the refused acknowledgement", async () => dc.calls.some((c) => c.path.includes(late.token) && c.status === 404));
    const press = dc.press(alice, asked.original!, customIdOf(asked.original)!);
    await waitFor("the refused press", async () => dc.calls.some((c) => c.path.includes(press.token) && c.status === 404));
    await chat!.idle();
    // No second try, no follow-up, no edit: each interaction got one call, refused with 10062.
    for (const r of [late, press]) expect(dc.calls.filter((c) => c.path.includes(r.token)).map((c) => c.status)).toEqual([404]);
    expect(await t.app.services.state.isPaused()).toBe(false);
    expect(await paperBalance()).toBe(10);
    expect((await ChatServices.of(t.app).confirmations.get(asked.original!.components[0]!.components[0]!.custom_id!.split(":")[1]!))?.state).toBe("pending");
    expect(logged.filter((l) => l.includes("10062"))).toEqual([
      expect.stringMatching(/^warn Discord: \/pause from @bob could not be acknowledged: Discord no longer knows the interaction \(10062 Unknown interaction: more than 3 s/),
      expect.stringMatching(/^warn Discord: a button press from @alice could not be acknowledged: .*Nothing was run/),
    ]);
    expect(logged.filter((l) => l.startsWith("error"))).toEqual([]);
  });

  it("runs a command once when two processes on the same token both receive it: the second is told 40060 and does nothing", async () => {
    logged = [];
    const { t, dc } = await start(() => {}, { host: capturing });
    const second = new DiscordChat(capturing(t.app), { token: dc.token, guildIds: [dc.guildId], channelId: dc.channelId, apiUrl: dc.apiBase });
    try {
      await second.start();
      const r = dc.slash(bob, "trade", { side: "buy", symbol: "BTC", amount: "50" });
      await waitFor("the answer", async () => r.original && !(r.original.flags & 128));
      await Promise.all([chat!.idle(), second.idle()]);
      expect(shown(r.original)).toMatch(/^Manual BUY/);
      expect(await t.app.services.portfolio.positions()).toHaveLength(1);
      // Both tried to acknowledge; Discord took one.
      expect(dc.calls.filter((c) => c.path.startsWith(`/interactions/${r.id}/`)).map((c) => c.status).sort()).toEqual([204, 400]);
      const lines = logged.filter((l) => l.includes("40060"));
      expect(lines).toEqual([expect.stringMatching(/^warn Discord: \/trade from @bob was acknowledged already \(40060\), by another process using this bot token .*Nothing was run here/)]);
      expect(logged.filter((l) => l.startsWith("error"))).toEqual([]);
    } finally {
      await second.stop();
    }
  });
});

describe("Discord: registering in one scope clears the other", () => {
  it("removes the product's global commands when registering per server (others' stay), and the server's when registering globally", async () => {
    const { dc } = await start(() => {}, { chat: { guildIds: [] } });
    expect(dc.commands.get("global")!.length).toBe(COMMANDS.length);
    // A command of something else on the same application.
    dc.commands.set("global", [...dc.commands.get("global")!, { id: "9100000000000000001", name: "other-tool", description: "not ours", type: 1 }]);
    await chat!.stop();

    chat = new DiscordChat(t!.app, { token: dc.token, guildIds: [dc.guildId], channelId: dc.channelId, apiUrl: dc.apiBase });
    await chat.start();
    expect(dc.commands.get(`guild:${dc.guildId}`)!.length).toBe(COMMANDS.length);
    expect(dc.commands.get("global")!.map((c) => c.name)).toEqual(["other-tool"]);
    expect(() => dc.slash(bob, "balance", {}, { dm: true })).toThrow(/not offered in DMs/);
    await chat.stop();

    chat = new DiscordChat(t!.app, { token: dc.token, guildIds: [], channelId: dc.channelId, apiUrl: dc.apiBase });
    await chat.start();
    expect(dc.commands.get(`guild:${dc.guildId}`)).toEqual([]);
    // (A global registration is Discord's bulk overwrite: the global list is the product's alone again.)
    expect(dc.commands.get("global")!.map((c) => c.name).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
    const r = await slash(bob, "balance");
    expect(answerText(r)).toMatch(/USDC for model calls/);
  });
});

describe("Discord: orders from chat", () => {
  it("places a limit order from the price option, lists and cancels by id, refuses bad input, moves exits, and announces a limit filled later", async () => {
    const market = new SteeredMarket(["BTC/USDT", "ETH/USDT"]);
    market.set("BTC/USDT", { open: 50_000 });
    const { t, dc } = await start((c) => {
      c.market.symbols = ["BTC/USDT", "ETH/USDT"];
      c.risk.maxVar95Pct = undefined;
    }, { app: { market } });
    const registered = dc.commands.get(`guild:${dc.guildId}`)!;
    expect(((registered.find((c) => c.name === "trade")!.options ?? []) as Record<string, unknown>[]).map((o) => o.name)).toEqual(["side", "symbol", "amount", "price"]);
    await slash(alice, "balance");
    const before = await withoutAudit();
    // An unknown symbol cannot be sent from Discord: the symbol option offers the watched ones only.
    expect(() => dc.slash(bob, "stop", { symbol: "DOGEX", price: "1" })).toThrow(/not a choice/);
    const bad: [string, Record<string, string>, RegExp][] = [
      ["trade", { side: "buy", symbol: "BTC", amount: "50", price: "0" }, /limit price must be above 0/],
      ["trade", { side: "buy", symbol: "BTC", amount: "50", price: "-3" }, /limit price "-3" is not a number/],
      ["cancel_order", { id: "abcdef" }, /No open order with id abcdef/],
      ["stop", { symbol: "BTC", price: "45000" }, /There is no open BTC\/USDT position/],
      ["close", { symbol: "ETH" }, /There is no open ETH\/USDT position to close/],
    ];
    for (const [name, options, error] of bad) expect(answerText(await slash(bob, name, options)), name).toMatch(error);
    expect(await withoutAudit()).toEqual(before);

    const placed = answerText(await slash(bob, "trade", { side: "buy", symbol: "BTC", amount: "50", price: "49000" }));
    expect(placed).toMatch(/Limit BUY 0\.001020 BTC @ 49,000(\.00)? placed, order [0-9a-f]{6} \[PAPER\]/);
    const id = /order ([0-9a-f]{6})/.exec(placed)![1]!;
    const other = /order ([0-9a-f]{6})/.exec(answerText(await slash(bob, "trade", { side: "buy", symbol: "ETH", amount: "20", price: "1500" })))![1]!;
    const listed = answerText(await slash(vera, "orders"));
    expect(listed).toContain(`${id}  BUY 0.001020 BTC`);
    expect(listed).toContain(`${other}  BUY`);
    expect(answerText(await slash(bob, "cancel_order", { id: other }))).toMatch(/^Cancelled the limit BUY 0\.013333 ETH/);

    market.set("BTC/USDT", { open: 48_900 });
    await runPositionMonitor(t.app);
    await chat!.idle();
    const filled = dc.messagesIn(dc.channelId).map(shown).find((m) => m.includes(`(order ${id},`));
    expect(filled).toMatch(/Limit BUY BTC @ 49,000(\.00)? \(order [0-9a-f]{6}, \/trade buy BTC 50 @ 49000 by @bob\) FILLED \[PAPER\]/);
    expect(answerText(await slash(bob, "stop", { symbol: "BTC", price: "49500" }))).toMatch(/at or above the price now \(48,900\)/);
    expect(answerText(await slash(bob, "tp", { symbol: "BTC", price: "55000" }))).toMatch(/^BTC\/USDT take profit moved from 51,940(\.00)? to 55,000(\.00)? by @bob/);
    expect(answerText(await slash(bob, "close", { symbol: "BTC" }))).toMatch(/^Closed BTC\/USDT: Manual SELL 0\.001020 BTC/);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
  });
});
