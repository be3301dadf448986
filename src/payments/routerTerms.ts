// How the hosted Dreams Router asks to be paid today, as its own client and facilitator publish it
// (daydreamsai/openclaw-x402-router src/agents/x402-payment.ts; daydreamsai/facilitator
// packages/core/src/upto): `GET /v1/config` names the network, the USDC asset, the payee that spends
// (the facilitator's signer), the payment header and the token's EIP-712 domain; a call is paid by a
// permit session (one ERC-2612 permit reused until the router refuses it); refusals carry codes.
// A gateway without /v1/config is paid per call, by what its 402 offers (x402Payer.ts).
import { z } from "zod";
import type { ShortNetwork } from "./x402Payer.js";

export const CAIP2_OF: Record<ShortNetwork, `eip155:${number}`> = { base: "eip155:8453", "base-sepolia": "eip155:84532" };

/** The payment terms of a router that speaks permit sessions. */
export interface SessionTerms {
  /** CAIP-2 network, e.g. eip155:84532. */
  network: string;
  chainId: number;
  asset: `0x${string}`;
  /** Who the permit lets spend: the facilitator's signer (also the payee of the batches). */
  payTo: `0x${string}`;
  /** The header the permit travels in (PAYMENT-SIGNATURE). */
  header: string;
  domain: { name: string; version: string };
}

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);
const ConfigReply = z.object({
  networks: z
    .array(
      z.object({
        network_id: z.string().regex(/^eip155:\d+$/),
        chain_id: z.number().int().positive().optional(),
        asset: z.object({ address, decimals: z.number().int().optional() }),
        pay_to: address,
        active: z.boolean().optional(),
      }),
    )
    .min(1),
  payment_required: z.boolean().optional(),
  payment_header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).optional(),
  eip712_config: z.object({ domain_name: z.string().min(1).max(64), domain_version: z.string().min(1).max(16) }).optional(),
});

export type TermsRead =
  | { kind: "session"; terms: SessionTerms }
  /** No /v1/config (an older router, another gateway): pay what each call's 402 asks. */
  | { kind: "per-call"; why: string }
  /** /v1/config answered with terms we will not sign (another network or token): nothing is paid. */
  | { kind: "refused"; why: string };

/**
 * Reads `GET {origin}/v1/config` and picks the network the agent pays on. Only the network named by
 * X402_NETWORK and Circle's USDC on it are ever accepted: the router's answer cannot move the agent
 * to another chain or token.
 */
export async function readSessionTerms(origin: string, network: ShortNetwork, usdc: string, f: typeof fetch = fetch, timeoutMs = 5_000): Promise<TermsRead> {
  let res: Response;
  try {
    res = await f(`${origin}/v1/config`, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    return { kind: "per-call", why: `GET /v1/config failed (${(err as Error).message.slice(0, 80)})` };
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    return { kind: "per-call", why: `GET /v1/config answered HTTP ${res.status}` };
  }
  const parsed = ConfigReply.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) return { kind: "per-call", why: "GET /v1/config did not answer with payment terms" };
  const c = parsed.data;
  const want = CAIP2_OF[network];
  const net = c.networks.find((n) => n.network_id === want && n.active !== false);
  if (!net) return { kind: "refused", why: `the router takes payment on ${c.networks.map((n) => n.network_id).join(", ")}, not on X402_NETWORK ${network} (${want})` };
  if (net.asset.address.toLowerCase() !== usdc.toLowerCase()) return { kind: "refused", why: `the router asks for token ${net.asset.address}, not USDC on ${network} (${usdc})` };
  return {
    kind: "session",
    terms: {
      network: want,
      chainId: Number(want.split(":")[1]),
      asset: net.asset.address as `0x${string}`,
      payTo: net.pay_to as `0x${string}`,
      header: c.payment_header ?? "PAYMENT-SIGNATURE",
      domain: { name: c.eip712_config?.domain_name ?? "USD Coin", version: c.eip712_config?.domain_version ?? "2" },
    },
  };
}

/** The refusals a router answers to a permit, by what they mean for the permit. */
export type SessionRefusal =
  /** The permit cannot be used again: sign a new one. */
  | "cap_exhausted"
  | "session_closed"
  | "settlement_blocked"
  | "session_permit_mismatch"
  /** The wallet holds too little USDC: stop paying, tell the team. */
  | "insufficient_token_balance"
  /** The session is settling a batch: nothing was charged, try again shortly. */
  | "settling_in_progress"
  /** The permit itself was refused (expired, bad signature, a clock that is off): sign a new one. */
  | "invalid_permit";

export const INVALIDATES_PERMIT: ReadonlySet<SessionRefusal> = new Set(["cap_exhausted", "session_closed", "settlement_blocked", "session_permit_mismatch", "invalid_permit"]);

/** A refusal's code and text from any of the body shapes the router uses (top-level or nested `error`). */
export function readRefusal(status: number, body: unknown): { code?: SessionRefusal; text: string } | undefined {
  if (status !== 402 && status !== 401 && status !== 409) return undefined;
  const o = body && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const nested = o.error && typeof o.error === "object" ? (o.error as Record<string, unknown>) : undefined;
  const pick = (k: string) => (typeof nested?.[k] === "string" ? (nested[k] as string) : typeof o[k] === "string" ? (o[k] as string) : undefined);
  const code = pick("code");
  const error = pick("error") ?? (typeof o.error === "string" ? o.error : undefined);
  const message = pick("message") ?? pick("invalidReason");
  const text = [code, error, message].filter(Boolean).join(": ").slice(0, 200);
  const all = `${code ?? ""} ${error ?? ""} ${message ?? ""}`.toLowerCase();
  const has = (c: string, words: string) => code === c || error === c || all.includes(c) || all.includes(words);
  const found: SessionRefusal | undefined =
    has("insufficient_token_balance", "insufficient token balance") ? "insufficient_token_balance"
    : has("cap_exhausted", "cap exhausted") ? "cap_exhausted"
    : has("session_closed", "session closed") ? "session_closed"
    : has("settlement_blocked", "settlement blocked") ? "settlement_blocked"
    : has("session_permit_mismatch", "permit mismatch") ? "session_permit_mismatch"
    : has("settling_in_progress", "settling a batch") || status === 409 ? "settling_in_progress"
    : /expired|valid_before|valid_after|signature|cap_too_low|cap_below|spender|network_mismatch|missing_eip712|invalid_upto/.test(all) ? "invalid_permit"
    : undefined;
  return { ...(found ? { code: found } : {}), text: text || `HTTP ${status}` };
}

/** Whether a refusal blames the time: the agent's clock may be wrong. */
export function blamesTheClock(text: string): boolean {
  return /valid_before|valid_after|expired|not yet valid|deadline/i.test(text);
}
