import type { Address, PublicClient } from "viem";
import { USDC_ADDRESS } from "../chain/usdc.js";
import type { MicroUsdc } from "../domain/types.js";

export { USDC_ADDRESS } from "../chain/usdc.js";
import type { CreditResult, Refiller, UsdcWallet } from "./wallet.js";

/** Reads the agent wallet's real USDC balance on Base or Base Sepolia with viem. */
export class OnchainUsdcWallet implements UsdcWallet {
  readonly kind = "onchain" as const;
  // viem is loaded with the first balance read, not at startup: a process without a wallet never loads it.
  private client?: Promise<{ client: PublicClient; erc20Abi: typeof import("viem").erc20Abi }>;
  private readonly rpcHost: string;

  constructor(
    private readonly address: Address,
    private readonly network: "base" | "base-sepolia",
    private readonly rpcUrl?: string,
    /** Moves USDC in from the funding wallet (REFILL_FROM_PRIVATE_KEY); absent: refills are refused. */
    private readonly refiller?: Refiller,
  ) {
    // Only the host: an RPC URL can carry an API key in its path or query.
    this.rpcHost = rpcUrl ? new URL(rpcUrl).host : "the chain's public endpoint";
  }

  private connect() {
    this.client ??= Promise.all([import("viem"), import("viem/chains")]).then(([viem, chains]) => ({
      client: viem.createPublicClient({ chain: this.network === "base" ? chains.base : chains.baseSepolia, transport: viem.http(this.rpcUrl) }) as PublicClient,
      erc20Abi: viem.erc20Abi,
    }));
    // A failed load is tried again on the next read rather than remembered.
    this.client.catch(() => (this.client = undefined));
    return this.client;
  }

  describe(): string {
    return `USDC on ${this.network} at ${this.address.slice(0, 6)}…${this.address.slice(-4)}`;
  }

  async balance(): Promise<MicroUsdc> {
    const { client, erc20Abi } = await this.connect();
    let raw: bigint;
    try {
      raw = await client.readContract({
        address: USDC_ADDRESS[this.network],
        abi: erc20Abi,
        functionName: "balanceOf",
        args: [this.address],
      });
    } catch (err) {
      // viem's message spans a dozen lines (request body, call arguments): chat gets one.
      const e = err as { shortMessage?: string; details?: string; message?: string };
      const why = [e.shortMessage, e.details].filter(Boolean).join(": ") || String(e.message ?? err).split("\n")[0];
      throw new Error(`Could not read the wallet's USDC balance on ${this.network} (BASE_RPC_URL ${this.rpcHost}): ${why}`);
    }
    // USDC has 6 decimals: the atomic amount is already micro-USDC.
    return Number(raw);
  }

  get walletAddress(): Address {
    return this.address;
  }

  get canRefill(): boolean {
    return this.refiller !== undefined;
  }

  async credit(amount: MicroUsdc, requestId?: string): Promise<CreditResult> {
    if (!this.refiller) {
      return { ok: false, reason: `No funding wallet is set (REFILL_FROM_PRIVATE_KEY). Send USDC on ${this.network} to ${this.address} from your own wallet.` };
    }
    const r = await this.refiller.refill(requestId ?? `direct:${Date.now()}:${Math.random().toString(36).slice(2)}`, amount);
    if (!r.ok) return r;
    return { ok: true, balance: r.balanceMicro, transaction: { hash: r.hash, link: r.link, again: r.again } };
  }
}
