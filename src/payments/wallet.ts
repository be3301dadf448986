import type { MicroUsdc } from "../domain/types.js";

/** The USDC the agent pays its model calls with. */
export interface UsdcWallet {
  readonly kind: "paper" | "onchain";
  /** One line for the banner and /balance. Never includes a key. */
  describe(): string;
  balance(): Promise<MicroUsdc>;
  /**
   * A balance kept in Redis, which the ledger debits inside its booking transaction (so a crash can
   * never book without debiting, or debit without booking). Absent on chain, where the payment moves the USDC.
   */
  bookingDebit?(): { key: string; seedMicro: MicroUsdc };
  /**
   * Adds funds. Refused (with the reason) where no refill source exists. `requestId` makes it
   * idempotent on chain: the same request moves the USDC once, however often it is retried.
   */
  credit(amount: MicroUsdc, requestId?: string): Promise<CreditResult>;
}

export type CreditResult =
  | { ok: true; balance: MicroUsdc; /** On chain: the transfer's hash and where to look at it. */ transaction?: { hash: string; link: string; again: boolean } }
  | { ok: false; reason: string };

/** What moves USDC into an on-chain wallet (usdcRefill.ts), once per request id. */
export interface Refiller {
  refill(
    requestId: string,
    amountMicro: MicroUsdc,
  ): Promise<{ ok: true; hash: string; link: string; balanceMicro: MicroUsdc; again: boolean } | { ok: false; reason: string }>;
}
