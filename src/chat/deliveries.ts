import type { Redis } from "ioredis";

/**
 * Telegram keeps an update it handed out until the poller confirms it (the next getUpdates
 * offset), for 24 hours; a claim outlives that, so a redelivered update is always recognised.
 */
export const DELIVERY_CLAIM_TTL_S = 25 * 3600;

/**
 * Which incoming chat updates some process has taken, shared through Redis by every frontend.
 * A platform that can hand the same update to a second process (Telegram redelivers what a
 * frontend that died never confirmed) claims each update before acting on it, and the one that
 * finds it claimed leaves it alone: a command is answered once, whichever frontend got it first.
 */
export class DeliveryClaims {
  constructor(
    private readonly redis: Redis,
    private readonly ttlS = DELIVERY_CLAIM_TTL_S,
  ) {}

  /**
   * True for the first caller with this id, false for every later one (in any process), until the
   * claim expires. One round trip: SET NX decides atomically, so two frontends racing on one
   * update cannot both win.
   */
  async claim(id: string): Promise<boolean> {
    return (await this.redis.set(`chat:${id}`, "1", "EX", this.ttlS, "NX")) === "OK";
  }
}
