import type { Redis } from "ioredis";
import type { Decision, MarketSymbol, MicroUsdc } from "../domain/types.js";
import type { Tier } from "./catalogue.js";

export interface CachedDecision {
  decision: Decision;
  model: string;
  /** Open time of the closed candle the decision was made on. */
  candleTime: number;
  /** What the call that made it cost (its share, for a batched call). */
  costMicro: MicroUsdc;
  /** What a call of its own would have cost: the saving each hit is worth. */
  singleCallMicro: MicroUsdc;
  origin: "call" | "batch";
  expiresAt: number;
}

export interface CacheKey {
  symbol: MarketSymbol;
  candleTime: number;
  tier: Tier;
  /** Whether a position was open: "buy" on a flat book must not be served to a held one. */
  holding: boolean;
}

/**
 * Paid decisions kept for a while, keyed by symbol, the closed candle they were made on, the model
 * tier and whether a position was open. A decision made on an older candle than the latest closed
 * one can never be served: its key names its candle. Expiry follows the caller's clock (tests and
 * benchmarks move it); Redis drops the key on its own a little later.
 */
export class DecisionCache {
  constructor(private readonly redis: Redis, private readonly prefix = "router:cache:") {}

  private key(k: CacheKey): string {
    return `${this.prefix}${k.symbol}:${k.candleTime}:${k.tier}:${k.holding ? "held" : "flat"}`;
  }

  async get(k: CacheKey, now: number): Promise<CachedDecision | undefined> {
    const raw = await this.redis.get(this.key(k));
    if (!raw) return undefined;
    const hit = JSON.parse(raw) as CachedDecision;
    if (hit.expiresAt <= now || hit.candleTime !== k.candleTime || hit.decision.symbol !== k.symbol) return undefined;
    return hit;
  }

  async put(k: CacheKey, entry: Omit<CachedDecision, "expiresAt" | "candleTime">, ttlMs: number, now: number): Promise<void> {
    if (ttlMs <= 0) return;
    const value: CachedDecision = { ...entry, candleTime: k.candleTime, expiresAt: now + ttlMs };
    await this.redis.multi().set(this.key(k), JSON.stringify(value), "PX", ttlMs + 60_000).del(`${this.key(k)}:served`).exec();
  }

  /** True once per entry: who first takes a batched decision pays its share; later hits are plain cache hits. */
  async firstServe(k: CacheKey): Promise<boolean> {
    return (await this.redis.set(`${this.key(k)}:served`, "1", "PX", 24 * 3600_000, "NX")) === "OK";
  }

  /**
   * Leads the batched call of a tier, so the scheduled jobs of one tick (which start together) make
   * one paid call between them: the others wait for its answers instead of paying for their own.
   */
  async lead(tier: Tier, leaseMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}batch-lead:${tier}`, "1", "PX", leaseMs, "NX")) === "OK";
  }

  async leading(tier: Tier): Promise<boolean> {
    return (await this.redis.exists(`${this.prefix}batch-lead:${tier}`)) === 1;
  }

  async unlead(tier: Tier): Promise<void> {
    await this.redis.del(`${this.prefix}batch-lead:${tier}`);
  }
}
