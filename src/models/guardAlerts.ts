// What the team is told when a spending guardrail stops a paid call: once per cap and period,
// naming the setting that changes it.
import { usd } from "../domain/types.js";
import type { CatalogueModel } from "./catalogue.js";
import type { FailureClass } from "./failures.js";
import { estimate, type DecisionRun } from "./decisionRun.js";


export async function alertGuard(run: DecisionRun, cls: FailureClass, m: CatalogueModel, reason: string): Promise<void> {
  const { rt, svc } = run;
  const now = svc.clock();
  const free = rt.policy.fallback === "hold" ? "hold" : "the offline engine";
  if (cls === "over-price") {
    if (await rt.budget.firstAlert("per-call", now)) {
      await rt.alert(`Model price above the cap: ${reason}. It is skipped while that holds; the next model in the chain answers. Raise MAX_PRICE_PER_CALL_USDC to allow it.`);
    }
    return;
  }
  const status = await rt.budget.status(now);
  const monthly = status.spentMonthMicro + status.reservedMonthMicro + estimate(run, m) > status.caps.monthlyMicro;
  if (await rt.budget.firstAlert(monthly ? "monthly" : "daily", now)) {
    const [spent, cap, until, key] = monthly
      ? [status.spentMonthMicro, status.caps.monthlyMicro, "the start of next month (UTC)", "MONTHLY_BUDGET_USDC"]
      : [status.spentTodayMicro, status.caps.dailyMicro, "midnight UTC", "DAILY_BUDGET_USDC"];
    await rt.alert(
      `Model budget reached: ${usd(spent)} of the ${monthly ? "monthly" : "daily"} ${usd(cap, 2)} is spent. No paid model calls until ${until}; decisions use ${free} meanwhile. Raise ${key} to change it.`,
    );
  }
}
