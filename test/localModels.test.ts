// Free local models on an OpenAI-compatible server, against a stand-in that answers as Ollama's
// /v1 does (test/support/ollamaStandIn.ts): the provider streams; the agent decides through it
// with the same validation, breakers and recordings as router models, paying nothing; the
// model-not-pulled 404, the over-long prompt's 400 and a slow first token fail or pass as they
// should; and a recorded local run replays for free to identical trades.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildDecider } from "../src/backtest/deciders.js";
import { runBacktest, type BacktestOptions } from "../src/backtest/engine.js";
import { recordingModel, replayModel } from "../src/backtest/models.js";
import { main } from "../src/backtest/cli.js";
import { fromJsonl, MemoryRecordings } from "../src/models/recordings.js";
import { localModel, localName, toChatMessages } from "../src/localModels/openaiCompatible.js";
import { ModelLayer } from "../src/models/modelLayer.js";
import { loadCandles } from "../src/market/candles.js";
import { startTestApp, testConfig, type TestApp } from "./support/app.js";
import { GPT, startRouterApp, type RouterTestApp } from "./support/routerApp.js";
import { OllamaStandIn } from "./support/ollamaStandIn.js";

const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const btc = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));

const call = (name: string, args: Record<string, unknown>) => `<response><reasoning>local</reasoning><action_call name="${name}">${JSON.stringify(args)}</action_call></response>`;
const hold = () => call("RiskManagement", { stance: "hold", confidence: 0.5, reasons: ["local model holds"] });

/**
 * What our local "model" answers: it reads the market and portfolio contexts out of the prompt,
 * as a model would, and buys above SMA20 when flat, closes below it when holding.
 */
function trendReply(messages: { content: string }[]): string {
  const text = messages.map((m) => m.content).join("\n");
  const price = Number(/"price":([\d.]+)/.exec(text)?.[1]);
  const sma20 = Number(/"sma20":([\d.]+)/.exec(text)?.[1]);
  const flat = /"positions":\[\]/.test(text);
  if (flat && price > sma20) return call("ExecuteTrade", { side: "buy", sizePct: 5, confidence: 0.7, reasons: [`price ${price} above SMA20 ${sma20}`], stopLossPct: 3, takeProfitPct: 9 });
  if (!flat && price < sma20) return call("ClosePosition", { confidence: 0.7, reasons: [`price ${price} below SMA20 ${sma20}`] });
  return hold();
}

let ollama: OllamaStandIn;
beforeAll(async () => {
  ollama = new OllamaStandIn();
  await ollama.start();
});
afterAll(async () => {
  await ollama.stop();
});

describe("the OpenAI-compatible provider, against the Ollama stand-in", () => {
  it("streams the answer and reads usage, leaving a thinking model's reasoning out", async () => {
    ollama.pull("qwen3:4b", { reply: () => "The answer is 42, said in several tokens of text.", thinking: "Let me think about it first." });
    const model = localModel({ baseURL: ollama.url, model: "qwen3:4b" });
    expect(model.modelId).toBe("local:qwen3:4b");
    const { stream } = await model.doStream({ prompt: [{ role: "system", content: "Be brief." }, { role: "user", content: [{ type: "text", text: "What is it?" }] }] });
    const parts: { type: string; delta?: string; finishReason?: string; usage?: { inputTokens?: number } }[] = [];
    for await (const p of stream as unknown as AsyncIterable<(typeof parts)[number]>) parts.push(p);
    expect(parts.filter((p) => p.type === "text-delta").map((p) => p.delta).join("")).toBe("The answer is 42, said in several tokens of text.");
    expect(parts.filter((p) => p.type === "text-delta").length).toBeGreaterThan(1);
    expect(parts.at(-1)).toMatchObject({ type: "finish", finishReason: "stop", usage: { inputTokens: expect.any(Number) } });
    const sent = ollama.callsTo("qwen3:4b").at(-1)!;
    expect(sent.stream).toBe(true);
    expect(sent.messages).toEqual([{ role: "system", content: "Be brief." }, { role: "user", content: "What is it?" }]);
    expect(toChatMessages([{ role: "assistant", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }])).toEqual([{ role: "assistant", content: "ab" }]);
  });

  it("says a model is not pulled, as Ollama's 404 says it, with how to fix it", async () => {
    const model = localModel({ baseURL: ollama.url, model: "mistral" });
    await expect(model.doStream({ prompt: [{ role: "user", content: [{ type: "text", text: "hi" }] }] })).rejects.toMatchObject({
      statusCode: 404,
      message: "local:mistral: HTTP 404 model 'mistral' not found (is it pulled? ollama pull mistral)",
    });
  });
});

