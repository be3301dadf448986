// The shape of every reply the dashboard API sends. Each reply is parsed with its schema before it
// leaves, so a field that is not declared here (a permit's signature, a payment header) is dropped
// rather than served; GET /api/schemas lists them as JSON Schema.
import { z } from "zod";

const num = z.number();
const time = z.number().int();
const micro = z.number();

export const meReply = z.object({
  user: z.object({ platform: z.string(), id: z.string(), name: z.string() }),
  role: z.enum(["viewer", "trader", "admin"]),
  paper: z.boolean(),
  mode: z.object({ trading: z.string(), market: z.string(), model: z.string() }),
  symbols: z.array(z.string()),
  quote: z.string(),
  expiresAt: time.nullable(),
});

export const positionsReply = z.object({
  quote: z.string(),
  cash: num,
  equity: num,
  positions: z.array(
    z.object({
      symbol: z.string(),
      qty: num,
      entryPrice: num,
      last: num,
      stopLoss: num,
      takeProfit: num,
      trailingStopPct: num.optional(),
      openedAt: time,
      notional: num,
      unrealizedPnl: num,
    }),
  ),
  pendingOrders: z.array(z.object({ symbol: z.string(), side: z.string(), qty: num, origin: z.string(), state: z.string(), lookups: num, sentAt: time })),
});

export const ordersReply = z.object({
  open: z.array(z.object({ id: z.string(), symbol: z.string(), side: z.string(), qty: num, limitPrice: num, filledQty: num, placedAt: time, origin: z.string() })),
  filled: z.array(z.object({ orderId: z.string(), clientOrderId: z.string(), time, symbol: z.string(), side: z.string(), qty: num, price: num, fee: num, realized: num })),
});

const pnlRow = { pnl: num, trades: num, wins: num };
export const tradesReply = z.object({
  quote: z.string(),
  trades: z.array(z.object({ symbol: z.string(), time, qty: num, entryPrice: num, exitPrice: num, pnl: num })),
  realizedPnl: num,
  byDay: z.array(z.object({ day: z.string(), ...pnlRow })),
  bySymbol: z.array(z.object({ symbol: z.string(), ...pnlRow })),
});

export const equityReply = z.object({
  quote: z.string(),
  points: z.array(z.object({ time, equity: num, drawdownPct: num })),
  maxDrawdownPct: num,
});

export const priceReply = z.object({
  symbol: z.string(),
  candles: z.array(z.object({ time, open: num, high: num, low: num, close: num })),
  markers: z.array(z.object({ time, kind: z.enum(["entry", "exit"]), side: z.string(), price: num, label: z.string() })),
  stops: z.object({ entry: num, stopLoss: num, takeProfit: num }).nullable(),
});

export const diaryEntry = z.object({
  id: z.string(),
  time,
  symbol: z.string(),
  trigger: z.string(),
  action: z.string(),
  outcome: z.string(),
  model: z.string(),
  costMicro: micro,
  latencyMs: num,
  confidence: num.optional(),
  sizePct: num.optional(),
  reasons: z.array(z.string()),
  indicators: z.record(z.string(), z.union([num, z.string()])),
  risk: z.object({ outcome: z.string(), message: z.string(), rules: z.array(z.string()) }).optional(),
  order: z.object({ id: z.string(), side: z.string(), qty: num, avgPrice: num, fee: num, status: z.string(), reason: z.string().optional() }).optional(),
  research: z.object({ source: z.string(), available: z.boolean(), served: z.string(), costMicro: micro, note: z.string().optional() }).optional(),
  error: z.string().optional(),
  saver: z.string().optional(),
});

export const diaryReply = z.object({ entries: z.array(diaryEntry), next: z.string().nullable() });

export const spendReply = z.object({
  caps: z.object({ dailyMicro: micro, monthlyMicro: micro }),
  today: z.object({ spentMicro: micro, reservedMicro: micro }),
  month: z.object({ spentMicro: micro, reservedMicro: micro }),
  perDay: z.array(z.object({ day: z.string(), costMicro: micro, calls: num, perModel: z.record(z.string(), micro) })),
  perModel: z.array(z.object({ model: z.string(), costMicro: micro, calls: num })),
  sessions: z.array(
    z.object({
      id: z.string(),
      status: z.string(),
      network: z.string(),
      capMicro: micro,
      signedAt: time,
      deadline: num,
      calls: num,
      bookedMicro: micro,
      settledMicro: micro,
      leftMicro: micro,
      reason: z.string().optional(),
      batches: z.array(z.object({ transaction: z.string(), micro, block: z.string(), calls: num, at: num })),
    }),
  ),
});

export const balanceReply = z.object({
  balanceMicro: micro,
  level: z.enum(["ok", "low", "critical"]),
  wallet: z.string(),
  rules: z.object({ minBalance: num, criticalBalance: num, autoRefill: z.boolean() }),
  history: z.array(z.object({ time, balanceMicro: micro })),
});

export const auditReply = z.object({
  entries: z.array(
    z.object({ time, platform: z.string(), userId: z.string(), user: z.string(), role: z.string(), where: z.string(), command: z.string(), result: z.string(), detail: z.string() }),
  ),
});

export const statusReply = z.object({
  status: z.enum(["ok", "unavailable"]),
  paused: z.boolean(),
  failing: z.array(z.string()),
  parts: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() })),
});

export const errorReply = z.object({ error: z.string(), how: z.string().optional() });

/** Every reply schema by route, for GET /api/schemas and the tests. */
export const REPLY_SCHEMAS = {
  "/api/me": meReply,
  "/api/positions": positionsReply,
  "/api/orders": ordersReply,
  "/api/trades": tradesReply,
  "/api/equity": equityReply,
  "/api/price": priceReply,
  "/api/diary": diaryReply,
  "/api/spend": spendReply,
  "/api/balance": balanceReply,
  "/api/audit": auditReply,
  "/api/status": statusReply,
} as const;
