// An in-memory USDC contract (EIP-3009) standing in for the chain, behind the signer interface the
// x402 reference facilitator (@x402/evm) reads and writes through. It keeps balances and used
// authorization nonces, so a payment settles once and a replay is refused by the same code path
// a real chain would take.
import { decodeFunctionData, encodeFunctionResult, erc20Abi, keccak256, parseAbi, toHex, verifyTypedData, type Abi } from "viem";

const EIP3009 = parseAbi([
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
  "function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)",
  "function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature)",
]);
const ABI = [...erc20Abi, ...EIP3009] as Abi;

export interface Transfer {
  from: string;
  to: string;
  value: bigint;
  nonce: string;
  hash: `0x${string}`;
}

export class UsdcChain {
  readonly transfers: Transfer[] = [];
  private readonly used = new Set<string>();
  private readonly facilitator = "0x000000000000000000000000000000000000fac1" as const;

  constructor(readonly tokenName: string, private readonly asset: string, private readonly startBalance = 1_000_000_000n) {}

  private call(functionName: string, args: readonly unknown[]): unknown {
    switch (functionName) {
      case "balanceOf":
        return this.startBalance - this.transfers.filter((t) => t.from.toLowerCase() === String(args[0]).toLowerCase()).reduce((s, t) => s + t.value, 0n);
      case "authorizationState":
        return this.used.has(`${String(args[0]).toLowerCase()}:${String(args[1]).toLowerCase()}`);
      case "name":
        return this.tokenName;
      case "version":
        return "2";
      case "decimals":
        return 6;
      case "allowance":
        return 0n;
      case "transferWithAuthorization": {
        // The contract's own checks (the signature was checked by the facilitator): window and nonce.
        const [from, , value, validAfter, validBefore, nonce] = args as [string, string, bigint, bigint, bigint, string];
        const now = BigInt(Math.floor(Date.now() / 1000));
        if (now <= validAfter || now >= validBefore) throw new Error("FiatTokenV2: authorization is not yet valid or expired");
        if (this.used.has(`${from.toLowerCase()}:${nonce.toLowerCase()}`)) throw new Error("FiatTokenV2: authorization is used or canceled");
        if ((this.call("balanceOf", [from]) as bigint) < value) throw new Error("ERC20: transfer amount exceeds balance");
        return undefined;
      }
      default:
        throw new Error(`the stand-in chain has no ${functionName}`);
    }
  }

  /** The FacilitatorEvmSigner of @x402/evm, answered from memory. */
  readonly signer = {
    getAddresses: () => [this.facilitator] as const,
    readContract: async (a: { address: `0x${string}`; abi: readonly unknown[]; functionName: string; args?: readonly unknown[] }): Promise<unknown> => {
      if (a.functionName === "tryAggregate") {
        const [, calls] = a.args as [boolean, { target: string; callData: `0x${string}` }[]];
        return calls.map((c) => {
          try {
            const d = decodeFunctionData({ abi: ABI, data: c.callData });
            const out = this.call(d.functionName, d.args ?? []);
            const returnData = out === undefined ? "0x" : encodeFunctionResult({ abi: ABI, functionName: d.functionName, result: out } as never);
            return { success: true, returnData };
          } catch {
            return { success: false, returnData: "0x" };
          }
        });
      }
      return this.call(a.functionName, a.args ?? []);
    },
    verifyTypedData: (a: Parameters<typeof verifyTypedData>[0]) => verifyTypedData(a).catch(() => false),
    writeContract: async (a: { functionName: string; args: readonly unknown[] }): Promise<`0x${string}`> => {
      if (a.functionName !== "transferWithAuthorization") throw new Error(`the stand-in chain cannot ${a.functionName}`);
      this.call(a.functionName, a.args);
      const [from, to, value, , , nonce] = a.args as [string, string, bigint, bigint, bigint, string];
      this.used.add(`${from.toLowerCase()}:${nonce.toLowerCase()}`);
      const hash = keccak256(toHex(`${from}:${nonce}`));
      this.transfers.push({ from, to, value, nonce, hash });
      return hash;
    },
    sendTransaction: async (): Promise<`0x${string}`> => {
      throw new Error("the stand-in chain deploys nothing");
    },
    waitForTransactionReceipt: async () => ({ status: "success" }),
    // The token is a contract; every other address (the payer) is a plain account.
    getCode: async (a: { address: `0x${string}` }) => (a.address.toLowerCase() === this.asset.toLowerCase() ? "0x6080" : "0x") as `0x${string}`,
  };
}
