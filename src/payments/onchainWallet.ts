import type { Address, PublicClient } from "viem";
import type { MicroUsdc } from "../domain/types.js";
import type { UsdcWallet } from "./wallet.js";

/** Circle's USDC contracts; the x402 payments of the router are made in this token. */
export const USDC_ADDRESS: Record<"base" | "base-sepolia", Address> = {
  base: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
  "base-sepolia": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
};

/** Reads the agent wallet's real USDC balance on Base or Base Sepolia with viem. */
export class OnchainUsdcWallet implements UsdcWallet {
  readonly kind = "onchain" as const;
  // viem is loaded with the first balance read, not at startup: a process without a wallet never loads it.
  private client?: Promise<{ client: PublicClient; erc20Abi: typeof import("viem").erc20Abi }>;

  constructor(
    private readonly address: Address,
    private readonly network: "base" | "base-sepolia",
    private readonly rpcUrl?: string,
  ) {}

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
    const raw = await client.readContract({
      address: USDC_ADDRESS[this.network],
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [this.address],
    });
    // USDC has 6 decimals: the atomic amount is already micro-USDC.
    return Number(raw);
  }

  async debit(): Promise<MicroUsdc> {
    return this.balance();
  }

  async credit(): Promise<{ ok: false; reason: string }> {
    return {
      ok: false,
      reason: `Refills of a real wallet are not built yet. Send USDC on ${this.network} to ${this.address} from your own wallet.`,
    };
  }
}
