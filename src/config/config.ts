// The whole configuration, read once from the environment (and an optional .env file).
// Every key is declared here and only here, once, in TABLE: the Config type is inferred from it,
// and .env.example, docs/configuration.md and the README table are generated from CONFIG_KEYS
// (src/config/docs.ts); a test fails when they drift.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type * as ViemAccounts from "viem/accounts";
import { z } from "zod";
import { isSnowflake, isTelegramChatId, isTelegramUserId } from "../domain/chatIds.js";
import type { RiskLimits } from "../domain/types.js";
import { boundText, LIMIT_BOUNDS, withinBound } from "../risk/bounds.js";
import { buildCatalogue } from "../models/catalogue.js";

export type ChatRole = "viewer" | "trader" | "admin";
export const NOTICE_KINDS = ["trade", "decision", "alert", "critical", "report", "error", "info"] as const;
export type NoticeDelivery = "on" | "silent" | "off";

/** How a raw string is checked and turned into a value, and how to say what was expected. */
interface Rule<T> {
  expected: string;
  schema: z.ZodType<T, string>;
}

// ---- rules -------------------------------------------------------------------------------------

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function num(limits: { min?: number; above?: number; max?: number; whole?: boolean }): Rule<number> {
  const { min, above, max, whole = false } = limits;
  const bounds: string[] = [];
  if (min !== undefined && max !== undefined) bounds.push(`between ${min} and ${max}`);
  else if (min !== undefined) bounds.push(`of at least ${min}`);
  if (above !== undefined) bounds.push(`greater than ${above}`);
  if (max !== undefined && min === undefined) bounds.push(`at most ${max}`);
  const expected = `${whole ? "a whole number" : "a number"}${bounds.length ? " " + bounds.join(" and ") : ""}`;

  let n = z.number();
  if (whole) n = n.int();
  if (min !== undefined) n = n.min(min);
  if (above !== undefined) n = n.gt(above);
  if (max !== undefined) n = n.max(max);
  return { expected, schema: z.string().regex(NUMBER).transform(Number).pipe(n) };
}

/** A risk limit, in the range /limits allows too (src/risk/bounds.ts). */
function limit(key: keyof RiskLimits): Rule<number> {
  const b = LIMIT_BOUNDS[key];
  return { expected: `a number ${boundText(b)}`, schema: z.string().regex(NUMBER).transform(Number).refine((n) => withinBound(b, n)) };
}

