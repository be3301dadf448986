// Every payment that may have left the process and is not booked yet, in one Redis hash, written
// before it leaves and cleared in the booking's own transaction. A crash, a full Redis or a chat
// decision that is never retried leaves its entry behind; the recovery (recovery.ts) finds it there
// and books it, or releases it once the server or the chain shows nothing was paid.
import type { Redis } from "ioredis";
import type { MicroUsdc } from "../domain/types.js";
import type { PaymentReceipt } from "../ledger/ledger.js";

export const INFLIGHT_KEY = "payments:inflight";

export interface InflightPayment {
  chargeId: string;
  /** What was paid for, as the ledger names it (a model id, research:host). */
  item: string;
  /** What is owed if the payment went through: the signed amount, or the call's expected price on a permit. */
  micro: MicroUsdc;
  time: number;
  /** per-call: an x402 authorization; session: a call on a permit; account: billed to an API key. */
  kind: "per-call" | "session" | "account";
  /** sent: it left, outcome unknown until the call ends; refused: the server said no, and the chain has the last word. */
  state: "sent" | "refused";
  /** No live call works on it after this (ms): the recovery leaves it alone until then, unless its process is gone. */
  until: number;
  /** The process that sent it (its payer heartbeat): once that is gone, nobody is working on it. */
  owner?: string;
  /** The decision journal's "booked" mark, set with the booking. */
  journalMark?: [string, string];
  /** per-call: what to ask the chain whether it was used (EIP-3009's authorizationState, or Permit2's nonce bitmap). */
  authorization?: SignedAuthorization;
  /** session: the permit the call went out on. */
  permitId?: string;
  receipt?: PaymentReceipt;
}

/** A per-call x402 authorization, as the chain can be asked about it. */
export interface SignedAuthorization {
  kind: "eip3009" | "permit2";
  asset: string;
  from: string;
  nonce: string;
  /** When it stops being usable (ms). */
  validBefore: number;
}

/** The chain's say on a per-call authorization: used (settled), and the chain's own time. */
export interface AuthorizationReader {
  used(a: SignedAuthorization): Promise<boolean>;
  now(): Promise<number>;
}

export class InflightPayments {
  constructor(private readonly redis: Redis) {}

  async record(p: InflightPayment): Promise<void> {
    await this.redis.hset(INFLIGHT_KEY, p.chargeId, JSON.stringify(p));
  }

  /** The booking's clear: pass to the ledger so it rides in the booking script. */
  clear(chargeId: string): [string, string] {
    return [INFLIGHT_KEY, chargeId];
  }

  async drop(chargeId: string): Promise<void> {
    await this.redis.hdel(INFLIGHT_KEY, chargeId);
  }

  async all(): Promise<InflightPayment[]> {
    const h = await this.redis.hgetall(INFLIGHT_KEY);
    return Object.values(h).map((v) => JSON.parse(v) as InflightPayment);
  }
}
