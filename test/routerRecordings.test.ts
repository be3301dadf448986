import { afterEach, describe, expect, it } from "vitest";
import { RedisRecordings } from "../src/models/recordings.js";
import { holdReply } from "./support/routerStandIn.js";
import { buyReply, scriptedModels, startTestApp, testConfig, type TestApp } from "./support/app.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

/** Every paid answer is recorded once, live, through the same function the backtest records with. */
describe("recording live model decisions", () => {
  it("records a paid answer with its model and price, and not a cached one", async () => {
    t = await startTestApp(testConfig(), { models: scriptedModels(() => holdReply(), 0.05) });
    await t.run("/decide BTC");
    const again = await t.run("/decide BTC");
    expect(again.text).toMatch(/decision cache/);
    const all = await new RedisRecordings(t.app.redis).all();
    expect(all).toHaveLength(1);
    const [last] = await t.app.services.ledger.recent(2).then((r) => r.filter((d) => d.saver === undefined));
    expect(all[0]).toMatchObject({ model: "test/scripted", answer: { symbol: "BTC/USDT", action: "hold" }, priceMicro: last!.costMicro });
    expect(all[0]!.inputHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("records nothing for the offline engine", async () => {
    t = await startTestApp(testConfig());
    await t.run("/decide BTC");
    expect(await new RedisRecordings(t.app.redis).all()).toEqual([]);
  });

  it("records a buy that is then traded, once per input", async () => {
    t = await startTestApp(testConfig(), { models: scriptedModels(() => buyReply(5), 0.02) });
    await t.run("/decide ETH");
    const [rec] = await new RedisRecordings(t.app.redis).all();
    expect(rec).toMatchObject({ model: "test/scripted", answer: { action: "buy", sizePct: 5 }, priceMicro: 20_000 });
  });
});
