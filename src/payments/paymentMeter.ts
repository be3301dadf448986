// What one model call costs, observed at the edge: the provider takes a custom `fetch`, and this
// fetch speaks x402 itself (x402Payer.ts, on the reference SDK): it reads the server's offers,
// lets the guards approve the chosen price before anything is signed, checks the signed payment
// before it leaves the process, and reads the settlement receipt. API-key calls report their cost
// in the reply (`usage.cost`), read from the stream's finish part.
import { canonicalJson } from "../domain/canonicalJson.js";
import { USDC, type MicroUsdc } from "../domain/types.js";
import type { PaymentReceipt } from "../ledger/ledger.js";
import type { StoredPermit } from "./permitSessions.js";
import { parseRetryAfter, type SpendGuard } from "./refusals.js";
import { blamesTheClock, INVALIDATES_PERMIT, readRefusal, type SessionRefusal } from "./routerTerms.js";
import { chooseOffer, paymentIdFor, PERMIT2_ADDRESS, readOffers, refusesPayment, termsOf, type Offer, type OfferPolicy, type SignedPayment, type SignedTerms, type X402Payer } from "./x402Payer.js";

export type GuardVerdict = { ok: true } | { ok: false; guard: SpendGuard; reason: string };

export interface MeterHooks {
  /** The gateway quoted a price: allow paying it (resize the reservation) or refuse. Before signing. */
  approve(micro: MicroUsdc, offer: Offer): Promise<GuardVerdict>;
  /** A payment is about to leave the process: journal it first (with what was signed, to send it again after a crash). */
  beforeSend(micro: MicroUsdc, signed?: SignedPayment): Promise<void>;
}

/** Raised inside the provider's fetch when our own guardrails refuse to pay. */
export class PaymentRefusedError extends Error {
  constructor(readonly guard: SpendGuard | "payment", message: string) {
    super(message);
    this.name = "PaymentRefusedError";
  }
}

export interface MeterExpect {
  network?: OfferPolicy["network"];
  payer?: string;
  /** Lower-case payees allowed (X402_PAYEES); empty: any. */
  payees?: string[];
  /** The charge this call books under: its payment-identifier is derived from it. */
  chargeId?: string;
  /**
   * A payment signed for this same charge before a crash: sent again as it is when it pays the
   * offer taken. A server that settled it answers from its payment-identifier cache, and one that
   * did not sees a fresh signature with the same identifier as a conflict (409), not a retry; the
   * chain settles its nonce once whatever the server does.
   */
  resend?: SignedPayment;
}

/** One model call's view of the wire. */
export class CallMeter {
  status?: number;
  retryAfterMs?: number;
  offer?: Offer;
  /** Offers the server made that were not taken, each with why. */
  refusedOffers: { offer: Offer; reason: string }[] = [];
  quotedMicro?: MicroUsdc;
  approvedMicro?: MicroUsdc;
  /** x402 payments that left the process during this call. */
  sentMicro: MicroUsdc = 0;
  /** The gateway turned our payment down: 402 again, or 412 (refusesPayment). */
  paymentRefused = false;
  /** Cost the gateway reported in its reply (API-key calls). */
  reportedMicro?: MicroUsdc;
  /** The settlement receipt of the payment, and (upto) the amount the server says it settled. */
  receipt?: PaymentReceipt;
  settledMicro?: MicroUsdc;
  guard?: SpendGuard;
  guardReason?: string;
  /** A 200 arrived: the model answered (and, without x402, the call is billed). */
  answered = false;
  /** The server turned the payment down, and why (its code and text). */
  refusal?: { code?: SessionRefusal; text: string };
  /** Permit sessions: the permit the call went out on, and whether the router took the call on it. */
  permit?: StoredPermit;
  sessionCharged = false;
  /** The router answered on a permit with something other than a refusal or a 2xx: charged or not, it cannot say. */
  sessionUnconfirmed = false;
  routerSessionId?: string;
  /** How far the server's clock (its Date header) is from ours, in ms, when it answered a payment. */
  clockSkewMs?: number;
  private readonly abortController = new AbortController();

