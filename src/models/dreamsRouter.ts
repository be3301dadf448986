import { createRequire } from "node:module";
import { privateKeyToAccount } from "viem/accounts";
import type { ModelV2 } from "../agent/scriptedModel.js";
import { meteredFetch, type CallMeter } from "../payments/paymentMeter.js";
import { X402Payer } from "../payments/x402Payer.js";
import type { RouterAuth } from "./routerAuth.js";

// Kept where they were first exported; they live in routerAuth.ts so the composition root can read
// them without loading this module (and viem, the provider) when the router is off.
export { routerAuthFromConfig, type RouterAuth } from "./routerAuth.js";

export interface RouterSettings {
  baseURL: string;
  auth: RouterAuth;
  /** The wallet's chain endpoint (BASE_RPC_URL), read when an `upto` payment needs an approval. */
  rpcUrl?: string;
}


type Provider = (modelId: string, settings?: Record<string, unknown>) => ModelV2;
// Asks the gateway to report usage (and its cost) in the reply, streamed or not.
const WITH_USAGE = { usage: { include: true } };
interface ProviderModule {
  createDreamsRouter: ((o: Record<string, unknown>) => Provider) & {
    evm: (account: unknown, o: Record<string, unknown>) => Provider;
  };
  createEVMAuthFromPrivateKey: (pk: `0x${string}`, o: Record<string, unknown>) => Promise<{ sessionToken: string }>;
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
  /** Whether calls are paid per call with x402 (else the gateway bills an account and reports the cost). */
  readonly paysPerCall: boolean;
  readonly network?: string;
  /** The wallet that signs payments. */
  readonly payer?: string;
  /** A model for one call; its cost and payment are reported to `meter`. */
  model(modelId: string, meter?: CallMeter): ModelV2;
}

/**
 * The Dreams Router through @daydreamsai/ai-sdk-provider. A provider is built per call around the
 * call's metered fetch (it is cheap: closures and an x402 wrapper), so concurrent calls never mix
 * up whose payment is whose.
 */
export function createRouterClient(settings: RouterSettings): RouterClient {
  const { baseURL, auth } = settings;
  // Loaded now (a 2.7 MB bundle) rather than inside the first decision's timeout.
  loadProvider();
  const account = auth.kind === "api-key" ? undefined : privateKeyToAccount(auth.privateKey);
  // Our metered fetch pays (x402Payer, on the reference SDK): the provider is given no signer, so
  // its own v1-only wrapper never signs anything.
  const payer = account && auth.kind !== "api-key" ? new X402Payer(account, { network: auth.network, ...(settings.rpcUrl ? { rpcUrl: settings.rpcUrl } : {}) }) : undefined;
  let session: Promise<string> | undefined;

  const login = (): Promise<string> => {
    if (auth.kind !== "wallet-login") throw new Error("no wallet login for this authentication");
    session ??= loadProvider()
      .createEVMAuthFromPrivateKey(auth.privateKey, { baseURL, payments: { network: auth.network } })
      .then((r) => r.sessionToken)
      .catch((err: unknown) => {
        session = undefined;
        const status = (err as { status?: number }).status;
        throw Object.assign(new Error(`wallet login at the router failed${status ? ` (HTTP ${status})` : ""}`), { status });
      });
    return session;
  };

  const build = async (modelId: string, f: typeof fetch): Promise<ModelV2> => {
    const { createDreamsRouter } = loadProvider();
    switch (auth.kind) {
      case "api-key":
        return createDreamsRouter({ apiKey: auth.apiKey, baseURL, fetch: f })(modelId, WITH_USAGE);
      case "x402":
        return createDreamsRouter({ baseURL, fetch: f })(modelId, WITH_USAGE);
      case "wallet-login": {
        const token = await login();
        return createDreamsRouter({ apiKey: token, baseURL, fetch: f })(modelId, WITH_USAGE);
      }
    }
  };

  return {
    auth: auth.kind,
    paysPerCall: auth.kind !== "api-key",
    ...(auth.kind !== "api-key" ? { network: auth.network, payer: account!.address } : {}),
    model(modelId, meter) {
      // A session the gateway no longer accepts is dropped; the next call signs in again.
      return meteredModel(modelId, async (f) => {
        try {
          return await build(modelId, f);
        } catch (err) {
          const status = (err as { status?: number }).status;
          if (meter && status) meter.status = status;
          throw err;
        }
      }, meter, payer, () => (session = undefined));
    },
  };
}

/**
 * A router model for one call: the provider is built per call around `meter`'s fetch, so concurrent
 * calls never mix up whose payment is whose. (The reported cost is read by the model layer.)
 */
export function meteredModel(modelId: string, build: (f: typeof fetch) => Promise<ModelV2>, meter: CallMeter | undefined, payer?: X402Payer, onUnauthorized?: () => void): ModelV2 {
  const f = meter ? meteredFetch(meter, payer, fetch, onUnauthorized) : fetch;
  return {
    specificationVersion: "v2",
    provider: "dreamsrouter",
    modelId,
    supportedUrls: {},
    doGenerate: async (options) => (await build(f)).doGenerate(options),
    doStream: async (options) => (await build(f)).doStream(options),
  };
}
