// Bounds that mean something: each risk limit has a smallest and a largest value, the same in
// the configuration and in /limits, and a chat id must be one the platform could send.
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { isSnowflake, isTelegramChatId, isTelegramUserId } from "../src/domain/chatIds.js";
import { StoredLimits } from "../src/risk/limitsStore.js";
import { snapshot, startTestApp, testConfig, type TestApp } from "./support/app.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

describe("risk limits from chat", () => {
  it("refuses a value out of its range, says the range, and changes nothing", async () => {
    t = await startTestApp(testConfig());
    const limits = { ...t.app.services.limits };
    const before = await snapshot(t.url);
    const cases: [string, RegExp][] = [
      ["/limits max_position 0.0000000000000000000001", /max_position \(largest position, % of equity\) must be from 0\.1 to 100 \(% of equity\), got "0\.0000000000000000000001"\. Nothing was changed\./],
      ["/limits max_position 0", /must be from 0\.1 to 100/],
      ["/limits max_position 100.5", /must be from 0\.1 to 100/],
      ["/limits max_exposure 5000", /must be from 0\.1 to 1000/],
      ["/limits max_positions 0", /must be a whole number from 1 to 100 \(positions\)/],
      ["/limits max_positions 2.5", /must be a whole number from 1 to 100/],
      ["/limits stop_loss 80", /stop_loss \(default stop loss, % below entry\) must be from 0\.1 to 50/],
      ["/limits stop_loss 0.01", /must be from 0\.1 to 50/],
      ["/limits take_profit 0", /must be from 0\.1 to 1000/],
      ["/limits min_order 0.001", /min_order \(smallest order, USDT\) must be from 1 to 1000000 \(USDT\)/],
      ["/limits daily_loss 1e-9", /must be from 0\.1 to 100/],
    ];
    for (const [command, pattern] of cases) {
      const reply = await t.run(command);
      expect(reply.text, command).toMatch(pattern);
      expect(reply.error, command).toBe(true);
    }
    expect(t.app.services.limits).toEqual(limits);
    expect(await snapshot(t.url)).toEqual(before);
    // The edge itself is allowed.
    expect((await t.run("/limits max_position 0.1")).text).toMatch(/max_position \(largest position, % of equity\): 10 → 0\.1/);
    expect(t.app.services.limits.maxPositionPct).toBe(0.1);
  });

  it("does not apply a stored value out of its range (kept before ranges were checked)", async () => {
    t = await startTestApp(testConfig());
    const redis = new Redis(t.url);
    await redis.hset("agent:limits", "maxPositionPct", "1e-22", "maxOpenPositions", "5");
    const limits = { ...testConfig().risk };
    expect(await new StoredLimits(redis).applyTo(limits)).toBe(true);
    expect(limits.maxPositionPct).toBe(testConfig().risk.maxPositionPct);
    expect(limits.maxOpenPositions).toBe(5);
    await redis.quit();
  });
});

describe("chat ids", () => {
  it("knows each platform's range", () => {
    expect(isTelegramUserId("123456789")).toBe(true);
    expect(isTelegramUserId(String(2 ** 52 - 1))).toBe(true);
    expect(isTelegramUserId(String(2 ** 52))).toBe(false);
    expect(isTelegramUserId("12345678901234567890123")).toBe(false);
    expect(isTelegramUserId("0")).toBe(false);
    expect(isTelegramUserId("-5")).toBe(false);
    expect(isTelegramChatId("-1001234567890")).toBe(true);
    expect(isTelegramChatId("-10012345678901234567")).toBe(false);
    expect(isSnowflake("123456789012345678")).toBe(true);
    expect(isSnowflake("18446744073709551615")).toBe(true);
    expect(isSnowflake("18446744073709551616")).toBe(false);
    expect(isSnowflake("1234567890123456")).toBe(false);
    expect(isSnowflake("111")).toBe(false);
  });

  it("/grant and /revoke refuse an id the platform could not send, and change nothing", async () => {
    t = await startTestApp(testConfig());
    const before = await snapshot(t.url);
    const cases: [string, RegExp][] = [
      ["/grant telegram 12345678901234567890123 admin", /"12345678901234567890123" is not a telegram user id: a Telegram user id is a positive whole number of at most 16 digits \(52 bits\), e\.g\. 123456789\. Nothing was changed\./],
      [`/grant telegram ${2 ** 52} admin`, /is not a telegram user id/],
      ["/grant telegram 0 viewer", /is not a telegram user id/],
      ["/grant discord 123 trader", /"123" is not a discord user id: a Discord user id is a snowflake of 17 to 20 digits/],
      ["/grant discord 18446744073709551616 trader", /is not a discord user id/],
      ["/revoke telegram 99999999999999999999", /is not a telegram user id/],
      ["/revoke discord 42", /is not a discord user id/],
    ];
    for (const [command, pattern] of cases) {
      const reply = await t.run(command);
      expect(reply.text, command).toMatch(pattern);
      expect(reply.error, command).toBe(true);
    }
    expect(await snapshot(t.url)).toEqual(before);
    expect((await t.run(`/grant telegram ${2 ** 52 - 1} viewer`)).text).toMatch(/is now a viewer/);
    expect((await t.run("/grant discord 18446744073709551615 trader")).text).toMatch(/is now a trader/);
  });
});

