// Paid and not booked: never. What the crash index (inflight.ts) still holds once no live call works
// on it is settled here, on its own: at start, when Redis comes back, and on a schedule. This covers
// a process killed mid-payment, a Redis that refused the booking (full), and a chat decision that is
// never retried.
//  - A payment the chain can be asked about (a per-call authorization, with an on-chain wallet) is
//    booked if the chain shows it used, and released once it expired unused.
//  - Anything else that left is booked at what was written down before it left (a call on a permit
//    session, an account-billed call, a per-call payment with no chain to ask): conservatively paid.
// The booking is the same one-script booking as the live path (charge ids make it happen once),
// and the reservation follows: released after the booking, or when nothing was paid.
import { usd, type MicroUsdc } from "../domain/types.js";
import type { BalanceManager } from "./balanceManager.js";
import type { BudgetGuard } from "./budgetGuard.js";
import type { AuthorizationReader, InflightPayment, InflightPayments } from "./inflight.js";
import type { PermitSessions } from "./permitSessions.js";

export interface RecoveryDeps {
  inflight: InflightPayments;
  budget: BudgetGuard;
  balance: Pick<BalanceManager, "trackCost">;
  /** Whether a charge id is already booked. */
  booked(chargeId: string): Promise<boolean>;
  /** The processes whose payer heartbeat still runs: a payment sent by any other is nobody's to finish. */
  livePayers?(): Promise<string[]>;
  /** Payments this process gave up booking: nobody is working on them, whatever their lease says. */
  abandoned?: Set<string>;
  /** Permit sessions, to keep a recovered session call in its session's tally. */
  sessions?: PermitSessions;
  /** The chain, when the wallet is on one: what became of a per-call authorization. */
  chain?: AuthorizationReader;
  clock: () => number;
  notify?(text: string): Promise<void>;
}

export interface RecoveryResult {
  booked: { chargeId: string; item: string; micro: MicroUsdc; why: string }[];
  released: { chargeId: string; item: string; why: string }[];
  waiting: number;
}

export async function recoverPayments(d: RecoveryDeps): Promise<RecoveryResult> {
  const out: RecoveryResult = { booked: [], released: [], waiting: 0 };
  const now = Date.now();
  const entries = await d.inflight.all();
  const alive = entries.length > 0 && d.livePayers ? new Set(await d.livePayers()) : undefined;
  for (const p of entries) {
    if (await d.booked(p.chargeId)) {
      // Booked by the live path or a retry, and the entry outlived it (a crash between the two writes).
      await d.inflight.drop(p.chargeId);
      await d.budget.release({ id: p.chargeId, micro: 0, day: "", month: "" });
      continue;
    }
    // A live call may still be working on it: its process lives, and its lease has not run out.
    const ownerGone = (p.owner !== undefined && alive !== undefined && !alive.has(p.owner)) || d.abandoned?.has(p.chargeId) === true;
    if (p.state === "sent" && now < p.until && !ownerGone) {
      out.waiting++;
      continue;
    }
    const verdict = await fate(d, p);
    if (verdict === "wait") {
      out.waiting++;
      continue;
    }
    if (verdict === "unpaid") {
      await d.inflight.drop(p.chargeId);
      await d.budget.release({ id: p.chargeId, micro: 0, day: "", month: "" });
      out.released.push({ chargeId: p.chargeId, item: p.item, why: p.state === "refused" ? "refused, and expired unused on chain" : "expired unused on chain" });
      continue;
    }
    await book(d, p);
    d.abandoned?.delete(p.chargeId);
    out.booked.push({ chargeId: p.chargeId, item: p.item, micro: p.micro, why: verdict });
  }
  if (out.booked.length > 0) {
    const total = out.booked.reduce((s, b) => s + b.micro, 0);
    const refusedButPaid = out.booked.filter((b) => b.why === "used on chain after a refusal");
    await d.notify?.(
      `Booked ${out.booked.length} payment${out.booked.length === 1 ? "" : "s"} (${usd(total)}) that left the agent without being booked (${[...new Set(out.booked.map((b) => b.item))].join(", ")}): the books match what was paid again.` +
        (refusedButPaid.length ? ` ${refusedButPaid.length} of them the server refused and then settled on chain anyway.` : ""),
    );
  }
  return out;
}

/** What became of one payment: booked as paid (and why), released as unpaid, or not known yet. */
async function fate(d: RecoveryDeps, p: InflightPayment): Promise<"wait" | "unpaid" | string> {
  const a = p.authorization;
  if (a && d.chain) {
    let used: boolean;
    let chainNow: number;
    try {
      [used, chainNow] = await Promise.all([d.chain.used(a), d.chain.now()]);
    } catch {
      return "wait";
    }
    if (used) return p.state === "refused" ? "used on chain after a refusal" : "used on chain";
    return chainNow > a.validBefore ? "unpaid" : "wait";
  }
  // Refused, and no chain to ask: what the server said stands.
  if (p.state === "refused") return "unpaid";
  return p.kind === "session" ? "sent on a permit session: the router charges a call when it takes the permit" : p.kind === "account" ? "billed to the account" : "sent, and no chain to ask";
}

async function book(d: RecoveryDeps, p: InflightPayment): Promise<void> {
  const session = p.permitId && d.sessions ? await d.sessions.permit(p.permitId) : undefined;
  const writes = session && d.sessions ? d.sessions.bookingWrites(session, p.chargeId, p.micro, p.time) : undefined;
  const receipt = p.receipt ?? (session ? { status: "pending" as const, scheme: "permit-session", x402Version: 2, network: session.network, paymentId: session.id } : undefined);
  await d.balance.trackCost(p.chargeId, p.item, p.micro, p.time, {
    ...(receipt ? { receipt } : {}),
    ...(p.journalMark ? { marks: [p.journalMark] } : {}),
    clears: [d.inflight.clear(p.chargeId)],
    ...(writes ?? {}),
  });
  await d.budget.release({ id: p.chargeId, micro: 0, day: "", month: "" });
}
