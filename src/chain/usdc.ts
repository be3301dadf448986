// Circle's USDC on Base, as every part that talks to the chain names it.
import type { Address } from "viem";

/** Circle's USDC contracts; the x402 payments of the router are made in this token. */
export const USDC_ADDRESS: Record<"base" | "base-sepolia", Address> = {
  base: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
  "base-sepolia": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
};
