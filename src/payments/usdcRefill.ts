// On-chain refills: USDC moved from a funding wallet (REFILL_FROM_PRIVATE_KEY) to the agent's
// wallet, one transfer per request whoever asks (/refill or the balance monitor) and however often
// the request is retried. The intent, and then the signed transaction itself, are written to Redis
// before anything is sent: a retry finds the transaction by its hash, or re-sends the very same
// signed bytes (same nonce), which the chain can include only once. The daily cap is reserved
// atomically before signing and given back when the transfer cannot happen.
import type { Redis } from "ioredis";
import { encodeFunctionData, erc20Abi, keccak256, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";
import { usd, type MicroUsdc } from "../domain/types.js";
import { explorerLink, usdcClient, type LoggedRefill, type UsdcNetwork } from "../chain/usdcTransfers.js";
import { USDC_ADDRESS } from "./onchainWallet.js";

export type RefillResult =
  | { ok: true; amountMicro: MicroUsdc; hash: Hex; link: string; balanceMicro: MicroUsdc; again: boolean }
  | { ok: false; reason: string };

export interface RefillerOptions {
  redis: Redis;
  network: UsdcNetwork;
  rpcUrl?: string;
  fundingKey: Hex;
  agent: Address;
  maxPerDayMicro: MicroUsdc;
  clock?: () => number;
  /** Tests: called between steps, to crash the refill where a process could die. */
  crashAt?: (step: "signed" | "sent") => void;
  receiptTimeoutMs?: number;
}

// Reserve under the day's cap and record the intent, in one step: two requests racing near the cap
// cannot both pass, and a request id that already has an intent reserves nothing again.
const RESERVE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {'over', tostring(spent)} end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 172800)
redis.call('HSET', KEYS[2], 'amount', ARGV[1], 'status', 'reserved', 'day', KEYS[1], 'at', ARGV[3])
return {'new'}
`;
// Give the reservation back once, when a refill is known not to move anything.
const RELEASE = `
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'failed' or status == 'confirmed' or not status then return 0 end
redis.call('DECRBY', redis.call('HGET', KEYS[1], 'day'), redis.call('HGET', KEYS[1], 'amount'))
redis.call('HSET', KEYS[1], 'status', 'failed', 'reason', ARGV[1])
redis.call('DEL', KEYS[1] .. ':lock')
return 1
`;

const usd2 = (micro: number) => usd(micro, 2);

const REFILL_LOG = "refill:log";

/** The refills confirmed since `since` (ms), newest first. */
export async function loggedRefills(redis: Redis, since: number): Promise<LoggedRefill[]> {
  return (await redis.lrange(REFILL_LOG, 0, -1)).map((l) => JSON.parse(l) as LoggedRefill).filter((r) => r.at >= since);
}

export class UsdcRefiller {
  private readonly client: PublicClient;
  private readonly account;
  private readonly clock: () => number;

  constructor(private readonly o: RefillerOptions) {
    this.client = usdcClient(o.network, o.rpcUrl);
    this.account = privateKeyToAccount(o.fundingKey);
    this.clock = o.clock ?? Date.now;
    if (this.account.address.toLowerCase() === o.agent.toLowerCase()) throw new Error("the funding wallet is the agent's own wallet: a refill would move nothing");
  }

  get funder(): Address {
    return this.account.address;
  }

  private get local(): boolean {
    return !!this.o.rpcUrl && /^https?:\/\/(127\.|localhost)/.test(this.o.rpcUrl);
  }

  private dayKey(): string {
    return `refill:day:${new Date(this.clock()).toISOString().slice(0, 10)}`;
  }

  /** Refilled today, in micro-USDC (confirmed and in-flight). */
  async today(): Promise<MicroUsdc> {
    return Number((await this.o.redis.get(this.dayKey())) ?? 0);
  }

  private async release(key: string, reason: string): Promise<{ ok: false; reason: string }> {
    await this.o.redis.eval(RELEASE, 1, key, reason);
    return { ok: false, reason };
  }

  private async balanceOf(who: Address): Promise<bigint> {
    return this.client.readContract({ address: USDC_ADDRESS[this.o.network], abi: erc20Abi, functionName: "balanceOf", args: [who] });
  }

  /** Moves `amountMicro` USDC to the agent once for `requestId`, waiting for the receipt. */
  async refill(requestId: string, amountMicro: MicroUsdc): Promise<RefillResult> {
    const key = `refill:intent:${requestId}`;
    const r = this.o.redis;
    const reserved = (await r.eval(RESERVE, 2, this.dayKey(), key, String(amountMicro), String(this.o.maxPerDayMicro), String(this.clock()))) as string[];
    if (reserved[0] === "over") {
      return { ok: false, reason: `REFILL_MAX_PER_DAY_USDC is ${usd2(this.o.maxPerDayMicro)} and ${usd2(Number(reserved[1]))} was refilled today: ${usd2(amountMicro)} more would cross it. Try a smaller amount or tomorrow (UTC).` };
    }
    const intent = await r.hgetall(key);
    if (reserved[0] === "exists") {
      if (intent.status === "failed") return { ok: false, reason: `this refill request already failed: ${intent.reason ?? "unknown reason"}` };
      if (intent.status === "confirmed") return this.done(intent.hash as Hex, Number(intent.amount), true);
    }
    // One runner per request at a time; a crashed runner's lock expires.
    if ((await r.set(`${key}:lock`, "1", "PX", 120_000, "NX")) !== "OK") return { ok: false, reason: "this refill is already being sent; its result follows" };
    try {
      return await this.run(key, Number(intent.amount ?? amountMicro), intent);
    } finally {
      await r.del(`${key}:lock`);
    }
  }

  private async run(key: string, amountMicro: MicroUsdc, intent: Record<string, string>): Promise<RefillResult> {
    const r = this.o.redis;
    let raw = intent.raw as Hex | undefined;
    let hash = intent.hash as Hex | undefined;
    try {
      if (!raw) {
        // Nothing was signed yet: safe to check, and to give the reservation back on any failure.
        const [funds, nonce, fees] = await Promise.all([
          this.balanceOf(this.account.address),
          this.client.getTransactionCount({ address: this.account.address, blockTag: "pending" }),
          this.client.estimateFeesPerGas(),
        ]);
        if (funds < BigInt(amountMicro)) {
          return this.release(key, `the funding wallet ${short(this.account.address)} holds ${usd2(Number(funds))} USDC, less than the ${usd2(amountMicro)} asked. Top it up, or refill less.`);
        }
        const data = encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [this.o.agent, BigInt(amountMicro)] });
        const to = USDC_ADDRESS[this.o.network];
        const gas = await this.client.estimateGas({ account: this.account.address, to, data }).catch(() => undefined);
        if (gas === undefined) return this.release(key, "the USDC transfer would revert (the token refused it: paused, blacklisted or short); nothing was sent");
        const chain = this.o.network === "base" ? base : baseSepolia;
        raw = await this.account.signTransaction({ chain, chainId: chain.id, type: "eip1559", to, data, nonce, gas: (gas * 12n) / 10n, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas });
        hash = keccak256(raw);
        // The signed bytes are kept before sending: a retry re-sends exactly these, never a second transfer.
        await r.hset(key, "raw", raw, "hash", hash, "nonce", String(nonce), "status", "signed");
        this.o.crashAt?.("signed");
      }
      const known = await this.client.getTransactionReceipt({ hash: hash! }).catch(() => undefined);
      if (!known) {
        await this.client.sendRawTransaction({ serializedTransaction: raw }).catch(async (err: Error) => {
          // Already in the pool (a retry) is fine; anything else is told below by the receipt wait.
          if (!/already known|known transaction|nonce too low/i.test(err.message)) throw err;
        });
        await r.hset(key, "status", "sent");
        this.o.crashAt?.("sent");
      }
      const receipt = known ?? (await this.client.waitForTransactionReceipt({ hash: hash!, timeout: this.o.receiptTimeoutMs ?? 60_000 }).catch(() => undefined));
      if (!receipt) {
        const stillOurs = await this.stillPossible(intent.nonce ?? (await r.hget(key, "nonce")) ?? "0", hash!);
        if (!stillOurs) return this.release(key, "the funding wallet's nonce was used by another transaction; this refill was not sent");
        return { ok: false, reason: `the refill ${hash} was sent but is not mined yet; it is kept and will be checked again (it can be included only once)` };
      }
      if (receipt.status !== "success") return this.release(key, `the USDC transfer reverted on chain (${explorerLink(this.o.network, hash!, this.local)}); nothing moved`);
      await r.hset(key, "status", "confirmed");
      // The log the chain reconciliation reads; refills are a few a day, so 1,000 are years of them.
      await r.multi().lpush(REFILL_LOG, JSON.stringify({ hash, amountMicro, at: this.clock() })).ltrim(REFILL_LOG, 0, 999).exec();
      return this.done(hash!, amountMicro, false);
    } catch (err) {
      const msg = (err as Error).message ?? String(err);
      if (/crash/i.test(msg) && this.o.crashAt) throw err;
      if (!raw) return this.release(key, `the chain's RPC could not be reached (${firstLine(msg)}); nothing was sent`);
      return { ok: false, reason: `the chain's RPC failed while the refill ${hash} was in flight (${firstLine(msg)}); it is kept and checked again on retry, never sent twice` };
    }
  }

  /** Whether a signed transaction with this nonce can still be mined (no other took its nonce). */
  private async stillPossible(nonce: string, hash: Hex): Promise<boolean> {
    const mined = await this.client.getTransactionCount({ address: this.account.address, blockTag: "latest" });
    if (mined <= Number(nonce)) return true;
    return !!(await this.client.getTransactionReceipt({ hash }).catch(() => undefined));
  }

  private async done(hash: Hex, amountMicro: MicroUsdc, again: boolean): Promise<RefillResult> {
    const balanceMicro = Number(await this.balanceOf(this.o.agent));
    return { ok: true, amountMicro, hash, link: explorerLink(this.o.network, hash, this.local), balanceMicro, again };
  }
}

const short = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;
const firstLine = (s: string) => s.split("\n")[0]!.slice(0, 160);
