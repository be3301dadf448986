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

/** Limits whose higher value allows more risk; the others (min_order, whose lower value lets more orders through) are in LOWER_IS_LOOSER. */
const LOWER_IS_LOOSER: ReadonlySet<keyof RiskLimits> = new Set(["minOrderNotional"]);
/** Limits that set no bound on risk: changing them never needs a confirmation. */
const NOT_A_BOUND: ReadonlySet<keyof RiskLimits> = new Set(["defaultTakeProfitPct"]);

/**
 * True when changing `key` from `before` to `after` allows more risk: a bigger position, exposure,
 * leverage, number of positions, daily loss or stop-loss width, or a smaller minimum order.
 * The take profit bounds no risk, so it never loosens.
 */
export function loosens(key: keyof RiskLimits, before: number | undefined, after: number): boolean {
  if (NOT_A_BOUND.has(key)) return false;
  if (before === undefined) return true;
  return LOWER_IS_LOOSER.has(key) ? after < before : after > before;
}

/**
 * The risk limits in Redis, versioned: every change bumps the version, and each process checks it
 * (one GET) before a risk check, so no process acts on limits older than the last "in force".
 */
export class StoredLimits {
  private seen: string | null | undefined;

  constructor(private readonly redis: Redis, private readonly key = "agent:limits") {}

  private get versionKey(): string {
    return `${this.key}:version`;
  }

  /** Records one changed limit and bumps the version; returns the new version. */
  async save(key: keyof RiskLimits, value: number): Promise<number> {
    const out = await this.redis.multi().hset(this.key, key, String(value)).incr(this.versionKey).exec();
    return Number(out?.[1]?.[1] ?? 0);
  }

  /** The version of the stored limits (0: never changed). */
  async version(): Promise<number> {
    return Number((await this.redis.get(this.versionKey)) ?? 0);
  }

  /**
   * Lays the stored limits over `limits` when another process changed them since this one last
   * looked: one GET when nothing changed. The version is read before the limits, so a change made
   * in between is read again next time, never missed.
   */
  async refresh(limits: RiskLimits): Promise<void> {
    const version = await this.redis.get(this.versionKey);
    if (version === this.seen) return;
    if (await this.applyTo(limits)) this.seen = version;
  }

  /**
   * Lays the stored limits over `limits`, in place. Returns false (and changes nothing) when the
   * stored ones contradict each other. A stored value out of its range (kept before the ranges
   * were checked, e.g. 1e-22) is not applied: the configured one stays.
   */
  async applyTo(limits: RiskLimits): Promise<boolean> {
    if (this.seen === undefined) this.seen = await this.redis.get(this.versionKey);
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
