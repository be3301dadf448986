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
  /** Held today: calls in flight, and what open permit sessions still let the router draw. */
  reservedTodayMicro: MicroUsdc;
  /** The part of it the open permit sessions hold. */
  sessionsMicro: MicroUsdc;
  spentMonthMicro: MicroUsdc;
  reservedMonthMicro: MicroUsdc;
}

// Reserve (or resize) `id` to ARGV[2] micro-USDC if spent + every other live reservation + it
// stays within both caps. Expired reservations (a process that died mid-call) are dropped here.
// A permit session's reservation (span = 1) counts against whichever day and month it is now:
// what the open permit still allows can be spent today, whenever it was signed.
// KEYS: spend:day, spend:month, reservations hash. ARGV: id, micro, capDay, capMonth, now, expiresAt, day, month.
const LIVE = `
local function live(keys, argv, skip)
  local now = tonumber(argv[5])
  local rd, rm = 0, 0
  local all = redis.call('HGETALL', keys[3])
  for i = 1, #all, 2 do
    local r = cjson.decode(all[i + 1])
    if r.exp <= now then
      redis.call('HDEL', keys[3], all[i])
    elseif all[i] ~= skip then
      if r.span == 1 or r.day == argv[7] then rd = rd + r.micro end
      if r.span == 1 or r.month == argv[8] then rm = rm + r.micro end
    end
  end
  return rd, rm
end
`;
const RESERVE = `${LIVE}
local rd, rm = live(KEYS, ARGV, ARGV[1])
local micro = tonumber(ARGV[2])
local sd = tonumber(redis.call('GET', KEYS[1]) or '0')
local sm = tonumber(redis.call('GET', KEYS[2]) or '0')
if sd + rd + micro > tonumber(ARGV[3]) then return {0, 'daily', sd, rd} end
if sm + rm + micro > tonumber(ARGV[4]) then return {0, 'monthly', sm, rm} end
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode({micro = micro, day = ARGV[7], month = ARGV[8], exp = tonumber(ARGV[6])}))
return {1, '', sd, rd}
`;
// Opens a permit session's reservation of at most ARGV[2], as much as both caps still allow, and at
// least ARGV[9] (else nothing). Returns {micro reserved, cap that limited it}.
const OPEN_SESSION = `${LIVE}
local rd, rm = live(KEYS, ARGV, ARGV[1])
local sd = tonumber(redis.call('GET', KEYS[1]) or '0')
local sm = tonumber(redis.call('GET', KEYS[2]) or '0')
local want = tonumber(ARGV[2])
local day = tonumber(ARGV[3]) - sd - rd
local month = tonumber(ARGV[4]) - sm - rm
local micro, limit = want, 'session'
if day < micro then micro, limit = day, 'daily' end
if month < micro then micro, limit = month, 'monthly' end
if micro < tonumber(ARGV[9]) then return {0, limit} end
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode({micro = micro, span = 1, day = ARGV[7], month = ARGV[8], exp = tonumber(ARGV[6])}))
return {micro, limit}
`;
// Moves ARGV[3] micro-USDC out of the session reservation ARGV[1] into a call's own reservation
// ARGV[2] (the money stays reserved; the permit has that much less left). 0: the session is gone,
// -1: too little left in it.
const TAKE = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local s = cjson.decode(raw)
local now = tonumber(ARGV[4])
if s.exp <= now then return 0 end
local micro = tonumber(ARGV[3])
if s.micro < micro then return -1 end
s.micro = s.micro - micro
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode({micro = micro, day = ARGV[6], month = ARGV[7], exp = tonumber(ARGV[5]), from = ARGV[1]}))
return 1
`;
// A call that spent nothing gives what it took back to its session, if the session is still there.
const GIVE_BACK = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local r = cjson.decode(raw)
redis.call('HDEL', KEYS[1], ARGV[1])
if not r.from then return 0 end
local sraw = redis.call('HGET', KEYS[1], r.from)
if not sraw then return 0 end
local s = cjson.decode(sraw)
s.micro = s.micro + r.micro
redis.call('HSET', KEYS[1], r.from, cjson.encode(s))
return 1
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

  /**
   * Reserves what a new permit may let the router spend: `wantMicro` (the session cap, the balance
   * rule) or less, as much as the daily and monthly caps still allow, never under `minMicro`.
   * Held until `untilMs` (the permit's deadline), and counted against every day it is alive.
   */
  async openSession(id: string, wantMicro: MicroUsdc, minMicro: MicroUsdc, now: number, untilMs: number): Promise<{ ok: true; micro: MicroUsdc; limitedBy: string } | { ok: false; cap: "daily" | "monthly" | "session"; reason: string }> {
    const day = dayKey(now);
    const month = monthKey(now);
    const [micro, limit] = (await this.redis.eval(
      OPEN_SESSION,
      3,
      this.spendKey.day(day),
      this.spendKey.month(month),
      `${this.prefix}reservations`,
      id,
      wantMicro,
      this.caps.dailyMicro,
      this.caps.monthlyMicro,
      now,
      untilMs,
      day,
      month,
      Math.max(1, minMicro),
    )) as [number, string];
    if (micro > 0) return { ok: true, micro: Number(micro), limitedBy: limit };
    const cap = limit as "daily" | "monthly" | "session";
    const name = cap === "daily" ? `the daily budget ${usd(this.caps.dailyMicro, 2)}` : cap === "monthly" ? `the monthly budget ${usd(this.caps.monthlyMicro, 2)}` : "the session cap";
    return { ok: false, cap, reason: `${name} leaves less than ${usd(minMicro)} for a new permit session` };
  }

  /** Moves a call's price out of its session's reservation into the call's own; false when the session is gone or short. */
  async takeFromSession(sessionId: string, callId: string, micro: MicroUsdc, now: number, leaseMs: number): Promise<"ok" | "gone" | "short"> {
    const r = (await this.redis.eval(TAKE, 1, `${this.prefix}reservations`, sessionId, callId, micro, now, now + leaseMs, dayKey(now), monthKey(now))) as number;
    return r === 1 ? "ok" : r === 0 ? "gone" : "short";
  }

  /** A call that spent nothing: what it took goes back to its session. */
  async giveBack(callId: string): Promise<void> {
    await this.redis.eval(GIVE_BACK, 1, `${this.prefix}reservations`, callId);
  }

  /** What a session's reservation still holds (0 once it is gone). */
  async sessionLeft(sessionId: string, now: number): Promise<MicroUsdc> {
    const raw = await this.redis.hget(`${this.prefix}reservations`, sessionId);
    const r = raw ? (JSON.parse(raw) as { micro: number; exp: number }) : undefined;
    return r && r.exp > now ? r.micro : 0;
  }

  /** Lets a session's reservation go (revoked, or replaced and closed). */
  async closeSession(sessionId: string): Promise<void> {
    await this.redis.hdel(`${this.prefix}reservations`, sessionId);
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
    let sessions = 0;
    for (const raw of Object.values(all)) {
      const r = JSON.parse(raw) as { micro: number; day: string; month: string; exp: number; span?: number };
      if (r.exp <= now) continue;
      if (r.span === 1) sessions += r.micro;
      if (r.span === 1 || r.day === day) rd += r.micro;
      if (r.span === 1 || r.month === month) rm += r.micro;
    }
    return { caps: this.caps, spentTodayMicro: Number(sd ?? 0), reservedTodayMicro: rd, sessionsMicro: sessions, spentMonthMicro: Number(sm ?? 0), reservedMonthMicro: rm };
  }

  /** True the first time a cap is reached in its period: the chat gets one alert, not one per decision. */
  async firstAlert(cap: "daily" | "monthly" | "per-call", now: number): Promise<boolean> {
    const period = cap === "monthly" ? monthKey(now) : dayKey(now);
    const fresh = await this.redis.set(`${this.prefix}alerted:${cap}:${period}`, String(now), "EX", 40 * 24 * 3600, "NX");
    return fresh === "OK";
  }
}
