// The x402 handshake on the reference SDK (@x402/core, @x402/evm), spoken at the metered fetch so
// every payment meets the same guards. Three ways a server asks to be paid, one way we answer:
//  - v2: base64 `PAYMENT-REQUIRED` header; we answer `PAYMENT-SIGNATURE`; receipt `PAYMENT-RESPONSE`;
//  - standard v1: `{x402Version: 1, accepts}` in the 402 body; we answer `X-PAYMENT`; receipt `X-PAYMENT-RESPONSE`;
//  - the Dreams Router's dialect: one v1 requirement as JSON in `x-payment-required`; the answer is
//    the same `X-PAYMENT` (header names are case-insensitive, so this is the provider's `x-payment`).
import { createHash } from "node:crypto";
import type { x402Client, x402HTTPClient } from "@x402/core/client";
import type { PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse } from "@x402/core/types";
import type { PrivateKeyAccount } from "viem/accounts";
import type { MicroUsdc } from "../domain/types.js";
import type { PaymentReceipt } from "../ledger/ledger.js";
import { USDC_ADDRESS } from "./onchainWallet.js";

// The SDK (and the viem it brings) is loaded with the first 402 or the first payer, not at startup:
// an offline process, or one billed by API key, never loads it.
type Sdk = typeof import("@x402/core/client") & {
  ExactEvmScheme: typeof import("@x402/evm/exact/client").ExactEvmScheme;
  UptoEvmScheme: typeof import("@x402/evm/upto/client").UptoEvmScheme;
  ExactEvmSchemeV1: typeof import("@x402/evm/v1").ExactEvmSchemeV1;
  publicRpc: Record<ShortNetwork, string>;
};
let sdk: Promise<Sdk> | undefined;
function loadSdk(): Promise<Sdk> {
  sdk ??= Promise.all([import("@x402/core/client"), import("@x402/evm/exact/client"), import("@x402/evm/upto/client"), import("@x402/evm/v1"), import("viem/chains")]).then(
    ([core, exact, upto, v1, chains]) => ({
      ...core,
      ExactEvmScheme: exact.ExactEvmScheme,
      UptoEvmScheme: upto.UptoEvmScheme,
      ExactEvmSchemeV1: v1.ExactEvmSchemeV1,
      publicRpc: { base: chains.base.rpcUrls.default.http[0], "base-sepolia": chains.baseSepolia.rpcUrls.default.http[0] },
    }),
  );
  sdk.catch(() => (sdk = undefined));
  return sdk;
}

export type ShortNetwork = "base" | "base-sepolia";
export const CAIP2: Record<ShortNetwork, `eip155:${number}`> = { base: "eip155:8453", "base-sepolia": "eip155:84532" };
const SHORT: Record<string, ShortNetwork> = { "eip155:8453": "base", "eip155:84532": "base-sepolia", base: "base", "base-sepolia": "base-sepolia" };
export const SCHEMES = ["exact", "upto"] as const;
const CHAIN_ID: Record<ShortNetwork, number> = { base: 8453, "base-sepolia": 84532 };
/** Uniswap's Permit2, at this address on every chain: what `upto` pays through (the SDK's PERMIT2_ADDRESS). */
export const PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
// Gas-sponsoring extensions a server may declare for Permit2 payments (the SDK's keys). EIP-2612
// approves Permit2 for the signed maximum only; the ERC-20 one signs approve(Permit2, 2^256 - 1),
// a standing allowance no guard of ours could bound, so it is never offered to the signer.
const EIP2612_SPONSORING = "eip2612GasSponsoring";
const ERC20_APPROVAL_SPONSORING = "erc20ApprovalGasSponsoring";

/**
 * Whether a server's answer to a payment turns it down: 402 again, or the 412 the reference
 * resource server sends when the payer has no Permit2 allowance (permit2_allowance_required).
 */
export function refusesPayment(status: number): boolean {
  return status === 402 || status === 412;
}

