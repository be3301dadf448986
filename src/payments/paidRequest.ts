// The one paid request: every payment the agent makes, whatever it buys (a model call, a research
// reply) and however the server is paid (a permit session, a per-call x402 payment, an account
// billed by API key), meets the same sequence here:
//   hold    the price cap, the per-decision ceiling, the balance rule, and the budget: a reservation
//           of the expected price, or that price taken out of the permit session's reservation;
//   meter   the request goes out through a fetch that pays as the server asks, checks what is signed
//           against what was approved, and writes the payment into the crash index before it leaves;
//   book    what the server accepted (a receipt, a call the router took on the permit, a reported
//           cost), in one Redis script with the crash index cleared and the caller's marks; a
//           payment the server refused is recorded as refused, never as spent;
//   release the reservation, after the booking (so the two are never both missing).
// Callers add only what is theirs (the decision journal's marks, model stats, research's cache).
import { usd, type MicroUsdc } from "../domain/types.js";
import type { PaymentReceipt, RefusedPayment } from "../ledger/ledger.js";
import type { BalanceManager } from "./balanceManager.js";
import type { BudgetGuard, Reservation } from "./budgetGuard.js";
import type { InflightPayment, InflightPayments } from "./inflight.js";
import { CallMeter, meteredFetch, PaymentRefusedError, sessionFetch, type GuardVerdict, type MeterExpect } from "./paymentMeter.js";
import type { PermitSessions, StoredPermit } from "./permitSessions.js";
import type { SpendGuard } from "./refusals.js";
import type { SessionTerms } from "./routerTerms.js";
import type { Offer, SignedPayment, X402Payer } from "./x402Payer.js";

/** The services every payment meets. */
export interface PaymentServices {
  budget: BudgetGuard;
  balance: Pick<BalanceManager, "canMakeDecision" | "trackCost">;
  inflight: InflightPayments;
  refusals: { refused(r: RefusedPayment): Promise<void> };
  clock: () => number;
  /** This process, as the crash index names who sent a payment (its heartbeat says whether it still lives). */
  owner?: string;
  /** Payments this process gave up booking (Redis refused the booking): the recovery takes them at once, without waiting out their lease. */
  abandoned?: Set<string>;
  /** The team is told, once per kind and episode: a clock that looks wrong, a wallet the router says is short. */
  alert?: (kind: "clock" | "wallet", text: string) => Promise<void>;
  /**
   * The chain can say whether a refused per-call authorization was used after all (an on-chain
   * wallet): the refusal then keeps its reservation until the authorization expires, and the
   * recovery books it if it was.
   */
  chainWatch?: boolean;
}

/** How the server is paid. */
export type PayWith =
  /** Billed to an account (an API key): the server reports the cost. */
  | { kind: "account" }
  /** Whatever each 402 asks, with the agent's wallet (none: only a free endpoint can answer). */
  | { kind: "per-call"; payer?: X402Payer }
  /** A permit session, as the hosted Dreams Router is paid; `terms` are re-read after a refusal. */
  | { kind: "session"; sessions: PermitSessions; terms: SessionTerms; reread?: () => Promise<SessionTerms | undefined> };

export interface SpendPlan {
  /** What is paid for, as the ledger and the messages name it: a model id, "research:host". */
  item: string;
  /** The charge this payment books under (once, whatever retries). */
  chargeId: string;
  expectedMicro: MicroUsdc;
  /** The per-call price cap and the setting that sets it, for the messages. */
  maxPerCallMicro: MicroUsdc;
  capName: string;
  /** What the per-decision ceiling still allows, and how to say it is crossed. */
  ceiling?: { leftMicro: MicroUsdc; describe(micro: MicroUsdc): string };
  /** How long the reservation outlives a process that died mid-call. */
  leaseMs: number;
  /** How long to queue near a cap while calls in flight settle. */
  budgetWaitMs: number;
}

/** The points between the writes of a paid request, where a crash could fall. */
export type PaymentStep = "paid" | "booked" | "released";

export interface PaidRequestPlan extends SpendPlan {
  pay: PayWith;
  expect: MeterExpect;
  /** The caller's own record of the payment (the decision journal): told what left, marked in the booking. */
  journal?: { sent(micro: MicroUsdc, signed?: SignedPayment): Promise<void>; mark?: [string, string]; nothingOwed?(): Promise<void> };
  /** The server named its exact price (a 402), before anything is signed. */
  onQuote?(micro: MicroUsdc, offer: Offer): Promise<void>;
  /** A seam for crash tests: awaited at each step after a payment left. */
  pauseAt?: (step: PaymentStep) => Promise<void>;
  /** Called when the server is told 401 (a stale credential). */
  onUnauthorized?: () => void;
  /** The fetch the payment's requests go out through (tests point it elsewhere). */
  fetch?: typeof fetch;
}

