// A backtest with --real-calls pays the router through the same paid request as live decisions
// (src/payments/paidRequest.ts): the permit session or per-call x402 from the wallet, or the API
// key; the price cap and the balance rule before each call; the booking after; what the server
// refused never counted as spent. Its budget is the run's spending cap, its books live in the run's
// private Redis, and the run's report is what it paid.
import type { Redis } from "ioredis";
import { TradingAgent, type DecisionInputs } from "../agent/tradingAgent.js";
import { InMemoryKeyValueProvider } from "@daydreamsai/core";
import type { Config } from "../config/config.js";
import { USDC, type MicroUsdc } from "../domain/types.js";
import { Ledger, spendKeys } from "../ledger/ledger.js";
import type { RouterClient } from "../models/dreamsRouter.js";
import { ModelLayer } from "../models/modelLayer.js";
import { BalanceManager } from "../payments/balanceManager.js";
import { BudgetGuard } from "../payments/budgetGuard.js";
import { InflightPayments } from "../payments/inflight.js";
import { OnchainUsdcWallet } from "../payments/onchainWallet.js";
import { paidRequest, type PaymentServices } from "../payments/paidRequest.js";
import { PaperWallet } from "../payments/paperWallet.js";
import type { PricedModel } from "./models.js";

export interface PaidRouterModel extends PricedModel {
  /** Binds the payments to the run's Redis, once it runs; a decision before that is refused. */
  attach(redis: Redis, capUsdc: number): Promise<void>;
  /** What the run paid, as booked (µUSDC). */
  paidMicro(): MicroUsdc;
}

export async function paidRouterModel(o: { id: string; pricePerCallUsdc: number; client: RouterClient; config: Config; path: string; deadlineMs: number }): Promise<PaidRouterModel> {
  const agent = new TradingAgent(new InMemoryKeyValueProvider(), { audit: false });
  await agent.start();
  const layer = new ModelLayer({ factory: (id, f) => o.client.model(id, f), primary: o.id, fallbacks: [], estimateUsdc: o.pricePerCallUsdc });
  let svc: PaymentServices | undefined;
  let paid = 0;
  let n = 0;
  return {
    id: o.id,
    pricePerCallUsdc: o.pricePerCallUsdc,
    route: "router",
    path: o.path,
    paidMicro: () => paid,
    async attach(redis, capUsdc) {
      const c = o.config;
      const ledger = new Ledger(redis, "backtest:ledger:");
      const budget = new BudgetGuard(redis, { dailyMicro: USDC(capUsdc), monthlyMicro: USDC(capUsdc), maxPerCallMicro: USDC(c.routing.maxPricePerCall), maxPerDecisionMicro: USDC(c.routing.maxSpendPerDecision) }, spendKeys("backtest:ledger:"));
      const wallet = o.client.payer ? new OnchainUsdcWallet(o.client.payer as `0x${string}`, c.router.network, c.router.rpcUrl) : new PaperWallet(redis, USDC(c.balance.paperWalletStart));
      const balance = new BalanceManager(wallet, ledger, { minBalance: c.balance.minBalance, criticalBalance: c.balance.criticalBalance, refillThreshold: c.balance.refillThreshold, refillAmount: c.balance.refillAmount, autoRefill: false });
      svc = { budget, balance, inflight: new InflightPayments(redis), refusals: ledger, clock: Date.now };
      o.client.useSessions({ redis, budget, balance: { getBalance: () => balance.getBalance(), rules: balance.rules }, capMicro: USDC(Math.min(c.router.sessionCap, capUsdc)), ttlSeconds: c.router.sessionTtlSeconds, clock: Date.now });
      await o.client.refreshTerms();
    },
    async decide(inputs: DecisionInputs) {
      if (!svc) return { ok: false, error: "the run's payments are not ready", modelCalls: 0 };
      const chargeId = `backtest:${o.id}:${Date.now()}:${++n}`;
      const out = await paidRequest(
        svc,
        {
          item: o.id,
          chargeId,
          expectedMicro: USDC(o.pricePerCallUsdc),
          maxPerCallMicro: svc.budget.caps.maxPerCallMicro,
          capName: "MAX_PRICE_PER_CALL_USDC",
          leaseMs: o.deadlineMs + 60_000,
          budgetWaitMs: 0,
          pay: await o.client.payWith(),
          expect: { ...(o.client.network ? { network: o.client.network as "base" | "base-sepolia" } : {}), ...(o.client.payer ? { payer: o.client.payer } : {}), payees: o.config.routing.payees, chargeId },
        },
        (f, meter) => agent.decide(inputs, layer.routerModel(o.id, f, meter), o.deadlineMs),
      );
      paid += out.costMicro;
      if (out.refused) return { ok: false, error: `not paid: ${out.refused.reason}`, modelCalls: 0 };
      const r = out.value;
      if (!r) return { ok: false, error: `model call failed: ${(out.error as Error | undefined)?.message ?? "no answer"}`, modelCalls: out.costMicro > 0 ? 1 : 0 };
      return r.ok ? { ok: true, decision: r.decision, modelCalls: r.modelCalls } : { ok: false, error: r.error, modelCalls: r.modelCalls };
    },
    async close() {
      await agent.stop();
    },
  };
}
