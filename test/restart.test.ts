import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../bench/results.js";
import { RedisServer } from "../src/redis/redisServer.js";
import { buyReply, scriptedModels, startTestApp, testConfig } from "./support/app.js";

/** A redis-server of this test's own, with append-only persistence (every write synced), that can be stopped and started. */
class OwnRedis extends RedisServer {
  readonly dir: string;
  constructor(port: number) {
    const dir = mkdtempSync(join(tmpdir(), "restart-redis-"));
    super({ port, dir, args: ["--appendfsync", "always"] });
    this.dir = dir;
  }
}

describe("a restart", () => {
  let redis: OwnRedis;
  afterAll(async () => {
    await redis?.stop().catch(() => {});
    if (redis) rmSync(redis.dir, { recursive: true, force: true });
  });

  it("keeps positions, trades, the ledger, the pause and the chosen model, across the app and Redis restarting", async () => {
    redis = new OwnRedis(await freePort());
    await redis.start();
    const config = testConfig((c) => (c.market.symbols = ["BTC/USDT"]));
    const models = scriptedModels(() => buyReply(5));

    const first = await startTestApp(config, { url: redis.url, models });
    const decided = await first.run("/decide BTC");
    expect(decided.text).toMatch(/BUY 5\.0% of equity[\s\S]*Order: BUY/);
    await first.run("/model test/scripted");
    await first.run("/limits max_position 8");
    await first.run("/pause");
    const before = {
      positions: await first.app.services.portfolio.positions(),
      trades: await first.app.services.exchange.trades(10),
      ledger: await first.app.services.ledger.recent(10),
      wallet: await first.app.services.balance.getBalance(),
      report: await first.app.costReport(first.clock.now),
    };
    expect(before.positions).toHaveLength(1);
    expect(before.wallet).toBe(10_000_000 - 50_000); // $10 paper wallet less one $0.05 call
    await first.app.stop();

    await redis.stop();
    await redis.start();

    const second = await startTestApp(testConfig((c) => (c.market.symbols = ["BTC/USDT"])), { url: redis.url, models });
    const s = second.app.services;
    expect(await s.portfolio.positions()).toEqual(before.positions);
    expect(await s.exchange.trades(10)).toEqual(before.trades);
    expect(await s.ledger.recent(10)).toEqual(before.ledger);
    expect(await s.balance.getBalance()).toBe(before.wallet);
    expect(await s.state.pauseState()).toMatchObject({ paused: true, reason: "manual" });
    expect(await s.state.chosenModel()).toBe("test/scripted");
    expect(s.limits.maxPositionPct).toBe(8);
    expect(await second.app.costReport(first.clock.now)).toBe(before.report);
    expect((await second.run("/decide BTC")).text).toMatch(/paused/);
    await second.app.stop();
  });
});
