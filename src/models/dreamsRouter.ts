import { createRequire } from "node:module";
import { privateKeyToAccount } from "viem/accounts";
import type { ModelV2 } from "../agent/scriptedModel.js";
import { createPermitChain, type PermitChain } from "../chain/permits.js";
import { USDC_ADDRESS } from "../chain/usdc.js";
import type { PayWith } from "../payments/paidRequest.js";
import { PermitSessions, type PermitSessionOptions } from "../payments/permitSessions.js";
import { readSessionTerms, type SessionTerms, type TermsRead } from "../payments/routerTerms.js";
import { X402Payer } from "../payments/x402Payer.js";
import type { RouterAuth } from "./routerAuth.js";

// Kept where they were first exported; they live in routerAuth.ts so the composition root can read
// them without loading this module (and viem, the provider) when the router is off.
export { routerAuthFromConfig, type RouterAuth } from "./routerAuth.js";

export interface RouterSettings {
  /** The router's origin (https://ai.xgate.run): the API is under /v1. */
  origin: string;
  auth: RouterAuth;
  /** The wallet's chain endpoint (BASE_RPC_URL): the permit's nonce, `upto` approvals, revocation. */
  rpcUrl?: string;
  fetch?: typeof fetch;
}

type Provider = (modelId: string, settings?: Record<string, unknown>) => ModelV2;
// Asks the gateway to report usage (and its cost) in the reply, streamed or not.
const WITH_USAGE = { usage: { include: true } };
interface ProviderModule {
  createDreamsRouter: (o: Record<string, unknown>) => Provider;
}

// The provider's ESM build fails on Node 20 ("Dynamic require of events"), its CommonJS build
// works: load it through require. Loaded only when the router is configured.
let provider: ProviderModule | undefined;
function loadProvider(): ProviderModule {
  provider ??= createRequire(import.meta.url)("@daydreamsai/ai-sdk-provider") as ProviderModule;
  return provider;
}

export interface RouterClient {
  readonly auth: RouterAuth["kind"];
  /** Whether calls are paid from the wallet (a permit session, or per call) rather than billed to an account. */
  readonly paysPerCall: boolean;
  readonly network?: string;
  /** The wallet that signs payments. */
  readonly payer?: string;
  readonly origin: string;
  /** A model for one call whose requests go through `f` (the paid request's fetch). */
  model(modelId: string, f: typeof fetch): ModelV2;
  /** How the router is paid now: its permit session when /v1/config names one, else what each 402 asks, else the account. */
  payWith(): Promise<PayWith>;
  /** Reads /v1/config again (at start, after a refusal, on the catalogue's schedule). */
  refreshTerms(): Promise<TermsRead | undefined>;
  /** What /v1/config said last. */
  readonly terms?: TermsRead;
  /** Permit sessions, once the composition root gave them their budget and balance. */
  sessions?: PermitSessions;
  useSessions(deps: Omit<PermitSessionOptions, "chain" | "origin">): PermitSessions | undefined;
  /** The wallet's chain: revocation and the reconciliation read it. */
  readonly chain?: PermitChain;
  unauthorized?(): void;
}

/**
 * The Dreams Router through @daydreamsai/ai-sdk-provider. A provider is built per call around the
 * call's paid fetch (it is cheap: closures), so concurrent calls never mix up whose payment is whose.
 */
export function createRouterClient(settings: RouterSettings): RouterClient {
  const { auth } = settings;
  // An address given with its /v1 (older docs wrote it so) names the same router.
  const origin = settings.origin.replace(/\/+$/, "").replace(/\/v1$/, "");
  const baseURL = `${origin}/v1`;
  // Loaded now (a 2.7 MB bundle) rather than inside the first decision's timeout.
  loadProvider();
  const account = auth.kind === "api-key" ? undefined : privateKeyToAccount(auth.privateKey);
  // Per-call x402 is signed by our paid request (x402Payer, on the reference SDK): the provider is
  // given no signer, so its own v1-only wrapper never signs anything.
  const payer = account && auth.kind !== "api-key" ? new X402Payer(account, { network: auth.network, ...(settings.rpcUrl ? { rpcUrl: settings.rpcUrl } : {}) }) : undefined;
  const chain = account && auth.kind !== "api-key" ? createPermitChain(account, auth.network, settings.rpcUrl) : undefined;
  const usdc = auth.kind !== "api-key" ? USDC_ADDRESS[auth.network] : undefined;

  const client: RouterClient = {
    auth: auth.kind,
    paysPerCall: auth.kind !== "api-key",
    origin,
    ...(auth.kind !== "api-key" ? { network: auth.network, payer: account!.address } : {}),
    ...(chain ? { chain } : {}),
    model(modelId, f) {
      const { createDreamsRouter } = loadProvider();
      return createDreamsRouter({ ...(auth.kind === "api-key" ? { apiKey: auth.apiKey } : {}), baseURL, fetch: f })(modelId, WITH_USAGE);
    },
    async refreshTerms() {
      if (auth.kind === "api-key" || !usdc) return undefined;
      const read = await readSessionTerms(origin, auth.network, usdc, settings.fetch ?? fetch);
      (client as { terms?: TermsRead }).terms = read;
      return read;
    },
    async payWith(): Promise<PayWith> {
      if (auth.kind === "api-key") return { kind: "account" };
      const t = client.terms ?? (await client.refreshTerms());
      if (t?.kind === "session" && client.sessions) {
        return { kind: "session", sessions: client.sessions, terms: t.terms, reread: rereadSession };
      }
      return { kind: "per-call", payer: payer! };
    },
    useSessions(deps) {
      if (!chain) return undefined;
      client.sessions = new PermitSessions({ ...deps, chain, origin });
      return client.sessions;
    },
  };
  const rereadSession = async (): Promise<SessionTerms | undefined> => {
    const t = await client.refreshTerms();
    return t?.kind === "session" ? t.terms : undefined;
  };
  return client;
}
