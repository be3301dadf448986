import type { Redis } from "ioredis";
import type { MicroUsdc, Order, TradeAction } from "../domain/types.js";

export type DecisionTrigger = "schedule" | "chat";
/** order: an order was placed; no-order: hold, nothing to do, or paused before the order;
 *  refused: the risk rules (or the exchange) said no; failed: the model gave no valid decision;
 *  skipped: paused or no money, nothing was asked; decided: the model answered and the order step
 *  has not finished yet (what a crash mid-decision leaves, and what its retry picks up);
 *  pending: the order was sent and the exchange did not confirm it: it is being looked up, and the
 *  record becomes order, refused or no-order once it is known. */
export type DecisionOutcome = "order" | "no-order" | "refused" | "failed" | "skipped" | "decided" | "pending";

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
  /** The order sent and not confirmed (outcome pending): what was asked, and why it is not known. */
  pendingOrder?: { side: Order["side"]; qty: number; reason: string };
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
  /** The research the decision was shown: where from, how it was had, what this decision paid for it. */
  research?: { source: string; available: boolean; served: string; costMicro: MicroUsdc; note?: string };
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
  /** The x402 settlement receipt the gateway returned with the call (absent for API-key calls). */
  receipt?: PaymentReceipt;
  /**
   * Set on the rows `Ledger.charges` makes from a rolled-up day (one per model, at the day's start):
   * how many charges the row stands for, and, on the day's last row, its x402 payments.
   */
  rollup?: { charges: number; payments?: DayPayments };
}

/** A day's x402 payments by what their receipts said, and the links of its latest settled ones. */
export interface DayPayments {
  settled: number;
  pending: number;
  failed: number;
  /** Explorer links of the day's last three settled payments, oldest first. */
  links: string[];
}

/**
 * One UTC day of the ledger once its entries are rolled up: what the report and the cost charts
 * read from that day, kept in Redis after the entries themselves moved to the archive.
 */
export interface DayAggregate {
  day: string;
  decisions: {
    count: number;
    byOutcome: Partial<Record<DecisionOutcome, number>>;
    bySymbol: Record<string, number>;
    /** By the model that decided: decisions and their booked cost. */
    perModel: Record<string, { decisions: number; costMicro: MicroUsdc }>;
    fallbacks: number;
    freeDecisions: Record<string, number>;
    savers: Record<"cache" | "batch" | "gate", { count: number; savedMicro: MicroUsdc }>;
  };
  charges: {
    count: number;
    costMicro: MicroUsdc;
    /** In the order each model was first charged that day. */
    perModel: Record<string, { count: number; costMicro: MicroUsdc }>;
    payments: DayPayments;
  };
}

/** The charge rows a rolled-up day stands for: per model, summed, at the day's start. */
export function rolledUpCharges(a: DayAggregate): ChargeRecord[] {
  const start = Date.parse(`${a.day}T00:00:00.000Z`);
  const models = Object.entries(a.charges.perModel);
  const p = a.charges.payments;
  const hasPayments = p.settled + p.pending + p.failed > 0;
  return models.map(([model, m], i) => ({
    decisionId: `rollup:${a.day}:${model}`,
    time: start,
    model,
    costMicro: m.costMicro,
    rollup: { charges: m.count, ...(hasPayments && i === models.length - 1 ? { payments: p } : {}) },
  }));
}

/** A payment the server turned down: what it was for, what it would have cost, and why. */
export interface RefusedPayment {
  chargeId: string;
  time: number;
  model: string;
  micro: MicroUsdc;
  reason: string;
}

/** What the gateway said about an x402 payment: settled on chain, pending, or failed. */
export interface PaymentReceipt {
  status: "settled" | "pending" | "failed";
  network?: string;
  transaction?: string;
  payer?: string;
  /** x402 version and scheme the payment was made with. */
  x402Version?: number;
  scheme?: string;
  /** The payment-identifier (idempotency key) the payment carried. */
  paymentId?: string;
}

