import type { Redis } from "ioredis";
import type { Decision, MicroUsdc } from "../domain/types.js";

export interface SentPayment {
  chargeId: string;
  model: string;
  micro: MicroUsdc;
  time: number;
}

export interface JournalEntry {
  /** Router calls started for this decision. */
  calls: number;
  answer?: { decision: Decision; model: string };
  /** Payments that left the process and were not yet booked in the ledger. */
  unsettled: SentPayment[];
}

const TTL_SECONDS = 7 * 24 * 3600;

/**
 * What happened to one decision's paid calls, written as it happens: a call started, a payment
 * sent, a payment booked, an answer. A job retried after a crash reads it and neither asks nor pays
 * again for the same decision, and books any payment the crash left unbooked.
 */
export class DecisionJournal {
  constructor(private readonly redis: Redis, private readonly prefix = "router:journal:") {}

  private key(decisionId: string): string {
    return this.prefix + decisionId;
  }

  async read(decisionId: string): Promise<JournalEntry | undefined> {
    const h = await this.redis.hgetall(this.key(decisionId));
    if (Object.keys(h).length === 0) return undefined;
    const unsettled: SentPayment[] = [];
    for (const [field, value] of Object.entries(h)) {
      if (!field.startsWith("sent:")) continue;
      const chargeId = field.slice(5);
      if (h[`settled:${chargeId}`] === undefined) unsettled.push(JSON.parse(value) as SentPayment);
    }
    return {
      calls: Number(h.calls ?? 0),
      ...(h.answer ? { answer: JSON.parse(h.answer) as JournalEntry["answer"] } : {}),
      unsettled,
    };
  }

  async callStarted(decisionId: string): Promise<void> {
    await this.redis.multi().hincrby(this.key(decisionId), "calls", 1).expire(this.key(decisionId), TTL_SECONDS).exec();
  }

  async paymentSent(decisionId: string, p: SentPayment): Promise<void> {
    await this.redis.hset(this.key(decisionId), `sent:${p.chargeId}`, JSON.stringify(p));
  }

  /** The journal's "booked" mark for a charge, for the ledger to set inside its booking transaction. */
  bookedMark(decisionId: string, chargeId: string): [string, string] {
    return [this.key(decisionId), `settled:${chargeId}`];
  }

  async settled(decisionId: string, chargeId: string): Promise<void> {
    await this.redis.hset(this.key(decisionId), `settled:${chargeId}`, "1");
  }

  async answered(decisionId: string, decision: Decision, model: string): Promise<void> {
    await this.redis.hset(this.key(decisionId), "answer", JSON.stringify({ decision, model }));
  }
}
