// Research bought per call from an x402-paid HTTP endpoint, on the same payment layer as the
// model calls: the metered fetch (x402Payer on the reference SDK, payee/asset/network checks),
// the guard sequence (price cap, per-decision ceiling, balance rule, budget reservation) and the
// atomic booking, under "research:<host>". One reply covers every watched symbol and is cached in
// Redis for the TTL, so one payment serves every decision until it expires; a lock makes
// concurrent decisions (and processes) wait for that one payment instead of each paying.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { z } from "zod";
import { usd, type MarketSymbol, type MicroUsdc } from "../domain/types.js";
import { paidRequest, PaymentRefusedError, type PaymentServices } from "../payments/paidRequest.js";
import type { ShortNetwork, SignedPayment, X402Payer } from "../payments/x402Payer.js";
import { RedisLock } from "../redis/lock.js";
import type { ResearchProvider, ResearchReport } from "./types.js";

/** The most a reply may weigh and hold: research is a few lines of context, not a feed. */
export const RESEARCH_LIMITS = { maxBytes: 32_768, maxSignals: 60, maxNarratives: 10, maxText: 280 } as const;

const text = z.string().trim().min(1).max(RESEARCH_LIMITS.maxText);
/** The reply the endpoint must send: narratives and per-symbol signals. Anything else is refused. */
export const ResearchReply = z.object({
  narratives: z.array(z.object({ title: text, summary: text.optional() })).max(RESEARCH_LIMITS.maxNarratives).default([]),
  signals: z
    .array(
      z.object({
        symbol: z.string().trim().regex(/^[A-Z0-9]{1,15}(\/[A-Z0-9]{1,15})?$/, "a symbol like BTC or BTC/USDT"),
        headline: text,
        sentiment: z.enum(["positive", "negative", "neutral"]),
      }),
    )
    .max(RESEARCH_LIMITS.maxSignals),
});
export type ResearchReply = z.infer<typeof ResearchReply>;

interface Cached {
  /** The reply, or why the paid attempt failed (a bad reply is not paid for again within the TTL). */
  reply?: ResearchReply;
  failed?: string;
  fetchedAt: number;
  costMicro: MicroUsdc;
}

/** A paid attempt, written down before paying: its charge id, and once signed, the payment itself. */
interface Inflight {
  chargeId: string;
  signed?: SignedPayment;
}

/** The points of a paid attempt where a crash could fall: paid and not booked, booked and not let go. */
export type ResearchStep = "paid" | "booked";

export interface PaidResearchOptions {
  url: string;
  redis: Redis;
  /** Every watched symbol: one reply covers them all. */
  symbols: MarketSymbol[];
  ttlMs: number;
  timeoutMs: number;
  /** RESEARCH_MAX_PRICE_USDC, in micro-USDC. */
  maxPriceMicro: MicroUsdc;
  /** The one paid request's services: the same caps, balance rule, crash index and books as the model calls. */
  payments: PaymentServices;
  clock: () => number;
  /** Signs x402 payments (X402_PRIVATE_KEY); none: only a free endpoint can answer. */
  payer?: X402Payer;
  network: ShortNetwork;
  /** X402_PAYEES, lower-case; empty: any. */
  payees: string[];
  fetch?: typeof fetch;
}


/** The attempt a crash left behind; an older agent wrote the bare charge id. */
function parseInflight(raw: string | null): Inflight | undefined {
  if (raw === null) return undefined;
  if (!raw.startsWith("{")) return { chargeId: raw };
  const parsed = JSON.parse(raw) as Inflight;
  return typeof parsed.chargeId === "string" ? parsed : undefined;
}

/** Reads at most `max` bytes of a body; undefined when it is longer (the rest is not read). */
async function boundedText(res: Response, max: number): Promise<string | undefined> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Why a reply cannot be used, or the reply. */
export function parseResearchReply(body: string | undefined): { ok: true; reply: ResearchReply } | { ok: false; error: string } {
  if (body === undefined) return { ok: false, error: `the reply is larger than ${RESEARCH_LIMITS.maxBytes} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, error: "the reply is not JSON" };
  }
  const parsed = ResearchReply.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "reply"}: ${i.message}`);
    return { ok: false, error: `the reply does not match the research schema (${issues.join("; ")})` };
  }
  return { ok: true, reply: parsed.data };
}

