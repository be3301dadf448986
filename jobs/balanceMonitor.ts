import type { Redis } from "ioredis";
import { confirmButtons, type ConfirmationStore } from "../src/chat/confirmations.js";
import type { Notifier } from "../src/chat/notifier.js";
import { USDC } from "../src/domain/types.js";
import type { BalanceLevel, BalanceManager } from "../src/payments/balanceManager.js";
import type { AgentState } from "../src/state/agentState.js";

export interface BalanceMonitorDeps {
  services: { balance: BalanceManager; state: AgentState };
  notifier: Notifier;
  /** For on-chain auto-refills, which an admin confirms in chat. */
  redis?: Redis;
  chat?: { confirmations: ConfirmationStore };
  config?: { chat: { confirmTimeoutMs: number } };
}

const CROSSING = "refill:crossing";

/**
 * On chain, auto-refill asks once per crossing of REFILL_THRESHOLD_USDC: an admin's Confirm runs
 * /refill with the confirmation's id, the one refill path, so the USDC moves once.
 */
async function askForRefill(app: BalanceMonitorDeps, balanceMicro: number): Promise<void> {
  const b = app.services.balance;
  if (!app.redis || !app.chat || !app.config || !b.rules.autoRefill || !b.refillNeedsConfirmation || !b.refillable) return;
  if (balanceMicro >= USDC(b.rules.refillThreshold)) {
    await app.redis.del(CROSSING);
    return;
  }
  if ((await app.redis.set(CROSSING, String(balanceMicro), "NX")) !== "OK") return;
  const amount = b.rules.refillAmount;
  const ttl = app.config.chat.confirmTimeoutMs;
  const prompt = `Auto-refill: the USDC balance is under $${b.rules.refillThreshold.toFixed(2)}. Move $${amount.toFixed(2)} of real USDC from the funding wallet to the ${b.describeWallet()}?`;
  const action = await app.chat.confirmations.create({ kind: "command", line: `/refill ${amount}`, command: "refill", args: amount, pressRole: "admin", prompt }, ttl);
  await app.notifier.notify({ kind: "alert", text: `${prompt}
An admin can confirm within ${Math.round(ttl / 1000)} s.`, buttons: confirmButtons(action.id), confirmationId: action.id });
}

/**
 * Watches the USDC that pays for model calls. Alerts once per change of level (not every minute),
 * pauses trading at the critical level, and resumes it when a refill lifts the balance again.
 */
export async function runBalanceMonitor(app: BalanceMonitorDeps): Promise<BalanceLevel> {
  const s = app.services;
  const check = await s.balance.checkAndRefill();
  const rules = s.balance.rules;
  const previous = (await s.state.swapBalanceLevel(check.level)) as BalanceLevel | null;

  await askForRefill(app, check.balance);
  if (check.refilled) {
    await app.notifier.notify({ type: "refilled", amountMicro: check.refilled, balanceMicro: check.balance });
  }
  if (check.level === "critical") {
    const paused = await s.state.pause("critical-balance", "balance monitor");
    if (previous !== "critical" || paused) {
      await app.notifier.notify({ type: "balance-critical", balanceMicro: check.balance, critical: rules.criticalBalance, ...(check.refillRefused ? { refillRefused: check.refillRefused } : {}) });
    }
  } else {
    if (await s.state.resume("critical-balance")) {
      await app.notifier.notify({ type: "balance-restored", balanceMicro: check.balance });
    }
    if (check.level === "low" && previous !== "low") {
      await app.notifier.notify({ type: "balance-low", balanceMicro: check.balance, min: rules.minBalance, critical: rules.criticalBalance });
    }
  }
  return check.level;
}
