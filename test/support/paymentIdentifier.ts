// The x402 payment-identifier extension as a resource server implements it (specs/extensions/
// payment_identifier.md, and the reference example server examples/typescript/servers/
// payment-identifier): a new id is processed; the same id with the same payload gets the cached
// response, not a second settlement; the same id with a different payload is a 409 Conflict. The
// payload is compared whole, signature included, as the reference fingerprints it: a proper retry
// resends the payment it signed, and a fresh signature under an old id is another payment.
import { createHash } from "node:crypto";
import type { PaymentPayload } from "@x402/core/types";

/** The payment-identifier a v2 payload carries, if any. */
export function paymentIdOf(payload: PaymentPayload): string | undefined {
  const id = (payload.extensions?.["payment-identifier"] as { info?: { id?: unknown } } | undefined)?.info?.id;
  return typeof id === "string" ? id : undefined;
}

/** SHA-256 of the payload with object keys sorted, as the reference example server computes it. */
export function payloadFingerprint(payload: PaymentPayload): string {
  const canonical = JSON.stringify(payload, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
  return createHash("sha256").update(canonical).digest("hex");
}

export type Seen<T> = { kind: "new" } | { kind: "repeat"; id: string; response: T } | { kind: "conflict"; id: string };

/** What a server answered per payment-identifier, to answer a repeat the same way. */
export class PaymentIdentifierCache<T> {
  private readonly byId = new Map<string, { fingerprint: string; response: T }>();

  lookup(payload: PaymentPayload): Seen<T> {
    const id = paymentIdOf(payload);
    const hit = id ? this.byId.get(id) : undefined;
    if (!id || !hit) return { kind: "new" };
    return hit.fingerprint === payloadFingerprint(payload) ? { kind: "repeat", id, response: hit.response } : { kind: "conflict", id };
  }

  /** Caches the response to a settled payment (one without an id is not cached). */
  remember(payload: PaymentPayload, response: T): void {
    const id = paymentIdOf(payload);
    if (id) this.byId.set(id, { fingerprint: payloadFingerprint(payload), response });
  }
}
