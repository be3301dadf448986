// VENDORED EXCERPT of packages/core/src/middleware/core.ts: only the payment-header lookup, verbatim.
// The rest of that file drives @x402/core's x402HTTPResourceServer (whose strict matching cannot
// match the hosted router's payload) and Elysia/Hono/Express adapters; see ../PROVENANCE.md.

export const DEFAULT_PAYMENT_HEADER_ALIASES = ["x-payment"];

export function resolveHeaderWithAliases(
  getHeader: (name: string) => string | null | undefined,
  name: string,
  aliases: string[]
): string | undefined {
  const direct = getHeader(name);
  if (direct !== null && direct !== undefined) return direct;

  if (name.toLowerCase() === "payment-signature") {
    for (const alias of aliases) {
      const aliasValue = getHeader(alias);
      if (aliasValue !== null && aliasValue !== undefined) return aliasValue;
    }
  }

  return undefined;
}
