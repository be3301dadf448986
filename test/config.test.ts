import { privateKeyToAccount } from "viem/accounts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { CONFIG_KEYS, loadConfig, loadEnv, readDotEnv, redactSecrets, unknownKeyWarnings, type Config } from "../src/config/config.js";
import { renderEnvExample, renderMarkdown, withReadmeTable } from "../src/config/docs.js";
import type { RiskLimits } from "../src/domain/types.js";

const dir = mkdtempSync(join(tmpdir(), "config-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ok(env: Record<string, string | undefined>): Config {
  const r = loadConfig(env);
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.message}`);
  return r.config;
}

function fails(env: Record<string, string | undefined>): string {
  const r = loadConfig(env);
  if (r.ok) throw new Error("expected the config to be rejected");
  return r.message;
}

/** The "  - KEY: ..." lines of a failure message. */
const problemLines = (message: string) => message.split("\n").filter((l) => l.startsWith("  - "));

const PRIVATE_KEY = `0x${"ab12".repeat(16)}`;
const TELEGRAM_TOKEN = "123456789:AAE-Valid_Telegram_Token_Value_1234";
const DISCORD_TOKEN = "MTIzNDU2.GhIjKl.Valid-Discord_Token";

describe("loadConfig defaults", () => {
  it("loads every default from an empty environment", () => {
    expect(ok({})).toEqual({
      router: {
        url: "https://ai.xgate.run",
        apiKey: undefined,
        walletAddress: undefined,
        rpcUrl: undefined,
        privateKey: undefined,
        network: "base-sepolia",
        auth: "auto",
        sessionCap: 2,
        sessionTtlSeconds: 1800,
        primaryModel: "anthropic:claude-sonnet-4-6",
        fallbackModels: ["openai:gpt-5", "google:gemini-2.5-flash", "meta:llama-3.3-70b"],
        catalogueRefreshMs: 1_800_000,
        costPerDecision: 0.04,
        timeoutMs: 20000,
        decisionModel: "offline",
      },
      balance: {
        minBalance: 1,
        criticalBalance: 0.5,
        refillThreshold: 2,
        refillAmount: 10,
        autoRefill: false,
        refillFromKey: undefined,
        refillMaxPerDay: 20,
        chainReconcileBlocks: 43200,
        paperWalletStart: 10,
        dailyBudget: 5,
        monthlyBudget: 100,
      },
      routing: {
        fallback: "offline",
        modelTimeouts: {},
        modelPrices: {},
        maxPricePerCall: 0.25,
        maxSpendPerDecision: 0.2,
        payees: [],
        breakerFailures: 3,
        breakerCooldownMs: 60_000,
        cacheTtlMs: 300_000,
        batch: false,
        batchMaxSymbols: 10,
        signalGate: false,
        signalGateMinScore: 0.3,
        invalidReplyRetries: 1,
      },
      chat: {
        telegram: { token: undefined, allowedUsers: [], chatId: undefined, threadId: undefined, apiUrl: undefined, webhook: undefined },
        discord: { token: undefined, appId: undefined, guildIds: [], channelId: undefined, allowedUsers: [], roleMap: [], apiUrl: undefined },
        console: true,
        confirmTimeoutMs: 60_000,
        tradeConfirmAbove: 100,
        approval: { above: undefined, timeoutMs: 300_000 },
        approvals: 1,
        approvalsTimeoutMs: 600_000,
        notify: { trade: "on", decision: "silent", alert: "on", critical: "on", report: "on", error: "on", info: "silent" },
      },
      redis: { url: "redis://127.0.0.1:6379", autostart: true, dataDir: ".data", keyPrefix: "", tlsCa: undefined },
      retention: { auditTtlMs: 3 * 86_400_000, ledgerDays: 35, archiveDir: undefined },
      market: { symbols: ["BTC/USDT", "ETH/USDT", "DOGE/USDT"], source: "replay", replayStepSeconds: 30, timeframe: "2h", stream: "auto" },
      exchange: {
        id: "binance",
        apiUrl: undefined,
        mode: "paper",
        apiKey: undefined,
        secret: undefined,
        sandbox: true,
        paperStartUsdt: 10000,
        feeRate: 0.001,
        slippageBps: 5,
      },
      cluster: { role: "all", leaseMs: 5_000, noticeLateMs: 60_000, jobLockMs: 30_000, decisionConcurrency: 2, scheduleVersion: 1, remoteTimeoutMs: 120_000 },
      schedule: {
        decisionIntervalMs: 300_000,
        firstDecision: "interval",
        balanceCheckMs: 60_000,
        positionCheckMs: 30_000,
        reconcileMs: 300_000,
        reportTime: { hour: 20, minute: 0 },
      },
      risk: {
        maxPositionPct: 10,
        maxExposurePct: 50,
        maxLeverage: 1,
        maxOpenPositions: 3,
        dailyLossLimitPct: 5,
        defaultStopLossPct: 3,
        maxStopLossPct: 10,
        defaultTakeProfitPct: 6,
        minOrderNotional: 10,
        trailingStopPct: 0,
        cooldownAfterLossMinutes: 120,
        maxVar95Pct: 3,
      },
      research: { url: undefined, ttlMs: 900_000, maxPrice: 0.1, timeoutMs: 10_000 },
      strategy: { file: undefined, timeoutMs: 2_000 },
      local: { url: undefined, models: [], apiKey: undefined },
      logLevel: "info",
      ops: { metrics: undefined, dashboard: { port: undefined, host: "127.0.0.1", publicUrl: undefined, secret: undefined, linkMs: 900_000 } },
    } satisfies Config);
  });

  it("treats empty values as unset, so a copied .env.example gives the defaults", () => {
    expect(ok({ X402_NETWORK: "", MAX_POSITION_PCT: "  ", TELEGRAM_BOT_TOKEN: "" })).toEqual(ok({}));
    const example = readDotEnv(new URL("../.env.example", import.meta.url).pathname);
    expect(Object.keys(example).length).toBe(CONFIG_KEYS.length);
    expect(ok(example)).toEqual(ok({}));
  });

  it("refuses a wallet address that is not the private key's own, without echoing the key", () => {
    const own = privateKeyToAccount(PRIVATE_KEY as `0x${string}`).address;
    expect(ok({ X402_PRIVATE_KEY: PRIVATE_KEY, X402_WALLET_ADDRESS: own.toLowerCase() }).router.walletAddress).toBe(own.toLowerCase());
    const other = "0x" + "12".repeat(20);
    const message = fails({ X402_PRIVATE_KEY: PRIVATE_KEY, X402_WALLET_ADDRESS: other });
    expect(message).toContain(`X402_WALLET_ADDRESS: expected the address of X402_PRIVATE_KEY (${own}), got ${other}`);
    expect(message).not.toContain(PRIVATE_KEY.slice(2));
  });

  it("parses and converts set values", () => {
    const c = ok({
      X402_NETWORK: "base",
      X402_PRIVATE_KEY: PRIVATE_KEY,
      AUTO_REFILL: "1",
      REDIS_AUTOSTART: "FALSE",
      CONSOLE: "off",
      SYMBOLS: " SOL/USDT , BTC/USDT ,",
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      TELEGRAM_ALLOWED_USERS: "111,222",
      TELEGRAM_CHAT_ID: "-100123",
      DECISION_INTERVAL_SECONDS: "60",
      REPORT_TIME: "07:05",
      MIN_ORDER_USDT: "5.5",
    });
    expect(c.router.network).toBe("base");
    expect(c.router.privateKey).toBe(PRIVATE_KEY);
    expect(c.balance.autoRefill).toBe(true);
    expect(c.redis.autostart).toBe(false);
    expect(c.chat.console).toBe(false);
    expect(c.market.symbols).toEqual(["SOL/USDT", "BTC/USDT"]);
    expect(c.chat.telegram).toMatchObject({ token: TELEGRAM_TOKEN, allowedUsers: [{ id: "111", role: "viewer" }, { id: "222", role: "viewer" }], chatId: "-100123" });
    expect(c.schedule.decisionIntervalMs).toBe(60_000);
    expect(c.schedule.reportTime).toEqual({ hour: 7, minute: 5 });
    expect(c.risk.minOrderNotional).toBe(5.5);
  });
});

describe("Config from the settings table", () => {
  it("converts where a key's units differ from Config's, and checks in the key's own units", () => {
    const c = ok({
      BREAKER_COOLDOWN_SECONDS: "90",
      APPROVAL_ABOVE_USDT: "250",
      APPROVAL_TIMEOUT_SECONDS: "45",
      TELEGRAM_API_URL: "http://127.0.0.1:8081//",
      DISCORD_API_URL: "http://127.0.0.1:8082/api/",
      TELEGRAM_WEBHOOK_URL: "https://bot.example.org/hook",
      TELEGRAM_WEBHOOK_LISTEN: "127.0.0.1:9000",
      MODEL_PRICES: "openai:gpt-5=0.2",
    });
    expect(c.routing.breakerCooldownMs).toBe(90_000);
    expect(c.chat.approval).toEqual({ above: 250, timeoutMs: 45_000 });
    expect(c.chat.telegram.apiUrl).toBe("http://127.0.0.1:8081");
    expect(c.chat.discord.apiUrl).toBe("http://127.0.0.1:8082/api");
    expect(c.chat.telegram.webhook).toEqual({ url: "https://bot.example.org/hook", host: "127.0.0.1", port: 9000 });
    expect(c.routing.modelPrices).toEqual({ "openai:gpt-5": 0.2 });
    expect(c.routing.modelTimeouts).toEqual({});
    expect(fails({ BATCH_DECISIONS: "on", DECISION_CACHE_TTL_SECONDS: "0" })).toContain(
      'BATCH_DECISIONS: "on" hands each symbol its answer through the decision cache, so it needs DECISION_CACHE_TTL_SECONDS above 0',
    );
  });

  it("reads LIVE_TRADING_CONFIRM for the live-trading check only, leaving it out of Config", () => {
    const live = ok({ TRADING_MODE: "live", MARKET_DATA: "live", LIVE_TRADING_CONFIRM: "yes-i-understand", EXCHANGE_API_KEY: "k", EXCHANGE_SECRET: "s" });
    expect(Object.keys(live.exchange).sort()).toEqual(["apiKey", "apiUrl", "feeRate", "id", "mode", "paperStartUsdt", "sandbox", "secret", "slippageBps"]);
  });

  it("infers Config's types from the table", () => {
    expectTypeOf<Config["risk"]>().toEqualTypeOf<RiskLimits>();
    expectTypeOf<Config["chat"]["telegram"]["webhook"]>().toEqualTypeOf<{ url: string; host: string; port: number } | undefined>();
    expectTypeOf<Config["router"]["privateKey"]>().toEqualTypeOf<`0x${string}` | undefined>();
    expectTypeOf<Config["balance"]["dailyBudget"]>().toEqualTypeOf<number>();
    expectTypeOf<Config["exchange"]["mode"]>().toEqualTypeOf<"paper" | "live">();
    expectTypeOf<Config["chat"]["discord"]["allowedUsers"]>().toEqualTypeOf<{ id: string; role: "viewer" | "trader" | "admin" }[]>();
  });
});

describe("loadConfig errors", () => {
  it("lists every bad key in one message, each with what is expected", () => {
    const message = fails({
      X402_NETWORK: "mainnet",
      MAX_POSITION_PCT: "abc",
      DECISION_INTERVAL_SECONDS: "2",
      SYMBOLS: "BTC/USDT,eth-usdt",
      AUTO_REFILL: "yes",
      REPORT_TIME: "24:00",
      LOG_LEVEL: "verbose",
      FEE_RATE: "0.5",
    });
    expect(message.split("\n")[0]).toBe("Configuration is invalid (fix these in .env or the environment):");
    const lines = problemLines(message);
    expect(lines).toEqual(
      expect.arrayContaining([
        '  - X402_NETWORK: expected "base" or "base-sepolia", got "mainnet"',
        '  - MAX_POSITION_PCT: expected a number from 0.1 to 100 (% of equity), got "abc"',
        '  - DECISION_INTERVAL_SECONDS: expected a whole number of at least 5, got "2"',
        '  - SYMBOLS: expected a comma-separated list of ccxt symbols like BTC/USDT, got "BTC/USDT,eth-usdt"',
        '  - AUTO_REFILL: expected "true" or "false" (or 1 / 0), got "yes"',
        '  - REPORT_TIME: expected a UTC time as HH:MM (00:00 to 23:59), got "24:00"',
        '  - LOG_LEVEL: expected one of "debug", "info", "warn" or "error", got "verbose"',
        '  - FEE_RATE: expected a number between 0 and 0.1, got "0.5"',
      ]),
    );
    expect(lines).toHaveLength(8);
  });

  it("never echoes a secret's value", () => {
    const badSecrets = {
      X402_PRIVATE_KEY: "0xSUPERSECRETkey123",
      TELEGRAM_BOT_TOKEN: "SECRET-telegram-token-value",
      DISCORD_BOT_TOKEN: "SECRET discord token",
      DREAMS_ROUTER_API_KEY: "SECRET router key",
      EXCHANGE_API_KEY: "SECRET exchange key",
      EXCHANGE_SECRET: "SECRET exchange secret",
    };
    const message = fails({
      ...badSecrets,
      REDIS_URL: "http://admin:REDISPASSWORD@127.0.0.1:6379",
      // A private key pasted into the address field is hidden too.
      X402_WALLET_ADDRESS: PRIVATE_KEY,
    });
    for (const value of [...Object.values(badSecrets), "REDISPASSWORD", PRIVATE_KEY, "SUPERSECRET"]) {
      expect(message).not.toContain(value);
    }
    const lines = problemLines(message);
    expect(lines).toContain("  - X402_PRIVATE_KEY: expected a 0x-prefixed 64-hex-digit private key (value hidden)");
    expect(lines).toContain(
      "  - TELEGRAM_BOT_TOKEN: expected a Telegram bot token like 123456:ABC... (from @BotFather) (value hidden)",
    );
    expect(lines).toContain("  - X402_WALLET_ADDRESS: expected a 0x-prefixed 40-hex-digit wallet address (value hidden)");
    expect(lines).toContain('  - REDIS_URL: expected a redis:// or rediss:// URL, got "http://admin:***@127.0.0.1:6379"');
    for (const key of ["DISCORD_BOT_TOKEN", "DREAMS_ROUTER_API_KEY", "EXCHANGE_API_KEY", "EXCHANGE_SECRET"]) {
      expect(lines.find((l) => l.startsWith(`  - ${key}: `))).toMatch(/\(value hidden\)$/);
    }
  });

  it("hides a value that equals a secret even under a non-secret key", () => {
    const message = fails({ EXCHANGE_API_KEY: "K3Y9VALUE", SYMBOLS: "K3Y9VALUE" });
    expect(message).not.toContain("K3Y9VALUE");
    expect(message).toContain("SYMBOLS: expected a comma-separated list of ccxt symbols like BTC/USDT (value hidden)");
  });

  it("checks fields against each other", () => {
    const lines = problemLines(
      fails({
        CRITICAL_BALANCE_USDC: "1.5",
        MIN_BALANCE_USDC: "1",
        DAILY_BUDGET_USDC: "200",
        DEFAULT_STOP_LOSS_PCT: "12",
        MAX_POSITION_PCT: "60",
      }),
    );
    expect(lines).toEqual([
      "  - CRITICAL_BALANCE_USDC: expected less than MIN_BALANCE_USDC (1), got 1.5",
      "  - DAILY_BUDGET_USDC: expected at most MONTHLY_BUDGET_USDC (100), got 200",
      "  - DEFAULT_STOP_LOSS_PCT: expected at most MAX_STOP_LOSS_PCT (10), got 12",
      "  - MAX_POSITION_PCT: expected at most MAX_EXPOSURE_PCT (50), got 60",
    ]);
    expect(fails({ CRITICAL_BALANCE_USDC: "1", MIN_BALANCE_USDC: "1" })).toContain("CRITICAL_BALANCE_USDC");
  });

  it("requires budgets above zero", () => {
    const lines = problemLines(fails({ DAILY_BUDGET_USDC: "0", MONTHLY_BUDGET_USDC: "-1" }));
    expect(lines).toEqual([
      '  - DAILY_BUDGET_USDC: expected a number greater than 0, got "0"',
      '  - MONTHLY_BUDGET_USDC: expected a number greater than 0, got "-1"',
    ]);
  });

  it("requires a way to pay for DECISION_MODEL=router", () => {
    expect(fails({ DECISION_MODEL: "router" })).toContain(
      'DECISION_MODEL: "router" needs DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY',
    );
    expect(ok({ DECISION_MODEL: "router", DREAMS_ROUTER_API_KEY: "sk-test" }).router.decisionModel).toBe("router");
    expect(ok({ DECISION_MODEL: "router", X402_PRIVATE_KEY: PRIVATE_KEY }).router.decisionModel).toBe("router");
    expect(fails({ DECISION_MODEL: "router", ROUTER_AUTH: "x402", DREAMS_ROUTER_API_KEY: "sk-test" })).toContain(
      'ROUTER_AUTH: "x402" needs X402_PRIVATE_KEY',
    );
  });

  it("checks the strategy file and the local models", () => {
    expect(fails({ STRATEGY: "strategies/no-such-file.ts" })).toContain('STRATEGY: no such file "strategies/no-such-file.ts": give the path');
    expect(ok({ STRATEGY: "strategies/sma-crossover.ts" }).strategy).toEqual({ file: "strategies/sma-crossover.ts", timeoutMs: 2000 });
    expect(fails({ STRATEGY_TIMEOUT_MS: "10" })).toContain("STRATEGY_TIMEOUT_MS: expected a whole number between 50 and 60000");
    expect(fails({ DECISION_MODEL: "local" })).toContain('DECISION_MODEL: "local" needs LOCAL_MODELS');
    expect(fails({ DECISION_MODEL: "local", LOCAL_MODELS: "llama3.2" })).toContain("LOCAL_MODEL_URL: LOCAL_MODELS need the endpoint that serves them");
    const local = ok({ DECISION_MODEL: "local", LOCAL_MODELS: "llama3.2, qwen2.5:7b", LOCAL_MODEL_URL: "http://127.0.0.1:11434/v1/" });
    expect(local.local).toEqual({ url: "http://127.0.0.1:11434/v1", models: ["llama3.2", "qwen2.5:7b"], apiKey: undefined });
    expect(fails({ LOCAL_MODEL_URL: "ollama" })).toContain("LOCAL_MODEL_URL: expected an http(s) URL");
    // A timeout for a local model is fine; a price is not: it is free.
    expect(ok({ DECISION_MODEL: "local", LOCAL_MODELS: "llama3.2", LOCAL_MODEL_URL: "http://127.0.0.1:11434/v1", MODEL_TIMEOUTS: "local:llama3.2=90000" }).routing.modelTimeouts).toEqual({ "local:llama3.2": 90000 });
    expect(fails({ DECISION_MODEL: "local", LOCAL_MODELS: "llama3.2", LOCAL_MODEL_URL: "http://127.0.0.1:11434/v1", MODEL_PRICES: "local:llama3.2=0.01" })).toContain("MODEL_PRICES: local:llama3.2 is a local model, which is free");
    expect(fails({ DECISION_MODEL: "router", DREAMS_ROUTER_API_KEY: "sk-test", PRIMARY_MODEL: "local:llama3.2" })).toContain("LOCAL_MODEL_URL: local:llama3.2 need the endpoint");
  });

  it("requires the confirmation and exchange keys for live trading", () => {
    const message = fails({ TRADING_MODE: "live", MARKET_DATA: "live", EXCHANGE_API_KEY: "key" });
    const lines = problemLines(message);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("LIVE_TRADING_CONFIRM=yes-i-understand");
    expect(lines[0]).toContain("EXCHANGE_API_KEY + EXCHANGE_SECRET");
    expect(lines[0]).toMatch(/missing: LIVE_TRADING_CONFIRM=yes-i-understand, EXCHANGE_SECRET\./);

    expect(fails({ TRADING_MODE: "live", MARKET_DATA: "live", LIVE_TRADING_CONFIRM: "yes" })).toContain(
      'LIVE_TRADING_CONFIRM: expected "yes-i-understand", got "yes"',
    );
    const live = { TRADING_MODE: "live", LIVE_TRADING_CONFIRM: "yes-i-understand", EXCHANGE_API_KEY: "k", EXCHANGE_SECRET: "s" };
    expect(fails(live)).toContain('MARKET_DATA: expected "live" when TRADING_MODE is "live", got "replay"');
    expect(ok({ ...live, MARKET_DATA: "live" }).exchange.mode).toBe("live");
  });
});

describe(".env files", () => {
  it("parses KEY=VALUE lines, comments and quotes", () => {
    const path = join(dir, "parse.env");
    writeFileSync(
      path,
      [
        "# a comment",
        "",
        "PLAIN=value",
        "SPACED = spaced value   ",
        'DOUBLE="with # hash"',
        "SINGLE='single # quoted'",
        "SINGLE_LITERAL='a\\nb'",
        'ESCAPED="line1\\nline2 \\"q\\""',
        "INLINE=value # trailing comment",
        "HASH_IN_VALUE=abc#def",
        "export EXPORTED=yes",
        "EMPTY=",
        "URL=redis://:p=w@127.0.0.1:6379",
        "not a setting line",
        "WINDOWS=crlf\r",
      ].join("\n"),
    );
    expect(readDotEnv(path)).toEqual({
      PLAIN: "value",
      SPACED: "spaced value",
      DOUBLE: "with # hash",
      SINGLE: "single # quoted",
      SINGLE_LITERAL: "a\\nb",
      ESCAPED: 'line1\nline2 "q"',
      INLINE: "value",
      HASH_IN_VALUE: "abc#def",
      EXPORTED: "yes",
      EMPTY: "",
      URL: "redis://:p=w@127.0.0.1:6379",
      WINDOWS: "crlf",
    });
  });

  it("returns nothing for a missing file", () => {
    expect(readDotEnv(join(dir, "does-not-exist.env"))).toEqual({});
  });

  it("lets real environment variables win over .env, without touching process.env", () => {
    const path = join(dir, "precedence.env");
    writeFileSync(path, "X402_NETWORK=base\nMAX_POSITION_PCT=20\nLOG_LEVEL=debug\n");
    const before = { ...process.env };
    const env = loadEnv(path, { MAX_POSITION_PCT: "15", LOG_LEVEL: undefined });
    expect(process.env).toEqual(before);
    const c = ok(env);
    expect(c.router.network).toBe("base");
    expect(c.risk.maxPositionPct).toBe(15);
    expect(c.logLevel).toBe("debug");
  });
});

describe("secrets from files (KEY_FILE, as Docker secrets mount them)", () => {
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it("reads every secret, and REDIS_URL, from the file its _FILE key names, without the final line break", () => {
    const fromFile = CONFIG_KEYS.filter((k) => k.fromFile).map((k) => k.key);
    expect(fromFile).toEqual(expect.arrayContaining(CONFIG_KEYS.filter((k) => k.secret).map((k) => k.key)));
    expect(fromFile).toContain("REDIS_URL");
    const config = ok({
      TELEGRAM_BOT_TOKEN_FILE: file("telegram", `${TELEGRAM_TOKEN}\n`),
      DISCORD_BOT_TOKEN_FILE: file("discord", DISCORD_TOKEN),
      REDIS_URL_FILE: file("redis-url", "redis://:pw-from-file@127.0.0.1:6390\r\n"),
    });
    expect(config.chat.telegram.token).toBe(TELEGRAM_TOKEN);
    expect(config.chat.discord.token).toBe(DISCORD_TOKEN);
    expect(config.redis.url).toBe("redis://:pw-from-file@127.0.0.1:6390");
    // A secret read from a file is redacted like any other.
    expect(redactSecrets(`token ${TELEGRAM_TOKEN}`, config)).toBe("token [redacted]");
  });

  it("refuses a file that cannot be read, and a key set both ways, naming the key and never the value", () => {
    const message = fails({
      TELEGRAM_BOT_TOKEN_FILE: join(dir, "no-such-file"),
      DISCORD_BOT_TOKEN: DISCORD_TOKEN,
      DISCORD_BOT_TOKEN_FILE: file("discord2", DISCORD_TOKEN),
    });
    expect(problemLines(message)).toEqual([
      expect.stringMatching(/^  - TELEGRAM_BOT_TOKEN_FILE: cannot read .*no-such-file \(ENOENT\)/),
      "  - DISCORD_BOT_TOKEN_FILE: DISCORD_BOT_TOKEN is set too; keep it in one place (the file, or DISCORD_BOT_TOKEN)",
    ]);
    expect(message).not.toContain(DISCORD_TOKEN);
  });

  it("takes an empty file as nothing set, so a value from .env still counts", () => {
    const config = ok({ TELEGRAM_BOT_TOKEN_FILE: file("empty", ""), TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, DISCORD_BOT_TOKEN_FILE: file("empty2", "\n") });
    expect(config.chat.telegram.token).toBe(TELEGRAM_TOKEN);
    expect(config.chat.discord.token).toBeUndefined();
  });

  it("checks a value read from a file like any other", () => {
    const message = fails({ TELEGRAM_BOT_TOKEN_FILE: file("bad-telegram", "not a token\n") });
    expect(message).toContain("TELEGRAM_BOT_TOKEN: expected a Telegram bot token");
    expect(message).not.toContain("not a token");
  });
});

describe("unknown keys", () => {
  it("names the closest known key for a misspelled one, in .env or the environment", () => {
    expect(unknownKeyWarnings({ MAX_POSITON_PCT: "5" }, { DECISON_MODEL: "router" })).toEqual([
      "Unknown setting MAX_POSITON_PCT in .env, ignored: did you mean MAX_POSITION_PCT? (every setting is in docs/configuration.md)",
      "Unknown setting DECISON_MODEL in the environment, ignored: did you mean DECISION_MODEL? (every setting is in docs/configuration.md)",
    ]);
    expect(unknownKeyWarnings({ SYMBOL: "BTC/USDT", TELEGRAM_TOKEN: "x" }, {})).toEqual([
      expect.stringContaining("SYMBOL in .env, ignored: did you mean SYMBOLS?"),
      expect.stringContaining("TELEGRAM_TOKEN in .env, ignored: did you mean TELEGRAM_BOT_TOKEN?"),
    ]);
  });

  it("says nothing of known keys, their _FILE forms, or other software's variables", () => {
    const env = { PATH: "/bin", HOME: "/root", NODE_OPTIONS: "", COMPOSE_PROJECT_NAME: "x", REDIS_PORT: "tcp://10.0.0.1:6379", REDIS_SERVICE_HOST: "10.0.0.1", NOTIFY_SOCKET: "/run/x", LOGNAME: "me", BASH_ENV: "" };
    expect(unknownKeyWarnings({ MAX_POSITION_PCT: "5", TELEGRAM_BOT_TOKEN_FILE: "/run/secrets/t" }, env)).toEqual([]);
  });
});

describe("redactSecrets", () => {
  it("replaces every configured secret, wherever it appears", () => {
    const config = ok({
      DREAMS_ROUTER_API_KEY: "sk-router-123",
      X402_PRIVATE_KEY: PRIVATE_KEY,
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      DISCORD_BOT_TOKEN: DISCORD_TOKEN,
      EXCHANGE_API_KEY: "exkey-456",
      EXCHANGE_SECRET: "exsecret-789",
      REDIS_URL: "redis://default:p%40ss-word@127.0.0.1:6379/2",
    });
    const text = [
      `router key sk-router-123 and again sk-router-123`,
      `pk ${PRIVATE_KEY} bare ${PRIVATE_KEY.slice(2)}`,
      `GET https://api.telegram.org/bot${TELEGRAM_TOKEN}/getUpdates`,
      `discord ${DISCORD_TOKEN}`,
      `exchange exkey-456 / exsecret-789`,
      `redis redis://default:p%40ss-word@127.0.0.1 AUTH p@ss-word`,
    ].join("\n");
    const out = redactSecrets(text, config);
    for (const secret of ["sk-router-123", PRIVATE_KEY.slice(2), TELEGRAM_TOKEN, DISCORD_TOKEN, "exkey-456", "exsecret-789", "p%40ss-word", "p@ss-word"]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain("router key [redacted] and again [redacted]");
    expect(out).toContain("pk [redacted] bare [redacted]");
    expect(out).toContain("https://api.telegram.org/bot[redacted]/getUpdates");
    expect(out).toContain("AUTH [redacted]");
  });

  it("covers every key marked secret in the table", () => {
    // A new secret key fails here until it has a sample, and then must be redacted.
    const samples: Record<string, string> = {
      DREAMS_ROUTER_API_KEY: "sk-router-sample",
      X402_PRIVATE_KEY: PRIVATE_KEY,
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      DISCORD_BOT_TOKEN: DISCORD_TOKEN,
      EXCHANGE_API_KEY: "exkey-sample",
      EXCHANGE_SECRET: "exsecret-sample",
      REFILL_FROM_PRIVATE_KEY: `0x${"5e".repeat(32)}`,
      LOCAL_MODEL_API_KEY: "local-key-sample",
      DASHBOARD_SECRET: "dashboard-link-key-sample-0123456789abcdef",
    };
    expect(Object.keys(samples).sort()).toEqual(CONFIG_KEYS.filter((k) => k.secret).map((k) => k.key).sort());
    const config = ok(samples);
    for (const [key, value] of Object.entries(samples)) expect(redactSecrets(`${key}=${value}`, config), key).toBe(`${key}=[redacted]`);
  });

  it("leaves text alone when no secret is configured", () => {
    const text = "nothing to hide: 0x1234 sk-nothing";
    expect(redactSecrets(text, ok({}))).toBe(text);
  });
});

