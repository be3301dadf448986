import { z } from "zod";
import type { Decision } from "../domain/types.js";

const reasons = z.array(z.string().trim().min(1).max(300)).min(1).max(6);
const confidence = z.number().min(0).max(1);
const pct = z.number().min(0).max(100);

/** The model's signal, as every action reports it. Anything outside these bounds is a failed call. */
export const DecisionSchema = z.object({
  symbol: z.string().regex(/^[A-Z0-9]+\/[A-Z0-9]+$/),
  action: z.enum(["buy", "sell", "hold", "close"]),
  sizePct: pct,
  confidence,
  reasons,
  stopLossPct: z.number().gt(0).max(100).optional(),
  takeProfitPct: z.number().gt(0).max(1000).optional(),
}).strict();

// The argument schemas of the agent's actions: what a model may send. The symbol is never one of
// them, so a model cannot trade a symbol other than the one it was asked about.
export const ExecuteTradeArgs = z.object({
  side: z.enum(["buy", "sell"]),
  sizePct: pct.describe("order size, percent of equity"),
  confidence,
  reasons,
  stopLossPct: z.number().gt(0).max(100).optional().describe("stop loss distance below entry, percent"),
  takeProfitPct: z.number().gt(0).max(1000).optional().describe("take profit distance above entry, percent"),
});
export const ClosePositionArgs = z.object({ confidence, reasons });
export const RebalanceArgs = z.object({
  targetPct: pct.describe("target weight of this symbol, percent of equity"),
  confidence,
  reasons,
});
export const RiskManagementArgs = z.object({
  stance: z.enum(["hold", "reduce-exposure"]),
  confidence,
  reasons,
});

export const ACTION_ARGS = {
  ExecuteTrade: ExecuteTradeArgs,
  ClosePosition: ClosePositionArgs,
  Rebalance: RebalanceArgs,
  RiskManagement: RiskManagementArgs,
} as const;
export type ActionName = keyof typeof ACTION_ARGS;
type ActionArgs = { [K in ActionName]: z.infer<(typeof ACTION_ARGS)[K]> };

/**
 * The decision an action's (validated) arguments stand for, on `symbol`, whose position weighs
 * `heldPct` percent of equity now. RiskManagement's "reduce-exposure" sells half the position.
 */
export function actionToDecision<K extends ActionName>(name: K, args: ActionArgs[K], symbol: string, heldPct: number): Decision {
  const { confidence, reasons } = args;
  switch (name) {
    case "ExecuteTrade": {
      const x = args as ActionArgs["ExecuteTrade"];
      return {
        symbol,
        action: x.side,
        sizePct: x.sizePct,
        confidence,
        reasons,
        ...(x.stopLossPct !== undefined ? { stopLossPct: x.stopLossPct } : {}),
        ...(x.takeProfitPct !== undefined ? { takeProfitPct: x.takeProfitPct } : {}),
      };
    }
    case "ClosePosition":
      return { symbol, action: "close", sizePct: 0, confidence, reasons };
    case "Rebalance":
      return rebalanceToDecision(symbol, (args as ActionArgs["Rebalance"]).targetPct, heldPct, confidence, reasons);
    default: {
      const reduce = (args as ActionArgs["RiskManagement"]).stance === "reduce-exposure" && heldPct > 0;
      return { symbol, action: reduce ? "sell" : "hold", sizePct: reduce ? Number((heldPct / 2).toFixed(4)) : 0, confidence, reasons };
    }
  }
}

export type ValidationResult = { ok: true; decision: Decision } | { ok: false; error: string };

export function validateDecision(candidate: unknown): ValidationResult {
  if (candidate && typeof candidate === "object" && "invalid" in candidate) {
    return { ok: false, error: `invalid reply: ${String((candidate as { invalid: unknown }).invalid)}` };
  }
  const parsed = DecisionSchema.safeParse(candidate);
  if (parsed.success) return { ok: true, decision: parsed.data };
  const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "decision"}: ${i.message}`);
  return { ok: false, error: `invalid decision (${issues.join("; ")})` };
}

/**
 * Turns a Rebalance target into a trade: the difference between the target weight and the
 * current weight of the symbol. Differences under half a percent are not worth the fees.
 */
export function rebalanceToDecision(
  symbol: string,
  targetPct: number,
  currentPct: number,
  confidence: number,
  reasons: string[],
): Decision {
  const diff = targetPct - currentPct;
  if (Math.abs(diff) < 0.5) return { symbol, action: "hold", sizePct: 0, confidence, reasons };
  return { symbol, action: diff > 0 ? "buy" : "sell", sizePct: Math.abs(diff), confidence, reasons };
}