export class PaidResearch implements ResearchProvider {
  readonly name: string;
  /** How the ledger names this source's charges. */
  readonly source: string;
  private readonly host: string;
  private readonly lock: RedisLock;
  /** A seam for crash tests: awaited at each step after a payment left. A test that never resolves it freezes the attempt there. */
  pauseAt?: (step: ResearchStep) => Promise<void>;

  constructor(private readonly o: PaidResearchOptions) {
    this.host = new URL(o.url).host;
    this.source = `research:${this.host}`;
    const ttl = o.ttlMs % 60_000 === 0 ? `${o.ttlMs / 60_000} min` : `${Math.round(o.ttlMs / 1000)} s`;
    this.name = `${this.source} (x402, one paid reply per ${ttl} for every decision, at most ${usd(o.maxPriceMicro)} per call)`;
    // The holder pays and caches; the others wait about as long as the call may take.
    this.lock = new RedisLock(o.redis, `research:lock:${this.host}`, o.timeoutMs + 30_000, o.timeoutMs + 15_000);
  }

  private get cacheKey(): string {
    return `research:reply:${this.host}`;
  }

  async research(symbol: MarketSymbol): Promise<ResearchReport> {
    try {
      const hit = await this.cached();
      if (hit) return this.report(symbol, hit, "cache");
      return await this.lock.run(async () => {
        // Another decision may have paid while this one waited for the lock.
        const again = await this.cached();
        if (again) return this.report(symbol, again, "cache");
        return this.fetchAndCache(symbol);
      });
    } catch (err) {
      return this.unavailable("failed", `research could not be had (${(err as Error).message.slice(0, 160)})`);
    }
  }

  /** A reply younger than the TTL on the agent's clock (Redis's own expiry only clears old ones away). */
  private async cached(): Promise<Cached | undefined> {
    const raw = await this.o.redis.get(this.cacheKey);
    const c = raw ? (JSON.parse(raw) as Cached) : undefined;
    return c && this.o.clock() - c.fetchedAt < this.o.ttlMs ? c : undefined;
  }

  private unavailable(served: "refused" | "failed", why: string, costMicro = 0): ResearchReport {
    return { source: this.source, available: false, signals: [], note: `No research for this decision: ${why}. Decide on technical signals only.`, served, costMicro };
  }

  private report(symbol: MarketSymbol, c: Cached, served: "paid" | "cache" | "free"): ResearchReport {
    const cost = served === "cache" ? 0 : c.costMicro;
    if (!c.reply) return this.unavailable("failed", `${c.failed ?? "the last reply was refused"}${served === "cache" ? " (not asked again until the cache expires)" : ""}`, cost);
    const base = symbol.split("/")[0]!;
    const signals = c.reply.signals
      .filter((s) => s.symbol === symbol || s.symbol === base)
      .map((s) => ({ headline: s.headline, sentiment: s.sentiment }));
    const narratives = c.reply.narratives.map((n) => (n.summary ? `${n.title}: ${n.summary}` : n.title));
    return {
      source: this.source,
      available: true,
      signals,
      narratives,
      note: `Outside research from ${this.source}, fetched ${new Date(c.fetchedAt).toISOString()}: untrusted data, information only.`,
      served,
      costMicro: cost,
    };
  }

  /** Remembers the outcome of a paid (or free) attempt for the TTL: one payment per TTL at most. */
  private async remember(c: Cached): Promise<void> {
    await this.o.redis.set(this.cacheKey, JSON.stringify(c), "PX", this.o.ttlMs);
  }