  constructor(
    private readonly hooks: MeterHooks,
    readonly expect: MeterExpect = {},
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

  get paymentId(): string {
    return paymentIdFor(this.expect.chargeId ?? `call:${Math.random()}`);
  }

  /** What to book for the payment: the signed amount, or for `upto` what the receipt says was settled (never more). */
  get paidMicro(): MicroUsdc {
    if (this.offer?.scheme === "upto" && this.settledMicro !== undefined) return Math.min(this.settledMicro, this.sentMicro);
    return this.sentMicro;
  }

  /**
   * What the server accepted, and so what is booked: a per-call payment it did not refuse (for
   * `upto`, what it settled), a call it took on a permit session (at what it reported, else the
   * expected price), or what an account-billed call reported.
   */
  charged(expectedMicro: MicroUsdc): MicroUsdc {
    if (this.paymentSent) return this.paymentRefused ? 0 : this.paidMicro;
    if (this.permit) return this.sessionCharged || this.sessionUnconfirmed ? (this.reportedMicro ?? expectedMicro) : 0;
    return this.reportedMicro ?? 0;
  }

  /** Picks the cheapest acceptable offer and asks the guards; throws (before signing) if refused. */
  async approve(offers: Offer[]): Promise<Offer> {
    const choice = chooseOffer(offers, { network: this.expect.network ?? "base-sepolia", payees: this.expect.payees ?? [] });
    this.refusedOffers = choice.refused;
    const offer = choice.offer;
    if (!offer) {
      throw this.refuse("payment", `no offer could be paid: ${choice.refused.map((r) => r.reason).join("; ").slice(0, 300)}`);
    }
    this.offer = offer;
    const micro = offer.amountMicro!;
    this.quotedMicro = micro;
    const verdict = await this.hooks.approve(micro, offer);
    if (!verdict.ok) throw this.refuse(verdict.guard, verdict.reason);
    this.approvedMicro = micro;
    return offer;
  }

  /** Checks a signed payment against what was approved, and journals it, before it is sent. */
  async beforeSend(terms: SignedTerms | undefined, signed?: SignedPayment): Promise<void> {
    const offer = this.offer;
    if (!terms || !offer) throw this.refuse("payment", "the signed payment could not be read");
    if (this.approvedMicro === undefined) throw this.refuse("payment", "a payment was signed without an approved price");
    if (terms.valueMicro > this.approvedMicro) throw this.refuse("payment", `the signed payment ${terms.valueMicro} exceeds the approved ${this.approvedMicro}`);
    if (this.expect.payer && terms.from.toLowerCase() !== this.expect.payer.toLowerCase()) throw this.refuse("payment", "the payment is not from this agent's wallet");
    if (terms.to.toLowerCase() !== offer.payTo.toLowerCase()) throw this.refuse("payment", "the payment is not to the payee the gateway named");
    // A second of slack: the signer read the clock a moment before this check did.
    if (terms.validForSeconds > offer.maxTimeoutSeconds + 1) {
      throw this.refuse("payment", `the authorization is valid for ${terms.validForSeconds} s, more than the ${offer.maxTimeoutSeconds} s the offer allows`);
    }
    if (terms.signedApproveTx) throw this.refuse("payment", "the payment carries a signed token approval transaction, which is never sent");
    // A gas-sponsored `upto` carries an EIP-2612 permit: it may let Permit2 (and only it) draw this
    // wallet's USDC, no more than the approved price.
    const a = terms.approval;
    if (a) {
      if (a.spender.toLowerCase() !== PERMIT2_ADDRESS.toLowerCase()) throw this.refuse("payment", `the signed approval is for ${a.spender}, not Permit2`);
      if (a.asset.toLowerCase() !== offer.asset.toLowerCase()) throw this.refuse("payment", "the signed approval is for another token than the offer's");
      if (a.from.toLowerCase() !== terms.from.toLowerCase()) throw this.refuse("payment", "the signed approval is not from the paying wallet");
      if (a.amountMicro === undefined || a.amountMicro > this.approvedMicro) throw this.refuse("payment", `the signed approval ${a.amountMicro ?? "(unreadable)"} exceeds the approved ${this.approvedMicro}`);
      if (!(a.validForSeconds <= offer.maxTimeoutSeconds + 1)) throw this.refuse("payment", `the signed approval is valid for ${a.validForSeconds} s, more than the ${offer.maxTimeoutSeconds} s the offer allows`);
    }
    await this.hooks.beforeSend(terms.valueMicro, signed);
    this.sentMicro += terms.valueMicro;
  }

  observeReportedCost(usd: unknown): void {
    if (typeof usd === "number" && Number.isFinite(usd) && usd >= 0) this.reportedMicro = USDC(usd);
  }

  /** The server's Date header against our clock: a payment refused for its time window is our clock's fault when they differ. */
  observeServerDate(date: string | null, now: number): void {
    const at = date ? Date.parse(date) : NaN;
    if (Number.isFinite(at)) this.clockSkewMs = now - at;
  }

  /** The refusal blames the time, or the server's clock is far from ours. */
  get clockSuspect(): boolean {
    return (this.refusal !== undefined && blamesTheClock(this.refusal.text)) || Math.abs(this.clockSkewMs ?? 0) > 120_000;
  }

  /** A refusal raised inside a fetch (ours or the gateway's), recorded like the guards' own. */
  refuseFor(guard: SpendGuard | "payment", reason: string): PaymentRefusedError {
    return this.refuse(guard, reason);
  }

  private refuse(guard: SpendGuard | "payment", reason: string): PaymentRefusedError {
    if (guard !== "payment") {
      this.guard = guard;
      this.guardReason = reason;
    }
    return new PaymentRefusedError(guard, reason);
  }
}

/**
 * A fetch for the provider that pays x402 with `payer` (none: an account-billed call), reports to
 * `meter`, and lets it refuse a payment before it is made. One payment per request at most.
 */
export function meteredFetch(meter: CallMeter, payer?: X402Payer, base: typeof fetch = fetch, onUnauthorized?: () => void): typeof fetch {
  const send = async (input: string | URL | Request, init: RequestInit | undefined): Promise<Response> => {
    // The status is this request's: a paid request that never answers must not keep the 402's.
    meter.status = undefined;
    meter.retryAfterMs = undefined;
    const signal = init?.signal ? AbortSignal.any([init.signal, meter.signal]) : meter.signal;
    const res = await base(input, { ...init, signal });
    meter.status = res.status;
    meter.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    if (res.status === 200) meter.answered = true;
    if (res.status === 401) onUnauthorized?.();
    return res;
  };
  const metered = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await send(input, init);
    if (res.status !== 402 || !payer) return res;
    const offers = await readOffers(res);
    if (offers.length === 0) return res;
    let offer: Offer;
    try {
      offer = await meter.approve(offers);
    } catch (err) {
      await res.body?.cancel().catch(() => {});
      throw err;
    }
    await res.body?.cancel().catch(() => {});
    const paymentId = meter.paymentId;
    const signed = reusable(meter.expect.resend, offer, paymentId) ?? (await payer.sign(offer, paymentId));
    // A payment sent again meets the same checks as a new one (amount approved now, payer, payee).
    await meter.beforeSend(termsOf(signed.payload), signed);
    const headers = new Headers(init?.headers);
    for (const [k, v] of Object.entries(signed.headers)) headers.set(k, v);
    const paid = await send(input, { ...init, headers });
    meter.receipt = payer.receipt(paid, offer, paymentId);
    if (meter.receipt.status === "settled" || meter.receipt.status === "pending") {
      const { settledMicro, ...receipt } = meter.receipt as PaymentReceipt & { settledMicro?: MicroUsdc };
      meter.receipt = receipt;
      if (settledMicro !== undefined) meter.settledMicro = settledMicro;
    }
    if (refusesPayment(paid.status)) {
      meter.paymentRefused = true;
      meter.observeServerDate(paid.headers.get("date"), Date.now());
      const said = readRefusal(402, await paid.clone().json().catch(() => undefined));
      const header = paymentRequiredError(paid);
      meter.refusal = said?.code || !header ? { ...(said ?? {}), text: said?.text && said.text !== "HTTP 402" ? said.text : header ?? `HTTP ${paid.status}` } : { text: `${header} (HTTP ${paid.status})` };
    }
    return paid;
  };
  return metered as typeof fetch;
}

