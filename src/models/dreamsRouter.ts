import { createRequire } from "node:module";
import { privateKeyToAccount } from "viem/accounts";
import type { ModelV2 } from "../agent/scriptedModel.js";

/** How the agent pays the Dreams Router: an API key, or x402 micropayments from its own wallet. */
export type RouterAuth =
  | { kind: "api-key"; apiKey: string }
  | { kind: "x402"; privateKey: `0x${string}`; network: "base" | "base-sepolia" };

export interface RouterSettings {
  baseURL: string;
  auth: RouterAuth;
}

type ModelFactory = (modelId: string) => ModelV2;
interface ProviderModule {
  createDreamsRouter: ((o: { apiKey?: string; baseURL?: string }) => ModelFactory) & {
    evm: (account: unknown, o: { baseURL?: string; network?: string }) => ModelFactory;
  };
}

// The provider's ESM build fails on Node 20 ("Dynamic require of events"), its CommonJS build
// works: load it through require. Loaded lazily so the offline default never pays for it.
let provider: ProviderModule | undefined;
function loadProvider(): ProviderModule {
  provider ??= createRequire(import.meta.url)("@daydreamsai/ai-sdk-provider") as ProviderModule;
  return provider;
}

/** A factory of Dreams Router models (e.g. "openai/gpt-4o") for the configured authentication. */
export function dreamsRouterModels(settings: RouterSettings): ModelFactory {
  const { createDreamsRouter } = loadProvider();
  if (settings.auth.kind === "api-key") {
    return createDreamsRouter({ apiKey: settings.auth.apiKey, baseURL: settings.baseURL });
  }
  const account = privateKeyToAccount(settings.auth.privateKey);
  return createDreamsRouter.evm(account, { baseURL: settings.baseURL, network: settings.auth.network });
}
