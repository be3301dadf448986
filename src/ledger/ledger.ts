import type { Redis } from "ioredis";
import type { MicroUsdc, Order, TradeAction } from "../domain/types.js";

export type DecisionTrigger = "schedule" | "chat";
/** order: an order was placed; no-order: hold, nothing to do, or paused before the order;
 *  refused: the risk rules (or the exchange) said no; failed: the model gave no valid decision;
 *  skipped: paused or no money, nothing was asked; decided: the model answered and the order step
 *  has not finished yet (what a crash mid-decision leaves, and what its retry picks up). */
export type DecisionOutcome = "order" | "no-order" | "refused" | "failed" | "skipped" | "decided";

export interface DecisionRecord {
  id: string;
  time: number;
  symbol: string;
  trigger: DecisionTrigger;
  model: string;
  costMicro: MicroUsdc;
  latencyMs: number;
  outcome: DecisionOutcome;
  action?: TradeAction;
  sizePct?: number;
  confidence?: number;
  reasons?: string[];
  stopLossPct?: number;
  takeProfitPct?: number;
  /** Indicators the decision was made on (price, RSI, ...), for the reply and the audit trail. */
  indicators?: Record<string, number | string>;
  risk?: { outcome: string; message: string; rules: string[] };
  order?: Pick<Order, "id" | "side" | "qty" | "avgPrice" | "fee" | "status" | "reason">;
  error?: string;
  /** Each model asked (or skipped) for this decision, in order. */
  attempts?: ModelAttempt[];
  /** The model tier selection asked for. */
  tier?: string;
  /** A cost saver that answered instead of a paid call, and what it saved. */
  saver?: "cache" | "batch" | "gate";
  savedMicro?: MicroUsdc;
  /** Why the free behaviour (offline engine or hold) decided instead of a router model. */
  freeBecause?: "budget" | "balance" | "all-failed" | "interrupted";
}

export interface ModelAttempt {
  model: string;
  ok: boolean;
  latencyMs: number;
  costMicro: MicroUsdc;
  /** Failure class (timeout, rate-limited, payment, invalid-reply, ...), or why it was skipped. */
  failure?: string;
  skipped?: boolean;
  /** The call covered several symbols (a batched decision). */
  batch?: number;
}

export interface ChargeRecord {
  decisionId: string;
  time: number;
  model: string;
  costMicro: MicroUsdc;
}

export const dayKey = (t: number): string => new Date(t).toISOString().slice(0, 10);
export const monthKey = (t: number): string => new Date(t).toISOString().slice(0, 7);

/** Redis keys of the spend counters that Ledger.charge increments (the budget guard reads them). */
export const spendKeys = (prefix = "ledger:") => ({
  day: (day: string) => `${prefix}spend:day:${day}`,
  month: (month: string) => `${prefix}spend:month:${month}`,
});

/**
 * Every decision and every charge, in Redis. A decision is written once per id: a retried job
 * finds it and reuses it instead of asking (and paying) the model again.
 */
export class Ledger {
  constructor(private readonly redis: Redis, private readonly prefix = "ledger:") {}

  async get(id: string): Promise<DecisionRecord | undefined> {
    const raw = await this.redis.get(`${this.prefix}decision:${id}`);
    return raw ? (JSON.parse(raw) as DecisionRecord) : undefined;
  }

  /** Writes or updates a decision; the time index keeps the first time. */
  async put(record: DecisionRecord): Promise<void> {
    await this.redis
      .multi()
      .set(`${this.prefix}decision:${record.id}`, JSON.stringify(record))
      .zadd(`${this.prefix}decisions`, "NX", record.time, record.id)
      .exec();
  }

  /** Records a charge once per decision; returns false if it was already recorded. */
  async charge(c: ChargeRecord): Promise<boolean> {
    const fresh = await this.redis.set(`${this.prefix}charged:${c.decisionId}`, String(c.costMicro), "NX");
    if (fresh !== "OK") return false;
    await this.redis
      .multi()
      .zadd(`${this.prefix}charges`, c.time, JSON.stringify(c))
      .incrby(spendKeys(this.prefix).day(dayKey(c.time)), c.costMicro)
      .incrby(spendKeys(this.prefix).month(monthKey(c.time)), c.costMicro)
      .exec();
    return true;
  }

  async decisions(from: number, to: number): Promise<DecisionRecord[]> {
    const ids = await this.redis.zrangebyscore(`${this.prefix}decisions`, from, to);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => `${this.prefix}decision:${id}`));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as DecisionRecord);
  }

  async recent(limit: number): Promise<DecisionRecord[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}decisions`, 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => `${this.prefix}decision:${id}`));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as DecisionRecord);
  }

  async charges(from: number, to: number): Promise<ChargeRecord[]> {
    const raws = await this.redis.zrangebyscore(`${this.prefix}charges`, from, to);
    return raws.map((r) => JSON.parse(r) as ChargeRecord);
  }

  async spentOn(day: string): Promise<MicroUsdc> {
    return Number((await this.redis.get(spendKeys(this.prefix).day(day))) ?? 0);
  }

  async spentIn(month: string): Promise<MicroUsdc> {
    return Number((await this.redis.get(spendKeys(this.prefix).month(month))) ?? 0);
  }

  get spendKeys() {
    return spendKeys(this.prefix);
  }
}