/** One way a server offers to be paid, whatever version it came in. */
export interface Offer {
  x402Version: 1 | 2;
  dialect: "v2" | "v1" | "dreams";
  scheme: string;
  /** The network as the offer names it (CAIP-2 in v2, a short name in v1). */
  network: string;
  amountMicro?: MicroUsdc;
  asset: string;
  payTo: string;
  maxTimeoutSeconds: number;
  /** The requirement exactly as the server sent it, for the SDK to sign against. */
  raw: PaymentRequirements;
  /** The whole 402 it came in (v2: resource and declared extensions). */
  paymentRequired: PaymentRequired;
}

export interface OfferPolicy {
  network: ShortNetwork;
  /** Lower-case payees allowed; empty: any. */
  payees: string[];
}

export interface Choice {
  offer?: Offer;
  refused: { offer: Offer; reason: string }[];
}

function amountOf(r: { amount?: unknown; maxAmountRequired?: unknown }): MicroUsdc | undefined {
  const raw = String(r.amount ?? r.maxAmountRequired ?? "");
  if (/^\d+$/.test(raw)) return Number(raw);
  // The provider reads a decimal string as USDC: an offer written that way is read the same.
  if (/^\d*\.\d+$/.test(raw)) return Math.ceil(parseFloat(raw) * 1_000_000);
  return undefined;
}

/** Every offer in a 402, from whichever of the three places it is written. */
export async function readOffers(res: Response): Promise<Offer[]> {
  const { x402HTTPClient, x402Client } = await loadSdk();
  const http = new x402HTTPClient(new x402Client());
  const make = (pr: PaymentRequired, dialect: Offer["dialect"]): Offer[] =>
    (pr.accepts ?? []).map((raw) => {
      const amount = amountOf(raw as PaymentRequirements & { maxAmountRequired?: string });
      return {
        x402Version: pr.x402Version === 2 ? 2 : 1,
        dialect,
        scheme: String(raw.scheme),
        network: String(raw.network),
        ...(amount !== undefined ? { amountMicro: amount } : {}),
        asset: String(raw.asset ?? ""),
        payTo: String(raw.payTo ?? ""),
        maxTimeoutSeconds: Number(raw.maxTimeoutSeconds ?? 60),
        raw,
        paymentRequired: pr,
      };
    });
  const v2 = res.headers.get("payment-required");
  if (v2) {
    try {
      return make(http.getPaymentRequiredResponse((n) => res.headers.get(n)), "v2");
    } catch {
      return [];
    }
  }
  const body = (await res.clone().json().catch(() => undefined)) as { x402Version?: number; accepts?: unknown[] } | undefined;
  if (body?.x402Version === 1 && Array.isArray(body.accepts) && body.accepts.length > 0) {
    return make(body as unknown as PaymentRequired, "v1");
  }
  const dialect = res.headers.get("x-payment-required");
  if (dialect) {
    try {
      const one = JSON.parse(dialect) as PaymentRequirements;
      return make({ x402Version: 1, accepts: [one] } as unknown as PaymentRequired, "dreams");
    } catch {
      return [];
    }
  }
  return [];
}

