import { USDC, usd, type MicroUsdc } from "../domain/types.js";
import type { BookingExtras, Ledger, PaymentReceipt } from "../ledger/ledger.js";
import type { UsdcWallet } from "./wallet.js";

export interface BalanceRules {
  /** Warn below this. */
  minBalance: number;
  /** Pause trading below this. */
  criticalBalance: number;
  /** Refill when under this (if auto-refill is on). */
  refillThreshold: number;
  refillAmount: number;
  autoRefill: boolean;
}

export type BalanceLevel = "ok" | "low" | "critical";

export interface BalanceCheck {
  balance: MicroUsdc;
  level: BalanceLevel;
  refilled?: MicroUsdc;
  refillRefused?: string;
}

export function levelOf(balance: MicroUsdc, rules: BalanceRules): BalanceLevel {
  if (balance < USDC(rules.criticalBalance)) return "critical";
  if (balance < USDC(rules.minBalance)) return "low";
  return "ok";
}

/**
 * The BalanceManager of the design documents: knows how much USDC the agent has to pay its model
 * calls, whether one more call is affordable, refills under the rules, and books every cost.
 */
export class BalanceManager {
  constructor(
    private readonly wallet: UsdcWallet,
    private readonly ledger: Ledger,
    readonly rules: BalanceRules,
  ) {}

  get walletKind(): UsdcWallet["kind"] {
    return this.wallet.kind;
  }

  describeWallet(): string {
    return this.wallet.describe();
  }

  getBalance(): Promise<MicroUsdc> {
    return this.wallet.balance();
  }

  /** A paid call is allowed only if it leaves the balance at or above the critical level. */
  async canMakeDecision(estimatedCost: MicroUsdc): Promise<{ ok: true } | { ok: false; reason: string }> {
    if (estimatedCost === 0) return { ok: true };
    const balance = await this.wallet.balance();
    const floor = USDC(this.rules.criticalBalance);
    if (balance - estimatedCost < floor) {
      return {
        ok: false,
        reason: `USDC balance ${usd(balance, 2)} cannot pay an estimated ${usd(estimatedCost)} and stay above the critical level $${this.rules.criticalBalance.toFixed(2)}.`,
      };
    }
    return { ok: true };
  }

  /** Reads the balance, refills under the rules, and says which level the balance is at. */
  async checkAndRefill(): Promise<BalanceCheck> {
    let balance = await this.wallet.balance();
    const check: BalanceCheck = { balance, level: levelOf(balance, this.rules) };
    if (this.rules.autoRefill && !this.refillNeedsConfirmation && balance < USDC(this.rules.refillThreshold)) {
      const result = await this.wallet.credit(USDC(this.rules.refillAmount));
      if (result.ok) {
        check.refilled = USDC(this.rules.refillAmount);
        balance = result.balance;
        check.balance = balance;
        check.level = levelOf(balance, this.rules);
      } else {
        check.refillRefused = result.reason;
      }
    }
    return check;
  }

  /**
   * Books a paid call once per charge id: the ledger entry, the spend counters, the wallet debit and
   * any `marks` in one Redis transaction, so a crash at any point leaves all of them or none.
   */
  async trackCost(
    decisionId: string,
    model: string,
    cost: MicroUsdc,
    time = Date.now(),
    more: { receipt?: PaymentReceipt } & Omit<BookingExtras, "wallet"> = {},
  ): Promise<void> {
    if (cost <= 0) return;
    const debit = this.wallet.bookingDebit?.();
    const { receipt, ...extras } = more;
    // A wallet outside Redis (on chain) is debited by the payment itself.
    await this.ledger.charge({ decisionId, model, costMicro: cost, time, ...(receipt ? { receipt } : {}) }, { ...(debit ? { wallet: debit } : {}), ...extras });
  }

  /** The one refill path, whoever asks (/refill or the balance monitor). */
  refill(amount: MicroUsdc, requestId?: string): ReturnType<UsdcWallet["credit"]> {
    return this.wallet.credit(amount, requestId);
  }

  /** Whether a refill can be made at all: the paper wallet always; on chain, with a funding wallet. */
  get refillable(): boolean {
    return this.wallet.kind === "paper" || (this.wallet as { canRefill?: boolean }).canRefill === true;
  }

  /** On chain a refill moves real USDC, so the monitor asks an admin instead of refilling by itself. */
  get refillNeedsConfirmation(): boolean {
    return this.wallet.kind === "onchain";
  }
}
