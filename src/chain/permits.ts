// ERC-2612 permits on the USDC contract, with viem: the nonce a new permit must carry, the signature,
// the allowance a permit left, and the two transactions that revoke one for good (the wallet submits
// its own permit, which uses the nonce up, then approves 0). Also EIP-3009's authorizationState, to
// learn whether a per-call x402 payment the server refused was settled after all.
// Loaded only when the agent pays from a wallet (dynamic import from the router client).
import { createPublicClient, createWalletClient, http, parseAbi, parseSignature, type Address, type Hex, type PublicClient } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";

const TOKEN = parseAbi([
  "function nonces(address owner) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function balanceOf(address owner) view returns (uint256)",
  "function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
  "function approve(address spender, uint256 value) returns (bool)",
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
]);
const PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3" as const;
const PERMIT2_ABI = parseAbi(["function nonceBitmap(address owner, uint256 wordPos) view returns (uint256)"]);

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

export interface PermitToSign {
  domain: { name: string; version: string; chainId: number; verifyingContract: Address };
  spender: Address;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

export interface SignedPermitOnChain {
  asset: Address;
  spender: Address;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
  signature: Hex;
}

/** One wallet's view of the token: what a permit session needs from the chain. */
export interface PermitChain {
  readonly owner: Address;
  nonce(asset: Address): Promise<bigint>;
  sign(p: PermitToSign): Promise<Hex>;
  allowance(asset: Address, spender: Address): Promise<bigint>;
  /**
   * Makes a permit unusable and leaves no allowance: submits the permit from the wallet when its
   * nonce is still unused (so nobody can submit it later), then approve(spender, 0). Needs ETH for gas.
   */
  revoke(p: SignedPermitOnChain): Promise<{ permitTx?: Hex; approveTx: Hex }>;
  /** Whether a per-call x402 payment's authorization was used on chain: EIP-3009's, or a Permit2 transfer's nonce. */
  authorizationUsed(kind: "eip3009" | "permit2", asset: Address, from: Address, nonce: string): Promise<boolean>;
  /** The latest block's time, in ms: whether an authorization can still be settled is the chain's call. */
  now(): Promise<number>;
}

export function createPermitChain(account: PrivateKeyAccount, network: "base" | "base-sepolia", rpcUrl?: string): PermitChain {
  const chain = network === "base" ? base : baseSepolia;
  const transport = http(rpcUrl, { retryCount: 1, timeout: 15_000 });
  const client = createPublicClient({ chain, transport }) as PublicClient;
  const wallet = createWalletClient({ account, chain, transport });
  const read = <T>(address: Address, functionName: string, args: unknown[]) =>
    client.readContract({ address, abi: TOKEN, functionName, args } as Parameters<PublicClient["readContract"]>[0]) as Promise<T>;
  const send = async (address: Address, functionName: "permit" | "approve", args: unknown[]): Promise<Hex> => {
    const hash = await wallet.writeContract({ address, abi: TOKEN, functionName, args } as Parameters<typeof wallet.writeContract>[0]);
    const receipt = await client.waitForTransactionReceipt({ hash, timeout: 60_000 });
    if (receipt.status !== "success") throw new Error(`${functionName} reverted in ${hash}`);
    return hash;
  };
  return {
    owner: account.address,
    nonce: (asset) => read<bigint>(asset, "nonces", [account.address]),
    sign: (p) =>
      account.signTypedData({
        domain: p.domain,
        types: PERMIT_TYPES,
        primaryType: "Permit",
        message: { owner: account.address, spender: p.spender, value: p.value, nonce: p.nonce, deadline: p.deadline },
      }),
    allowance: (asset, spender) => read<bigint>(asset, "allowance", [account.address, spender]),
    async revoke(p) {
      const [nonce, block] = await Promise.all([read<bigint>(p.asset, "nonces", [account.address]), client.getBlock()]);
      let permitTx: Hex | undefined;
      if (nonce === p.nonce && p.deadline > block.timestamp) {
        const sig = parseSignature(p.signature);
        const v = sig.v ?? BigInt(Number(sig.yParity) + 27);
        permitTx = await send(p.asset, "permit", [account.address, p.spender, p.value, p.deadline, Number(v), sig.r, sig.s]);
      }
      const approveTx = await send(p.asset, "approve", [p.spender, 0n]);
      return { ...(permitTx ? { permitTx } : {}), approveTx };
    },
    async authorizationUsed(kind, asset, from, nonce) {
      if (kind === "eip3009") return read<boolean>(asset, "authorizationState", [from, nonce as Hex]);
      // Permit2's unordered nonces: word = nonce >> 8, bit = nonce & 0xff.
      const n = BigInt(nonce);
      const word = (await client.readContract({ address: PERMIT2, abi: PERMIT2_ABI, functionName: "nonceBitmap", args: [from, n >> 8n] })) as bigint;
      return ((word >> (n & 0xffn)) & 1n) === 1n;
    },
    async now() {
      const block = await client.getBlock();
      return Number(block.timestamp) * 1000;
    },
  };
}
