// The router stand-in's x402 v2 side, on the reference resource server (@x402/core/server): the
// 402 with PAYMENT-REQUIRED, matching a payment to an offer, verification, settlement and the
// PAYMENT-RESPONSE receipt are x402HTTPResourceServer's, driven the way the reference express
// middleware drives it (processHTTPRequest, then processSettlement). Its facilitator is the
// stand-in's in-process x402Facilitator (as in the reference self-facilitation example server),
// and its schemes are @x402/evm's exact and upto servers. What stays the stand-in's own, each a
// hook the resource server offers:
// - the payment-identifier cache (./paymentIdentifier.ts), checked in onProtectedRequest and
//   filled in onAfterSettle, as the reference payment-identifier example server does;
// - refusing a payment to one of the decoy offers (a beforeVerify abort): they are there for the
//   client to turn down, the stand-in settles only its real offer;
// - the injected 402-repeat fault (an afterVerify abort of a valid payment).
import type { IncomingMessage } from "node:http";
import { x402Facilitator } from "@x402/core/facilitator";
import { decodePaymentSignatureHeader } from "@x402/core/http";
import {
  x402HTTPResourceServer,
  x402ResourceServer,
  type FacilitatorClient,
  type HTTPAdapter,
  type HTTPRequestContext,
  type HTTPResponseInstructions,
  type HTTPTransportContext,
  type RouteConfig,
} from "@x402/core/server";
import type { AssetAmount, Network, PaymentPayload, PaymentRequirements, SchemeNetworkServer, SettleResponse, SupportedResponse } from "@x402/core/types";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { UptoEvmScheme } from "@x402/evm/upto/server";
import { PaymentIdentifierCache, type Seen } from "./paymentIdentifier.js";

/** A change to the real offer, making a decoy: wrong asset, other network, another payee... */
export type OfferChange = Partial<{ network: string; asset: string; payTo: string; scheme: string; priceFactor: number }>;

export interface V2Terms {
  url: string;
  network: Network;
  asset: string;
  tokenName: string;
  payTo: string;
  scheme: "exact" | "upto";
  decoys: OfferChange[];
  /** The gas-sponsoring extension an `upto` 402 declares, if any. */
  sponsors?: string;
}

/** What one paid request is about, for the resource server's price function and hooks. */
export interface V2Call {
  priceAtomic: bigint;
  /** The injected 402-repeat: true (and the fault used up) if this valid payment is to be refused. */
  refuseValid?: () => boolean;
}

/** A payment the resource server verified, to settle now (`exact`) or after the reply (`upto`). */
export interface VerifiedPayment {
  payload: PaymentPayload;
  requirements: PaymentRequirements;
  declaredExtensions?: Record<string, unknown>;
  transport: HTTPTransportContext;
  header: string;
}

export type Gate =
  /** Answer this (a 402 or 412); `refused` if it turns down a payment that came with the request. */
  | { kind: "respond"; response: HTTPResponseInstructions; refused?: { reason: string; header?: string } }
  | { kind: "repeat"; id: string; response: SettleResponse }
  | { kind: "conflict"; id: string }
  | { kind: "verified"; payment: VerifiedPayment };

export type Settled = { ok: true; settlement: SettleResponse; headers: Record<string, string> } | { ok: false; reason: string; response: HTTPResponseInstructions };

const ROUTE = "POST /v1/chat/completions";
type PaymentOption = Extract<RouteConfig["accepts"], unknown[]>[number];

/** Node's request as the resource server reads it, with what the stand-in knows about the call. */
class StandInAdapter implements HTTPAdapter {
  seen: Seen<SettleResponse> = { kind: "new" };
  /** Why the facilitator refused the payment, with its message (the 402 carries the reason only). */
  refusal?: string;
  injected = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly url: string,
    readonly call: V2Call,
  ) {}

  getHeader(name: string): string | undefined {
    const v = this.req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(", ") : v;
  }
  getMethod(): string {
    return this.req.method ?? "GET";
  }
  getPath(): string {
    return (this.req.url ?? "/").split("?")[0]!;
  }
  getUrl(): string {
    return this.url;
  }
  getAcceptHeader(): string {
    return this.getHeader("accept") ?? "";
  }
  getUserAgent(): string {
    return this.getHeader("user-agent") ?? "";
  }
}