/** Writes that ride in the booking's own transaction: a wallet debit and "booked" marks elsewhere. */
export interface BookingExtras {
  /** A Redis-held wallet balance to debit (never below zero), seeded with `seedMicro` if absent. */
  wallet?: { key: string; seedMicro: MicroUsdc };
  /** Hash fields to set to "1" in the same transaction (the decision journal's "booked" mark). */
  marks?: [key: string, field: string][];
  /** Hash fields to delete in the same transaction (the payment's entry in the crash index). */
  clears?: [key: string, field: string][];
  /** Only with a fresh booking: values appended to lists (a permit session's calls). */
  pushes?: [key: string, value: string][];
  /** Only with a fresh booking: hash counters raised (a permit session's tally). */
  incrs?: [key: string, field: string, by: number][];
}

// One booking, all or nothing: the charge marker, the ledger entry, the daily and monthly spend,
// the wallet debit, the journal's mark, the crash index cleared and the session's tally. A script
// runs whole or not at all (a crash of our process cannot split it), so a retry either finds
// everything booked or nothing.
// KEYS: charged, charges, spend:day, spend:month, wallet ('' = none), then the keys of the marks,
// clears, pushes and incrs. ARGV: cost, time, entry json, walletSeed, the four counts, then the
// marks' fields, the clears' fields, the pushes' values, and (field, amount) per incr.
const BOOK = `
local fresh = redis.call('EXISTS', KEYS[1]) == 0
local amount = tonumber(ARGV[1])
if fresh and KEYS[5] ~= '' then
  local b = tonumber(redis.call('GET', KEYS[5]) or ARGV[4])
  if b == nil then return redis.error_reply('wallet balance is not a number') end
  if amount > b then amount = b end
end
local nm, nc, np, ni = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
-- Every read and check is above this line: Redis does not roll a script back, so none may fail below.
if fresh then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  redis.call('INCRBY', KEYS[3], ARGV[1])
  redis.call('INCRBY', KEYS[4], ARGV[1])
  if KEYS[5] ~= '' then
    redis.call('SET', KEYS[5], ARGV[4], 'NX')
    redis.call('DECRBY', KEYS[5], amount)
  end
end
local k, a = 6, 9
for i = 1, nm do redis.call('HSET', KEYS[k], ARGV[a], '1'); k = k + 1; a = a + 1 end
for i = 1, nc do redis.call('HDEL', KEYS[k], ARGV[a]); k = k + 1; a = a + 1 end
for i = 1, np do if fresh then redis.call('RPUSH', KEYS[k], ARGV[a]) end; k = k + 1; a = a + 1 end
for i = 1, ni do if fresh then redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1]) end; k = k + 1; a = a + 2 end
if fresh then return 1 end
return 0
`;

// The latest decision records, newest first: ARGV[1] how many, ARGV[2] their keys' whole prefix.
const RECENT = `
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return {} end
for i, id in ipairs(ids) do ids[i] = ARGV[2] .. id end
return redis.call('MGET', unpack(ids))
`;

export const dayKey = (t: number): string => new Date(t).toISOString().slice(0, 10);
export const monthKey = (t: number): string => new Date(t).toISOString().slice(0, 7);

