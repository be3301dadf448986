// The x402 reference facilitator's EVM signer on a real chain: a viem wallet client with public
// actions, pointed at the local node, as a facilitator would run it against Base.
import { createWalletClient, http, publicActions, type Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";
import { toFacilitatorEvmSigner, type FacilitatorEvmSigner } from "@x402/evm";

export interface ChainFacilitatorOptions {
  /**
   * How often a receipt is polled for. viem's default (4 s) only matters when blocks are not mined
   * at once (automine off): a test that holds a settlement and then mines waits on it.
   */
  pollingIntervalMs?: number;
  /** How long a settlement waits for its receipt before it counts as failed (default 30 s). */
  confirmationTimeoutMs?: number;
}

export function chainFacilitator(
  rpcUrl: string,
  account: PrivateKeyAccount | Hex,
  network: "base" | "base-sepolia" = "base-sepolia",
  opts: ChainFacilitatorOptions = {},
): FacilitatorEvmSigner {
  const acct = typeof account === "string" ? privateKeyToAccount(account) : account;
  const client = createWalletClient({
    account: acct,
    chain: network === "base" ? base : baseSepolia,
    transport: http(rpcUrl),
    ...(opts.pollingIntervalMs !== undefined ? { pollingInterval: opts.pollingIntervalMs } : {}),
  }).extend(publicActions);
  return toFacilitatorEvmSigner({ ...(client as never as Omit<FacilitatorEvmSigner, "getAddresses">), address: acct.address }, { confirmationTimeoutMs: opts.confirmationTimeoutMs ?? 30_000 });
}