function oneOf<const V extends readonly [string, ...string[]]>(...values: V): Rule<V[number]> {
  const quoted = values.map((v) => `"${v}"`);
  const expected =
    quoted.length === 1
      ? quoted[0]!
      : quoted.length === 2
        ? `${quoted[0]} or ${quoted[1]}`
        : `one of ${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
  return { expected, schema: z.enum(values) };
}

function flag(): Rule<boolean> {
  return {
    expected: `"true" or "false" (or 1 / 0)`,
    schema: z
      .string()
      .transform((s) => s.toLowerCase())
      .pipe(z.enum(["true", "false", "1", "0"]))
      .transform((s) => s === "true" || s === "1"),
  };
}

function onOff(): Rule<boolean> {
  return { expected: `"on" or "off"`, schema: z.enum(["on", "off"]).transform((s) => s === "on") };
}

function matching(re: RegExp, expected: string): Rule<string> {
  return { expected, schema: z.string().regex(re) };
}

function hex(digits: number, expected: string): Rule<`0x${string}`> {
  const re = new RegExp(`^0x[0-9a-fA-F]{${digits}}$`);
  return { expected, schema: z.string().regex(re).transform((s) => s as `0x${string}`) };
}

function list(item: RegExp, expected: string): Rule<string[]> {
  return {
    expected,
    schema: z
      .string()
      .transform((s) =>
        s
          .split(",")
          .map((part) => part.trim())
          .filter((part) => part !== ""),
      )
      .pipe(z.array(z.string().regex(item)).min(1)),
  };
}

/** "111:admin,222" -> [{ id: "111", role: "admin" }, { id: "222", role: "viewer" }]; a bare id is a viewer. */
function idsWithRoles(what: string, example: string, isId: (id: string) => boolean): Rule<{ id: string; role: ChatRole }[]> {
  return {
    expected: `a comma-separated list of numeric ${what}, each optionally with :viewer, :trader or :admin (a bare id is a viewer), e.g. ${example}`,
    schema: z
      .string()
      .transform((s) => s.split(",").map((p) => p.trim()).filter((p) => p !== ""))
      .pipe(z.array(z.string().regex(/^\d+(:(viewer|trader|admin))?$/).refine((p) => isId(p.split(":")[0]!))).min(1))
      .transform((parts) =>
        parts.map((p) => {
          const [id, role] = p.split(":");
          return { id: id!, role: (role ?? "viewer") as ChatRole };
        }),
      ),
  };
}

function roleMap(): Rule<{ roleId: string; role: ChatRole }[]> {
  const { schema } = list(/^\d+:(viewer|trader|admin)$/, "");
  return {
    expected: "a comma-separated list of Discord role ids (snowflakes, 17 to 20 digits), each with :viewer, :trader or :admin, e.g. 123456789012345678:trader",
    schema: schema.refine((parts) => parts.every((p) => isSnowflake(p.split(":")[0]!))).transform((parts) => parts.map((p) => ({ roleId: p.split(":")[0]!, role: p.split(":")[1] as ChatRole }))),
  };
}

function notifyPolicy(): Rule<Record<(typeof NOTICE_KINDS)[number], NoticeDelivery>> {
  const kinds = NOTICE_KINDS.join(", ");
  return {
    expected: `a comma-separated list of KIND:on|silent|off, where KIND is one of ${kinds}; unlisted kinds are on`,
    schema: z
      .string()
      .transform((s) => s.split(",").map((p) => p.trim()).filter((p) => p !== ""))
      .pipe(z.array(z.string().regex(new RegExp(`^(${NOTICE_KINDS.join("|")}):(on|silent|off)$`))))
      .transform((parts) => {
        const out = Object.fromEntries(NOTICE_KINDS.map((k) => [k, "on"])) as Record<(typeof NOTICE_KINDS)[number], NoticeDelivery>;
        for (const p of parts) {
          const [kind, how] = p.split(":") as [(typeof NOTICE_KINDS)[number], NoticeDelivery];
          out[kind] = how;
        }
        return out;
      }),
  };
}

function hostPort(): Rule<{ host: string; port: number }> {
  return {
    expected: "HOST:PORT, e.g. 0.0.0.0:8080 (port 0 to 65535)",
    schema: z
      .string()
      .regex(/^[A-Za-z0-9.\-]+:\d{1,5}$/)
      .transform((s) => ({ host: s.slice(0, s.lastIndexOf(":")), port: Number(s.slice(s.lastIndexOf(":") + 1)) }))
      .refine((v) => v.port <= 65535),
  };
}

function url(protocols: string[], expected: string): Rule<string> {
  return {
    expected,
    schema: z.string().refine((s) => {
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    }),
  };
}

function clockTime(): Rule<{ hour: number; minute: number }> {
  return {
    expected: "a UTC time as HH:MM (00:00 to 23:59)",
    schema: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/)
      .transform((s) => ({ hour: Number(s.slice(0, 2)), minute: Number(s.slice(3, 5)) })),
  };
}

/** "model=value,model=value", each value checked by `value`. */
function perModel(value: Rule<number>, example: string): Rule<Record<string, number>> {
  return {
    expected: `a comma-separated list of MODEL=VALUE pairs, each value ${value.expected}, e.g. ${example}`,
    schema: z
      .string()
      .transform((s) => s.split(",").map((p) => p.trim()).filter((p) => p !== ""))
      .pipe(z.array(z.string().regex(/^[^\s=]+=[^\s=]+$/)).min(1))
      .transform((pairs) => pairs.map((p) => p.split("=") as [string, string]))
      .pipe(z.array(z.tuple([z.string(), value.schema])))
      .transform((pairs) => Object.fromEntries(pairs)),
  };
}

const text: Rule<string> = { expected: "a non-empty value", schema: z.string().min(1) };
const noSpaces = (what: string): Rule<string> => matching(/^\S+$/, `${what} without spaces`);
/** A Discord snowflake (17 to 20 digits, under 2^64): see src/domain/chatIds.ts. */
const snowflake = (expected: string): Rule<string> => ({ expected, schema: z.string().refine(isSnowflake) });
const snowflakes = (expected: string): Rule<string[]> => {
  const { schema } = list(/^\d+$/, "");
  return { expected, schema: schema.refine((ids) => ids.every(isSnowflake)) };
};

// ---- settings ----------------------------------------------------------------------------------
//
// TABLE below is the only place a key is declared. Its shape is Config's shape: each leaf is one
// environment variable (how it is documented, parsed and checked), and the Config type, the list
// of keys for the docs and the list of secrets are all read off it.

/** One environment variable. `schema` parses it in its own units; `to` turns that into the Config value. */
interface Setting<K extends string = string, T = unknown, C = T> {
  kind: "setting";
  key: K;
  group: string;
  default: string | undefined;
  description: string;
  secret: boolean;
  expected: string;
  schema: z.ZodType<T, string | undefined>;
  // Method syntax on purpose: it lets any setting stand where Setting<string, unknown, unknown> is expected.
  to(value: T): C;
  /** false: read by the cross-checks only, and left out of Config. */
  inConfig: boolean;
}

/** A Config value made from several settings, e.g. the Telegram webhook from its URL and listen address. */
interface Combined<P = unknown, C = unknown> {
  kind: "combined";
  parts: P;
  combine(parts: ConfigOf<P>): C;
}

/** The Config value a table node produces. */
type ConfigOf<N> =
  N extends Setting<string, any, infer C>
    ? C
    : N extends Combined<any, infer C>
      ? C
      : { [P in keyof N as N[P] extends { inConfig: false } ? never : P]: ConfigOf<N[P]> };

/** Every setting under a table node, as a union. */
type SettingsIn<N> = N extends Setting<string, any, any>
  ? N
  : N extends Combined<infer P, any>
    ? SettingsIn<P>
    : { [P in keyof N]: SettingsIn<N[P]> }[keyof N];

function setting<K extends string, T>(key: K, def: string, description: string, rule: Rule<T>): Setting<K, T> {
  // Unset and empty both mean "use the default", so an empty line in .env is harmless.
  const schema = z
    .string()
    .optional()
    .transform((s) => s ?? def)
    .pipe(rule.schema);
  return { kind: "setting", key, group: "", default: def, description, secret: false, expected: rule.expected, schema, to: (v) => v, inConfig: true };
}

function optional<K extends string, T>(key: K, description: string, rule: Rule<T>, secret = false): Setting<K, T | undefined> {
  const schema = rule.schema.optional();
  return { kind: "setting", key, group: "", default: undefined, description, secret, expected: rule.expected, schema, to: (v) => v, inConfig: true };
}

/** Hidden in every error message and redacted from logs and chat (redactSecrets). */
const secret = <K extends string, T>(key: K, description: string, rule: Rule<T>) => optional(key, description, rule, true);

/** The same setting, put into Config converted (the parsed value, in the key's own units, is what the cross-checks see). */
function converted<K extends string, T, C>(s: Setting<K, T>, to: (value: T) => C): Setting<K, T, C> {
  return { ...s, to };
}
const inMs = <K extends string>(s: Setting<K, number>) => converted(s, (seconds) => seconds * 1000);
const orElse = <K extends string, T>(s: Setting<K, T | undefined>, fallback: NoInfer<T>) => converted(s, (v) => v ?? fallback);
const withoutTrailingSlash = <K extends string>(s: Setting<K, string | undefined>) => converted(s, (v) => v?.replace(/\/+$/, ""));

/** Parsed and checked like any setting, but only the cross-checks read it. */
function checkOnly<S extends Setting<string, any, any>>(s: S): S & { inConfig: false } {
  return { ...s, inConfig: false };
}

function combined<P, C>(parts: P, combine: (parts: ConfigOf<P>) => C): Combined<P, C> {
  return { kind: "combined", parts, combine };
}

const isSetting = (node: unknown): node is Setting => (node as { kind?: unknown }).kind === "setting";
const isCombined = (node: unknown): node is Combined<any> => (node as { kind?: unknown }).kind === "combined";

/** Every setting under `node` in table order, with its place in Config (undefined inside a combined value). */
function* settingsIn(node: unknown, path: string[] | undefined = []): Generator<{ setting: Setting; path: string[] | undefined }> {
  if (isSetting(node)) yield { setting: node, path: node.inConfig ? path : undefined };
  else if (isCombined(node)) yield* settingsIn(node.parts, undefined);
  else for (const [name, child] of Object.entries(node as object)) yield* settingsIn(child, path && [...path, name]);
}

/** Names the docs section (CONFIG_KEYS group) of every setting in `tree`. */
function group<T>(name: string, tree: T): T {
  for (const { setting } of settingsIn(tree)) setting.group = name;
  return tree;
}

const httpUrl = url(["http:", "https:"], "an http(s) URL");

const TABLE = {
  router: group("Dreams Router (LLM gateway)", {
    /** The router's origin: its API is under /v1 (a trailing /v1 in the setting is accepted and dropped). */
    url: converted(setting("DREAMS_ROUTER_URL", "https://ai.xgate.run", "Address of the Dreams Router (its API is under /v1; a trailing /v1 is accepted)", httpUrl), (u) => u.replace(/\/+$/, "").replace(/\/v1$/, "")),
    apiKey: secret("DREAMS_ROUTER_API_KEY", "API key for the router (one way to pay; X402_PRIVATE_KEY is the other)", noSpaces("an API key")),
    walletAddress: optional("X402_WALLET_ADDRESS", "Wallet address whose USDC pays for model calls", hex(40, "a 0x-prefixed 40-hex-digit wallet address")),
    privateKey: secret("X402_PRIVATE_KEY", "Private key that signs x402 USDC payments for model calls", hex(64, "a 0x-prefixed 64-hex-digit private key")),
    rpcUrl: optional("BASE_RPC_URL", "JSON-RPC endpoint of Base / Base Sepolia for reading the wallet's USDC balance; empty means the chain's public endpoint", httpUrl),
    network: setting("X402_NETWORK", "base-sepolia", "Chain for x402 payments (base-sepolia is the testnet)", oneOf("base", "base-sepolia")),
    auth: setting("ROUTER_AUTH", "auto", "How to pay the router: x402 (a permit session, or per call, from X402_PRIVATE_KEY's wallet), api-key (DREAMS_ROUTER_API_KEY), or auto (whichever key is set, the API key first)", oneOf("auto", "x402", "wallet-login", "api-key")),
    /** The most one permit session lets the router's facilitator draw (the budgets and the balance rule may allow less). */
    sessionCap: setting("SESSION_CAP_USDC", "2", "Most USDC one permit session may let the router draw from the wallet (the daily and monthly budgets and the balance rule may allow less)", num({ min: 0.01, max: 1000 })),
    sessionTtlSeconds: setting("SESSION_TTL_SECONDS", "1800", "How long a signed permit stays usable: after its deadline nobody can apply it, and a new one is signed", num({ min: 300, max: 86400, whole: true })),
    primaryModel: setting("PRIMARY_MODEL", "anthropic:claude-sonnet-4-6", "Model asked first for each decision (an id from the router's /v1/models, provider:model, or auto)", text),
    fallbackModels: setting(
      "FALLBACK_MODELS",
      "openai:gpt-5,google:gemini-2.5-flash,meta:llama-3.3-70b",
      "Models tried in order when the primary fails (comma-separated)",
      list(/^\S+$/, "a comma-separated list of model names"),
    ),
    catalogueRefreshMs: inMs(setting("CATALOGUE_REFRESH_SECONDS", "1800", "How often the router's model catalogue (/v1/models: ids and prices) is read again", num({ min: 60, max: 86400, whole: true }))),
    /** Expected USDC per call of a model with no known price: reserved before a call, never booked. */
    costPerDecision: setting("COST_PER_DECISION_USDC", "0.04", "Expected USDC per call of a model with no known price: only an estimate reserved before a call; what is booked is what was paid", num({ min: 0 })),
    timeoutMs: setting("MODEL_TIMEOUT_MS", "20000", "Give up on a model call after this many milliseconds", num({ min: 1000, max: 600000, whole: true })),
    decisionModel: setting("DECISION_MODEL", "offline", "offline: the offline engine (or STRATEGY), no model calls; router: ask the Dreams Router (then LOCAL_MODELS); local: ask only LOCAL_MODELS, free", oneOf("offline", "router", "local")),
  }),

  /** All amounts in USDC (not micro-USDC). */
  balance: group("Balance and budgets (USDC)", {
    minBalance: setting("MIN_BALANCE_USDC", "1.00", "Warn when the model-payment balance falls below this", num({ min: 0 })),
    criticalBalance: setting("CRITICAL_BALANCE_USDC", "0.50", "Pause model calls when the balance falls below this (must be below MIN_BALANCE_USDC)", num({ min: 0 })),
    refillThreshold: setting("REFILL_THRESHOLD_USDC", "2.00", "Refill (or suggest a refill) when the balance falls below this", num({ min: 0 })),
    refillAmount: setting("REFILL_AMOUNT_USDC", "10.00", "How much one refill adds", num({ above: 0 })),
    autoRefill: setting("AUTO_REFILL", "false", "Refill automatically instead of asking in chat", flag()),
    /** The funding wallet on-chain refills move USDC from: never the agent's own key. */
    refillFromKey: secret("REFILL_FROM_PRIVATE_KEY", "Private key of the funding wallet on-chain refills send USDC from (a dedicated wallet holding little; never X402_PRIVATE_KEY)", hex(64, "a 0x-prefixed 64-hex-digit private key")),
    refillMaxPerDay: setting("REFILL_MAX_PER_DAY_USDC", "20", "Most USDC refills may move into the agent's wallet per UTC day, all requests together", num({ above: 0 })),
    refillMainnetConfirm: checkOnly(optional("REFILL_MAINNET_CONFIRM", "Must be yes-move-real-usdc for on-chain refills on base (mainnet)", oneOf("yes-move-real-usdc"))),
    chainReconcileBlocks: setting("CHAIN_RECONCILE_BLOCKS", "43200", "Blocks back (about a day on Base) the chain reconciliation compares the wallet's USDC transfers with the settled payments", num({ min: 1, whole: true })),
    paperWalletStart: setting("PAPER_WALLET_START_USDC", "10.00", "Starting balance of the simulated payment wallet", num({ min: 0 })),
    dailyBudget: setting("DAILY_BUDGET_USDC", "5", "Most USDC to spend on model calls per UTC day", num({ above: 0 })),
    monthlyBudget: setting("MONTHLY_BUDGET_USDC", "100", "Most USDC to spend on model calls per calendar month", num({ above: 0 })),
  }),

  /** How decisions use the router: fallbacks, breakers, spending guardrails and cost savers. */
  routing: group("Model routing, spending guardrails and cost savers", {
    /** What decides when no router model can or may: the offline engine, or hold. */
    fallback: setting("ROUTER_FALLBACK", "offline", "What decides when no router model can or may answer (all failed, budget reached): offline engine, or hold", oneOf("offline", "hold")),
    /** Milliseconds by model id; MODEL_TIMEOUT_MS for the rest. */
    modelTimeouts: orElse(
      optional("MODEL_TIMEOUTS", "Per-model timeouts in milliseconds, overriding MODEL_TIMEOUT_MS (e.g. openai:gpt-5=15000)", perModel(num({ min: 1000, max: 600000, whole: true }), "openai:gpt-5=15000")),
      {},
    ),
    /** Expected USDC per call by model id, before the gateway quotes a price. */
    modelPrices: orElse(
      optional(
        "MODEL_PRICES",
        "Expected USDC per call by model, overriding the router's catalogue (/v1/models) and the built-in estimates (gpt-5/opus 0.08, sonnet 0.05, flash 0.02, llama 0.01, else COST_PER_DECISION_USDC); also sets each model's tier",
        perModel(num({ min: 0 }), "openai:gpt-5=0.08"),
      ),
      {},
    ),
    maxPricePerCall: setting("MAX_PRICE_PER_CALL_USDC", "0.25", "Never pay more than this for one model call", num({ above: 0 })),
    // Twice the dearest default model (gpt-4o, $0.10): a failed premium call and one more at the same
    // price, or the whole default chain ($0.18), but never a chain of paid bad replies beyond that.
    /** The most the fallback chain may pay for one decision, all its calls together. */
    maxSpendPerDecision: setting(
      "MAX_SPEND_PER_DECISION_USDC",
      "0.20",
      "Never pay more than this for one decision, all the models its fallback chain asks together (failed and invalid replies included)",
      num({ above: 0 }),
    ),
    /** x402 payees the agent may pay (lower-case addresses); empty: whichever payee the gateway names. */
    payees: converted(
      optional("X402_PAYEES", "x402 payees the agent may pay (comma-separated 0x addresses); empty: whichever payee the router names", list(/^0x[0-9a-fA-F]{40}$/, "a comma-separated list of 0x-prefixed 40-hex-digit addresses")),
      (v) => (v ?? []).map((a) => a.toLowerCase()),
    ),
    breakerFailures: setting("BREAKER_FAILURES", "3", "Consecutive failures after which a model is skipped for the cool-down", num({ min: 1, whole: true })),
    breakerCooldownMs: inMs(setting("BREAKER_COOLDOWN_SECONDS", "60", "How long a failing model is skipped before one call probes it again", num({ min: 1, whole: true }))),
    cacheTtlMs: inMs(setting("DECISION_CACHE_TTL_SECONDS", "300", "Reuse a paid decision on the same closed candle, model tier and position for this long (0 = off)", num({ min: 0, whole: true }))),
    batch: setting("BATCH_DECISIONS", "off", "Decide every due symbol in one paid call on scheduled runs (each answer validated on its own)", onOff()),
    batchMaxSymbols: setting("BATCH_MAX_SYMBOLS", "10", "Most symbols in one batched call", num({ min: 2, max: 50, whole: true })),
    signalGate: setting("SIGNAL_GATE", "off", "Scheduled decisions pay for a model only when the signal is decisive, RSI is extreme or an open position faces a bearish signal", onOff()),
    signalGateMinScore: setting("SIGNAL_GATE_MIN_SCORE", "0.3", "Signal score (absolute) from which the signal gate pays for a model", num({ min: 0, max: 1 })),
    invalidReplyRetries: setting("INVALID_REPLY_RETRIES", "1", "After a paid model's invalid reply, how many more paid models one decision may ask before the free fallback decides", num({ min: 0, max: 5, whole: true })),
  }),

  /** An x402-paid research endpoint (narratives, signals), paid through the same guards as model calls. */
  research: group("Paid research", {
    url: optional("RESEARCH_URL", "x402-paid research endpoint (narratives and signals as JSON, paid from X402_PRIVATE_KEY); empty: no research (offline)", httpUrl),
    ttlMs: inMs(setting("RESEARCH_TTL_SECONDS", "900", "One research reply (paid once) serves every decision for this long", num({ min: 10, max: 86400, whole: true }))),
    maxPrice: setting("RESEARCH_MAX_PRICE_USDC", "0.10", "Never pay more than this for one research call (MAX_PRICE_PER_CALL_USDC holds too)", num({ above: 0 })),
    timeoutMs: setting("RESEARCH_TIMEOUT_MS", "10000", "Give up on the research endpoint after this many milliseconds (the decision goes on without it)", num({ min: 500, max: 120000, whole: true })),
  }),

  /** Your own strategy file, and free models on an OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp). */
  ...group("Your strategy and local models", {
    strategy: {
      /** A strategy file deciding in the offline engine's place; undefined: the offline engine. */
      file: optional("STRATEGY", "A strategy file (.ts or .js exporting a function from the decision's context to a decision; see strategies/README.md) that decides in the offline engine's place: alone with DECISION_MODEL=offline, else as the last fallback after the models", text),
      timeoutMs: setting("STRATEGY_TIMEOUT_MS", "2000", "Most milliseconds a strategy may take to answer (it runs in its own thread); a slower answer, or one that throws or breaks the decision schema, is refused and places no order", num({ min: 50, max: 60000, whole: true })),
    },
    local: {
      url: withoutTrailingSlash(optional("LOCAL_MODEL_URL", "An OpenAI-compatible endpoint (with its /v1) serving free local models: Ollama http://127.0.0.1:11434/v1, LM Studio http://127.0.0.1:1234/v1, vLLM, llama.cpp's server", httpUrl)),
      models: orElse(optional("LOCAL_MODELS", "Model names at LOCAL_MODEL_URL (e.g. llama3.2,qwen2.5:7b): each is a free model local:NAME in the fallback chain, after the router's unless PRIMARY_MODEL or FALLBACK_MODELS place it", list(/^[^\s,]+$/, "a comma-separated list of model names as the server knows them, like llama3.2 or qwen2.5:7b")), []),
      apiKey: secret("LOCAL_MODEL_API_KEY", "Bearer token for LOCAL_MODEL_URL, if the server asks for one (vLLM --api-key, LM Studio); Ollama needs none", noSpaces("an API key")),
    },
  }),

  chat: {
    ...group("Chat", {
      telegram: {
        token: secret("TELEGRAM_BOT_TOKEN", "Telegram bot token from @BotFather; leave empty to disable Telegram", matching(/^\d+:[A-Za-z0-9_-]{20,}$/, "a Telegram bot token like 123456:ABC... (from @BotFather)")),
        allowedUsers: orElse(
          optional("TELEGRAM_ALLOWED_USERS", "Telegram user ids allowed to use the bot, each with its role: 111:admin,222:trader,333 (a bare id is a viewer)", idsWithRoles("Telegram user ids (positive, at most 52 bits)", "111:admin,222:trader", isTelegramUserId)),
          [],
        ),
        chatId: optional("TELEGRAM_CHAT_ID", "Telegram chat that receives alerts and daily reports", { expected: "a numeric Telegram chat id of at most 52 bits (groups are negative) or @channelname", schema: z.string().refine((s) => isTelegramChatId(s) || /^@\w+$/.test(s)) }),
        threadId: optional("TELEGRAM_THREAD_ID", "Forum topic (message_thread_id) of TELEGRAM_CHAT_ID that receives the alerts; empty for the main chat", num({ min: 1, whole: true })),
        apiUrl: withoutTrailingSlash(
          optional("TELEGRAM_API_URL", "Bot API server address; empty for Telegram's own (set it for a self-hosted Bot API server)", url(["http:", "https:"], "an http(s) URL without a trailing slash")),
        ),
        /** Set: updates arrive by webhook at `url`, served on host:port. Unset: long polling. */
        webhook: combined(
          {
            address: optional("TELEGRAM_WEBHOOK_URL", "Public https URL Telegram posts updates to; empty means long polling", url(["https:", "http:"], "an http(s) URL")),
            listen: setting("TELEGRAM_WEBHOOK_LISTEN", "0.0.0.0:8080", "Where the webhook server listens (only with TELEGRAM_WEBHOOK_URL)", hostPort()),
          },
          ({ address, listen }) => (address ? { url: address, ...listen } : undefined),
        ),
      },
      discord: {
        token: secret("DISCORD_BOT_TOKEN", "Discord bot token; leave empty to disable Discord", matching(/^[\w-]+\.[\w-]+\.[\w-]+$/, "a Discord bot token (three dot-separated parts)")),
        appId: optional("DISCORD_APP_ID", "Discord application id (for registering slash commands)", snowflake("a Discord application id (a snowflake of 17 to 20 digits)")),
        guildIds: orElse(optional("DISCORD_GUILD_IDS", "Discord servers to register slash commands in (comma-separated)", snowflakes("a comma-separated list of Discord server ids (snowflakes of 17 to 20 digits)")), []),
        channelId: optional("DISCORD_CHANNEL_ID", "Discord channel that receives alerts and daily reports", snowflake("a Discord channel id (a snowflake of 17 to 20 digits)")),
        allowedUsers: orElse(
          optional("DISCORD_ALLOWED_USERS", "Discord user ids (snowflakes, 17 to 20 digits) allowed to use the bot, each with its role: ID:admin,ID:trader,ID (a bare id is a viewer)", idsWithRoles("Discord user ids (snowflakes, 17 to 20 digits)", "123456789012345678:admin", isSnowflake)),
          [],
        ),
        /** Discord server roles that grant one of ours. */
        roleMap: orElse(optional("DISCORD_ROLE_MAP", "Discord server roles that grant a role here: ROLE_ID:trader,ROLE_ID:admin", roleMap()), []),
        apiUrl: withoutTrailingSlash(optional("DISCORD_API_URL", "Discord REST API base; empty for Discord's own (https://discord.com/api)", httpUrl)),
      },
      console: setting("CONSOLE", "on", "Accept commands typed in the terminal", onOff()),
      notify: setting("NOTIFY", "decision:silent,info:silent", "How each kind of notice reaches the chats: KIND:on|silent|off for trade, decision, alert, critical, report, error, info (unlisted kinds are on)", notifyPolicy()),
    }),
    ...group("Confirmations and approvals", {
      confirmTimeoutMs: inMs(setting("CONFIRM_TIMEOUT_SECONDS", "60", "Confirmation buttons (/refill, large /trade, /pause all) expire after this many seconds", num({ min: 5, max: 3600, whole: true }))),
      /** A manual /trade above this many USDT asks for a confirmation. */
      tradeConfirmAbove: setting("TRADE_CONFIRM_ABOVE_USDT", "100", "A manual /trade above this many USDT asks for a confirmation first", num({ min: 0 })),
      /** Scheduled decisions above `above` USDT wait for a trader's approval; undefined: approval mode off. */
      approval: {
        above: optional("APPROVAL_ABOVE_USDT", "Approval mode: a scheduled decision trading more than this many USDT waits for a trader's Approve; empty turns approval mode off", num({ min: 0 })),
        timeoutMs: inMs(setting("APPROVAL_TIMEOUT_SECONDS", "300", "An approval request not answered within this many seconds is dropped (no order)", num({ min: 10, max: 86400, whole: true }))),
      },
      /** 2: loosening a risk limit, a /refill and a /trade above TRADE_CONFIRM_ABOVE_USDT need a second admin (docs/control.md). */
      approvals: setting("APPROVALS", "1", "People who must agree to loosen a risk limit, refill, or trade above TRADE_CONFIRM_ABOVE_USDT: 1 (the one who asks confirms) or 2 (another admin must approve)", num({ min: 1, max: 2, whole: true })),
      approvalsTimeoutMs: inMs(setting("APPROVALS_TIMEOUT_SECONDS", "600", "With APPROVALS=2, a request no second admin approved within this many seconds is cancelled", num({ min: 10, max: 86400, whole: true }))),
    }),
  },

  redis: group("Redis", {
    url: setting("REDIS_URL", "redis://127.0.0.1:6379", "Redis holding state, queues and the ledger", url(["redis:", "rediss:"], "a redis:// or rediss:// URL")),
    autostart: setting("REDIS_AUTOSTART", "true", "Start a local redis-server if none answers at a 127.0.0.1/localhost REDIS_URL", flag()),
    dataDir: setting("DATA_DIR", ".data", "Folder for local data (the auto-started Redis keeps its files in DATA_DIR/redis)", text),
    /** "" or a prefix ending with ":", put before every key (ours and BullMQ's). */
    keyPrefix: converted(
      optional(
        "REDIS_KEY_PREFIX",
        "Prefix of every key this agent keeps in Redis, its queues' included, so several agents can share one Redis (e.g. desk1; a colon is added)",
        matching(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*:?$/, "letters, digits, _ . - and : (no spaces, no * ? [ ]), like desk1 or team:desk1"),
      ),
      (v) => (v === undefined ? "" : v.endsWith(":") ? v : `${v}:`),
    ),
    tlsCa: optional("REDIS_TLS_CA", "PEM file of the CA that signed a rediss:// server's certificate, when no public CA did (managed Redis usually needs none)", text),
  }),

  /** How long Redis keeps what grows with every decision. */
  retention: group("Retention", {
    auditTtlMs: converted(
      setting("AUDIT_TTL_DAYS", "3", "Days Redis keeps the agent's audit copy of each decision (its prompt and reply)", num({ above: 0, max: 3650 })),
      (days) => Math.round(days * 86_400_000),
    ),
    /** Whole days kept in detail before today; older ones are rolled up daily. */
    ledgerDays: setting(
      "LEDGER_RETENTION_DAYS",
      "35",
      "Ledger decisions and charges older than this many days are written to the archive and kept in Redis as daily totals (the report and cost charts stay exact)",
      num({ min: 1, max: 3650, whole: true }),
    ),
    archiveDir: optional("LEDGER_ARCHIVE_DIR", "Folder of the monthly JSONL files holding every rolled-up ledger entry; empty means DATA_DIR/archive", text),
  }),

  ...group("Market and exchange", {
    market: {
      symbols: setting("SYMBOLS", "BTC/USDT,ETH/USDT,DOGE/USDT", "Markets to trade, in ccxt form (comma-separated); the first start's default: /symbols changes them, kept in Redis", list(/^[A-Z0-9]+\/[A-Z0-9]+$/, "a comma-separated list of ccxt symbols like BTC/USDT")),
      source: setting("MARKET_DATA", "replay", "replay: recorded candles played back (no network); live: fetch from the exchange", oneOf("replay", "live")),
      replayStepSeconds: setting("REPLAY_STEP_SECONDS", "30", "Wall-clock seconds per replayed candle", num({ above: 0 })),
      timeframe: setting("TIMEFRAME", "2h", "Candle timeframe, in ccxt form", matching(/^\d+[smhdwMy]$/, "a ccxt timeframe like 15m, 2h or 1d")),
      stream: setting("MARKET_STREAM", "auto", "With MARKET_DATA=live, how candles are followed: auto (the exchange's websocket when ccxt.pro has one, else polling), websocket or poll", oneOf("auto", "websocket", "poll")),
    },
    exchange: {
      id: setting("EXCHANGE", "binance", "ccxt exchange id", matching(/^[a-z][a-z0-9_]*$/, "a lowercase ccxt exchange id like binance")),
      mode: setting("TRADING_MODE", "paper", "paper: simulated fills; live: real orders (needs LIVE_TRADING_CONFIRM and exchange keys)", oneOf("paper", "live")),
      liveTradingConfirm: checkOnly(optional("LIVE_TRADING_CONFIRM", "Must be yes-i-understand for TRADING_MODE=live", oneOf("yes-i-understand"))),
      apiKey: secret("EXCHANGE_API_KEY", "Exchange API key (live trading only)", noSpaces("an API key")),
      secret: secret("EXCHANGE_SECRET", "Exchange API secret (live trading only)", noSpaces("an API secret")),
      apiUrl: optional("EXCHANGE_API_URL", "Replaces the exchange's API address (a local stand-in or a proxy); leave empty for the real one", httpUrl),
      sandbox: setting("EXCHANGE_SANDBOX", "true", "Use the exchange's testnet when it has one", flag()),
      paperStartUsdt: setting("PAPER_START_USDT", "10000", "Starting cash of the paper portfolio (USDT)", num({ above: 0 })),
      /** Fraction of notional, e.g. 0.001 = 0.1%. */
      feeRate: setting("FEE_RATE", "0.001", "Trading fee as a fraction of notional (0.001 = 0.1%)", num({ min: 0, max: 0.1 })),
      slippageBps: setting("SLIPPAGE_BPS", "5", "Simulated slippage for paper fills, in basis points", num({ min: 0, max: 1000 })),
    },
  }),

  cluster: group("Roles and scale-out", {
    role: setting("ROLE", "all", "What this process runs: all (one process does everything), worker (decisions, monitors, reconciliation, reports; run any number, on any machine) or frontend (Telegram, Discord and the console; one is active through a lease in Redis, the others stand by)", oneOf("all", "worker", "frontend")),
    leaseMs: inMs(setting("FRONTEND_LEASE_SECONDS", "5", "The active frontend's lease in Redis lasts this long and is renewed every third of it; a standby takes over within about this many seconds after the active one dies", num({ min: 2, max: 120, whole: true }))),
    noticeLateMs: inMs(setting("NOTICE_LATE_SECONDS", "60", "A notice delivered more than this many seconds after it was raised (no frontend was up) is marked late", num({ min: 1, whole: true }))),
    jobLockMs: inMs(setting("JOB_LOCK_SECONDS", "30", "A job whose worker stops renewing its lock for this many seconds (the worker died) is taken over by another worker", num({ min: 2, max: 600, whole: true }))),
    decisionConcurrency: setting("DECISION_CONCURRENCY", "2", "Decisions one worker runs at the same time (they wait on the model, not the CPU)", num({ min: 1, max: 64, whole: true })),
    scheduleVersion: setting("SCHEDULE_VERSION", "1", "Version of this process's schedule (SYMBOLS and the intervals): the cluster runs the highest version written to Redis; raise it to change the schedule of every worker", num({ min: 0, whole: true })),
    remoteTimeoutMs: inMs(setting("REMOTE_COMMAND_TIMEOUT_SECONDS", "120", "A frontend waits this long for a worker to answer /decide, /trade or /pause all", num({ min: 5, max: 3600, whole: true }))),
  }),

  schedule: group("Schedule", {
    decisionIntervalMs: inMs(setting("DECISION_INTERVAL_SECONDS", "300", "Seconds between trading decisions (the first start's default: /interval changes it, kept in Redis)", num({ min: 5, whole: true }))),
    /** interval: on a fresh install the first scheduled decision comes one interval after the start, so nothing trades before a person saw the banner. */
    firstDecision: setting("FIRST_DECISION", "interval", "On a fresh install (nothing in Redis), when the first scheduled decisions run: interval (one decision interval after the start) or now; restarts keep their schedule", oneOf("interval", "now")),
    balanceCheckMs: inMs(setting("BALANCE_CHECK_SECONDS", "60", "Seconds between payment-balance checks", num({ min: 1, whole: true }))),
    positionCheckMs: inMs(setting("POSITION_CHECK_SECONDS", "30", "Seconds between stop-loss / take-profit checks", num({ min: 1, whole: true }))),
    reconcileMs: inMs(setting("RECONCILE_SECONDS", "300", "Seconds between checks of positions against the exchange's balances and open orders (also run at startup)", num({ min: 10, whole: true }))),
    /** UTC. */
    reportTime: setting("REPORT_TIME", "20:00", "Daily report time, HH:MM UTC", clockTime()),
  }),

  // Typed as the domain's RiskLimits (some of its fields are optional there), checked against it here.
  risk: combined(
    group("Risk limits", {
      maxPositionPct: setting("MAX_POSITION_PCT", "10", "Largest single position, percent of equity", limit("maxPositionPct")),
      maxExposurePct: setting("MAX_EXPOSURE_PCT", "50", "Largest total of all positions, percent of equity", limit("maxExposurePct")),
      maxLeverage: setting("MAX_LEVERAGE", "1", "Largest exposure / equity ratio (spot: 1)", limit("maxLeverage")),
      maxOpenPositions: setting("MAX_OPEN_POSITIONS", "3", "Most positions open at once", limit("maxOpenPositions")),
      dailyLossLimitPct: setting("DAILY_LOSS_LIMIT_PCT", "5", "Stop trading for the day after losing this percent of the day's starting equity", limit("dailyLossLimitPct")),
      defaultStopLossPct: setting("DEFAULT_STOP_LOSS_PCT", "3", "Stop loss below entry when the decision gives none, percent", limit("defaultStopLossPct")),
      maxStopLossPct: setting("MAX_STOP_LOSS_PCT", "10", "Widest stop loss allowed, percent below entry", limit("maxStopLossPct")),
      defaultTakeProfitPct: setting("DEFAULT_TAKE_PROFIT_PCT", "6", "Take profit above entry when the decision gives none, percent", limit("defaultTakeProfitPct")),
      minOrderNotional: setting("MIN_ORDER_USDT", "10", "Smallest order notional (exchanges reject dust)", limit("minOrderNotional")),
      trailingStopPct: setting("TRAILING_STOP_PCT", "0", "Trailing stop for new positions, percent below the highest price since entry (0 = off)", limit("trailingStopPct")),
      cooldownAfterLossMinutes: setting("LOSS_COOLDOWN_MINUTES", "120", "No new buy in a symbol for this many minutes after it closed at a loss (0 = off)", limit("cooldownAfterLossMinutes")),
      maxVar95Pct: setting("MAX_VAR_PCT", "3", "Largest one-candle historical VaR (95%) of all positions together, percent of equity", limit("maxVar95Pct")),
    }),
    (limits): RiskLimits => limits,
  ),

  ...group("Logging", {
    logLevel: setting("LOG_LEVEL", "info", "Least severe log level printed", oneOf("debug", "info", "warn", "error")),
  }),

  ops: group("Operations", {
    /** Where /healthz and /metrics are served; undefined: not served. */
    metrics: combined(
      {
        port: optional("METRICS_PORT", "Port of the /healthz and Prometheus /metrics server; empty turns it off (9464 is the usual choice)", num({ min: 1, max: 65535, whole: true })),
        host: setting("METRICS_HOST", "127.0.0.1", "Address the /healthz and /metrics server listens on (loopback by default; 0.0.0.0 in a container)", matching(/^[A-Za-z0-9.:-]+$/, "a host name or IP address, like 127.0.0.1 or 0.0.0.0")),
      },
      ({ port, host }) => (port === undefined ? undefined : { port, host }),
    ),
    /** The team dashboard (read-only API and page, docs/dashboard.md): served when `port` is set; links made by /dashboard either way. */
    dashboard: {
      port: optional("DASHBOARD_PORT", "Port of the team dashboard (read-only API and page) in the process that serves chat; empty turns it off", num({ min: 1, max: 65535, whole: true })),
      host: setting("DASHBOARD_HOST", "127.0.0.1", "Address the dashboard listens on (loopback by default: put a reverse proxy with TLS in front, see docs/dashboard.md)", matching(/^[A-Za-z0-9.:-]+$/, "a host name or IP address, like 127.0.0.1 or 0.0.0.0")),
      publicUrl: withoutTrailingSlash(optional("DASHBOARD_PUBLIC_URL", "The dashboard's address as people reach it (the reverse proxy's); https is needed for the Telegram Mini App. Empty: http://DASHBOARD_HOST:DASHBOARD_PORT", httpUrl)),
      secret: secret("DASHBOARD_SECRET", "Key that signs the personal dashboard links (32 characters or more); empty: one is made and kept in Redis", matching(/^\S{32,}$/, "at least 32 characters without spaces")),
      linkMs: converted(setting("DASHBOARD_LINK_MINUTES", "15", "How long a personal dashboard link from /dashboard stays valid, in minutes", num({ min: 1, max: 1440, whole: true })), (minutes) => minutes * 60_000),
    },
  }),
};

export type Config = ConfigOf<typeof TABLE>;
export type LogLevel = Config["logLevel"];

type AnySetting = SettingsIn<typeof TABLE>;
type Key = AnySetting["key"];
/** Each key's parsed value, in the key's own units (seconds stay seconds): what the cross-checks read. */
type Values = { [S in AnySetting as S["key"]]: S extends Setting<string, infer T, any> ? T : never };

const SETTINGS = [...settingsIn(TABLE)];

export interface ConfigKey {
  key: string;
  group: string;
  default: string | undefined;
  description: string;
  secret: boolean;
  /** Also read from the file KEY_FILE names (Docker and Kubernetes secrets): every secret, and REDIS_URL (it can hold a password). */
  fromFile: boolean;
}

/** The keys whose value can come from a file instead (KEY_FILE=/run/secrets/key). */
const FROM_FILE = new Set<string>([...SETTINGS.filter(({ setting }) => setting.secret).map(({ setting }) => setting.key), "REDIS_URL"]);

export const CONFIG_KEYS: readonly ConfigKey[] = SETTINGS.map(({ setting: s }) => ({
  key: s.key,
  group: s.group,
  default: s.default,
  description: s.description,
  secret: s.secret,
  fromFile: FROM_FILE.has(s.key),
}));

/** Where each secret sits in Config, for redactSecrets. */
const SECRET_PATHS = SETTINGS.filter(({ setting }) => setting.secret).map(({ setting, path }) => {
  // A secret folded into a combined value would have no place of its own in Config to redact from.
  if (!path) throw new Error(`${setting.key} is secret, so it must map to a Config field of its own`);
  return path;
});
const SECRET_KEYS = SETTINGS.filter(({ setting }) => setting.secret).map(({ setting }) => setting.key);

// ---- loading -----------------------------------------------------------------------------------

export type LoadResult = { ok: true; config: Config } | { ok: false; message: string };

export function loadConfig(given: Record<string, string | undefined>): LoadResult {
  const problems: string[] = [];
  const env = withFileValues(given, problems);
  const raw = (key: string): string | undefined => {
    const v = env[key]?.trim();
    return v === "" ? undefined : v;
  };
  const secretValues = SECRET_KEYS.map(raw).filter((v): v is string => v !== undefined);

  const values: Record<string, unknown> = {};
  for (const { setting: s } of SETTINGS) {
    const result = s.schema.safeParse(raw(s.key));
    if (result.success) values[s.key] = result.data;
    else problems.push(`${s.key}: expected ${s.expected}${shown(s, raw(s.key), secretValues)}`);
  }
  problems.push(...crossChecks(values as Partial<Values>, (key) => raw(key) !== undefined));

  if (problems.length > 0) {
    return {
      ok: false,
      message: ["Configuration is invalid (fix these in .env or the environment):", ...problems.map((p) => `  - ${p}`)].join("\n"),
    };
  }
  return { ok: true, config: build(TABLE, values) as Config };
}

/**
 * The environment with every KEY_FILE read into KEY (Docker secrets: TELEGRAM_BOT_TOKEN_FILE=
 * /run/secrets/telegram_bot_token). The file's content is the value, its final line break dropped;
 * an empty file sets nothing (docker-compose.yml mounts every secret's file, empty where unused).
 * A value both in KEY and in KEY_FILE's file, or a file that cannot be read, is a problem to fix.
 */
function withFileValues(env: Record<string, string | undefined>, problems: string[]): Record<string, string | undefined> {
  const out = { ...env };
  for (const key of FROM_FILE) {
    const path = env[`${key}_FILE`]?.trim();
    if (!path) continue;
    let value: string;
    try {
      value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      problems.push(`${key}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a file holding ${key}, readable by this process`);
      continue;
    }
    if (value.trim() === "") continue;
    if (env[key]?.trim()) {
      problems.push(`${key}_FILE: ${key} is set too; keep it in one place (the file, or ${key})`);
      continue;
    }
    out[key] = value;
  }
  return out;
}

// ---- unknown keys ------------------------------------------------------------------------------

/** The first word of every key (MAX, TELEGRAM, DECISION, SYMBOLS...): a variable starting with one of them is meant for the agent. */
const KEY_WORDS = new Set(CONFIG_KEYS.map((k) => k.key.split("_")[0]!));

/**
 * Variables other software sets under a word of ours: Kubernetes' and Docker's service links for a
 * service named redis (REDIS_PORT, REDIS_SERVICE_HOST, REDIS_PORT_6379_TCP...), systemd's NOTIFY_SOCKET.
 */
const FOREIGN = /^([A-Z0-9]+_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP)(_\w+)?)?)|NOTIFY_SOCKET)$/;

/** True for a key whose first word is one of ours, or (five letters and more) one letter off one: DECISON_MODEL. */
function meantForAgent(key: string): boolean {
  if (FOREIGN.test(key)) return false;
  const word = key.split("_")[0]!;
  if (KEY_WORDS.has(word)) return true;
  return word.length >= 5 && [...KEY_WORDS].some((w) => w.length >= 5 && editDistance(word, w) <= 1);
}

/**
 * A warning for each key, in .env or the environment, that looks meant for the agent and is none
 * of its settings (a typo would otherwise be ignored without a word), naming the closest known key.
 */
export function unknownKeyWarnings(dotEnv: Record<string, string | undefined>, environment: Record<string, string | undefined>): string[] {
  const known = new Set(CONFIG_KEYS.flatMap((k) => (k.fromFile ? [k.key, `${k.key}_FILE`] : [k.key])));
  const warnings: string[] = [];
  const check = (key: string, where: string) => {
    if (known.has(key) || !meantForAgent(key)) return;
    warnings.push(`Unknown setting ${key} in ${where}, ignored: did you mean ${closestKey(key, [...known])}? (every setting is in docs/configuration.md)`);
  };
  for (const key of Object.keys(dotEnv)) check(key, ".env");
  for (const key of Object.keys(environment)) if (!(key in dotEnv)) check(key, "the environment");
  return warnings;
}

/** The known key nearest to `key` by edit distance (a swap of two letters counts as one edit). */
export function closestKey(key: string, known: readonly string[]): string {
  let best = known[0]!;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  // Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** How a bad value is quoted back: never a secret, nor anything that looks like one. */
function shown(s: Setting, value: string | undefined, secretValues: string[]): string {
  if (value === undefined) return ", but it is not set";
  const looksSecret = s.secret || secretValues.includes(value) || /^(0x)?[0-9a-fA-F]{64}$/.test(value);
  if (looksSecret) return " (value hidden)";
  const safe = hideUrlPassword(value);
  const short = safe.length > 80 ? `${safe.slice(0, 77)}...` : safe;
  return `, got ${JSON.stringify(short)}`;
}
/** Masks the password of a URL, even one too broken for `new URL` to parse. */
export function hideUrlPassword(value: string): string {
  // Greedy up to the last "@", so a password that itself holds "@" or "/" is masked whole.
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):.*@/i, "$1:***@");
}

function crossChecks(v: Partial<Values>, given: (key: Key) => boolean): string[] {
  const problems: string[] = [];
  const below = (low: Key, lowValue: number | undefined, high: Key, highValue: number | undefined, strict: boolean) => {
    if (lowValue === undefined || highValue === undefined) return;
    if (strict ? lowValue < highValue : lowValue <= highValue) return;
    problems.push(`${low}: expected ${strict ? "less than" : "at most"} ${high} (${highValue}), got ${lowValue}`);
  };
  below("CRITICAL_BALANCE_USDC", v.CRITICAL_BALANCE_USDC, "MIN_BALANCE_USDC", v.MIN_BALANCE_USDC, true);
  below("DAILY_BUDGET_USDC", v.DAILY_BUDGET_USDC, "MONTHLY_BUDGET_USDC", v.MONTHLY_BUDGET_USDC, false);
  below("DEFAULT_STOP_LOSS_PCT", v.DEFAULT_STOP_LOSS_PCT, "MAX_STOP_LOSS_PCT", v.MAX_STOP_LOSS_PCT, false);
  below("MAX_POSITION_PCT", v.MAX_POSITION_PCT, "MAX_EXPOSURE_PCT", v.MAX_EXPOSURE_PCT, false);
  if (v.MAX_EXPOSURE_PCT !== undefined && v.MAX_LEVERAGE !== undefined && v.MAX_EXPOSURE_PCT > 100 * v.MAX_LEVERAGE) {
    problems.push(
      `MAX_EXPOSURE_PCT: expected at most 100 x MAX_LEVERAGE (${100 * v.MAX_LEVERAGE}), got ${v.MAX_EXPOSURE_PCT}`,
    );
  }

  if (v.REFILL_FROM_PRIVATE_KEY && v.X402_PRIVATE_KEY && v.REFILL_FROM_PRIVATE_KEY.toLowerCase() === v.X402_PRIVATE_KEY.toLowerCase()) {
    problems.push("REFILL_FROM_PRIVATE_KEY: expected a funding wallet's key, got the agent's own X402_PRIVATE_KEY (a refill would move nothing); use a separate wallet");
  }
  if (v.REFILL_FROM_PRIVATE_KEY && v.X402_NETWORK === "base" && !given("REFILL_MAINNET_CONFIRM")) {
    problems.push("REFILL_FROM_PRIVATE_KEY: refills on base move real USDC, so they need REFILL_MAINNET_CONFIRM=yes-move-real-usdc (to show it is intended); or use X402_NETWORK=base-sepolia");
  }
  if (v.X402_PRIVATE_KEY && v.X402_WALLET_ADDRESS) {
    // Loaded only for this check (viem costs about 300 ms at startup): a process without a wallet never needs it.
    const { privateKeyToAccount } = createRequire(import.meta.url)("viem/accounts") as typeof ViemAccounts;
    const own = privateKeyToAccount(v.X402_PRIVATE_KEY).address;
    if (own.toLowerCase() !== v.X402_WALLET_ADDRESS.toLowerCase()) {
      problems.push(`X402_WALLET_ADDRESS: expected the address of X402_PRIVATE_KEY (${own}), got ${v.X402_WALLET_ADDRESS}; leave it empty to use the key's own address`);
    }
  }

  if (v.DECISION_MODEL === "router") {
    const auth = v.ROUTER_AUTH;
    const hasKey = given("DREAMS_ROUTER_API_KEY");
    const hasWallet = given("X402_PRIVATE_KEY");
    if (!hasKey && !hasWallet) {
      problems.push(
        `DECISION_MODEL: "router" needs DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY to pay for model calls; set one, or use DECISION_MODEL=offline`,
      );
    } else if (auth === "api-key" && !hasKey) {
      problems.push(`ROUTER_AUTH: "api-key" needs DREAMS_ROUTER_API_KEY; set it, or use ROUTER_AUTH=auto`);
    } else if (auth === "x402" && !hasWallet) {
      problems.push(`ROUTER_AUTH: "${auth}" needs X402_PRIVATE_KEY; set it, or use ROUTER_AUTH=auto`);
    }
  }
  if (v.ROUTER_AUTH === "wallet-login") {
    problems.push(`ROUTER_AUTH: "wallet-login" is gone: the router no longer offers a wallet login. A wallet pays with a permit session: use ROUTER_AUTH=x402 (or auto) with X402_PRIVATE_KEY`);
  }

  const locals = (v.LOCAL_MODELS ?? []).map((m) => `local:${m}`);
  if (v.DECISION_MODEL === "local" && locals.length === 0) {
    problems.push(`DECISION_MODEL: "local" needs LOCAL_MODELS (the model names at LOCAL_MODEL_URL, e.g. llama3.2) and LOCAL_MODEL_URL (Ollama: http://127.0.0.1:11434/v1)`);
  }
  const placed = [v.PRIMARY_MODEL, ...(v.FALLBACK_MODELS ?? [])].filter((m): m is string => m !== undefined && m.startsWith("local:"));
  if ((locals.length > 0 || placed.length > 0) && !given("LOCAL_MODEL_URL")) {
    problems.push(`LOCAL_MODEL_URL: ${locals.length ? "LOCAL_MODELS" : placed.join(", ")} need the endpoint that serves them, e.g. LOCAL_MODEL_URL=http://127.0.0.1:11434/v1 for Ollama`);
  }
  if (v.STRATEGY !== undefined && !existsSync(v.STRATEGY)) {
    problems.push(`STRATEGY: no such file ${JSON.stringify(v.STRATEGY)}: give the path (from the working directory) of a .ts or .js file that exports a strategy, e.g. strategies/sma-crossover.ts (see strategies/README.md)`);
  }
  const chain = [v.PRIMARY_MODEL, ...(v.FALLBACK_MODELS ?? []), ...locals];
  const freeButPriced = Object.keys(v.MODEL_PRICES ?? {}).filter((m) => m.startsWith("local:"));
  if (freeButPriced.length > 0) problems.push(`MODEL_PRICES: ${freeButPriced.join(", ")} is a local model, which is free: leave it out`);
  // A cap below the price of the cheapest model's call makes every paid call impossible, silently.
  if (v.DECISION_MODEL === "router" && v.PRIMARY_MODEL !== undefined && v.COST_PER_DECISION_USDC !== undefined) {
    const models = buildCatalogue({ primary: v.PRIMARY_MODEL, fallbacks: v.FALLBACK_MODELS ?? [], prices: v.MODEL_PRICES ?? {}, defaultPriceUsdc: v.COST_PER_DECISION_USDC, timeouts: {}, defaultTimeoutMs: 1 });
    const cheapest = models.reduce((a, b) => (b.listPriceMicro < a.listPriceMicro ? b : a));
    const price = cheapest.listPriceMicro / 1_000_000;
    for (const key of ["DAILY_BUDGET_USDC", "MONTHLY_BUDGET_USDC", "MAX_PRICE_PER_CALL_USDC", "MAX_SPEND_PER_DECISION_USDC"] as const) {
      const cap = v[key];
      if (cap !== undefined && cap < price) {
        problems.push(`${key}: ${cap} is below the price of one call to the cheapest model (${cheapest.id}, ${price} USDC): no model call could ever be made; raise it to at least ${price}, set a lower MODEL_PRICES, or use DECISION_MODEL=offline`);
      }
    }
  }
  for (const key of ["MODEL_TIMEOUTS", "MODEL_PRICES"] as const) {
    const unknown = Object.keys(v[key] ?? {}).filter((m) => !chain.includes(m));
    if (unknown.length > 0) problems.push(`${key}: ${unknown.join(", ")} is not PRIMARY_MODEL or in FALLBACK_MODELS or LOCAL_MODELS (${chain.join(", ")})`);
  }
  if (v.BATCH_DECISIONS && v.DECISION_CACHE_TTL_SECONDS === 0) {
    problems.push(`BATCH_DECISIONS: "on" hands each symbol its answer through the decision cache, so it needs DECISION_CACHE_TTL_SECONDS above 0`);
  }

  if (v.TRADING_MODE === "live") {
    const missing: string[] = [];
    if (!given("LIVE_TRADING_CONFIRM")) missing.push("LIVE_TRADING_CONFIRM=yes-i-understand");
    if (!given("EXCHANGE_API_KEY")) missing.push("EXCHANGE_API_KEY");
    if (!given("EXCHANGE_SECRET")) missing.push("EXCHANGE_SECRET");
    if (missing.length > 0) {
      problems.push(
        `TRADING_MODE: "live" places real orders with real money, so it needs LIVE_TRADING_CONFIRM=yes-i-understand ` +
          `(to show it is intended) and EXCHANGE_API_KEY + EXCHANGE_SECRET (to reach your account); ` +
          `missing: ${missing.join(", ")}. Use TRADING_MODE=paper to simulate`,
      );
    }
    // Real orders priced from recorded candles would trade at prices that do not exist.
    if (v.MARKET_DATA === "replay") {
      problems.push(`MARKET_DATA: expected "live" when TRADING_MODE is "live", got "replay"`);
    }
  }
  return problems;
}

