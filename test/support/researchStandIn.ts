// A stand-in for an x402-paid research provider on 127.0.0.1: GET /research?symbols=BTC,ETH
// answers narratives and per-symbol signals as JSON, after an x402 v2 handshake (PAYMENT-REQUIRED,
// PAYMENT-SIGNATURE, PAYMENT-RESPONSE) verified and settled by the reference facilitator over the
// same in-memory USDC chain as the router stand-in (or a real chain's signer). The test sets the
// price, the reply (an injection attempt, an oversized or malformed body) and faults. A repeated
// payment-identifier is answered as the extension prescribes (./paymentIdentifier.ts): the cached
// reply and receipt for the same payment, 409 for another payment under the same id.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { x402Facilitator } from "@x402/core/facilitator";
import { decodePaymentSignatureHeader, encodePaymentRequiredHeader, encodePaymentResponseHeader } from "@x402/core/http";
import type { PaymentPayload, PaymentRequirements, SettleResponse } from "@x402/core/types";
import type { FacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { PaymentIdentifierCache, paymentIdOf } from "./paymentIdentifier.js";
import { CAIP2, readBody, TOKEN_NAME, USDC_ASSET } from "./routerStandIn.js";
import { UsdcChain } from "./usdcChain.js";

export const RESEARCH_PAYEE = "0x00000000000000000000000000000000000b0b00" as const;

export interface ResearchPayment {
  from: string;
  value: bigint;
  transaction: string;
  paymentId?: string;
  /** The raw payment header, so a test can send it again. */
  header: string;
}

/** A paid answer as sent, so a repeat of its payment gets it again. */
interface PaidAnswer {
  body: string;
  receipt: Record<string, string>;
}

/** A reply body, given the symbols asked for: a JSON value, or raw text (to send something broken). */
export type ResearchBody = (symbols: string[]) => unknown;

export const defaultResearch: ResearchBody = (symbols) => ({
  narratives: [{ title: "Layer-2 fees at record lows", summary: "Activity on rollups keeps rising." }],
  signals: symbols.map((s) => ({ symbol: s, headline: `${s}: steady inflows to exchanges`, sentiment: "neutral" })),
});

export interface ResearchStandInOptions {
  /** USDC per call. */
  price: number;
  network?: "base" | "base-sepolia";
  body?: ResearchBody;
  signer?: FacilitatorEvmSigner;
}

export class ResearchStandIn {
  readonly payments: ResearchPayment[] = [];
  readonly refused: string[] = [];
  /** Payment-identifiers answered from the cache (neither verified nor settled again). */
  readonly duplicates: string[] = [];
  /** Payment-identifiers refused with 409: another payment under an id already used. */
  readonly conflicts: string[] = [];
  /** Off: a repeated payment is verified and settled as a new one (a server without the extension). */
  dedupe = true;
  private readonly answered = new PaymentIdentifierCache<PaidAnswer>();
  /** Every request, paid or not. */
  requests = 0;
  readonly network: "base" | "base-sepolia";
  readonly chain: UsdcChain;
  private readonly facilitator = new x402Facilitator();
  private readonly sockets = new Set<Socket>();
  /** Raw text to send instead of JSON (e.g. an oversized body); undefined: JSON of `body`. */
  rawBody?: string;
  body: ResearchBody;
  price: number;
  url = "";

  private constructor(private readonly server: Server, opts: ResearchStandInOptions) {
    this.network = opts.network ?? "base-sepolia";
    this.price = opts.price;
    this.body = opts.body ?? defaultResearch;
    this.chain = new UsdcChain(TOKEN_NAME[this.network], USDC_ASSET[this.network]);
    const signer = opts.signer ?? (this.chain.signer as never as FacilitatorEvmSigner);
    this.facilitator.register([CAIP2.base, CAIP2["base-sepolia"]], new ExactEvmScheme(signer, { simulateInSettle: false }));
  }

  static async start(opts: ResearchStandInOptions): Promise<ResearchStandIn> {
    const server = createServer();
    const s = new ResearchStandIn(server, opts);
    server.on("request", (req, res) => {
      s.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) s.json(res, 500, { error: String((err as Error).message) });
        else res.destroy();
      });
    });
    server.on("connection", (sock) => {
      s.sockets.add(sock);
      sock.on("close", () => s.sockets.delete(sock));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/research`;
    return s;
  }

  paidAtomic(): bigint {
    return this.payments.reduce((sum, p) => sum + p.value, 0n);
  }

  async close(): Promise<void> {
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await readBody(req);
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.method !== "GET" || url.pathname !== "/research") return this.json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    this.requests++;
    const symbols = (url.searchParams.get("symbols") ?? "").split(",").filter(Boolean);
    const offer = {
      scheme: "exact",
      network: CAIP2[this.network],
      amount: String(Math.round(this.price * 1_000_000)),
      payTo: RESEARCH_PAYEE,
      maxTimeoutSeconds: 300,
      asset: USDC_ASSET[this.network],
      extra: { name: TOKEN_NAME[this.network], version: "2" },
    };
    const askToPay = (error: string) => {
      const required = {
        x402Version: 2,
        error,
        resource: { url: this.url, description: "narratives and signals", mimeType: "application/json" },
        accepts: [offer],
        extensions: { "payment-identifier": { info: { required: false }, schema: { type: "object" } } },
      };
      return this.json(res, 402, {}, { "payment-required": encodePaymentRequiredHeader(required as never) });
    };
    const header = req.headers["payment-signature"];
    if (typeof header !== "string") return askToPay("payment required");
    let payload: PaymentPayload;
    try {
      payload = decodePaymentSignatureHeader(header);
    } catch {
      this.refused.push("payment header is not base64 JSON");
      return askToPay("payment header is not base64 JSON");
    }
    if (this.dedupe) {
      const seen = this.answered.lookup(payload);
      if (seen.kind === "repeat") {
        this.duplicates.push(seen.id);
        res.writeHead(200, { "content-type": "application/json", ...seen.response.receipt });
        res.end(seen.response.body);
        return;
      }
      if (seen.kind === "conflict") {
        this.conflicts.push(seen.id);
        return this.json(res, 409, { error: "payment identifier already used with different payload", paymentId: seen.id });
      }
    }
    const target = offer as unknown as PaymentRequirements;
    const verdict = await this.facilitator.verify(payload, target).catch((e: Error) => ({ isValid: false, invalidReason: e.message }));
    if (!verdict.isValid) {
      this.refused.push(verdict.invalidReason ?? "invalid");
      return askToPay(verdict.invalidReason ?? "invalid");
    }
    const settlement = await this.facilitator.settle(payload, target).catch((e: Error) => ({ success: false, errorReason: e.message, transaction: "", network: target.network }));
    if (!settlement.success) {
      this.refused.push(`settle: ${settlement.errorReason}`);
      return askToPay(`settle: ${settlement.errorReason}`);
    }
    const auth = (payload.payload as { authorization: { from: string; value: string } }).authorization;
    const paymentId = paymentIdOf(payload);
    this.payments.push({ from: auth.from, value: BigInt(auth.value), transaction: settlement.transaction, header, ...(paymentId ? { paymentId } : {}) });
    const answer: PaidAnswer = {
      body: this.rawBody ?? JSON.stringify(this.body(symbols)),
      receipt: { "payment-response": encodePaymentResponseHeader(settlement as SettleResponse) },
    };
    this.answered.remember(payload, answer);
    res.writeHead(200, { "content-type": "application/json", ...answer.receipt });
    res.end(answer.body);
  }

  private json(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(payload));
  }
}
