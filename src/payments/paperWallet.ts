import type { Redis } from "ioredis";
import type { MicroUsdc } from "../domain/types.js";
import type { UsdcWallet } from "./wallet.js";

// Debit never takes the balance below zero, even with many calls at once.
const DEBIT = `
local b = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if amount > b then amount = b end
return redis.call('DECRBY', KEYS[1], amount)
`;

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

  async debit(amount: MicroUsdc): Promise<MicroUsdc> {
    await this.seed();
    return Number(await this.redis.eval(DEBIT, 1, this.key, String(amount)));
  }

  async credit(amount: MicroUsdc): Promise<{ ok: true; balance: MicroUsdc }> {
    await this.seed();
    return { ok: true, balance: await this.redis.incrby(this.key, amount) };
  }
}