describe("the configuration", () => {
  const problems = (env: Record<string, string>) => {
    const r = loadConfig(env);
    return r.ok ? "" : r.message;
  };

  it("refuses limits and ids out of range, saying the range", () => {
    const message = problems({
      MAX_POSITION_PCT: "0.0000000000000000000001",
      MIN_ORDER_USDT: "0",
      DEFAULT_STOP_LOSS_PCT: "90",
      TRAILING_STOP_PCT: "0.01",
      LOSS_COOLDOWN_MINUTES: "100000",
      TELEGRAM_ALLOWED_USERS: "101:admin,12345678901234567890123:admin",
      TELEGRAM_CHAT_ID: "-10012345678901234567",
      DISCORD_ALLOWED_USERS: "111:admin",
      DISCORD_CHANNEL_ID: "42",
      DISCORD_GUILD_IDS: "123456789012345678,7",
    });
    expect(message).toContain('MAX_POSITION_PCT: expected a number from 0.1 to 100 (% of equity), got "0.0000000000000000000001"');
    expect(message).toContain('MIN_ORDER_USDT: expected a number from 1 to 1000000 (USDT), got "0"');
    expect(message).toContain('DEFAULT_STOP_LOSS_PCT: expected a number from 0.1 to 50 (% below entry), got "90"');
    expect(message).toContain('TRAILING_STOP_PCT: expected a number 0 (off) or from 0.1 to 50 (% below the high), got "0.01"');
    expect(message).toContain("LOSS_COOLDOWN_MINUTES: expected a number 0 (off) or a whole number from 1 to 10080 (minutes)");
    expect(message).toContain("TELEGRAM_ALLOWED_USERS: expected a comma-separated list of numeric Telegram user ids (positive, at most 52 bits)");
    expect(message).toContain("TELEGRAM_CHAT_ID: expected a numeric Telegram chat id of at most 52 bits");
    expect(message).toContain("DISCORD_ALLOWED_USERS: expected a comma-separated list of numeric Discord user ids (snowflakes, 17 to 20 digits)");
    expect(message).toContain("DISCORD_CHANNEL_ID: expected a Discord channel id (a snowflake of 17 to 20 digits)");
    expect(message).toContain("DISCORD_GUILD_IDS: expected a comma-separated list of Discord server ids (snowflakes of 17 to 20 digits)");
  });

  it("takes the edges, and 0 where 0 turns a limit off", () => {
    const r = loadConfig({
      MAX_POSITION_PCT: "0.1",
      MAX_EXPOSURE_PCT: "1000",
      MAX_LEVERAGE: "10",
      TRAILING_STOP_PCT: "0",
      LOSS_COOLDOWN_MINUTES: "0",
      TELEGRAM_ALLOWED_USERS: `${2 ** 52 - 1}:admin`,
      TELEGRAM_CHAT_ID: "-1001234567890",
      DISCORD_ALLOWED_USERS: "18446744073709551615:admin",
    });
    if (!r.ok) throw new Error(r.message);
    expect(r.config.risk).toMatchObject({ maxPositionPct: 0.1, trailingStopPct: 0, cooldownAfterLossMinutes: 0 });
  });
});
