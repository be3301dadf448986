// The x402 reference facilitator's EVM signer on a real chain: a viem wallet client with public
// actions, pointed at the local node, as a facilitator would run it against Base.
import { createWalletClient, http, publicActions, type Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";
import { toFacilitatorEvmSigner, type FacilitatorEvmSigner } from "@x402/evm";

export function chainFacilitator(rpcUrl: string, account: PrivateKeyAccount | Hex, network: "base" | "base-sepolia" = "base-sepolia"): FacilitatorEvmSigner {
  const acct = typeof account === "string" ? privateKeyToAccount(account) : account;
  const client = createWalletClient({ account: acct, chain: network === "base" ? base : baseSepolia, transport: http(rpcUrl) }).extend(publicActions);
  return toFacilitatorEvmSigner({ ...(client as never as Omit<FacilitatorEvmSigner, "getAddresses">), address: acct.address }, { confirmationTimeoutMs: 30_000 });
}
