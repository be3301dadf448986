// Paid == booked, whatever step a crash falls on. A paid decision is frozen at each step between
// its writes (as a process killed there would stop), then the job is retried, as BullMQ retries a
// job whose worker died. What the stand-in was paid is the ground truth.
import { afterEach, describe, expect, it } from "vitest";
import { dayKey } from "../src/ledger/ledger.js";
import type { BookingStep } from "../src/models/routerRuntime.js";
import { GPT, startRouterApp, type RouterTestApp } from "./support/routerApp.js";

let t: RouterTestApp | undefined;
// The frozen run, ended (with an error nothing catches in time) only once the test has looked.
let kill: (() => void) | undefined;
afterEach(async () => {
  kill?.();
  kill = undefined;
  await t?.stop();
  t = undefined;
});

describe("a crash at each booking step", () => {
  const steps: BookingStep[] = ["paid", "booked", "released", "answered"];
  for (const step of steps) {
    it(`leaves paid == booked after the retry: crash at "${step}"`, async () => {
      t = await startRouterApp();
      const services = t.app.services;
      const rt = services.models.runtime!;
      await services.state.chooseModel(GPT);
      const walletBefore = await services.balance.getBalance();
      let reached!: () => void;
      const frozen = new Promise<void>((r) => (reached = r));
      rt.pauseAt = async (at) => {
        if (at !== step) return;
        reached();
        await new Promise<never>((_, reject) => (kill = () => reject(new Error("process killed"))));
      };
      const req = { decisionId: `crash:${step}`, symbol: "BTC/USDT" as const, trigger: "chat" as const };
      void t.app.decide(req);
      await frozen;
      rt.pauseAt = undefined;

      const retried = await t.app.decide(req);
      const again = await t.app.decide(req);

      // Paid once, and booked once: the ledger, both spend counters and the wallet agree with the gateway.
      expect(t.standIn.payments).toHaveLength(1);
      const paid = t.standIn.paidAtomic();
      const charges = await services.ledger.charges(0, Date.now() * 2);
      expect(charges).toHaveLength(1);
      expect(BigInt(charges[0]!.costMicro)).toBe(paid);
      expect(BigInt(await services.ledger.spentOn(dayKey(t.clock.now)))).toBe(paid);
      expect(BigInt(await services.ledger.spentIn(dayKey(t.clock.now).slice(0, 7)))).toBe(paid);
      expect(BigInt(walletBefore - (await services.balance.getBalance()))).toBe(paid);
      expect((await rt.journal.read(req.decisionId))!.unsettled).toEqual([]);
      // A crash after the answer was journaled reuses it; before, the retry does not ask again.
      expect(retried.model).toBe(step === "answered" ? GPT : "offline-engine");
      expect(again.id).toBe(retried.id);
    }, 30_000);
  }
});

describe("the booking transaction", () => {
  it("writes nothing when any part of it cannot be written", async () => {
    t = await startRouterApp();
    const { ledger } = t.app.services;
    const redis = t.app.redis;
    await redis.set("test:wallet", "not-a-number");
    const charge = { decisionId: "broken", model: GPT, costMicro: 1234, time: t.clock.now };
    await expect(ledger.charge(charge, { wallet: { key: "test:wallet", seedMicro: 0 }, marks: [["test:journal", "settled:broken"]] })).rejects.toThrow(/not a number/);
    expect(await redis.exists("ledger:charged:broken", "test:journal")).toBe(0);
    expect(await ledger.spentOn(dayKey(t.clock.now))).toBe(0);
    expect(await ledger.charges(0, Date.now() * 2)).toEqual([]);
    // Whole, it books once; a second booking of the same charge id changes nothing.
    await redis.set("test:wallet", "5000");
    expect(await ledger.charge(charge, { wallet: { key: "test:wallet", seedMicro: 0 } })).toBe(true);
    expect(await ledger.charge(charge, { wallet: { key: "test:wallet", seedMicro: 0 } })).toBe(false);
    expect(await redis.get("test:wallet")).toBe("3766");
    expect(await ledger.spentOn(dayKey(t.clock.now))).toBe(1234);
  });
});