/** The Config value of a table node, from every key's parsed value. */
function build(node: unknown, values: Record<string, unknown>): unknown {
  if (isSetting(node)) return node.to(values[node.key]);
  if (isCombined(node)) return node.combine(build(node.parts, values));
  const out: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(node as object)) {
    if (!(isSetting(child) && !child.inConfig)) out[name] = build(child, values);
  }
  return out;
}

// ---- .env --------------------------------------------------------------------------------------

/**
 * Reads KEY=VALUE lines from a .env file, or nothing if it does not exist. Unlike
 * process.loadEnvFile it leaves process.env alone, so the caller decides who wins.
 */
export function readDotEnv(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split(/\r\n|\n|\r/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    out[m[1]!] = parseValue(m[2]!);
  }
  return out;
}

function parseValue(rest: string): string {
  // Double quotes allow escapes (\n, \", \\) as in shells and dotenv; single quotes are literal.
  const double = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
  if (double) return double[1]!.replace(/\\([n"\\])/g, (_, c: string) => (c === "n" ? "\n" : c));
  const single = /^'([^']*)'/.exec(rest);
  if (single) return single[1]!;
  // A # starts a comment only after whitespace, so values like "abc#def" survive.
  return rest.replace(/\s+#.*$/, "").trim();
}

/** The environment as the app sees it: .env values, overridden by real environment variables. */
export function loadEnv(
  dotEnvPath = ".env",
  env: Record<string, string | undefined> = process.env,
): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...readDotEnv(dotEnvPath) };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) merged[key] = value;
  return merged;
}

// ---- redaction ---------------------------------------------------------------------------------

/** Replaces every configured secret found in `text` with "[redacted]". */
export function redactSecrets(text: string, config: Config): string {
  const secrets = new Set<string>();
  const add = (s: string | undefined) => {
    if (s) secrets.add(s);
  };
  for (const path of SECRET_PATHS) {
    const value = path.reduce<unknown>((node, name) => (node as Record<string, unknown> | undefined)?.[name], config);
    if (typeof value !== "string") continue;
    add(value);
    // Libraries sometimes print a hex key (X402_PRIVATE_KEY) without its 0x prefix.
    if (value.startsWith("0x")) add(value.slice(2));
  }
  // Not a secret key, but its URL may carry one.
  const password = redisPassword(config.redis.url);
  if (password) {
    add(password.raw);
    add(password.decoded);
  }
  // Longest first, so a secret that contains another is replaced whole.
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join("[redacted]");
  return out;
}

function redisPassword(url: string): { raw: string; decoded: string } | undefined {
  try {
    const raw = new URL(url).password;
    if (!raw) return undefined;
    let decoded = raw;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // Keep the raw form: a password with a stray % is still a password.
    }
    return { raw, decoded };
  } catch {
    return undefined;
  }
}