export interface PaidOutcome<T> {
  value?: T;
  error?: unknown;
  meter: CallMeter;
  /** What was booked for this request. */
  costMicro: MicroUsdc;
  /** Our guards refused before anything left the process. */
  refused?: { guard: SpendGuard; reason: string };
  /** Worth saying on the decision: an estimate booked, a bill above what was held. */
  notes: string[];
}

type Hold = { reservation: Reservation; permit?: StoredPermit; authorization?: InflightPayment["authorization"] };

/** Runs `send` as one paid request; never throws for the request's own failures (they are in the outcome). */
export async function paidRequest<T>(svc: PaymentServices, plan: PaidRequestPlan, send: (f: typeof fetch, meter: CallMeter) => Promise<T>): Promise<PaidOutcome<T>> {
  const held = await hold(svc, plan);
  if (!held.ok) {
    const idle = new CallMeter({ approve: async () => ({ ok: true }), beforeSend: async () => {} }, plan.expect);
    return { meter: idle, costMicro: 0, refused: { guard: held.guard, reason: held.reason }, notes: [] };
  }
  let h: Hold = held.hold;
  const notes: string[] = [];
  const record = (p: Omit<InflightPayment, "chargeId" | "item" | "time" | "until" | "journalMark">) =>
    svc.inflight.record({ chargeId: plan.chargeId, item: plan.item, time: svc.clock(), until: Date.now() + plan.leaseMs, ...(svc.owner ? { owner: svc.owner } : {}), ...(plan.journal?.mark ? { journalMark: plan.journal.mark } : {}), ...p });

  const hooks = {
    approve: async (micro: MicroUsdc, offer: Offer): Promise<GuardVerdict> => {
      await plan.onQuote?.(micro, offer);
      return approveExact(svc, plan, h.reservation, micro);
    },
    beforeSend: async (micro: MicroUsdc, signed?: SignedPayment) => {
      h.authorization = authorizationOf(signed);
      // Both written before the payment leaves, side by side (one round trip).
      await Promise.all([record({ micro, kind: "per-call", state: "sent", ...(h.authorization ? { authorization: h.authorization } : {}) }), plan.journal?.sent(micro, signed)]);
    },
  };
  const metered = new CallMeter(hooks, plan.expect);
  let f: typeof fetch;
  if (plan.pay.kind === "session") {
    const pay = plan.pay;
    f = sessionFetch(
      metered,
      h.permit!,
      {
        beforeSend: async (permit) => {
          await Promise.all([record({ micro: plan.expectedMicro, kind: "session", state: "sent", permitId: permit.id }), plan.journal?.sent(plan.expectedMicro)]);
        },
        renew: async (refused, why) => {
          await svc.budget.giveBack(plan.chargeId);
          await pay.sessions.invalidate(refused, why.text);
          const terms = (await pay.reread?.()) ?? pay.terms;
          const again = await pay.sessions.take(terms, plan.chargeId, plan.expectedMicro, plan.leaseMs);
          if (!again.ok) return undefined;
          h = { reservation: { ...h.reservation }, permit: again.permit };
          return again.permit;
        },
        walletShort: async (text) => {
          if (await pay.sessions.walletShort(text)) await svc.alert?.("wallet", `The router refused to take payment: the wallet ${pay.sessions.owner.slice(0, 6)}…${pay.sessions.owner.slice(-4)} holds too little USDC (${text}). Paid model calls stop until it is topped up (/balance, /refill); decisions use the free fallback meanwhile.`);
        },
      },
      plan.fetch ?? fetch,
      plan.onUnauthorized,
    );
  } else {
    f = meteredFetch(metered, plan.pay.kind === "per-call" ? plan.pay.payer : undefined, plan.fetch ?? fetch, plan.onUnauthorized);
  }

  let value: T | undefined;
  let error: unknown;
  try {
    value = await send(f, metered);
  } catch (err) {
    error = err;
  }
  metered.abort();
  let cost: MicroUsdc;
  try {
    cost = await settle(svc, plan, metered, h, notes);
  } catch (err) {
    // Paid (perhaps) and not booked: the crash index still holds it, and nobody here will finish it.
    svc.abandoned?.add(plan.chargeId);
    throw err;
  }
  return { ...(value !== undefined ? { value } : {}), ...(error !== undefined ? { error } : {}), meter: metered, costMicro: cost, notes, ...(metered.guard ? { refused: { guard: metered.guard, reason: metered.guardReason ?? "" } } : {}) };
}