const adapterOf = (transportContext: unknown) => (transportContext as HTTPTransportContext).request.adapter as StandInAdapter;

/**
 * A scheme the stand-in only offers, never settles (the decoy "stream" offer): the resource
 * server builds requirements only for schemes it has a server for and the facilitator lists.
 */
class OfferedOnlyScheme implements SchemeNetworkServer {
  readonly defaultAssetTransferMethod = "eip3009";
  readonly paymentFlows = { eip3009: { supported: ["authorization" as const], default: "authorization" as const } };
  constructor(readonly scheme: string) {}
  async parsePrice(price: unknown): Promise<AssetAmount> {
    return price as AssetAmount;
  }
  async enhancePaymentRequirements(requirements: PaymentRequirements): Promise<PaymentRequirements> {
    return requirements;
  }
}

export class StandInResourceServer {
  private readonly http: x402HTTPResourceServer;
  private readonly byPaymentId = new PaymentIdentifierCache<SettleResponse>();

  private constructor(
    private readonly terms: V2Terms,
    facilitator: x402Facilitator,
  ) {
    const decoyKinds = terms.decoys.map((d) => ({ x402Version: 2, scheme: d.scheme ?? terms.scheme, network: (d.network ?? terms.network) as Network }));
    // The local facilitator, as the reference self-facilitation example wires one; it also lists
    // the decoys' kinds, which it cannot verify (the stand-in refuses them before it is asked).
    const local: FacilitatorClient = {
      verify: (p, r) => facilitator.verify(p, r),
      settle: (p, r) => facilitator.settle(p, r),
      getSupported: async (): Promise<SupportedResponse> => {
        const supported = facilitator.getSupported() as SupportedResponse;
        const missing = decoyKinds.filter((k) => !supported.kinds.some((s) => s.scheme === k.scheme && s.network === k.network && s.x402Version === 2));
        return { ...supported, kinds: [...supported.kinds, ...missing] };
      },
    };
    const server = new x402ResourceServer(local).register("eip155:*", new ExactEvmScheme()).register("eip155:*", new UptoEvmScheme());
    for (const scheme of new Set(decoyKinds.map((k) => k.scheme))) {
      if (scheme !== "exact" && scheme !== "upto") server.register("eip155:*", new OfferedOnlyScheme(scheme));
    }
    server.onBeforeVerify(async ({ requirements, transportContext }) => {
      const real = requirements.scheme === terms.scheme && requirements.network === terms.network && requirements.asset === terms.asset && requirements.payTo === terms.payTo;
      if (!real || requirements.amount !== adapterOf(transportContext).call.priceAtomic.toString()) {
        return { abort: true, reason: "pays an offer the stand-in cannot settle" };
      }
    });
    server.onAfterVerify(async ({ result, transportContext }) => {
      const adapter = adapterOf(transportContext);
      if (!result.isValid) {
        adapter.refusal = `${result.invalidReason ?? "invalid"}${result.invalidMessage ? `: ${result.invalidMessage}` : ""}`;
      } else if (adapter.call.refuseValid?.()) {
        adapter.injected = true;
        return { abort: true, reason: "payment could not be settled" };
      }
    });
    server.onAfterSettle(async ({ paymentPayload, result }) => this.byPaymentId.remember(paymentPayload as PaymentPayload, result as SettleResponse));

    const price = (factor = 1) => (ctx: HTTPRequestContext): AssetAmount => ({
      amount: BigInt(Math.round(Number((ctx.adapter as StandInAdapter).call.priceAtomic) * factor)).toString(),
      asset: terms.asset,
      extra: { name: terms.tokenName, version: "2" },
    });
    const option = (change: OfferChange = {}): PaymentOption => ({
      scheme: change.scheme ?? terms.scheme,
      network: (change.network ?? terms.network) as Network,
      payTo: change.payTo ?? terms.payTo,
      maxTimeoutSeconds: 300,
      price: change.asset === undefined ? price(change.priceFactor) : (ctx: HTTPRequestContext) => ({ ...price(change.priceFactor)(ctx), asset: change.asset! }),
    });
    this.http = new x402HTTPResourceServer(server, {
      [ROUTE]: {
        accepts: [...terms.decoys.map(option), option()],
        resource: `${terms.url}/chat/completions`,
        description: "chat completion, priced per model",
        mimeType: "application/json",
        extensions: {
          "payment-identifier": { info: { required: false }, schema: { type: "object" } },
          ...(terms.sponsors ? { [terms.sponsors]: { info: { description: "The facilitator pays the gas of the payer's approval of Permit2", version: "1" }, schema: { type: "object" } } } : {}),
        },
      },
    }).onProtectedRequest(async (ctx) => {
      // A payment-identifier seen before: the same payment is answered again, another one is a 409.
      if (!ctx.paymentHeader) return;
      let payload: PaymentPayload;
      try {
        payload = decodePaymentSignatureHeader(ctx.paymentHeader);
      } catch {
        return;
      }
      const adapter = ctx.adapter as StandInAdapter;
      adapter.seen = this.byPaymentId.lookup(payload);
      if (adapter.seen.kind !== "new") return { grantAccess: true };
    });
  }

