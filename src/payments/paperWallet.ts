import type { Redis } from "ioredis";
import type { MicroUsdc } from "../domain/types.js";
import type { UsdcWallet } from "./wallet.js";

/** Simulated USDC, kept in Redis so it survives restarts. Seeded once with the starting amount. */
export class PaperWallet implements UsdcWallet {
  readonly kind = "paper" as const;
  private readonly key: string;

  constructor(private readonly redis: Redis, private readonly startMicro: MicroUsdc, prefix = "wallet:paper:") {
    this.key = prefix + "balance";
  }

  describe(): string {
    return "paper USDC wallet (simulated, no real money)";
  }

  private async seed(): Promise<void> {
    await this.redis.set(this.key, String(this.startMicro), "NX");
  }

  async balance(): Promise<MicroUsdc> {
    await this.seed();
    return Number(await this.redis.get(this.key));
  }

  bookingDebit(): { key: string; seedMicro: MicroUsdc } {
    return { key: this.key, seedMicro: this.startMicro };
  }

  async credit(amount: MicroUsdc): Promise<{ ok: true; balance: MicroUsdc }> {
    await this.seed();
    return { ok: true, balance: await this.redis.incrby(this.key, amount) };
  }
}
