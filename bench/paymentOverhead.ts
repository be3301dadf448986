// What paying costs in time, beside the model call:
//  - a call on an open permit session (the hosted router: the permit rides on the request, no 402
//    round trip, no settlement wait) against an API-key call, on the hosted-router stand-in
//    (test/support/xgateStandIn.ts) with its chain; the target is at most 1 ms more at p50;
//  - the same chat decisions paid per call with x402 v2 (402, sign, retry, verify and settle at the
//    stand-in, book) and with an API key, against the per-call stand-in over loopback;
//  - the parts on their own: signing a payment, the guards before it (balance rule, budget
//    reservation) and the booking.
import { Redis } from "ioredis";
import { privateKeyToAccount } from "viem/accounts";
import { readOffers, chooseOffer, X402Payer } from "../src/payments/x402Payer.js";
import { TEST_API_KEY, TEST_WALLET_KEY } from "../test/support/routerApp.js";
import { percentile, saveResults } from "./results.js";
import { privateRedis, startRouterBench, type BenchRedis } from "./routerSetup.js";
import { buildApp } from "../src/app.js";
import { startDevChain } from "../src/chain/devChain.js";
import { loadConfig } from "../src/config/config.js";
import { chainFacilitator } from "../test/support/chainFacilitator.js";
import { XgateStandIn } from "../test/support/xgateStandIn.js";

const SESSION_MODEL = "google:gemini-2.5-flash";
const SESSION_DECISIONS = 300;

