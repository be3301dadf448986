// What one model call costs, observed at the edge: the provider takes a custom `fetch`, and its
// x402 wrapper sends both the unpaid request and the paid retry through it. So this fetch sees the
// gateway's quoted price (the 402's `x-payment-required` header) before anything is signed, and the
// signed payment (`x-payment`) before it leaves the process. API-key calls report their cost in
// the reply (`usage.cost`), read from the stream's finish part.
import { USDC, type MicroUsdc } from "../domain/types.js";
import { parseRetryAfter, type SpendGuard } from "../routing/failures.js";
import type { ModelV2 } from "../agent/scriptedModel.js";

export interface PaymentRequirement {
  scheme: string;
  network: string;
  maxAmountRequired: string;
  payTo: string;
  asset: string;
  maxTimeoutSeconds?: number;
  extra?: Record<string, unknown>;
}

export interface SignedPayment {
  network: string;
  from: string;
  to: string;
  value: bigint;
  validBefore: number;
  nonce: string;
}

export type GuardVerdict = { ok: true } | { ok: false; guard: SpendGuard; reason: string };

export interface MeterHooks {
  /** The gateway quoted a price: allow paying it (resize the reservation) or refuse. Before signing. */
  approve(micro: MicroUsdc, requirement: PaymentRequirement): Promise<GuardVerdict>;
  /** A payment is about to leave the process: journal it first. */
  beforeSend(micro: MicroUsdc): Promise<void>;
}

/** Raised inside the provider's fetch when our own guardrails refuse to pay. */
export class PaymentRefusedError extends Error {
  constructor(readonly guard: SpendGuard | "payment", message: string) {
    super(message);
    this.name = "PaymentRefusedError";
  }
}

/** The amount a requirement asks for, in micro-USDC (= atomic USDC units), read as the provider reads it. */
export function requirementMicro(r: PaymentRequirement): MicroUsdc | undefined {
  const raw = String(r.maxAmountRequired ?? "");
  if (/^\d+$/.test(raw)) return Number(raw);
  if (/^\d*\.\d+$/.test(raw)) return Math.ceil(parseFloat(raw) * 1_000_000);
  return undefined;
}

export function decodePayment(header: string): SignedPayment | undefined {
  try {
    const p = JSON.parse(Buffer.from(header, "base64").toString("utf8")) as {
      network?: string;
      payload?: { authorization?: Record<string, string> };
    };
    const a = p.payload?.authorization;
    if (!a || typeof p.network !== "string" || !/^\d+$/.test(a.value ?? "")) return undefined;
    return {
      network: p.network,
      from: String(a.from),
      to: String(a.to),
      value: BigInt(a.value!),
      validBefore: Number(a.validBefore ?? 0),
      nonce: String(a.nonce),
    };
  } catch {
    return undefined;
  }
}

/** One model call's view of the wire. */
export class CallMeter {
  status?: number;
  retryAfterMs?: number;
  requirement?: PaymentRequirement;
  quotedMicro?: MicroUsdc;
  approvedMicro?: MicroUsdc;
  /** x402 payments that left the process during this call. */
  sentMicro: MicroUsdc = 0;
  /** The gateway answered our payment with 402 again. */
  paymentRefused = false;
  /** Cost the gateway reported in its reply (API-key calls). */
  reportedMicro?: MicroUsdc;
  guard?: SpendGuard;
  guardReason?: string;
  /** A 200 arrived: the model answered (and, without x402, the call is billed). */
  answered = false;
  private readonly abortController = new AbortController();

  constructor(
    private readonly hooks: MeterHooks,
    readonly expect: { network?: string; payer?: string } = {},
  ) {}

  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  /** Cuts any request still open (a hang past the deadline). */
  abort(): void {
    this.abortController.abort();
  }

  get paymentSent(): boolean {
    return this.sentMicro > 0;
  }

