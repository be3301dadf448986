// The risk limits an admin changed from chat, kept in Redis so they survive a restart. The
// configured limits are the starting point; what is stored here is laid over them.
import type { Redis } from "ioredis";
import type { RiskLimits } from "../domain/types.js";
import { LIMIT_BOUNDS, withinBound } from "./bounds.js";

/** Problems with a set of limits taken together, as the configuration checks them. */
export function crossCheck(l: RiskLimits): string | undefined {
  if (l.defaultStopLossPct > l.maxStopLossPct) return `stop_loss (${l.defaultStopLossPct}) must be at most max_stop_loss (${l.maxStopLossPct})`;
  if (l.maxPositionPct > l.maxExposurePct) return `max_position (${l.maxPositionPct}) must be at most max_exposure (${l.maxExposurePct})`;
  if (l.maxExposurePct > 100 * l.maxLeverage) return `max_exposure (${l.maxExposurePct}) must be at most 100 x max_leverage (${100 * l.maxLeverage})`;
  return undefined;
}

export class StoredLimits {
  constructor(private readonly redis: Redis, private readonly key = "agent:limits") {}

  /** Records one changed limit. */
  async save(key: keyof RiskLimits, value: number): Promise<void> {
    await this.redis.hset(this.key, key, String(value));
  }

  /**
   * Lays the stored limits over `limits`, in place. Returns false (and changes nothing) when the
   * stored ones contradict each other. A stored value out of its range (kept before the ranges
   * were checked, e.g. 1e-22) is not applied: the configured one stays.
   */
  async applyTo(limits: RiskLimits): Promise<boolean> {
    const stored = await this.redis.hgetall(this.key);
    const next = { ...limits };
    for (const [key, value] of Object.entries(stored)) {
      const bound = LIMIT_BOUNDS[key as keyof RiskLimits];
      if (key in next && bound && withinBound(bound, Number(value))) (next as Record<string, number>)[key] = Number(value);
    }
    if (crossCheck(next) !== undefined) return false;
    Object.assign(limits, next);
    return true;
  }
}