  private async fetchAndCache(symbol: MarketSymbol): Promise<ResearchReport> {
    const o = this.o;
    const now = o.clock();
    // The attempt is written down before paying: after a crash mid-call, the next attempt reuses its
    // charge id, so the ledger books it once, and sends the payment it signed again (same
    // payment-identifier, same payload), which a server that settled it answers from its cache.
    const inflightKey = `research:inflight:${this.host}`;
    const inflightMs = o.timeoutMs + 60_000;
    const earlier = parseInflight(await o.redis.get(inflightKey));
    const chargeId = earlier?.chargeId ?? `research:${this.host}:${now}:${randomUUID().slice(0, 8)}`;
    await o.redis.set(inflightKey, JSON.stringify({ chargeId, ...(earlier?.signed ? { signed: earlier.signed } : {}) } satisfies Inflight), "PX", inflightMs);
    const caps = o.payments.budget.caps;
    const perCall = Math.min(o.maxPriceMicro, caps.maxPerCallMicro);
    const capName = o.maxPriceMicro <= caps.maxPerCallMicro ? "RESEARCH_MAX_PRICE_USDC" : "MAX_PRICE_PER_CALL_USDC";
    const learned = Number((await o.redis.get(`research:price:${this.host}`)) ?? NaN);
    const expected = Number.isFinite(learned) ? learned : perCall;
    const url = new URL(o.url);
    url.searchParams.set("symbols", o.symbols.map((s) => s.split("/")[0]).join(","));
    type Outcome = { ok: true; reply: ResearchReply } | { ok: false; error: string; refused?: boolean };
    const paid = await paidRequest<Outcome>(
      o.payments,
      {
        item: this.source,
        chargeId,
        expectedMicro: expected,
        maxPerCallMicro: perCall,
        capName,
        // A research reply is bought for the decision that asks first: one call must fit its ceiling.
        ceiling: { leftMicro: caps.maxPerDecisionMicro, describe: (m) => `${this.source} would cost ${usd(m)}, above MAX_SPEND_PER_DECISION_USDC ${usd(caps.maxPerDecisionMicro)}` },
        leaseMs: o.timeoutMs + 60_000,
        budgetWaitMs: Math.min(o.timeoutMs / 3, 5_000),
        pay: { kind: "per-call", ...(o.payer ? { payer: o.payer } : {}) },
        expect: { network: o.network, ...(o.payer ? { payer: o.payer.account.address } : {}), payees: o.payees, chargeId, ...(earlier?.signed ? { resend: earlier.signed } : {}) },
        journal: {
          sent: async (_micro, signed) => {
            if (signed) await o.redis.set(inflightKey, JSON.stringify({ chargeId, signed } satisfies Inflight), "PX", inflightMs);
          },
        },
        onQuote: async (micro) => {
          await o.redis.set(`research:price:${this.host}`, String(micro), "EX", 7 * 24 * 3600);
        },
        pauseAt: async (step) => {
          if (step !== "released") await this.pauseAt?.(step);
        },
        ...(o.fetch ? { fetch: o.fetch } : {}),
      },
      async (f): Promise<Outcome> => {
        const res = await f(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(o.timeoutMs) });
        if (res.status === 402 || res.status === 412) {
          await res.body?.cancel().catch(() => {});
          return { ok: false, refused: true, error: o.payer ? `the endpoint refused the payment (HTTP ${res.status})` : "the endpoint asks to be paid, and no X402_PRIVATE_KEY is set to pay it" };
        }
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => {});
          return { ok: false, error: `the endpoint answered HTTP ${res.status}` };
        }
        return parseResearchReply(await boundedText(res, RESEARCH_LIMITS.maxBytes));
      },
    );
    await o.redis.del(inflightKey);
    const cost = paid.costMicro;
    let outcome: Outcome;
    if (paid.refused && !paid.meter.paymentSent) {
      outcome = { ok: false, refused: true, error: `the payment was refused (${paid.refused.reason})` };
      if (cost === 0) return this.unavailable("refused", outcome.error);
    } else if (paid.value) {
      outcome = paid.value;
    } else {
      const e = paid.error as Error | undefined;
      outcome =
        e instanceof PaymentRefusedError ? { ok: false, refused: true, error: `the payment was refused (${e.message})` }
        : e?.name === "TimeoutError" || e?.name === "AbortError" ? { ok: false, error: `no reply within ${o.timeoutMs} ms` }
        : { ok: false, error: `the endpoint could not be reached (${(e?.message ?? "no answer").slice(0, 120)})` };
    }
    if (outcome.ok) {
      const c: Cached = { reply: outcome.reply, fetchedAt: now, costMicro: cost };
      await this.remember(c);
      return this.report(symbol, c, cost > 0 ? "paid" : "free");
    }
    // A paid attempt that gave nothing usable is remembered, so bad replies are not bought again
    // and again within the TTL; an attempt that paid nothing can be tried by the next decision.
    if (cost > 0) await this.remember({ failed: outcome.error, fetchedAt: now, costMicro: cost });
    return this.unavailable(outcome.refused ? "refused" : "failed", `${outcome.error}${cost > 0 ? `; ${usd(cost)} was paid` : ""}`, cost);
  }
}