/** The cheapest offer we may pay (scheme, network, USDC, payee), and why each other one was refused. */
export function chooseOffer(offers: Offer[], policy: OfferPolicy): Choice {
  const refused: Choice["refused"] = [];
  const ok: Offer[] = [];
  const usdc = USDC_ADDRESS[policy.network].toLowerCase();
  for (const o of offers) {
    const net = SHORT[o.network];
    const reason =
      !(SCHEMES as readonly string[]).includes(o.scheme) ? `scheme "${o.scheme}" is not spoken (only exact and upto)`
      : net !== policy.network ? `network ${o.network} is not X402_NETWORK ${policy.network} (${CAIP2[policy.network]})`
      : o.asset.toLowerCase() !== usdc ? `asset ${o.asset} is not USDC on ${policy.network} (${USDC_ADDRESS[policy.network]})`
      : policy.payees.length > 0 && !policy.payees.includes(o.payTo.toLowerCase()) ? `payee ${o.payTo} is not in X402_PAYEES`
      : o.amountMicro === undefined ? `the amount "${String((o.raw as { amount?: string }).amount ?? (o.raw as { maxAmountRequired?: string }).maxAmountRequired).slice(0, 30)}" cannot be read`
      : o.maxTimeoutSeconds <= 0 ? "it allows no time to settle"
      : undefined;
    if (reason) refused.push({ offer: o, reason });
    else ok.push(o);
  }
  ok.sort((a, b) => a.amountMicro! - b.amountMicro! || (a.scheme === "exact" ? -1 : 1));
  const [offer, ...dearer] = ok;
  for (const o of dearer) refused.push({ offer: o, reason: `dearer than the ${offer!.amountMicro} µUSDC offer taken` });
  return { ...(offer ? { offer } : {}), refused };
}

/** The payment-identifier of one paid attempt: the same charge id (decision, model, attempt) gives the same key. */
export function paymentIdFor(chargeId: string): string {
  return `pay_${createHash("sha256").update(chargeId).digest("hex").slice(0, 40)}`;
}

/** What a signed payment commits to, read back before it leaves the process. */
export interface SignedTerms {
  from: string;
  to: string;
  /** The amount signed: for `upto`, the maximum the server may settle. */
  valueMicro: MicroUsdc;
  /** Seconds from now until the authorization expires. */
  validForSeconds: number;
  /** An EIP-2612 permit carried along (gas-sponsored `upto`): the allowance it gives, and to whom. */
  approval?: { from: string; spender: string; asset: string; amountMicro: MicroUsdc | undefined; validForSeconds: number };
  /** The payload carries a signed approve transaction (the ERC-20 approval extension). */
  signedApproveTx: boolean;
}

export function termsOf(p: PaymentPayload): SignedTerms | undefined {
  const inner = p.payload as {
    authorization?: { from?: string; to?: string; value?: string; validBefore?: string };
    permit2Authorization?: { from?: string; permitted?: { amount?: string }; deadline?: string; witness?: { to?: string } };
  };
  const now = Math.floor(Date.now() / 1000);
  const ext = (p.extensions ?? {}) as Record<string, { info?: Record<string, unknown> } | undefined>;
  const permit = ext[EIP2612_SPONSORING]?.info;
  const along = {
    ...(permit?.signature !== undefined
      ? { approval: { from: String(permit.from), spender: String(permit.spender), asset: String(permit.asset), amountMicro: /^\d+$/.test(String(permit.amount)) ? Number(permit.amount) : undefined, validForSeconds: Number(permit.deadline ?? 0) - now } }
      : {}),
    signedApproveTx: ext[ERC20_APPROVAL_SPONSORING]?.info?.signedTransaction !== undefined,
  };
  if (inner.authorization) {
    const a = inner.authorization;
    if (!/^\d+$/.test(a.value ?? "")) return undefined;
    return { from: String(a.from), to: String(a.to), valueMicro: Number(a.value), validForSeconds: Number(a.validBefore ?? 0) - now, ...along };
  }
  if (inner.permit2Authorization) {
    const a = inner.permit2Authorization;
    if (!/^\d+$/.test(a.permitted?.amount ?? "")) return undefined;
    return { from: String(a.from), to: String(a.witness?.to), valueMicro: Number(a.permitted!.amount), validForSeconds: Number(a.deadline ?? 0) - now, ...along };
  }
  return undefined;
}

/** A payment as signed, and the header that carries it. */
export interface SignedPayment {
  payload: PaymentPayload;
  headers: Record<string, string>;
}

