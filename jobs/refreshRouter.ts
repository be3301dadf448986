import type { Log } from "../src/log.js";

export interface RouterRefreshDeps {
  router: {
    /** Reads /v1/config again: the network, the token, the payee and the header the router is paid with. */
    refreshTerms(): Promise<unknown>;
    /** Reads /v1/models again: the models the router offers and their prices. */
    refreshCatalogue?(): Promise<{ ok: true; models: number } | { ok: false; why: string }>;
  };
  log: Log;
}

/** The router's payment terms and catalogue, read again on a schedule; a router that does not answer keeps the last ones. */
export async function runRouterRefresh(app: RouterRefreshDeps): Promise<void> {
  const [, cat] = await Promise.all([app.router.refreshTerms(), app.router.refreshCatalogue?.()]);
  if (cat && !cat.ok) app.log.warn(`router catalogue: ${cat.why}; keeping the last one read`);
}
