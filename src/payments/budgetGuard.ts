import type { Redis } from "ioredis";
import { usd, type MicroUsdc } from "../domain/types.js";
import { dayKey, monthKey } from "../ledger/ledger.js";

export interface BudgetCaps {
  dailyMicro: MicroUsdc;
  monthlyMicro: MicroUsdc;
  maxPerCallMicro: MicroUsdc;
  /** The most the fallback chain may pay for one decision, all its calls together. */
  maxPerDecisionMicro: MicroUsdc;
}

export interface Reservation {
  id: string;
  micro: MicroUsdc;
  day: string;
  month: string;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation }
  | {
      ok: false;
      cap: "per-call" | "daily" | "monthly";
      reason: string;
      /** Spent alone leaves room: only calls in flight are in the way, and they settle soon. */
      inFlightOnly?: boolean;
    };

export interface BudgetStatus {
  caps: BudgetCaps;
  spentTodayMicro: MicroUsdc;
  reservedTodayMicro: MicroUsdc;
  spentMonthMicro: MicroUsdc;
  reservedMonthMicro: MicroUsdc;
}

// Reserve (or resize) `id` to ARGV[2] micro-USDC if spent + every other live reservation + it
// stays within both caps. Expired reservations (a process that died mid-call) are dropped here.
// KEYS: spend:day, spend:month, reservations hash. ARGV: id, micro, capDay, capMonth, now, expiresAt, day, month.
const RESERVE = `
local now = tonumber(ARGV[5])
local rd, rm = 0, 0
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  local r = cjson.decode(all[i + 1])
  if r.exp <= now then
    redis.call('HDEL', KEYS[3], all[i])
  elseif all[i] ~= ARGV[1] then
    if r.day == ARGV[7] then rd = rd + r.micro end
    if r.month == ARGV[8] then rm = rm + r.micro end
  end
end
local micro = tonumber(ARGV[2])
local sd = tonumber(redis.call('GET', KEYS[1]) or '0')
local sm = tonumber(redis.call('GET', KEYS[2]) or '0')
if sd + rd + micro > tonumber(ARGV[3]) then return {0, 'daily', sd, rd} end
if sm + rm + micro > tonumber(ARGV[4]) then return {0, 'monthly', sm, rm} end
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode({micro = micro, day = ARGV[7], month = ARGV[8], exp = tonumber(ARGV[6])}))
return {1, '', sd, rd}
`;


/**
 * The spending caps, enforced before any payment: a maximum price per call, and daily and monthly
 * budgets that hold even with many decisions in flight. A call first reserves its expected price
 * atomically in Redis (spent + reserved must stay within each cap); when the gateway names the
 * exact price, the reservation is resized to it, or the payment is refused; after the call the
 * ledger books what was actually paid and the reservation is released. Spend is booked before the
 * reservation goes, so the two are never both missing.
 */
export class BudgetGuard {
  constructor(
    private readonly redis: Redis,
    readonly caps: BudgetCaps,
    private readonly spendKey: { day: (day: string) => string; month: (month: string) => string },
    private readonly prefix = "budget:",
  ) {}

  /**
   * Reserves, waiting up to `waitMs` while only calls in flight stand in the way (a burst near the
   * cap queues instead of failing). A caller never waits while holding: no two can block each other.
   */
  async reserveWaiting(id: string, micro: MicroUsdc, now: number, leaseMs: number, waitMs: number): Promise<ReserveResult> {
    const deadline = Date.now() + waitMs;
    for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
      const r = await this.reserve(id, micro, now, leaseMs);
      if (r.ok || !r.inFlightOnly || Date.now() + pause > deadline) return r;
      await new Promise((res) => setTimeout(res, pause));
    }
  }

  /** Changes a live reservation to the exact price; if only calls in flight are in the way, lets go and queues for it. */
  async resizeWaiting(r: Reservation, micro: MicroUsdc, now: number, leaseMs: number, waitMs: number): Promise<ReserveResult> {
    const first = await this.resize(r, micro, now, leaseMs);
    if (first.ok || !first.inFlightOnly) return first;
    await this.release(r);
    const again = await this.reserveWaiting(r.id, micro, now, leaseMs, waitMs);
    if (again.ok) r.micro = micro;
    return again;
  }

  async reserve(id: string, micro: MicroUsdc, now: number, leaseMs: number): Promise<ReserveResult> {
    if (micro > this.caps.maxPerCallMicro) {
      return { ok: false, cap: "per-call", reason: `the price ${usd(micro)} is above the maximum of ${usd(this.caps.maxPerCallMicro)} per call (MAX_PRICE_PER_CALL_USDC)` };
    }
    const day = dayKey(now);
    const month = monthKey(now);
    const [ok, cap, spent, reserved] = (await this.redis.eval(
      RESERVE,
      3,
      this.spendKey.day(day),
      this.spendKey.month(month),
      `${this.prefix}reservations`,
      id,
      micro,
      this.caps.dailyMicro,
      this.caps.monthlyMicro,
      now,
      now + leaseMs,
      day,
      month,
    )) as [number, string, number, number];
    if (ok === 1) return { ok: true, reservation: { id, micro, day, month } };
    const which = cap as "daily" | "monthly";
    const limit = which === "daily" ? this.caps.dailyMicro : this.caps.monthlyMicro;
    return {
      ok: false,
      cap: which,
      reason: `the ${which} budget ${usd(limit, 2)} has ${usd(Number(spent))} spent and ${usd(Number(reserved))} held by calls in flight: no room for ${usd(micro)}`,
      inFlightOnly: Number(spent) + micro <= limit,
    };
  }

  /** Changes a live reservation to the exact price, under the same caps. */
  async resize(r: Reservation, micro: MicroUsdc, now: number, leaseMs: number): Promise<ReserveResult> {
    const result = await this.reserve(r.id, micro, now, leaseMs);
    if (result.ok) r.micro = micro;
    return result;
  }

  async release(r: Reservation): Promise<void> {
    await this.redis.hdel(`${this.prefix}reservations`, r.id);
  }

  async status(now: number): Promise<BudgetStatus> {
    const day = dayKey(now);
    const month = monthKey(now);
    const [sd, sm, all] = await Promise.all([
      this.redis.get(this.spendKey.day(day)),
      this.redis.get(this.spendKey.month(month)),
      this.redis.hgetall(`${this.prefix}reservations`),
    ]);
    let rd = 0;
    let rm = 0;
    for (const raw of Object.values(all)) {
      const r = JSON.parse(raw) as { micro: number; day: string; month: string; exp: number };
      if (r.exp <= now) continue;
      if (r.day === day) rd += r.micro;
      if (r.month === month) rm += r.micro;
    }
    return { caps: this.caps, spentTodayMicro: Number(sd ?? 0), reservedTodayMicro: rd, spentMonthMicro: Number(sm ?? 0), reservedMonthMicro: rm };
  }

  /** True the first time a cap is reached in its period: the chat gets one alert, not one per decision. */
  async firstAlert(cap: "daily" | "monthly" | "per-call", now: number): Promise<boolean> {
    const period = cap === "monthly" ? monthKey(now) : dayKey(now);
    const fresh = await this.redis.set(`${this.prefix}alerted:${cap}:${period}`, String(now), "EX", 40 * 24 * 3600, "NX");
    return fresh === "OK";
  }
}
