// Redis full (maxmemory, noeviction) in the middle of a paid decision: the router was paid and the
// booking was refused. Nothing more may be paid while Redis refuses writes, the user is told in
// words, and once Redis has room the recovery books the payment: paid == booked, no reservation
// left behind, and the episode costs a handful of log lines, not thousands.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLog } from "../src/log.js";
import { freePort, PrivateRedis } from "./support/cluster.js";
import { GPT, startRouterApp } from "./support/routerApp.js";
import { waitFor } from "./support/app.js";

let dir: string;
let server: PrivateRedis;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "redis-full-"));
  server = new PrivateRedis(await freePort(), dir, false);
  await server.start();
}, 30_000);
afterAll(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("Redis at maxmemory during a paid decision", () => {
  it("stops paying, says so in words, and books the payment once Redis has room", async () => {
    const admin = new Redis(server.url);
    await admin.config("SET", "maxmemory-policy", "noeviction");
    const lines: string[] = [];
    const t = await startRouterApp(
      () => {},
      { x402: "v2" },
      { paperWallet: true, url: server.url, log: createLog("info", (s) => s, (l) => lines.push(l)) } as Parameters<typeof startRouterApp>[2],
    );
    try {
      await t.app.services.state.chooseModel(GPT);
      const rt = t.app.services.models.runtime!;
      // The moment the payment has left and the booking is next, Redis fills up.
      let filled!: () => void;
      const full = new Promise<void>((r) => (filled = r));
      rt.pauseAt = async (step) => {
        if (step !== "paid") return;
        await admin.config("SET", "maxmemory", "1");
        filled();
      };
      const reply = await t.run("/decide BTC");
      await full;
      rt.pauseAt = undefined;
      expect(t.standIn.payments).toHaveLength(1);
      expect(reply.text).toMatch(/Redis is full \(maxmemory reached\), so nothing more is paid or traded until it has room/);
      expect(reply.text).not.toMatch(/OOM command not allowed|@user_script|script: /);
      expect(await t.app.services.ledger.charges(0, Date.now() * 2)).toEqual([]);

      // While it is full, nothing new is paid: the reservation is the first write, and it is refused.
      const again = await t.run("/decide BTC");
      expect(again.text).toMatch(/Redis is full/);
      expect(t.standIn.payments).toHaveLength(1);

      // Room again: the recovery books what was paid, once, and no reservation is left.
      await admin.config("SET", "maxmemory", "0");
      const recovered = await t.app.recoverPayments();
      expect(recovered.booked).toEqual([expect.objectContaining({ item: GPT, micro: Number(t.standIn.payments[0]!.value) })]);
      await waitFor("the booking", async () => (await t.app.services.ledger.charges(0, Date.now() * 2)).length === 1);
      const booked = (await t.app.services.ledger.charges(0, Date.now() * 2)).reduce((s, c) => s + c.costMicro, 0);
      expect(BigInt(booked)).toBe(t.standIn.paidAtomic());
      expect(await t.app.redis.hlen("budget:reservations")).toBe(0);
      expect(await t.app.redis.hlen("payments:inflight")).toBe(0);
      expect((await t.app.recoverPayments()).booked).toEqual([]);
      expect(lines.length).toBeLessThan(100);
    } finally {
      await admin.config("SET", "maxmemory", "0").catch(() => {});
      await admin.quit();
      await t.stop();
    }
  }, 60_000);
});