describe("a local model deciding live (DECISION_MODEL=local)", () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.app.stop();
    t = undefined;
  });
  const local = (models: string[], edit: (c: ReturnType<typeof testConfig>) => void = () => {}) =>
    testConfig((c) => {
      c.router.decisionModel = "local";
      c.local = { url: ollama.url, models, apiKey: undefined };
      c.routing.cacheTtlMs = 0;
      edit(c);
    });

  it("decides through the agent, for free: nothing booked, and the answer recorded for replay", async () => {
    ollama.pull("llama3.2", { reply: () => call("ExecuteTrade", { side: "buy", sizePct: 4, confidence: 0.8, reasons: ["local buy"] }) });
    t = await startTestApp(local(["llama3.2"]));
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record).toMatchObject({ model: "local:llama3.2", outcome: "order", action: "buy", sizePct: 4, costMicro: 0 });
    expect(record.attempts).toEqual([expect.objectContaining({ model: "local:llama3.2", ok: true, costMicro: 0 })]);
    expect(record.error).toBeUndefined(); // no billing note: nothing was expected, nothing booked
    expect(reply.text).toMatch(/Model: local:llama3\.2 · cost \$0\.0000/);
    // Streamed, as core always asks, and with no payment header of any kind.
    const sent = ollama.callsTo("llama3.2").at(-1)!;
    expect(sent.stream).toBe(true);
    expect(Object.keys(sent.headers).filter((h) => /payment|x-402|x402/i.test(h))).toEqual([]);
    // Nothing spent today; the answer is recorded like any model's, at no price.
    expect((await t.run("/balance")).text).toMatch(/USDC for model calls: \$10\.00/);
    const recordings = await t.app.services.models.runtime!.recordings!.all();
    expect(recordings).toEqual([expect.objectContaining({ model: "local:llama3.2", priceMicro: 0, answer: expect.objectContaining({ action: "buy", sizePct: 4 }) })]);
    expect((await t.run("/model")).text).toMatch(/local:llama3\.2 — economy, free \(local model\)/);
  });

  it("falls back when the model is not pulled (404), and its breaker learns it", async () => {
    t = await startTestApp(local(["phi4"], (c) => (c.routing.breakerFailures = 2)));
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record.model).toBe("offline-engine");
    expect(record.attempts).toEqual([expect.objectContaining({ model: "local:phi4", ok: false, failure: "unavailable", costMicro: 0 })]);
    expect(reply.text).toMatch(/local:phi4: unavailable, [^\n]*model 'phi4' not found \(is it pulled\? ollama pull phi4\)/);
    t.clock.advance(1);
    await t.run("/decide BTC");
    // Two failures in a row: the third decision skips it while it cools down.
    t.clock.advance(1);
    await t.run("/decide BTC");
    const third = (await t.app.services.ledger.recent(1))[0]!;
    expect(third.attempts).toEqual([expect.objectContaining({ model: "local:phi4", skipped: true })]);
    expect(ollama.callsTo("phi4")).toHaveLength(2);
  });

  it("refuses an answer made from a prompt Ollama cut to fit its context, even a valid one, and falls back", async () => {
    // A context of 200 tokens: Ollama drops the user message (the whole market) and keeps only the
    // last one, core's short prefill. The model still answers a valid buy: it must not be used.
    ollama.pull("tiny", { reply: () => call("ExecuteTrade", { side: "buy", sizePct: 9, confidence: 0.9, reasons: ["blind"] }), numCtx: 200 });
    t = await startTestApp(local(["tiny"]));
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record.model).toBe("offline-engine");
    expect(record.attempts).toEqual([expect.objectContaining({ model: "local:tiny", ok: false })]);
    expect(reply.text).toMatch(/local:tiny: prompt cut by the server's context \(3 of about \d+ tokens read\), answer not used; raise it \(Ollama: OLLAMA_CONTEXT_LENGTH=8192\)/);
    // What the stand-in kept: the user message is gone.
    expect(ollama.callsTo("tiny")[0]!.messages.length).toBe(2);
  });

  it("does not retry a prompt a server refuses as longer than its context (400), and falls back", async () => {
    // llama.cpp's own server truncates nothing: it answers 400.
    ollama.pull("strict", { reply: hold, numCtx: 200, truncate: false });
    t = await startTestApp(local(["strict"]));
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record.model).toBe("offline-engine");
    expect(record.attempts).toEqual([expect.objectContaining({ model: "local:strict", failure: "rejected" })]);
    expect(reply.text).toMatch(/local:strict: rejected, [^\n]*HTTP 400 request \(\d+ tokens\) exceeds the available context size \(200 tokens\)/);
    expect(ollama.callsTo("strict")).toHaveLength(1);
    // Through Ollama, a single message too long for the context gets the same 400, wrapped in Ollama's error.
    const direct = localModel({ baseURL: ollama.url, model: "tiny" });
    await expect(direct.doStream({ prompt: [{ role: "user", content: [{ type: "text", text: "x".repeat(4_000) }] }] })).rejects.toMatchObject({
      statusCode: 400,
      message: expect.stringMatching(/^local:tiny: HTTP 400 \{"error":\{"code":400,"message":"request \(1000 tokens\) exceeds the available context size \(200 tokens\), try increasing it","type":"exceed_context_size_error"/),
    });
  });

  it("waits for a slow first token within the model's timeout, and gives up on one past it", async () => {
    ollama.pull("cold", { reply: hold, loadMs: 1500 });
    ollama.pull("frozen", { reply: hold, firstTokenMs: 60_000 });
    t = await startTestApp(local(["cold"], (c) => (c.routing.modelTimeouts = { "local:cold": 20_000 })));
    await t.run("/decide BTC");
    expect((await t.app.services.ledger.recent(1))[0]).toMatchObject({ model: "local:cold", action: "hold" });
    await t.app.stop();
    t = await startTestApp(local(["frozen"], (c) => (c.routing.modelTimeouts = { "local:frozen": 1500 })));
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record.model).toBe("offline-engine");
    expect(record.attempts).toEqual([expect.objectContaining({ model: "local:frozen", failure: "timeout" })]);
    expect(reply.text).toMatch(/local:frozen: timeout, no decision within 1500 ms/);
  });
});