/** What the chain can be asked about a signed per-call payment: an EIP-3009 authorization, or a Permit2 transfer. */
function authorizationOf(signed: SignedPayment | undefined): InflightPayment["authorization"] {
  const inner = signed?.payload.payload as
    | { authorization?: { from?: string; nonce?: string; validBefore?: string }; permit2Authorization?: { from?: string; nonce?: string; deadline?: string; permitted?: { token?: string } } }
    | undefined;
  const asset = String((signed?.payload.accepted as { asset?: string } | undefined)?.asset ?? "");
  const a = inner?.authorization;
  if (a?.from && a.nonce && asset) return { kind: "eip3009", asset, from: a.from, nonce: a.nonce, validBefore: Number(a.validBefore ?? 0) * 1000 };
  const p = inner?.permit2Authorization;
  if (p?.from && p.nonce) return { kind: "permit2", asset: p.permitted?.token ?? asset, from: p.from, nonce: p.nonce, validBefore: Number(p.deadline ?? 0) * 1000 };
  return undefined;
}

/** The guards on the expected price, then its reservation (or its share of the permit session). */
async function hold(svc: PaymentServices, plan: PaidRequestPlan): Promise<{ ok: true; hold: Hold } | { ok: false; guard: SpendGuard; reason: string }> {
  const expected = plan.expectedMicro;
  if (expected > plan.maxPerCallMicro) {
    return { ok: false, guard: "price", reason: `${plan.item} costs about ${usd(expected)} per call, above ${plan.capName} ${usd(plan.maxPerCallMicro)}` };
  }
  if (plan.ceiling && expected > plan.ceiling.leftMicro) return { ok: false, guard: "ceiling", reason: plan.ceiling.describe(expected) };
  // A call on a permit session takes its price out of a permit sized to the balance rule when it was
  // signed (balance, less what is owed, less the floor): no chain read per call. Money leaving the
  // wallet otherwise is the balance monitor's, and the router's insufficient_token_balance.
  if (plan.pay.kind !== "session") {
    const balance = await svc.balance.canMakeDecision(expected);
    if (!balance.ok) return { ok: false, guard: "balance", reason: balance.reason };
  }
  if (plan.pay.kind === "session") {
    const took = await plan.pay.sessions.take(plan.pay.terms, plan.chargeId, expected, plan.leaseMs);
    if (!took.ok) return { ok: false, guard: took.guard, reason: took.reason };
    const now = svc.clock();
    return { ok: true, hold: { reservation: { id: plan.chargeId, micro: expected, day: new Date(now).toISOString().slice(0, 10), month: new Date(now).toISOString().slice(0, 7) }, permit: took.permit } };
  }
  const reserved = await svc.budget.reserveWaiting(plan.chargeId, expected, svc.clock(), plan.leaseMs, plan.budgetWaitMs);
  if (!reserved.ok) return { ok: false, guard: reserved.cap === "per-call" ? "price" : "budget", reason: reserved.reason };
  return { ok: true, hold: { reservation: reserved.reservation } };
}

/** The server's exact price (a 402), through the same checks; the reservation is resized to it. */
async function approveExact(svc: PaymentServices, plan: PaidRequestPlan, reservation: Reservation, micro: MicroUsdc): Promise<GuardVerdict> {
  if (micro > plan.maxPerCallMicro) return { ok: false, guard: "price", reason: `${plan.item} asked ${usd(micro)}, above ${plan.capName} ${usd(plan.maxPerCallMicro)}` };
  if (plan.ceiling && micro > plan.ceiling.leftMicro) return { ok: false, guard: "ceiling", reason: plan.ceiling.describe(micro) };
  const bal = await svc.balance.canMakeDecision(micro);
  if (!bal.ok) return { ok: false, guard: "balance", reason: bal.reason };
  const resized = await svc.budget.resizeWaiting(reservation, micro, svc.clock(), plan.leaseMs, plan.budgetWaitMs);
  if (!resized.ok) return { ok: false, guard: resized.cap === "per-call" ? "price" : "budget", reason: resized.reason };
  return { ok: true };
}

