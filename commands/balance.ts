import { USDC } from "../src/domain/types.js";
import { levelOf } from "../src/payments/balanceManager.js";
import { openSessionLine } from "../src/payments/sessionText.js";
import { money, usdc } from "../src/chat/format.js";
import { equity } from "../src/portfolio/valuation.js";
import { loadPortfolio } from "../src/orders/orderPath.js";
import { defineCommand, noArgs, type Needs } from "./types.js";

export const balance = defineCommand<undefined, Needs<"mode" | "sessions", "balance" | "exchange" | "portfolio" | "market" | "quote" | "clock" | "openOrders">>({
  name: "balance",
  summary: "USDC for model calls, and the trading account",
  usage: "/balance",
  minRole: "viewer",
  parse: noArgs("/balance"),
  async run(_, { app }) {
    const b = app.services.balance;
    const micro = await b.getBalance();
    const level = levelOf(micro, b.rules);
    const [portfolio, sessions] = await Promise.all([loadPortfolio(app.services), app.sessions?.recent(3)]);
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    const levelText = { ok: "OK", low: `LOW (under $${b.rules.minBalance.toFixed(2)})`, critical: `CRITICAL (under $${b.rules.criticalBalance.toFixed(2)}: trading pauses)` }[level];
    return {
      text: [
        `USDC for model calls: ${usdc(micro, 2)} — ${levelText}`,
        `  ${b.describeWallet()}`,
        `  warn < $${b.rules.minBalance.toFixed(2)}, pause < $${b.rules.criticalBalance.toFixed(2)}, auto-refill ${b.rules.autoRefill ? `on (+$${b.rules.refillAmount.toFixed(2)} under $${b.rules.refillThreshold.toFixed(2)})` : "off"}`,
        ...(sessions ? [`  ${openSessionLine(sessions, app.services.clock())}`] : []),
        `Trading account${tag}: cash ${money(portfolio.cash, app.services.quote)}, equity ${money(equity(portfolio), app.services.quote)}, ${portfolio.positions.length} open position(s)`,
      ].join("\n"),
    };
  },
});

const MAX_REFILL = 1000;
const refillUsage = "/refill AMOUNT";

export const refill = defineCommand<number, Needs<"notifier" | "sessions", "balance" | "state">>({
  name: "refill",
  summary: `Add USDC to the payment wallet: paper, or on chain from the funding wallet (up to $${MAX_REFILL} at a time)`,
  usage: refillUsage,
  example: "/refill 10",
  minRole: "admin",
  mutates: true,
  options: [{ name: "amount", description: `USDC to add, 0.01 to ${MAX_REFILL}`, kind: "number", required: true, min: 0.01, max: MAX_REFILL }],
  async confirm(amount, { app }) {
    // A wallet with no refill source refuses anyway: say so at once instead of asking first.
    if (!app.services.balance.refillable) return undefined;
    const now = await app.services.balance.getBalance();
    if (app.services.balance.walletKind === "onchain") {
      return `Refill: move $${amount.toFixed(2)} of real USDC from the funding wallet to the ${app.services.balance.describeWallet()}? Balance now ${usdc(now, 2)}.`;
    }
    return `Refill: add $${amount.toFixed(2)} to the ${app.services.balance.describeWallet()}? Balance now ${usdc(now, 2)}.`;
  },
  parse(args) {
    const raw = args[0];
    const help = `Usage: ${refillUsage}, a USDC amount from 0.01 to ${MAX_REFILL}, e.g. /refill 10`;
    if (args.length !== 1 || raw === undefined) return { ok: false, error: help };
    if (!/^\d+(\.\d{1,6})?$/.test(raw)) return { ok: false, error: `"${raw.slice(0, 20)}" is not an amount. ${help}` };
    const amount = Number(raw);
    if (amount < 0.01 || amount > MAX_REFILL) return { ok: false, error: `Amount must be from 0.01 to ${MAX_REFILL}. ${help}` };
    return { ok: true, value: amount };
  },
  async run(amount, { app, user, confirmationId }) {
    // The confirmation's id is the request's: a retried run of the same confirmation moves the USDC once.
    const result = await app.services.balance.refill(USDC(amount), confirmationId);
    if (!result.ok) return { text: `Refill failed, nothing was booked: ${result.reason}`, error: true };
    // The router said the wallet was short: with USDC in, paid calls may go again at once.
    await app.sessions?.walletTopped();
    const tx = result.transaction;
    const lines = [
      tx
        ? `Refilled $${amount.toFixed(2)} on chain${tx.again ? " (already done for this request)" : ""}: ${tx.link}
USDC balance now ${usdc(result.balance, 2)}.`
        : `Refilled $${amount.toFixed(2)}. USDC balance now ${usdc(result.balance, 2)}.`,
    ];
    if (levelOf(result.balance, app.services.balance.rules) !== "critical" && (await app.services.state.resume("critical-balance"))) {
      lines.push("Trading was paused for a critical balance: it is resumed.");
      await app.notifier.notify({ type: "resumed", by: user.name, after: "refill" });
    }
    return { text: lines.join("\n") };
  },
});
