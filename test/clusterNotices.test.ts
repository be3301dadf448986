// The frontend lease and the notice consumer in one process on the test Redis: the two cases the
// multi-process test met on a loaded machine, made to happen on purpose.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrontendLease, LEASE_KEY } from "../src/cluster/lease.js";
import { NOTICE_STREAM, NoticeConsumer, noticeBacklog, publishNotice } from "../src/cluster/noticeStream.js";
import type { NoticeInput } from "../src/chat/notices.js";
import { createLog } from "../src/log.js";
import { sleep } from "../src/sleep.js";
import { testRedis } from "./support/redis.js";

const log = createLog("error", (s) => s, () => {});
const text = (n: NoticeInput) => ("text" in n ? String(n.text) : "");

async function until(ok: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("frontend lease and notice stream", () => {
  let redis: Redis;
  let reader: Redis;
  beforeAll(async () => {
    redis = await testRedis();
    reader = redis.duplicate();
  });
  afterAll(async () => {
    await reader.quit();
    await redis.quit();
  });

  it("delivers what it had read when the lease lapsed mid-batch once the lease is back, each notice once", async () => {
    await redis.del(NOTICE_STREAM, LEASE_KEY);
    await redis.set(LEASE_KEY, "fe-1");
    let active = true;
    const got: string[] = [];
    const consumer = new NoticeConsumer({
      redis: reader,
      leaseId: "fe-1",
      isActive: () => active,
      lateAfterMs: 60_000,
      log,
      deliver: async (input) => {
        got.push(text(input));
        // The third delivery is slow, and the lease lapses meanwhile (a stalled event loop).
        if (got.length === 3) {
          active = false;
          await sleep(100);
        }
      },
    });
    consumer.start();
    for (let i = 1; i <= 8; i++) await publishNotice(redis, { kind: "info", text: `n${i}` });
    await until(() => !active, 5_000, "the lapse");
    await sleep(300);
    expect(got).toHaveLength(3);
    active = true; // renewed: still ours, no failover
    await until(() => got.length >= 8, 5_000, "the rest of the batch");
    await until(async () => (await noticeBacklog(redis)) === 0, 5_000, "every notice acked");
    await consumer.stop();
    expect(got).toEqual(["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"]);
    expect(((await redis.xpending(NOTICE_STREAM, "frontends")) as [number])[0]).toBe(0);
  });

  it("keeps the lease through a drain that outlasts it, then gives it up", async () => {
    await redis.del(LEASE_KEY);
    // Long enough that a loaded machine renews in time (every third of it); the drain lasts three.
    const ttlMs = 1_500;
    const seen: (string | null)[] = [];
    let activeDuringDrain = true;
    const lease: FrontendLease = new FrontendLease(reader, {
      ttlMs,
      log,
      onActive: async () => {},
      onInactive: async () => {
        // Delivering what was read takes three lease lengths (paced sends).
        for (let i = 0; i < 6; i++) {
          await sleep(ttlMs / 2);
          seen.push(await redis.get(LEASE_KEY));
          activeDuringDrain &&= lease.isActive();
        }
      },
    });
    await lease.start();
    expect(lease.isActive()).toBe(true);
    await lease.stop();
    expect(seen.every((v) => v === lease.leaseId)).toBe(true);
    expect(activeDuringDrain).toBe(true);
    expect(await redis.get(LEASE_KEY)).toBeNull();
  });
});