describe("CONFIG_KEYS and generated docs", () => {
  it("describes every key, marks the secrets and has no duplicates", () => {
    const keys = CONFIG_KEYS.map((k) => k.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(CONFIG_KEYS.filter((k) => k.secret).map((k) => k.key).sort()).toEqual(
      ["DASHBOARD_SECRET", "DISCORD_BOT_TOKEN", "DREAMS_ROUTER_API_KEY", "EXCHANGE_API_KEY", "EXCHANGE_SECRET", "LOCAL_MODEL_API_KEY", "REFILL_FROM_PRIVATE_KEY", "TELEGRAM_BOT_TOKEN", "X402_PRIVATE_KEY"].sort(),
    );
    for (const k of CONFIG_KEYS) expect(k.description.length, k.key).toBeGreaterThan(5);
    for (const k of CONFIG_KEYS) expect(k.group, k.key).not.toBe("");
    for (const key of ["DREAMS_ROUTER_URL", "COST_PER_DECISION_USDC", "AUTO_REFILL", "DISCORD_GUILD_IDS", "REDIS_AUTOSTART", "REPLAY_STEP_SECONDS", "REPORT_TIME", "MIN_ORDER_USDT", "LOG_LEVEL"]) {
      expect(keys).toContain(key);
    }
  });

  it("docs/configuration.md and .env.example match what src/config/docs.ts generates", () => {
    const read = (rel: string) => readFileSync(new URL(rel, import.meta.url), "utf8");
    expect(read("../docs/configuration.md"), "run: npx tsx src/config/docs.ts > docs/configuration.md").toBe(renderMarkdown());
    expect(read("../.env.example"), "run: npx tsx src/config/docs.ts --env-example > .env.example").toBe(renderEnvExample());
    const readme = read("../README.md");
    expect(readme, "run: npx tsx src/config/docs.ts --readme").toBe(withReadmeTable(readme));
  });
});