describe("a local model after the router's models", () => {
  let t: RouterTestApp | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it("is still asked when paid calls stop at the budget, and is never paid", async () => {
    ollama.pull("llama3.2", { reply: () => call("ExecuteTrade", { side: "buy", sizePct: 3, confidence: 0.7, reasons: ["local after the router"] }) });
    t = await startRouterApp((c) => {
      c.local = { url: ollama.url, models: ["llama3.2"], apiKey: undefined };
      // Under the price of any router call: every paid call is refused before it is made.
      c.balance.dailyBudget = 0.001;
    });
    await t.run(`/model ${GPT}`);
    const before = ollama.callsTo("llama3.2").length;
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record).toMatchObject({ model: "local:llama3.2", action: "buy", sizePct: 3, costMicro: 0 });
    expect(record.attempts!.map((a) => [a.model, a.failure ?? "ok"])).toEqual([[GPT, "over-budget"], ["local:llama3.2", "ok"]]);
    expect(reply.text).toMatch(/Model: local:llama3\.2/);
    // The router saw nothing and was paid nothing; the local server got no payment header.
    expect(t.standIn.calls).toHaveLength(0);
    expect(t.standIn.payments).toHaveLength(0);
    const sent = ollama.callsTo("llama3.2").slice(before);
    expect(sent).toHaveLength(1);
    expect(Object.keys(sent[0]!.headers).filter((h) => /payment|x-402|x402/i.test(h))).toEqual([]);
  });
});