/** Signs payments for offers with the agent's wallet, through the reference client. */
export class X402Payer {
  private readonly ready: Promise<{ client: x402Client; http: x402HTTPClient }>;
  /** Set once the SDK is loaded; every payment is signed (so waits for it) before a receipt is read. */
  private http?: x402HTTPClient;

  /**
   * `chain`: the network the agent pays on and its JSON-RPC endpoint (BASE_RPC_URL; absent, the
   * chain's public one). `upto` reads through it the wallet's Permit2 allowance and EIP-2612 nonce,
   * to sign a gas-sponsored approval when the allowance is short and the server offers to sponsor.
   */
  constructor(
    readonly account: PrivateKeyAccount,
    chain?: { network: ShortNetwork; rpcUrl?: string },
  ) {
    // Loading starts now, with the router client, rather than inside the first decision's timeout.
    this.ready = loadSdk().then(({ x402Client, x402HTTPClient, ExactEvmScheme, UptoEvmScheme, ExactEvmSchemeV1, publicRpc }) => {
      // Our own guards (price, ceiling, budget, balance) run before signing: the SDK's default
      // per-payment cap would be a second, differently configured one.
      const client = new x402Client().setSpendControls(false);
      const rpc = chain ? { [CHAIN_ID[chain.network]]: { rpcUrl: chain.rpcUrl ?? publicRpc[chain.network] } } : undefined;
      for (const net of Object.keys(CAIP2) as ShortNetwork[]) {
        client.register(CAIP2[net], new ExactEvmScheme(account));
        client.register(CAIP2[net], new UptoEvmScheme(account, rpc));
        client.registerV1(net, new ExactEvmSchemeV1(account));
      }
      this.http = new x402HTTPClient(client);
      return { client, http: this.http };
    });
    // Surfaced by sign(), which awaits it; not an unhandled rejection in the meantime.
    this.ready.catch(() => {});
  }

  /** Signs `offer` (and only it), with the payment-identifier `paymentId` in a v2 payload. */
  async sign(offer: Offer, paymentId: string): Promise<SignedPayment> {
    const { [ERC20_APPROVAL_SPONSORING]: _unbounded, ...declared } = offer.paymentRequired.extensions ?? {};
    const only = { ...offer.paymentRequired, ...(offer.paymentRequired.extensions ? { extensions: declared } : {}), accepts: [offer.raw] } as PaymentRequired;
    const { client, http } = await this.ready;
    const payload = await client.createPaymentPayload(only);
    if (offer.x402Version === 2) {
      payload.extensions = {
        ...(payload.extensions ?? {}),
        "payment-identifier": { ...((offer.paymentRequired.extensions?.["payment-identifier"] as object | undefined) ?? {}), info: { required: false, id: paymentId } },
      };
    }
    return { payload, headers: http.encodePaymentSignatureHeader(payload) };
  }

  /** The receipt the server sent with its answer, or what its absence means. */
  receipt(res: Response, offer: Offer, paymentId: string): PaymentReceipt & { settledMicro?: MicroUsdc } {
    const base = { x402Version: offer.x402Version, scheme: offer.scheme, ...(offer.x402Version === 2 ? { paymentId } : {}) };
    let settle: SettleResponse | undefined;
    try {
      settle = this.http?.getPaymentSettleResponse((n) => res.headers.get(n));
    } catch {
      settle = undefined;
    }
    if (!settle) return { ...base, status: refusesPayment(res.status) ? "failed" : "pending", network: offer.network };
    const amount = settle.amount !== undefined && /^\d+$/.test(settle.amount) ? Number(settle.amount) : undefined;
    return {
      ...base,
      status: settle.success ? (settle.transaction ? "settled" : "pending") : "failed",
      network: String(settle.network ?? offer.network),
      ...(settle.transaction ? { transaction: settle.transaction } : {}),
      ...(settle.payer ? { payer: settle.payer } : {}),
      ...(amount !== undefined ? { settledMicro: amount } : {}),
    };
  }
}
