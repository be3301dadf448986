// The chat layer's plain parts: message limits, escaping, pacing, confirmations, access, config.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../commands/registry.js";
import { AccessControl } from "../src/chat/access.js";
import { spendSeries } from "../src/chat/charts/costChart.js";
import { isPng } from "../src/chat/charts/render.js";
import { ConfirmationStore } from "../src/chat/confirmations.js";
import { ConsoleChat } from "../src/chat/console/consoleChat.js";
import { slashCommands } from "../src/chat/discord/slashCommands.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { escapeDiscord, escapeHtml, splitMessage, truncate } from "../src/chat/render.js";
import { loadConfig } from "../src/config/config.js";
import { testRedis } from "./support/redis.js";
import { startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { commandProblem } from "./support/discordStandIn.js";

/** Half of a surrogate pair with no other half (with the u flag, a whole pair is one code point and does not match). */
const loneSurrogate = /[\uD800-\uDFFF]/u;

describe("splitMessage", () => {
  it("keeps whole lines together and never exceeds the limit", () => {
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i}: ${"x".repeat(i % 37)}`);
    const text = lines.join("\n");
    const parts = splitMessage(text, 500);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(500);
    expect(parts.join("\n")).toBe(text);
    for (const p of parts) for (const l of p.split("\n")) expect(lines).toContain(l);
  });

  it("cuts a line longer than a message at a space, and measures what will be sent", () => {
    const long = Array.from({ length: 100 }, (_, i) => `word${i}`).join(" ");
    const parts = splitMessage(long, 100);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(100);
    expect(parts.join(" ")).toBe(long);
    // Escaping "&" triples its length: the split leaves room for that.
    const amp = "&".repeat(250);
    for (const p of splitMessage(amp, 100, (s) => escapeHtml(s).length)) expect(escapeHtml(p).length).toBeLessThanOrEqual(100);
    expect(splitMessage("", 100)).toEqual([""]);
  });

  it("never cuts an emoji in half, nor a ZWJ sequence or a flag, when a long line must be cut", () => {
    // 🚀 is two UTF-16 code units: with an odd limit a cut by length alone lands between them.
    const rockets = "🚀".repeat(300);
    for (const max of [99, 100, 101]) {
      const parts = splitMessage(rockets, max);
      for (const p of parts) {
        expect(loneSurrogate.test(p), `a part of ${max} has a lone surrogate`).toBe(false);
        expect(p.length).toBeLessThanOrEqual(max);
      }
      expect(parts.join("")).toBe(rockets);
    }
    // A family (three people joined by ZWJ, 8 code units) and a flag (two regional indicators) are one character each.
    const family = "👨‍👩‍👧";
    const flags = "🇺🇦";
    for (const unit of [family, flags]) {
      const parts = splitMessage(unit.repeat(200), 101);
      for (const p of parts) expect(p.replaceAll(unit, ""), "a part holds a piece of a character").toBe("");
      expect(parts.join("")).toBe(unit.repeat(200));
    }
    // Measured as escaped text, with emoji between the & that escaping lengthens.
    const mixed = "&🚀".repeat(300);
    for (const p of splitMessage(mixed, 101, (s) => escapeHtml(s).length)) {
      expect(loneSurrogate.test(p)).toBe(false);
      expect(escapeHtml(p).length).toBeLessThanOrEqual(101);
    }
    // One character longer than the room (a letter under many combining marks) is cut between code points, and the split still ends.
    const zalgo = "e" + "\u0301".repeat(150);
    expect(splitMessage(zalgo, 50).join("")).toBe(zalgo);
  });

  it("truncate cuts on a character boundary", () => {
    for (const max of [99, 100, 101]) {
      const t = truncate("🚀".repeat(300), max);
      expect(loneSurrogate.test(t)).toBe(false);
      expect(t.length).toBeLessThanOrEqual(max);
      expect(t.endsWith("… (cut)")).toBe(true);
    }
    const t = truncate("👨‍👩‍👧".repeat(100), 100);
    expect(t.replace("\n… (cut)", "").replaceAll("👨‍👩‍👧", "")).toBe("");
  });

  it("truncate marks the cut and fits", () => {
    expect(truncate("short", 100)).toBe("short");
    const t = truncate("y".repeat(500), 100);
    expect(t.length).toBeLessThanOrEqual(100);
    expect(t.endsWith("… (cut)")).toBe(true);
  });
});

describe("escaping", () => {
  it("escapes Telegram HTML", () => {
    expect(escapeHtml("a < b && c > d")).toBe("a &lt; b &amp;&amp; c &gt; d");
  });

  it("escapes Discord markdown so it shows as typed", () => {
    const raw = "*bold* _it_ ~~x~~ `code` ||spoiler|| > quote [link](u)\n# Header\n- item\n1. first\n  • bullet";
    const escaped = escapeDiscord(raw);
    expect(escaped).toBe("\\*bold\\* \\_it\\_ \\~\\~x\\~\\~ \\`code\\` \\|\\|spoiler\\|\\| \\> quote \\[link\\](u)\n\\# Header\n\\- item\n1\\. first\n  • bullet");
  });
});

describe("RateLimiter", () => {
  it("lets a burst through, then paces each chat", async () => {
    const limiter = new RateLimiter(() => ({ burst: 2, perSecond: 10 }), { burst: 100, perSecond: 100 });
    const t0 = performance.now();
    const waits = [];
    for (let i = 0; i < 5; i++) waits.push(await limiter.take("chat-a"));
    const elapsed = performance.now() - t0;
    expect(waits.slice(0, 2)).toEqual([0, 0]);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    // Another chat has its own bucket.
    expect(await limiter.take("chat-b")).toBe(0);
  });

  it("paces all chats together under the global rate", async () => {
    const limiter = new RateLimiter(() => ({ burst: 100, perSecond: 100 }), { burst: 1, perSecond: 10 });
    const t0 = performance.now();
    await Promise.all(["a", "b", "c", "d"].map((c) => limiter.take(c)));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
  });
});

describe("ConfirmationStore", () => {
  it("lets exactly one of many concurrent answers win, and none after the deadline", async () => {
    const redis = await testRedis();
    const clock = { now: 1_000_000 };
    const store = new ConfirmationStore(redis, () => clock.now, "test-confirm:");
    const a = await store.create({ kind: "command", line: "/refill 1", pressRole: "admin", prompt: "?" }, 60_000);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.resolve(a.id, i % 2 ? "confirmed" : "cancelled", `u${i}`)));
    expect(results.filter((r) => r.result === "won")).toHaveLength(1);
    expect(results.filter((r) => r.result === "already")).toHaveLength(49);

    const b = await store.create({ kind: "command", line: "/refill 2", pressRole: "admin", prompt: "?" }, 60_000);
    clock.now += 59_999;
    expect(await store.expireDue()).toEqual([]);
    clock.now += 1;
    const [sweep, press] = await Promise.all([store.expireDue(), store.resolve(b.id, "confirmed", "late")]);
    // The sweep and the late press race: whichever ran first expired it; the press never won.
    expect(press.result === "won").toBe(false);
    expect(sweep.length + (press.result === "expired" ? 1 : 0)).toBe(1);
    expect((await store.get(b.id))!.state).toBe("expired");
    await redis.quit();
  });
});

describe("AccessControl", () => {
  it("takes roles from the allow-list and Discord roles, and a chat change wins", async () => {
    const redis = await testRedis();
    const config = testConfig((c) => {
      c.chat.telegram.allowedUsers = [{ id: "1", role: "viewer" }];
      c.chat.discord.allowedUsers = [{ id: "2", role: "trader" }];
      c.chat.discord.roleMap = [{ roleId: "900", role: "admin" }, { roleId: "901", role: "viewer" }];
    });
    const access = new AccessControl(redis, config.chat, "test-users:");
    expect(await access.roleOf("telegram", "1")).toBe("viewer");
    expect(await access.roleOf("telegram", "2")).toBeUndefined();
    expect(await access.roleOf("discord", "2", ["901"])).toBe("trader");
    expect(await access.roleOf("discord", "2", ["900"])).toBe("admin");
    expect(await access.roleOf("discord", "3", ["901"])).toBe("viewer");
    expect(await access.roleOf("discord", "3")).toBeUndefined();
    expect(await access.roleOf("console", "anyone")).toBe("admin");
    await access.grant("telegram", "1", "trader", "admin", 0);
    expect(await access.roleOf("telegram", "1")).toBe("trader");
    await access.grant("discord", "3", "revoked", "admin", 0);
    expect(await access.roleOf("discord", "3", ["900"])).toBeUndefined();
    await redis.quit();
  });
});

describe("chat configuration", () => {
  it("reads users with roles, Discord role mappings, notice delivery and the webhook", () => {
    const r = loadConfig({
      TELEGRAM_ALLOWED_USERS: "111:admin, 222:trader,333",
      DISCORD_ROLE_MAP: "900000000000000000:trader,901000000000000000:admin",
      NOTIFY: "trade:silent,decision:off",
      TELEGRAM_WEBHOOK_URL: "https://bot.example.com/telegram",
      TELEGRAM_WEBHOOK_LISTEN: "127.0.0.1:8443",
      TELEGRAM_API_URL: "http://127.0.0.1:8081/",
      APPROVAL_ABOVE_USDT: "250",
    });
    if (!r.ok) throw new Error(r.message);
    expect(r.config.chat.telegram.allowedUsers).toEqual([{ id: "111", role: "admin" }, { id: "222", role: "trader" }, { id: "333", role: "viewer" }]);
    expect(r.config.chat.discord.roleMap).toEqual([{ roleId: "900000000000000000", role: "trader" }, { roleId: "901000000000000000", role: "admin" }]);
    expect(r.config.chat.notify).toMatchObject({ trade: "silent", decision: "off", alert: "on", info: "on" });
    expect(r.config.chat.telegram.webhook).toEqual({ url: "https://bot.example.com/telegram", host: "127.0.0.1", port: 8443 });
    expect(r.config.chat.telegram.apiUrl).toBe("http://127.0.0.1:8081");
    expect(r.config.chat.approval.above).toBe(250);
  });

  it("says what is expected for a bad value", () => {
    const r = loadConfig({ TELEGRAM_ALLOWED_USERS: "111:boss", NOTIFY: "trades:on", DISCORD_ROLE_MAP: "900", CONFIRM_TIMEOUT_SECONDS: "1" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toContain('TELEGRAM_ALLOWED_USERS: expected a comma-separated list of numeric Telegram user ids (positive, at most 52 bits), each optionally with :viewer, :trader or :admin (a bare id is a viewer), e.g. 111:admin,222:trader, got "111:boss"');
    expect(r.message).toContain("NOTIFY: expected a comma-separated list of KIND:on|silent|off");
    expect(r.message).toContain("DISCORD_ROLE_MAP: expected a comma-separated list of Discord role ids (snowflakes, 17 to 20 digits)");
    expect(r.message).toContain("CONFIRM_TIMEOUT_SECONDS: expected a whole number between 5 and 3600");
  });
});

describe("slash commands", () => {
  it("are all valid by Discord's rules", () => {
    for (const c of slashCommands(COMMANDS, ["BTC/USDT", "ETH/USDT", "DOGE/USDT"])) expect(commandProblem(c as unknown as Record<string, unknown>), c.name).toBeUndefined();
  });
});

describe("spendSeries", () => {
  it("sums charges per UTC day and per model over the window", () => {
    const now = Date.UTC(2026, 10, 22, 12);
    const day = 86_400_000;
    const s = spendSeries(
      [
        { decisionId: "a", time: now, model: "m1", costMicro: 100_000 },
        { decisionId: "b", time: now - 1000, model: "m1", costMicro: 50_000 },
        { decisionId: "c", time: now - day, model: "m2", costMicro: 20_000 },
        { decisionId: "d", time: now - 20 * day, model: "m2", costMicro: 999_000 },
      ],
      now,
      3,
    );
    expect(s.days).toEqual(["2026-11-20", "2026-11-21", "2026-11-22"]);
    expect(s.perModel).toEqual([
      { model: "m1", usdc: [0, 0, 0.15] },
      { model: "m2", usdc: [0, 0.02, 0] },
    ]);
  });
});

describe("the console", () => {
  let t: TestApp | undefined;
  const dir = `/tmp/console-charts-${process.pid}`;
  afterEach(async () => {
    await t?.app.stop();
    t = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("asks to confirm with a command, and saves charts to a file it names", async () => {
    t = await startTestApp(testConfig());
    const input = new PassThrough();
    const output = new PassThrough();
    let out = "";
    output.on("data", (d: Buffer) => (out += d.toString()));
    let ended = false;
    const console_ = new ConsoleChat(t.app, { input, output, onEnd: () => (ended = true) }, "op", dir);
    await console_.start();
    input.write("/refill 5\n");
    await waitFor("the question", async () => /\/confirm (\S+)/.exec(out));
    const id = /\/confirm (\S+),/.exec(out)![1]!;
    expect(out).toMatch(/Refill: add \$5\.00[\s\S]*→ confirm with \/confirm \S+, or cancel with \/cancel \S+/);
    input.write(`/confirm ${id}\n/decide BTC\n`);
    input.end();
    await waitFor("the end", async () => ended);
    expect(out).toContain("✅ Confirmed by op.\nRefilled $5.00. USDC balance now $15.00.");
    expect(out).toMatch(/Deciding on BTC with offline-engine…\nBTC\/USDT: /);
    const path = /Chart: (\S+\.png) \(BTC\/USDT: price/.exec(out)![1]!;
    expect(existsSync(path)).toBe(true);
    expect(isPng(readFileSync(path))).toBe(true);
  });
});