describe("a local model beside a router paid from a wallet", () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.app.stop();
    t = undefined;
  });

  it("never asks how the router is paid: no permit or payer is ever put on a local model's requests", async () => {
    ollama.pull("llama3.2", { reply: () => call("ExecuteTrade", { side: "buy", sizePct: 2, confidence: 0.7, reasons: ["unpaid"] }) });
    // Our seam: how calls are paid (a permit session, a payer). Asked, it would hand the request a payment.
    let askedHowToPay = 0;
    const layer = new ModelLayer({
      factory: (id, f) => localModel({ baseURL: ollama.url, model: localName(id), fetch: f }),
      payWith: async () => {
        askedHowToPay++;
        throw new Error("a local model must never be paid");
      },
      primary: "local:llama3.2",
      fallbacks: [],
      estimateUsdc: 0.04,
      paysPerCall: true,
    });
    t = await startTestApp(testConfig((c) => (c.routing.cacheTtlMs = 0)), { models: layer });
    await t.run("/decide BTC");
    expect((await t.app.services.ledger.recent(1))[0]).toMatchObject({ model: "local:llama3.2", action: "buy", costMicro: 0 });
    expect(askedHowToPay).toBe(0);
  });
});

describe("a recorded local run replays for free", () => {
  let redis: Redis;
  const dir = mkdtempSync(join(tmpdir(), "local-replay-"));
  beforeAll(async () => {
    const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
    redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { db: worker % 8, maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await redis.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  it("to identical trades, with no call made", async () => {
    ollama.pull("trend", { reply: trendReply });
    const config = testConfig();
    const model = await buildDecider({ kind: "local", id: "local:trend" }, { config, cwd: process.cwd(), realCalls: false, throughCore: false, localUrl: ollama.url });
    const store = new MemoryRecordings();
    const recording = recordingModel(model, store);
    const base = (m: BacktestOptions["model"]): BacktestOptions => ({
      symbol: "BTC/USDT", timeframe: "2h", candles: btc, from: Date.UTC(2022, 5, 1), to: Date.UTC(2022, 5, 8) - 1,
      model: m, limits: config.risk, feeRate: 0.001, slippageBps: 5, startingCash: 10_000, redis,
    });
    await redis.flushdb();
    let first;
    try {
      first = await runBacktest(base(recording));
    } finally {
      await model.close();
    }
    const firstTrades = await redis.lrange("portfolio:closed", 0, -1);
    expect(first.report.model.route).toBe("local");
    expect(first.report.strategy.orders).toBeGreaterThan(2);
    expect(first.report.strategy.aiSpend).toBe(0);
    expect(first.report.decidedBy.counts).toEqual({ "local model calls": first.report.candles });
    expect(recording.recorded()).toBe(first.report.candles);
    const callsAfterRecording = ollama.callsTo("trend").length;
    expect(callsAfterRecording).toBe(first.report.candles);

    await redis.flushdb();
    const again = await runBacktest(base(replayModel(store, "local:trend", "test")));
    expect(again.curves.strategy).toEqual(first.curves.strategy);
    expect(await redis.lrange("portfolio:closed", 0, -1)).toEqual(firstTrades);
    expect(again.report.model.replayed).toBe(again.report.candles);
    expect(ollama.callsTo("trend")).toHaveLength(callsAfterRecording);
  });

  it("from the command line: --model local:NAME records to a file, --replay of it makes no call", async () => {
    ollama.pull("trend", { reply: trendReply });
    const file = join(dir, "local.jsonl");
    const out: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
    let calls = 0;
    const report = join(dir, "backtest-BTC_USDT-2h-2022-06-01-2022-06-02-local_trend.json");
    const curve = () => (JSON.parse(readFileSync(report, "utf8")) as { curves: { strategy: unknown } }).curves.strategy;
    let recordedCurve: unknown;
    try {
      expect(await main(["--from", "2022-06-01", "--to", "2022-06-02", "--model", "local:trend", "--local-url", ollama.url, "--record", file, "--out", dir], {})).toBe(0);
      calls = ollama.callsTo("trend").length;
      recordedCurve = curve();
      expect(await main(["--from", "2022-06-01", "--to", "2022-06-02", "--replay", file, "--out", dir], {})).toBe(0);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
    }
    const text = out.join("");
    expect(text).toMatch(/local:trend: 24 decisions, free/);
    expect(text).toMatch(/Decided by: 24 decisions: local model calls 24: calls to the local model local:trend, free/);
    expect(text).toMatch(/Decided by: 24 decisions: recording 24: replayed from recordings of local:trend, free and reproducible/);
    expect(fromJsonl(readFileSync(file, "utf8"))).toHaveLength(24);
    expect(ollama.callsTo("trend")).toHaveLength(calls);
    expect(curve()).toEqual(recordedCurve);
  });
});

describe("npm run backtest -- --compare", () => {
  it("runs each decider on the same candles, side by side, with each one's AI spend in its figures", async () => {
    ollama.pull("trend", { reply: trendReply });
    const dir = mkdtempSync(join(tmpdir(), "compare-"));
    const recorded = join(dir, "recorded.jsonl");
    const out: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
    try {
      const range = ["--from", "2022-06-01", "--to", "2022-06-03", "--out", dir];
      // Record the local model's run first, then compare it live, replayed, and beside the others.
      expect(await main([...range, "--model", "local:trend", "--local-url", ollama.url, "--record", recorded], {})).toBe(0);
      out.length = 0;
      expect(await main([...range, "--compare", `offline,sma,local:trend,replay:${recorded},google-vertex/gemini-2.5-flash`, "--local-url", ollama.url, "--record", join(dir, "again.jsonl")], {})).toBe(0);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
    }
    const text = out.join("");
    expect(text).toMatch(/Comparison on BTC\/USDT 2h, 2022-06-01 00:00 → 2022-06-03 22:00 UTC \(36 candles\), every decider on the same candles/);
    expect(text).toMatch(/\| \| offline-engine \| strategy:sma-crossover \| local:trend \| local:trend \(replay\) \| google-vertex\/gemini-2\.5-flash \(stand-in\) \|/);
    // The AI spend is in every column's figures: the paid stand-in is billed 36 x $0.02.
    expect(text).toMatch(/\| AI spend \(USDC\) \| 0\.0000 \| 0\.0000 \| 0\.0000 \| 0\.0000 \| 0\.7200 \|/);
    const report = JSON.parse(readFileSync(join(dir, "compare-BTC_USDT-2h-2022-06-01-2022-06-03.json"), "utf8")) as { label: string; report: { candles: number; strategy: { totalReturnPct: number; aiSpend: number; netPnlAfterAi: number }; verdict: string; decidedBy: { counts: Record<string, number> } } }[];
    expect(report.map((r) => r.report.candles)).toEqual([36, 36, 36, 36, 36]);
    const [offline, , live, replayed, paid] = report.map((r) => r.report);
    // The replay is the local run's twin, for nothing; the stand-in echoes the offline engine, less its bill.
    expect(replayed!.strategy.totalReturnPct).toBe(live!.strategy.totalReturnPct);
    expect(replayed!.decidedBy.counts).toEqual({ recording: 36 });
    expect(paid!.strategy.aiSpend).toBeCloseTo(0.72, 9);
    expect(paid!.strategy.netPnlAfterAi).toBeCloseTo(offline!.strategy.netPnlAfterAi - 0.72, 6);
    for (const r of report) expect(r.report.verdict).toMatch(/^Verdict: /);
    expect(text.match(/^Verdict: /gm)).toHaveLength(5);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});

