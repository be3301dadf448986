// What paying per call costs in time, beside the model call: the same chat decisions paid with
// x402 v2 (402, sign, retry, verify and settle at the stand-in, book) and with an API key (no
// payment), against the router stand-in over loopback; and the parts measured on their own:
// signing a payment, the guards before it (balance rule, budget reservation) and the booking.
import { privateKeyToAccount } from "viem/accounts";
import { readOffers, chooseOffer, X402Payer } from "../src/payments/x402Payer.js";
import { TEST_API_KEY, TEST_WALLET_KEY } from "../test/support/routerApp.js";
import { percentile, saveResults } from "./results.js";
import { privateRedis, startRouterBench, type BenchRedis } from "./routerSetup.js";

const MODEL = "google-vertex/gemini-2.5-flash";
const DECISIONS = 40;
const PARTS = 200;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: Number(percentile(s, 50).toFixed(2)), p95: Number(percentile(s, 95).toFixed(2)) };
};

async function decisions(redis: BenchRedis, how: "x402" | "api-key") {
  const bench = await startRouterBench(
    redis,
    (c) => {
      c.market.symbols = ["BTC/USDT"];
      c.routing.cacheTtlMs = 0;
      if (how === "api-key") {
        c.router.auth = "api-key";
        c.router.apiKey = TEST_API_KEY;
        c.router.privateKey = undefined;
      }
    },
    { x402: "v2", apiKeys: [TEST_API_KEY] },
  );
  await bench.app.services.state.chooseModel(MODEL);
  await bench.app.decide({ decisionId: "warm-up", symbol: "BTC/USDT", trigger: "chat" });
  const took: number[] = [];
  for (let i = 0; i < DECISIONS; i++) {
    bench.clock.now += 1000;
    const t0 = performance.now();
    const r = await bench.app.decide({ decisionId: `pay:${how}:${i}`, symbol: "BTC/USDT", trigger: "chat" });
    took.push(performance.now() - t0);
    if (r.model !== MODEL) throw new Error(`decided by ${r.model}, not ${MODEL}: ${r.error ?? ""}`);
  }
  const paid = bench.standIn.payments.length;
  await bench.stop();
  return { ms: stats(took), payments: paid };
}

async function parts(redis: BenchRedis) {
  const bench = await startRouterBench(redis, (c) => (c.market.symbols = ["BTC/USDT"]), { x402: "v2" });
  const res = await fetch(`${bench.standIn.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "BTC/USDT" }] }) });
  const offer = chooseOffer(await readOffers(res), { network: "base-sepolia", payees: [] }).offer!;
  const payer = new X402Payer(privateKeyToAccount(TEST_WALLET_KEY));
  const sign: number[] = [];
  const guards: number[] = [];
  const booking: number[] = [];
  const { balance } = bench.app.services;
  const budget = bench.app.services.models.runtime!.budget;
  for (let i = 0; i < PARTS; i++) {
    let t0 = performance.now();
    await payer.sign(offer, `pay_bench_${i}`);
    sign.push(performance.now() - t0);
    t0 = performance.now();
    await balance.canMakeDecision(11_017);
    const r = await budget.reserve(`bench:${i}`, 11_017, bench.clock.now, 60_000);
    if (r.ok) await budget.release(r.reservation);
    guards.push(performance.now() - t0);
    t0 = performance.now();
    await balance.trackCost(`bench:${i}`, MODEL, 11_017, bench.clock.now);
    booking.push(performance.now() - t0);
  }
  await bench.stop();
  return { signMs: stats(sign), guardsMs: stats(guards), bookingMs: stats(booking) };
}

export async function benchPaymentOverhead(): Promise<unknown> {
  const redis = await privateRedis();
  try {
    const x402 = await decisions(redis, "x402");
    const apiKey = await decisions(redis, "api-key");
    const p = await parts(redis);
    const figures = {
      model: MODEL,
      decisions: DECISIONS,
      x402DecisionMs: x402.ms,
      apiKeyDecisionMs: apiKey.ms,
      paymentOverheadP50Ms: Number((x402.ms.p50 - apiKey.ms.p50).toFixed(2)),
      paymentsPerDecision: Number((x402.payments / (DECISIONS + 1)).toFixed(2)),
      ...p,
    };
    console.log("\nPayment overhead per paid call (x402 v2 against the stand-in, loopback; the model answers at once)");
    console.log(`  decision with x402:   p50 ${x402.ms.p50} ms, p95 ${x402.ms.p95} ms (${figures.paymentsPerDecision} payments per decision)`);
    console.log(`  decision with a key:  p50 ${apiKey.ms.p50} ms, p95 ${apiKey.ms.p95} ms`);
    console.log(`  paying adds:          p50 ${figures.paymentOverheadP50Ms} ms (the 402 round trip, signing, the stand-in's verify and settle, booking)`);
    console.log(`  parts: sign p50 ${p.signMs.p50} ms · guards (balance + budget reserve/release) p50 ${p.guardsMs.p50} ms · booking (one Redis script) p50 ${p.bookingMs.p50} ms`);
    saveResults("paymentOverhead", figures);
    return figures;
  } finally {
    await redis.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchPaymentOverhead();
  process.exit(0);
}
