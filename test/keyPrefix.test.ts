// REDIS_KEY_PREFIX: two agents share one Redis, and every key either of them writes (its books,
// its queues, the agent's memory, confirmations, the pause) sits under its own prefix.
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { RedisKeyValueProvider } from "../src/agent/redisKeyValue.js";
import { buyReply, freshRedisUrl, scriptedModels, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";

const apps: TestApp[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.app.stop();
});

async function allKeys(url: string): Promise<string[]> {
  const r = new Redis(url);
  try {
    return (await r.keys("*")).sort();
  } finally {
    await r.quit();
  }
}

describe("REDIS_KEY_PREFIX", () => {
  it("keeps every key of the main flows under the prefix, and two agents on one Redis apart", async () => {
    const url = await freshRedisUrl();
    const config = (prefix: string) =>
      testConfig((c) => {
        c.redis.keyPrefix = prefix;
        c.market.symbols = ["BTC/USDT"];
        c.schedule.decisionIntervalMs = 200;
      });
    const a = await startTestApp(config("desk1:"), { url, models: scriptedModels(() => buyReply(5), 0.05) });
    apps.push(a);

    // A decision with an order, paid: a charge is booked.
    await a.run("/decide BTC", "trader");
    const [decision] = await a.app.services.ledger.recent(1);
    expect(decision?.outcome).toBe("order");
    expect((await a.app.services.ledger.charges(0, Number.MAX_SAFE_INTEGER)).length).toBeGreaterThan(0);
    // A scheduled decision, through BullMQ's queue under the prefix.
    await a.app.startJobs();
    await waitFor("a scheduled decision", async () => (await a.app.services.ledger.recent(20)).find((r) => r.trigger === "schedule"));
    // The pause, and a confirmation answered.
    expect((await a.run("/pause", "trader")).text).toMatch(/paused/i);
    const ask = await a.run("/refill 10");
    expect(ask.confirmationId).toBeTruthy();
    expect((await a.run(`/confirm ${ask.confirmationId}`)).text).toMatch(/Refilled \$10\.00\. USDC balance now \$1\d\.\d\d/);
    // The agent's memory lists its keys by SCAN, whose pattern ioredis does not prefix.
    const memory = new RedisKeyValueProvider(a.app.redis);
    await memory.set("probe", { ok: true });
    expect(await memory.keys("pro*")).toEqual(["probe"]);

    // A second agent on the same Redis and database, under another prefix, starts from its own books.
    const b = await startTestApp(config("desk2:"), { url, models: scriptedModels(() => buyReply(5), 0.05) });
    apps.push(b);
    expect((await b.run("/balance")).text).toMatch(/USDC for model calls: \$10\.00/);
    expect((await b.run("/status")).text).not.toMatch(/paused/i);
    expect(await b.app.services.ledger.recent(10)).toEqual([]);

    for (const t of apps.splice(0)) await t.app.stop();
    const keys = await allKeys(url);
    // Enough keys to mean something: books, queues, memory, confirmations.
    expect(keys.length).toBeGreaterThan(20);
    expect(keys.filter((k) => !k.startsWith("desk1:") && !k.startsWith("desk2:"))).toEqual([]);
    expect(keys.some((k) => k.startsWith("desk1:bull-test:decisions:"))).toBe(true);
    expect(keys.some((k) => k.startsWith("desk1:ledger:"))).toBe(true);
    expect(keys.some((k) => k.startsWith("desk1:agent:memory:"))).toBe(true);
  });
});
