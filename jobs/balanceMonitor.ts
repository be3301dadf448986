import type { App } from "../src/app.js";
import type { BalanceLevel } from "../src/payments/balanceManager.js";
import { usdc } from "../src/chat/format.js";

/**
 * Watches the USDC that pays for model calls. Alerts once per change of level (not every minute),
 * pauses trading at the critical level, and resumes it when a refill lifts the balance again.
 */
export async function runBalanceMonitor(app: App): Promise<BalanceLevel> {
  const s = app.services;
  const check = await s.balance.checkAndRefill();
  const rules = s.balance.rules;
  const previous = (await app.redis.get("monitor:balance-level")) as BalanceLevel | null;
  await app.redis.set("monitor:balance-level", check.level);

  if (check.refilled) {
    await app.notifier.notify({ kind: "info", text: `Auto-refill: +${usdc(check.refilled, 2)} USDC, balance now ${usdc(check.balance, 2)}.` });
  }
  if (check.level === "critical") {
    const paused = await s.state.pause("critical-balance", "balance monitor");
    if (previous !== "critical" || paused) {
      await app.notifier.notify({
        kind: "critical",
        text: `CRITICAL: USDC balance ${usdc(check.balance, 2)} is under $${rules.criticalBalance.toFixed(2)}. Trading is paused; open positions stay monitored. /refill AMOUNT to continue.${check.refillRefused ? ` (Auto-refill refused: ${check.refillRefused})` : ""}`,
      });
    }
  } else {
    if (await s.state.resume("critical-balance")) {
      await app.notifier.notify({ kind: "info", text: `USDC balance back to ${usdc(check.balance, 2)}: trading resumed.` });
    }
    if (check.level === "low" && previous !== "low") {
      await app.notifier.notify({
        kind: "alert",
        text: `Low balance: USDC ${usdc(check.balance, 2)} is under $${rules.minBalance.toFixed(2)}. Trading pauses under $${rules.criticalBalance.toFixed(2)}. /refill AMOUNT to top up.`,
      });
    }
  }
  return check.level;
}