  async approve(r: PaymentRequirement): Promise<void> {
    this.requirement = r;
    const micro = requirementMicro(r);
    if (micro === undefined) throw this.refuse("payment", `the gateway asked for an unreadable amount "${String(r.maxAmountRequired).slice(0, 30)}"`);
    this.quotedMicro = micro;
    if (this.expect.network && r.network !== this.expect.network) {
      throw this.refuse("payment", `the gateway asked for payment on ${r.network}, but X402_NETWORK is ${this.expect.network}`);
    }
    const verdict = await this.hooks.approve(micro, r);
    if (!verdict.ok) throw this.refuse(verdict.guard, verdict.reason);
    this.approvedMicro = micro;
  }

  /** Checks a signed payment against what was approved, and journals it, before it is sent. */
  async beforeSend(header: string): Promise<void> {
    const p = decodePayment(header);
    if (!p) throw this.refuse("payment", "the signed payment could not be read");
    if (this.approvedMicro === undefined) throw this.refuse("payment", "a payment was signed without an approved price");
    if (p.value > BigInt(this.approvedMicro)) throw this.refuse("payment", `the signed payment ${p.value} exceeds the approved ${this.approvedMicro}`);
    if (this.expect.network && p.network !== this.expect.network) throw this.refuse("payment", `the payment is on ${p.network}, not ${this.expect.network}`);
    if (this.expect.payer && p.from.toLowerCase() !== this.expect.payer.toLowerCase()) throw this.refuse("payment", "the payment is not from this agent's wallet");
    if (this.requirement && p.to.toLowerCase() !== this.requirement.payTo.toLowerCase()) throw this.refuse("payment", "the payment is not to the payee the gateway named");
    const micro = Number(p.value);
    await this.hooks.beforeSend(micro);
    this.sentMicro += micro;
  }

  observeReportedCost(usd: unknown): void {
    if (typeof usd === "number" && Number.isFinite(usd) && usd >= 0) this.reportedMicro = USDC(usd);
  }

  private refuse(guard: SpendGuard | "payment", reason: string): PaymentRefusedError {
    if (guard !== "payment") {
      this.guard = guard;
      this.guardReason = reason;
    }
    return new PaymentRefusedError(guard, reason);
  }
}

/** A fetch for the provider that reports to `meter` and lets it refuse a payment before it is made. */
export function meteredFetch(meter: CallMeter, base: typeof fetch = fetch, onUnauthorized?: () => void): typeof fetch {
  const metered = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const payment = new Headers(init?.headers).get("x-payment");
    if (payment) await meter.beforeSend(payment);
    // The status is this request's: a paid request that never answers must not keep the 402's.
    meter.status = undefined;
    meter.retryAfterMs = undefined;
    const signal = init?.signal ? AbortSignal.any([init.signal, meter.signal]) : meter.signal;
    const res = await base(input, { ...init, signal });
    meter.status = res.status;
    meter.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    if (res.status === 200) meter.answered = true;
    if (res.status === 401) onUnauthorized?.();
    if (res.status === 402) {
      if (payment) {
        meter.paymentRefused = true;
        return res;
      }
      const raw = res.headers.get("x-payment-required");
      let requirement: PaymentRequirement | undefined;
      try {
        requirement = raw ? (JSON.parse(raw) as PaymentRequirement) : undefined;
      } catch {
        requirement = undefined;
      }
      if (!requirement) return res;
      try {
        await meter.approve(requirement);
      } catch (err) {
        await res.body?.cancel().catch(() => {});
        throw err;
      }
    }
    return res;
  };
  return metered as typeof fetch;
}

/**
 * A router model for one call: the provider is built per call around `meter`'s fetch, so concurrent
 * calls never mix up whose payment is whose. (The reported cost is read by the model layer.)
 */
export function meteredModel(modelId: string, build: (f: typeof fetch) => Promise<ModelV2>, meter: CallMeter | undefined, onUnauthorized?: () => void): ModelV2 {
  const f = meter ? meteredFetch(meter, fetch, onUnauthorized) : fetch;
  return {
    specificationVersion: "v2",
    provider: "dreamsrouter",
    modelId,
    supportedUrls: {},
    doGenerate: async (options) => (await build(f)).doGenerate(options),
    doStream: async (options) => (await build(f)).doStream(options),
  };
}
