// What the router benchmarks share: a private Redis, the router stand-in from test/support (the
// real provider pays it over loopback), the app configured for it, and a simulated clock over the
// real candles in ../shared/data/ohlcv.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { buildApp, type App } from "../src/app.js";
import { loadConfig, type Config } from "../src/config/config.js";
import { ReplayMarketData } from "../src/market/replay.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { TEST_WALLET_KEY } from "../test/support/routerApp.js";
import { RouterStandIn, type ReplyFn, type StandInOptions } from "../test/support/routerStandIn.js";
import { freePort } from "./results.js";

export const CANDLE_MS = 2 * 3600 * 1000;

/** The design documents' per-call prices (../shared/notes/anchors.md), charged by the stand-in. */
export const DESIGN_PRICES = {
  "openai/gpt-4o": 0.1,
  "anthropic/claude-3-5-sonnet": 0.05,
  "google-vertex/gemini-2.5-flash": 0.02,
  "groq/llama-3.1-8b-instant": 0.01,
};

/** A model that reads the signal in its prompt: buys a decisive bullish score, trims a bearish one, else holds. */
export const signalReply: ReplyFn = (req) => {
  const act = (score: number, symbol?: string) => {
    const s = symbol ? { symbol } : {};
    const confidence = Number((0.5 + Math.min(0.45, Math.abs(score) / 2)).toFixed(2));
    if (score > 0.3) return `<action_call name="ExecuteTrade">${JSON.stringify({ ...s, side: "buy", sizePct: 3, confidence, reasons: [`score ${score}`] })}</action_call>`;
    if (score < -0.3) return `<action_call name="RiskManagement">${JSON.stringify({ ...s, stance: "reduce-exposure", confidence, reasons: [`score ${score}`] })}</action_call>`;
    return `<action_call name="RiskManagement">${JSON.stringify({ ...s, stance: "hold", confidence: 0.6, reasons: [`score ${score}`] })}</action_call>`;
  };
  const markets = /Markets: (\[.*\])/.exec(req.prompt);
  if (req.symbols.length > 1 && markets) {
    const list = JSON.parse(markets[1]!) as { symbol: string; signalScore: number }[];
    return `<response><reasoning>batch</reasoning>${list.map((m) => act(m.signalScore, m.symbol)).join("")}</response>`;
  }
  const score = Number(/"signalScore":(-?[\d.]+)/.exec(req.prompt)?.[1] ?? 0);
  return `<response><reasoning>single</reasoning>${act(score)}</response>`;
};

export interface BenchRedis {
  url: string;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export async function privateRedis(): Promise<BenchRedis> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-router-redis-"));
  const redis = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  return {
    url: redis.url,
    async flush() {
      const r = new Redis(redis.url);
      await r.flushall();
      await r.quit();
    },
    async stop() {
      await redis.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RouterBench {
  app: App;
  standIn: RouterStandIn;
  clock: { now: number };
  stop(): Promise<void>;
}

/** The app on the router (x402, paying the stand-in), over the real candles, on a clock the bench moves. */
export async function startRouterBench(redis: BenchRedis, edit: (c: Config) => void, standIn: Partial<StandInOptions> = {}): Promise<RouterBench> {
  await redis.flush();
  const stand = await RouterStandIn.start({ prices: { ...DESIGN_PRICES }, reply: signalReply, ...standIn });
  const loaded = loadConfig({ LOG_LEVEL: "error", CONSOLE: "off" });
  if (!loaded.ok) throw new Error(loaded.message);
  const config = loaded.config;
  config.router.decisionModel = "router";
  config.router.url = stand.url;
  config.router.privateKey = TEST_WALLET_KEY;
  config.router.auth = "x402";
  // This per-call stand-in charges the design documents' models (the hosted router's own is in bench/paymentOverhead.ts).
  const [primary, ...fallbacks] = Object.keys(DESIGN_PRICES);
  config.router.primaryModel = primary!;
  config.router.fallbackModels = fallbacks;
  // A benchmark day must not stop at the default $5: caps are measured elsewhere.
  config.balance.dailyBudget = 1000;
  config.balance.monthlyBudget = 10_000;
  config.balance.paperWalletStart = 1000;
  edit(config);
  const clock = { now: Date.UTC(2026, 0, 5, 0, 0, 0) };
  const market = new ReplayMarketData({
    dir: new URL("../../shared/data/ohlcv/", import.meta.url).pathname,
    timeframe: "2h",
    clock: () => clock.now,
    epoch: clock.now,
    stepMs: CANDLE_MS,
  });
  const app = await buildApp(config, redis.url, { clock: () => clock.now, market, queuePrefix: "bench-router", paperWallet: true });
  return {
    app,
    standIn: stand,
    clock,
    async stop() {
      await app.stop();
      await stand.close();
    },
  };
}