/** Chat decisions on the hosted-router stand-in: paid on an open permit session, or billed to an API key. */
async function sessionDecisions(redis: BenchRedis) {
  const chain = await startDevChain();
  const key = "xgate-bench-key";
  const standIn = await XgateStandIn.start({ signer: chainFacilitator(chain.url, chain.account(3)), apiKeys: [key], sweeper: { intervalMs: 0 } });
  await chain.mint(chain.account(5).address, 1_000_000_000n);
  // Both agents side by side (the session one and the key one, each in its own Redis database) and
  // asked in turn, decision by decision, so a busier moment of the machine falls on both alike.
  const start = async (how: "session" | "api-key", db: number) => {
    const loaded = loadConfig({ LOG_LEVEL: "error", CONSOLE: "off", SYMBOLS: "BTC/USDT", DECISION_MODEL: "router", DREAMS_ROUTER_URL: standIn.url, BASE_RPC_URL: chain.url, DECISION_CACHE_TTL_SECONDS: "0", DAILY_BUDGET_USDC: "1000", MONTHLY_BUDGET_USDC: "10000", SESSION_CAP_USDC: "50", ...(how === "session" ? { ROUTER_AUTH: "x402", X402_PRIVATE_KEY: chain.privateKey(5) } : { ROUTER_AUTH: "api-key", DREAMS_ROUTER_API_KEY: key }) });
    if (!loaded.ok) throw new Error(loaded.message);
    const app = await buildApp(loaded.config, `${redis.url}/${db}`, { queuePrefix: `bench-${how}` });
    await app.services.state.chooseModel(SESSION_MODEL);
    // The first paid call signs the permit (a nonce read, a signature): outside the figure, as it happens once per session.
    await app.decide({ decisionId: `warm:${how}`, symbol: "BTC/USDT", trigger: "chat" });
    return app;
  };
  const runBoth = async () => {
    await redis.flush();
    const session = await start("session", 1);
    const keyed = await start("api-key", 2);
    const took = { session: [] as number[], key: [] as number[] };
    // Redis commands per decision, by database: a count, which a busy machine does not blur.
    const commands = new Map<string, number>();
    const watcher = await new Redis(redis.url).monitor();
    watcher.on("monitor", (_time: string, _args: string[], _source: string, db: string) => commands.set(db, (commands.get(db) ?? 0) + 1));
    // The router's part, timed on the agents' own requests: from the request until the response's
    // headers, which the stand-in writes only after it has verified the permit (or the key) and
    // tracked the call. What is left of a decision's time is the agent's.
    const net = { session: [] as number[], key: [] as number[] };
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (!url.startsWith(`${standIn.url}/v1/chat/completions`)) return realFetch(input, init);
      const permit = new Headers(init?.headers).has("payment-signature");
      const t0 = performance.now();
      const res = await realFetch(input, init);
      (permit ? net.session : net.key).push(performance.now() - t0);
      return res;
    }) as typeof fetch;
    try {
      for (let i = 0; i < SESSION_DECISIONS; i++) {
        for (const [app, into, how] of i % 2 ? ([[keyed, took.key, "key"], [session, took.session, "session"]] as const) : ([[session, took.session, "session"], [keyed, took.key, "key"]] as const)) {
          const t0 = performance.now();
          const r = await app.decide({ decisionId: `${how}:${i}`, symbol: "BTC/USDT", trigger: "chat" });
          into.push(performance.now() - t0);
          if (r.model !== SESSION_MODEL) throw new Error(`decided by ${r.model}, not ${SESSION_MODEL}: ${r.error ?? ""}`);
        }
      }
    } finally {
      globalThis.fetch = realFetch;
    }
    if (net.session.length < SESSION_DECISIONS || net.key.length < SESSION_DECISIONS) throw new Error(`timed ${net.session.length} session and ${net.key.length} key calls of ${SESSION_DECISIONS} each: the agents did not call through fetch`);
    watcher.disconnect();
    const sessions = session.sessions ? (await session.sessions.recent(5)).length : 0;
    await session.stop();
    await keyed.stop();
    // The router settles and closes the session, so its permit is applied and a next run's permit takes the next nonce.
    await standIn.closeSessions();
    const per = (db: string) => Number(((commands.get(db) ?? 0) / SESSION_DECISIONS).toFixed(1));
    return { session: { ms: stats(took.session), redisCommands: per("1") }, apiKey: { ms: stats(took.key), redisCommands: per("2") }, sessions, routerSideMs: Number((stats(net.session).p50 - stats(net.key).p50).toFixed(2)) };
  };
  try {
    const both = await runBoth();
    return { session: both.session, apiKey: both.apiKey, signatures: both.sessions * 2, routerSideMs: both.routerSideMs };
  } finally {
    await standIn.close();
    await chain.close();
  }
}

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
    const session = await sessionDecisions(redis);
    const x402 = await decisions(redis, "x402");
    const apiKey = await decisions(redis, "api-key");
    const p = await parts(redis);
    const figures = {
      session: {
        model: SESSION_MODEL,
        decisions: SESSION_DECISIONS,
        sessionDecisionMs: session.session.ms,
        apiKeyDecisionMs: session.apiKey.ms,
        sessionOverheadP50Ms: Number((session.session.ms.p50 - session.apiKey.ms.p50).toFixed(2)),
        routerSideP50Ms: session.routerSideMs,
        agentSideP50Ms: Number((session.session.ms.p50 - session.apiKey.ms.p50 - session.routerSideMs).toFixed(2)),
        redisCommandsPerDecision: { session: session.session.redisCommands, apiKey: session.apiKey.redisCommands },
        signaturesPerRun: session.signatures / 2,
        targetP50Ms: 1,
      },
      model: MODEL,
      decisions: DECISIONS,
      x402DecisionMs: x402.ms,
      apiKeyDecisionMs: apiKey.ms,
      paymentOverheadP50Ms: Number((x402.ms.p50 - apiKey.ms.p50).toFixed(2)),
      paymentsPerDecision: Number((x402.payments / (DECISIONS + 1)).toFixed(2)),
      ...p,
    };
    const so = figures.session;
    console.log("\nA call on an open permit session against an API-key call (hosted-router stand-in, loopback; the model answers at once)");
    console.log(`  decision on a session: p50 ${so.sessionDecisionMs.p50} ms, p95 ${so.sessionDecisionMs.p95} ms (${so.signaturesPerRun} permit signed for ${SESSION_DECISIONS + 1} paid calls)`);
    console.log(`  decision with a key:   p50 ${so.apiKeyDecisionMs.p50} ms, p95 ${so.apiKeyDecisionMs.p95} ms`);
    console.log(`  the session adds:      p50 ${so.sessionOverheadP50Ms} ms end to end, of which ${so.routerSideP50Ms} ms is the router's (request to response headers: it verifies the permit and tracks the call)`);
    console.log(`  the agent's part:      p50 ${so.agentSideP50Ms} ms (target: at most ${so.targetP50Ms} ms)`);
    console.log(`  Redis commands:        ${so.redisCommandsPerDecision.session} per decision on a session, ${so.redisCommandsPerDecision.apiKey} with a key`);
    console.log("\nPayment overhead per paid call (x402 v2 against the per-call stand-in, loopback; the model answers at once)");
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