  static async start(terms: V2Terms, facilitator: x402Facilitator): Promise<StandInResourceServer> {
    const s = new StandInResourceServer(terms, facilitator);
    await s.http.initialize();
    return s;
  }

  /** The x402 handshake for one request: ask to pay, refuse, answer a repeat, or a verified payment. */
  async gate(req: IncomingMessage, call: V2Call): Promise<Gate> {
    const adapter = new StandInAdapter(req, `${this.terms.url}/chat/completions`, call);
    const header = adapter.getHeader("payment-signature");
    const context: HTTPRequestContext = { adapter, path: adapter.getPath(), method: adapter.getMethod(), ...(header ? { paymentHeader: header } : {}) };
    const result = await this.http.processHTTPRequest(context);
    if (adapter.seen.kind === "repeat") return { kind: "repeat", id: adapter.seen.id, response: adapter.seen.response };
    if (adapter.seen.kind === "conflict") return { kind: "conflict", id: adapter.seen.id };
    if (result.type === "payment-verified") {
      return { kind: "verified", payment: { payload: result.paymentPayload, requirements: result.paymentRequirements, declaredExtensions: result.declaredExtensions, transport: { request: context }, header: header! } };
    }
    if (result.type === "no-payment-required") throw new Error(`${ROUTE} is not a paid route`);
    const { response } = result;
    if (header === undefined) return { kind: "respond", response };
    // The resource server reads an undecodable payment as none, and asks for one again.
    if (!decodes(header)) return { kind: "respond", response, refused: { reason: "payment header is not base64 JSON" } };
    if (adapter.injected) return { kind: "respond", response, refused: { reason: "gateway refused the payment (injected)" } };
    return { kind: "respond", response, refused: { reason: adapter.refusal ?? errorOf(response) ?? "refused", header } };
  }

  /** The PAYMENT-RESPONSE header for a settlement (a repeat is answered with its first one). */
  receiptHeaders(settlement: SettleResponse): Record<string, string> {
    return this.http.createSettlementHeaders(settlement);
  }

  /** Settles a verified payment, for `amountAtomic` if given (`upto`: what the reply used). */
  async settle(payment: VerifiedPayment, amountAtomic?: bigint): Promise<Settled> {
    const done = await this.http.processSettlement(
      payment.payload,
      payment.requirements,
      payment.declaredExtensions,
      payment.transport,
      amountAtomic === undefined ? undefined : { amount: amountAtomic.toString() },
    );
    if (!done.success) return { ok: false, reason: `settle: ${done.errorReason}`, response: done.response };
    const { headers, requirements: _r, ...settlement } = done;
    return { ok: true, settlement: settlement as SettleResponse, headers };
  }
}

/** The `error` a PAYMENT-REQUIRED header carries. */
function errorOf(response: HTTPResponseInstructions): string | undefined {
  const encoded = Object.entries(response.headers).find(([k]) => k.toLowerCase() === "payment-required")?.[1];
  if (!encoded) return undefined;
  try {
    return (JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as { error?: string }).error;
  } catch {
    return undefined;
  }
}

function decodes(header: string): boolean {
  try {
    decodePaymentSignatureHeader(header);
    return true;
  } catch {
    return false;
  }
}