/** Books what the server accepted, records what it refused, and lets the reservation go. Returns what was booked. */
async function settle(svc: PaymentServices, plan: PaidRequestPlan, meter: CallMeter, h: Hold, notes: string[]): Promise<MicroUsdc> {
  const pay = plan.pay;
  let cost = meter.charged(plan.expectedMicro);
  // A free call (a local model: nothing expected) books nothing and says nothing.
  if (cost === 0 && pay.kind === "account" && meter.answered && plan.expectedMicro > 0) {
    cost = plan.expectedMicro;
    notes.push(`${plan.item}: the gateway reported no cost; booked the estimate ${usd(cost)}`);
  }
  if (meter.sessionUnconfirmed && !meter.sessionCharged && cost > 0) notes.push(`${plan.item}: the router gave no answer after taking the permit; booked ${usd(cost)} as it may have charged the call`);
  let keepReservation = false;
  if (cost > 0) {
    const receipt: PaymentReceipt | undefined =
      meter.receipt ?? (meter.permit ? { status: "pending", scheme: "permit-session", x402Version: 2, network: meter.permit.network, paymentId: meter.permit.id } : undefined);
    // The crash index learns the amount the booking is for, if it is not what was written before sending.
    if (meter.paymentSent ? cost !== meter.sentMicro : !meter.permit || cost !== plan.expectedMicro) {
      await Promise.all([svc.inflight.record({
        chargeId: plan.chargeId,
        item: plan.item,
        micro: cost,
        time: svc.clock(),
        until: Date.now() + plan.leaseMs,
        ...(svc.owner ? { owner: svc.owner } : {}),
        kind: meter.permit ? "session" : meter.paymentSent ? "per-call" : "account",
        state: "sent",
        ...(plan.journal?.mark ? { journalMark: plan.journal.mark } : {}),
        ...(meter.permit ? { permitId: meter.permit.id } : {}),
        ...(receipt ? { receipt } : {}),
      }), plan.journal?.sent(cost)]);
    }
    await plan.pauseAt?.("paid");
    const session = meter.permit && pay.kind === "session" ? pay.sessions.bookingWrites(meter.permit, plan.chargeId, cost, svc.clock()) : undefined;
    await svc.balance.trackCost(plan.chargeId, plan.item, cost, svc.clock(), {
      ...(receipt ? { receipt } : {}),
      ...(plan.journal?.mark ? { marks: [plan.journal.mark] } : {}),
      clears: [svc.inflight.clear(plan.chargeId)],
      ...(session ?? {}),
    });
    if (meter.permit && pay.kind === "session") await pay.sessions.answered(meter.permit, meter.routerSessionId ?? null);
    await plan.pauseAt?.("booked");
    if (cost > h.reservation.micro) notes.push(`${plan.item}: the gateway billed ${usd(cost)}, more than the ${usd(h.reservation.micro)} held for the call`);
  } else if (meter.paymentRefused || meter.refusal) {
    // The server turned the payment down: not spent. A per-call authorization it holds could still
    // be settled until it expires: with a chain to ask, its reservation stays and the recovery decides.
    const reason = meter.refusal?.text ?? `HTTP ${meter.status ?? "?"}`;
    await svc.refusals.refused({ chargeId: plan.chargeId, time: svc.clock(), model: plan.item, micro: meter.sentMicro || plan.expectedMicro, reason });
    const auth = meter.paymentSent && svc.chainWatch ? h.authorization : undefined;
    if (auth) {
      keepReservation = true;
      const until = auth.validBefore + 60_000;
      await svc.inflight.record({ chargeId: plan.chargeId, item: plan.item, micro: meter.sentMicro, time: svc.clock(), until, kind: "per-call", state: "refused", authorization: auth, ...(plan.journal?.mark ? { journalMark: plan.journal.mark } : {}) });
      await svc.budget.resize(h.reservation, h.reservation.micro, svc.clock(), Math.max(plan.leaseMs, until - Date.now()));
    } else {
      await svc.inflight.drop(plan.chargeId);
    }
    if (meter.clockSuspect) {
      const skew = meter.clockSkewMs !== undefined && Math.abs(meter.clockSkewMs) > 120_000 ? ` Our clock is ${Math.round(Math.abs(meter.clockSkewMs) / 60_000)} min ${meter.clockSkewMs > 0 ? "ahead of" : "behind"} the server's.` : "";
      await svc.alert?.("clock", `The server refused a payment for its time window (${reason.slice(0, 120)}).${skew} Check this machine's clock (NTP): every payment is refused while it is off. Nothing was paid.`);
    }
  } else {
    await svc.inflight.drop(plan.chargeId);
  }
  // Something was journaled as sent and nothing is owed (refused, settled for nothing): a retry must not book it.
  if (cost === 0 && !keepReservation && (meter.paymentSent || meter.permit)) await plan.journal?.nothingOwed?.();
  if (!keepReservation) {
    if (cost === 0 && pay.kind === "session") await svc.budget.giveBack(plan.chargeId);
    else await svc.budget.release(h.reservation);
  }
  if (cost > 0) await plan.pauseAt?.("released");
  return cost;
}

export { PaymentRefusedError };
