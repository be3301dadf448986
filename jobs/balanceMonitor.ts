import type { Notifier } from "../src/chat/notifier.js";
import type { BalanceLevel, BalanceManager } from "../src/payments/balanceManager.js";
import type { AgentState } from "../src/state/agentState.js";

export interface BalanceMonitorDeps {
  services: { balance: BalanceManager; state: AgentState };
  notifier: Notifier;
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
