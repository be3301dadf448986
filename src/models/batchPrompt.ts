// Batched decisions: several symbols in one model call, each answer validated on its own. Pure:
// the prompt in, the per-symbol verdicts out. A bad answer for one symbol costs only that symbol.
import { z } from "zod";
import type { IndicatorSnapshot, MarketSymbol, Position, RiskLimits } from "../domain/types.js";
import { ACTION_ARGS, actionToDecision, validateDecision, type ActionName, type ValidationResult } from "../decision/schema.js";

export interface BatchItem {
  symbol: MarketSymbol;
  snapshot: IndicatorSnapshot;
  position?: Position;
}

export interface BatchContext {
  equity: number;
  cash: number;
  exposurePct: number;
  limits: RiskLimits;
}

const r2 = (n: number) => Number(n.toFixed(2));

/** The prompt of one batched call, as an AI SDK v2 prompt (system + user). */
export function batchPrompt(items: BatchItem[], ctx: BatchContext): { role: "system" | "user"; content: string }[] {
  const markets = items.map(({ symbol, snapshot: s, position }) => ({
    symbol,
    candleTime: new Date(s.candleTime).toISOString(),
    price: s.price,
    sma20: r2(s.sma20),
    sma50: r2(s.sma50),
    rsi14: r2(s.rsi14),
    macdHistogram: r2(s.macd.histogram),
    bollinger: { upper: r2(s.bollinger.upper), lower: r2(s.bollinger.lower) },
    atr14: r2(s.atr14),
    volatility: Number(s.volatility.toFixed(4)),
    signal: s.signal,
    signalScore: Number(s.signalScore.toFixed(3)),
    position: position ? { qty: position.qty, entryPrice: position.entryPrice, stopLoss: position.stopLoss, takeProfit: position.takeProfit } : null,
  }));
  const system = [
    "You decide for a crypto trading agent (long-only spot), for several symbols at once.",
    "For EACH symbol listed, call exactly ONE action, and put the symbol in its JSON as \"symbol\".",
    "Actions: ExecuteTrade {symbol, side: buy|sell, sizePct (percent of equity), confidence 0-1, reasons[1-4], stopLossPct?, takeProfitPct?},",
    "ClosePosition {symbol, confidence, reasons}, Rebalance {symbol, targetPct, confidence, reasons}, RiskManagement {symbol, stance: hold|reduce-exposure, confidence, reasons}.",
    "Answer as <response><reasoning>...</reasoning><action_call name=\"ExecuteTrade\">{json}</action_call>...</response>.",
    "Hard risk limits are enforced in code after you answer: they may resize or refuse an order.",
  ].join("\n");
  const user = [
    `Symbols to decide: ${items.map((i) => i.symbol).join(", ")}`,
    `Portfolio: ${JSON.stringify({ equity: r2(ctx.equity), cash: r2(ctx.cash), exposurePct: r2(ctx.exposurePct) })}`,
    `Risk limits: ${JSON.stringify(ctx.limits)}`,
    `Markets: ${JSON.stringify(markets)}`,
  ].join("\n");
  return [
    { role: "system", content: system },
    { role: "user", content: user },
  ];
}

const withSymbol = <S extends z.ZodObject>(schema: S) => schema.extend({ symbol: z.string() });
const SCHEMAS = {
  ExecuteTrade: withSymbol(ACTION_ARGS.ExecuteTrade),
  ClosePosition: withSymbol(ACTION_ARGS.ClosePosition),
  Rebalance: withSymbol(ACTION_ARGS.Rebalance),
  RiskManagement: withSymbol(ACTION_ARGS.RiskManagement),
} as const;

/** One verdict per symbol asked about: a validated decision, or why there is none. */
export function parseBatchReply(text: string, items: BatchItem[], ctx: BatchContext): Map<MarketSymbol, ValidationResult> {
  const wanted = new Map(items.map((i) => [i.symbol, i]));
  const found = new Map<MarketSymbol, unknown[]>();
  for (const m of text.matchAll(/<action_call\s+name\s*=\s*"([^"]*)"\s*>([\s\S]*?)<\/action_call>/g)) {
    const name = m[1]!;
    let body: unknown;
    try {
      body = JSON.parse(m[2]!.trim());
    } catch {
      continue; // no symbol can be read from it: every symbol it might have been for stays unanswered
    }
    const symbol = (body as { symbol?: unknown })?.symbol;
    if (typeof symbol !== "string" || !wanted.has(symbol)) continue;
    found.set(symbol, [...(found.get(symbol) ?? []), { name, body }]);
  }
  const out = new Map<MarketSymbol, ValidationResult>();
  for (const item of items) {
    const calls = found.get(item.symbol) ?? [];
    if (calls.length === 0) out.set(item.symbol, { ok: false, error: `no valid action for ${item.symbol} in the batched reply` });
    else if (calls.length > 1) out.set(item.symbol, { ok: false, error: `${calls.length} actions for ${item.symbol} in the batched reply (expected one)` });
    else out.set(item.symbol, toDecision(calls[0] as { name: string; body: unknown }, item, ctx));
  }
  return out;
}

function toDecision(call: { name: string; body: unknown }, item: BatchItem, ctx: BatchContext): ValidationResult {
  const schema = SCHEMAS[call.name as keyof typeof SCHEMAS];
  if (!schema) return { ok: false, error: `unknown action "${call.name.slice(0, 40)}" for ${item.symbol}` };
  const parsed = schema.safeParse(call.body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`);
    return { ok: false, error: `invalid reply for ${item.symbol}: ${call.name} ${issues.join("; ")}` };
  }
  const held = item.position && ctx.equity > 0 ? ((item.position.qty * item.snapshot.price) / ctx.equity) * 100 : 0;
  return validateDecision(actionToDecision(call.name as ActionName, parsed.data as never, item.symbol, held));
}