/** Redis keys of the spend counters that Ledger.charge increments (the budget guard reads them). */
/** Redis keys of the ledger's entries and of its rolled-up days. */
export const ledgerKeys = (prefix = "ledger:") => ({
  decision: (id: string) => `${prefix}decision:${id}`,
  decisions: `${prefix}decisions`,
  charges: `${prefix}charges`,
  charged: (chargeId: string) => `${prefix}charged:${chargeId}`,
  /** A day's aggregate (JSON of DayAggregate). */
  rollup: (day: string) => `${prefix}rollup:${day}`,
  /** The rolled-up days, scored by their start (ms). */
  rollups: `${prefix}rollups`,
  /** The id of the archive the rolled-up entries were written to (LedgerArchive.id). */
  archiveId: `${prefix}archive:id`,
});

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

  /**
   * Records a charge once per charge id, in one Redis script with `extras` (wallet debit, journal
   * mark); returns false if it was already recorded (the marks are still set).
   */
  async charge(c: ChargeRecord, extras: BookingExtras = {}): Promise<boolean> {
    const keys = spendKeys(this.prefix);
    const marks = extras.marks ?? [];
    const clears = extras.clears ?? [];
    const pushes = extras.pushes ?? [];
    const incrs = extras.incrs ?? [];
    const fresh = await this.redis.eval(
      BOOK,
      5 + marks.length + clears.length + pushes.length + incrs.length,
      `${this.prefix}charged:${c.decisionId}`,
      `${this.prefix}charges`,
      keys.day(dayKey(c.time)),
      keys.month(monthKey(c.time)),
      extras.wallet?.key ?? "",
      ...marks.map((m) => m[0]),
      ...clears.map((m) => m[0]),
      ...pushes.map((m) => m[0]),
      ...incrs.map((m) => m[0]),
      c.costMicro,
      c.time,
      JSON.stringify(c),
      extras.wallet?.seedMicro ?? 0,
      marks.length,
      clears.length,
      pushes.length,
      incrs.length,
      ...marks.map((m) => m[1]),
      ...clears.map((m) => m[1]),
      ...pushes.map((m) => m[1]),
      ...incrs.flatMap((m) => [m[1], m[2]]),
    );
    return fresh === 1;
  }

  /** A payment the server refused: nothing is booked as spent, and the refusal is kept for the report. */
  async refused(r: RefusedPayment): Promise<void> {
    await this.redis.zadd(`${this.prefix}refused`, r.time, JSON.stringify(r));
  }

  async refusals(from: number, to: number): Promise<RefusedPayment[]> {
    return (await this.redis.zrangebyscore(`${this.prefix}refused`, from, to)).map((r) => JSON.parse(r) as RefusedPayment);
  }

  async decisions(from: number, to: number): Promise<DecisionRecord[]> {
    const ids = await this.redis.zrangebyscore(`${this.prefix}decisions`, from, to);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => `${this.prefix}decision:${id}`));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as DecisionRecord);
  }

  async recent(limit: number): Promise<DecisionRecord[]> {
    // The index and the records in one script (one round trip; every decision reads them). The
    // records' keys are built inside it, so it is given the whole key prefix, ioredis's included.
    const recordPrefix = `${this.redis.options.keyPrefix ?? ""}${this.prefix}decision:`;
    const raws = (await this.redis.eval(RECENT, 1, `${this.prefix}decisions`, String(limit), recordPrefix)) as (string | null)[];
    return raws.filter((r): r is string => typeof r === "string").map((r) => JSON.parse(r) as DecisionRecord);
  }

  /**
   * Decisions newest first, starting at `before` (epoch ms, inclusive) and at most `count` of them,
   * with each one's time in the index: a page of the diary reads only what it shows.
   */
  async decisionsBefore(before: number, count: number): Promise<DecisionRecord[]> {
    const flat = await this.redis.zrevrangebyscore(`${this.prefix}decisions`, before, "-inf", "LIMIT", 0, count);
    if (flat.length === 0) return [];
    const raws = await this.redis.mget(flat.map((id) => `${this.prefix}decision:${id}`));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as DecisionRecord);
  }

  /**
   * The charges booked from `from` to `to`. A day whose entries were rolled up comes back as one row
   * per model (at the day's start, `rollup` set), so sums per day, month and model stay exact.
   */
  async charges(from: number, to: number): Promise<ChargeRecord[]> {
    const [raws, rolled] = await Promise.all([this.redis.zrangebyscore(`${this.prefix}charges`, from, to), this.rollups(from, to)]);
    const detail = raws.map((r) => JSON.parse(r) as ChargeRecord);
    if (rolled.length === 0) return detail;
    // Stable: at equal times the rolled-up rows come first, as the day they stand for began then.
    return [...rolled.flatMap(rolledUpCharges), ...detail].sort((a, b) => a.time - b.time);
  }

  /** The rolled-up days that start from `from` to `to`, oldest first. */
  async rollups(from: number, to: number): Promise<DayAggregate[]> {
    const keys = ledgerKeys(this.prefix);
    const days = await this.redis.zrangebyscore(keys.rollups, from, to);
    if (days.length === 0) return [];
    const raws = await this.redis.mget(days.map(keys.rollup));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as DayAggregate);
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