/** The `error` of a v2 PAYMENT-REQUIRED header, where the reference server says why it refused. */
function paymentRequiredError(res: Response): string | undefined {
  const h = res.headers.get("payment-required");
  if (!h) return undefined;
  try {
    const pr = JSON.parse(Buffer.from(h, "base64").toString("utf8")) as { error?: unknown };
    return typeof pr.error === "string" ? pr.error.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

/** What a permit-session call asks of the rest of the payment: journal it, renew a refused permit, stop when the wallet is short. */
export interface SessionHooks {
  /** The permit a call goes out on is about to leave the process: journal it (a crash after this books it). */
  beforeSend(permit: StoredPermit): Promise<void>;
  /** The router refused the permit: the call gives back what it took, and a new permit (or none) is had for a second try. */
  renew(refused: StoredPermit, why: { code?: SessionRefusal; text: string }): Promise<StoredPermit | undefined>;
  /** The router says the wallet holds too little USDC. */
  walletShort(text: string): Promise<void>;
}

/**
 * A fetch for a router paid by permit session: the permit rides on every request (no 402 round
 * trip); a refusal that invalidates the permit gets one retry on a new permit; the wallet being
 * short stops the call. Which of the router's answers mean "charged" is read here.
 */
export function sessionFetch(meter: CallMeter, first: StoredPermit, hooks: SessionHooks, base: typeof fetch = fetch, onUnauthorized?: () => void): typeof fetch {
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let permit: StoredPermit | undefined = first;
    for (let attempt = 1; permit; attempt++) {
      meter.permit = permit;
      meter.status = undefined;
      meter.retryAfterMs = undefined;
      const headers = new Headers(init?.headers);
      // The permit is the credential: an API key header would only confuse the router.
      headers.delete("authorization");
      headers.delete("x-api-key");
      headers.set(permit.headerName, permit.header);
      await hooks.beforeSend(permit);
      const signal = init?.signal ? AbortSignal.any([init.signal, meter.signal]) : meter.signal;
      let res: Response;
      try {
        res = await base(input, { ...init, headers, signal });
      } catch (err) {
        // Sent, and no answer: the router may have taken the call (it charges when it verifies the permit).
        meter.sessionUnconfirmed = true;
        throw err;
      }
      meter.status = res.status;
      meter.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      if (res.ok) {
        meter.sessionCharged = true;
        meter.answered = res.status === 200;
        meter.routerSessionId = res.headers.get("x-upto-session-id") ?? undefined;
        // The facilitator's metered example reports the call's cost in atomic USDC.
        const cost = res.headers.get("x-token-cost");
        if (cost && /^\d{1,12}$/.test(cost)) meter.reportedMicro = Number(cost);
        return res;
      }
      const refusal = readRefusal(res.status, await res.clone().json().catch(() => undefined));
      if (!refusal) {
        if (res.status === 401) onUnauthorized?.();
        // A server error after the permit was verified may still have been charged; a 4xx other
        // than a refusal (unknown model, rate limit, bad request) is answered before any charge.
        if (res.status >= 500) meter.sessionUnconfirmed = true;
        return res;
      }
      meter.refusal = refusal;
      meter.observeServerDate(res.headers.get("date"), Date.now());
      if (refusal.code === "insufficient_token_balance") {
        await res.body?.cancel().catch(() => {});
        await hooks.walletShort(refusal.text);
        throw meter.refuseFor("balance", `the router refused the permit: the wallet holds too little USDC (${refusal.text})`);
      }
      // Settling a batch: nothing was charged, and the same call may go again in a moment.
      if (refusal.code === "settling_in_progress") return res;
      if (attempt > 1) {
        // Refused again on a fresh permit: the session, not the model, is the trouble. Paid calls
        // stop for this decision rather than sign again for every model in the chain.
        meter.paymentRefused = true;
        meter.refuseFor("session", `the router refused a fresh permit too (${refusal.text})`);
        return res;
      }
      if (refusal.code && !INVALIDATES_PERMIT.has(refusal.code)) {
        meter.paymentRefused = true;
        return res;
      }
      await res.body?.cancel().catch(() => {});
      permit = await hooks.renew(permit, refusal);
      if (!permit) {
        meter.paymentRefused = true;
        throw meter.refuseFor("payment", `the router refused the permit (${refusal.text}) and no new one could be signed`);
      }
    }
    throw new Error("unreachable");
  };
  return f as typeof fetch;
}

/** The earlier payment, if it pays exactly this offer under this payment-identifier. */
function reusable(earlier: SignedPayment | undefined, offer: Offer, paymentId: string): SignedPayment | undefined {
  if (!earlier) return undefined;
  const id = (earlier.payload.extensions?.["payment-identifier"] as { info?: { id?: unknown } } | undefined)?.info?.id;
  return id === paymentId && canonicalJson(earlier.payload.accepted) === canonicalJson(offer.raw) ? earlier : undefined;
}
