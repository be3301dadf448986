import type { App } from "../src/app.js";
import { money, price } from "../src/chat/format.js";
import { checkStops } from "../src/risk/rules.js";

/**
 * Enforces the stop loss and take profit of every open position. It runs while trading is paused:
 * a pause stops new decisions, never the protection of what is already open.
 */
export async function runPositionMonitor(app: App): Promise<number> {
  return app.services.tradeLock.run(() => checkPositions(app));
}

async function checkPositions(app: App): Promise<number> {
  const s = app.services;
  let closed = 0;
  for (const position of await s.portfolio.positions()) {
    const candle = s.market.currentCandle
      ? await s.market.currentCandle(position.symbol)
      : await s.market.lastPrice(position.symbol).then((p) => ({ open: p, high: p, low: p }));
    const hit = checkStops(position, candle);
    if (!hit) continue;
    // One exit per position: a retried job finds this order instead of selling twice.
    const order = await s.exchange.placeOrder({
      clientOrderId: `exit:${position.symbol}:${position.openedAt}`,
      symbol: position.symbol,
      side: "sell",
      qty: position.qty,
    });
    if (order.status === "rejected") {
      await app.notifier.notify({ kind: "error", text: `Could not close ${position.symbol} at its ${hit.hit}: ${order.reason ?? "rejected"}` });
      continue;
    }
    const { realizedPnl } = await s.portfolio.applyFill(order);
    closed++;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    const gap = hit.price !== (hit.hit === "stop-loss" ? position.stopLoss : position.takeProfit) ? " (the price gapped through the level)" : "";
    await app.notifier.notify({
      kind: "trade",
      text: `${hit.hit === "stop-loss" ? "Stop loss" : "Take profit"} hit on ${position.symbol}${gap}: sold ${order.filledQty.toFixed(6)} @ ${price(order.avgPrice)}, P&L ${money(realizedPnl, s.quote)}${tag}`,
    });
  }
  return closed;
}
