// A stand-in for the Dreams Router on 127.0.0.1, for tests, benchmarks and the chain demo. The real
// provider (@daydreamsai/ai-sdk-provider) talks to it over HTTP: OpenAI chat completions (streamed
// and not), x402, wallet login, and API keys. Per-model prices and per-model faults are set by the
// test. The x402 it speaks is switchable:
// - v2 (`x402: "v2"`): the handshake is the reference resource server's (x402HTTPResourceServer,
//   ./standInResourceServer.ts): the 402 with PAYMENT-REQUIRED, verification, settlement and the
//   PAYMENT-RESPONSE receipt. It can offer `upto` instead of `exact` (the price as a maximum,
//   settled after the reply for the tokens used), and dedupes payment-identifiers (409 on reuse).
// - standard v1 (offer in the 402 body) and the Dreams dialect (the offer also in the non-standard
//   `x-payment-required` header, payment back in `x-payment`): the reference resource server
//   answers v2 only, so these build the 402 here and hand the payment to the reference
//   facilitator directly.
// Either way, the signature, payee, amount, network, validity window and nonce are checked by
// the reference facilitator (x402Facilitator with @x402/evm's schemes), over the in-memory USDC
// chain or a real one. Faults (500, 429, hang, 402-repeat, bad replies) are injected around it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { verifyMessage } from "viem";
import { x402Facilitator } from "@x402/core/facilitator";
import { decodePaymentSignatureHeader, encodePaymentResponseHeader } from "@x402/core/http";
import type { HTTPResponseInstructions } from "@x402/core/server";
import type { PaymentPayload, PaymentRequirements, SettleResponse } from "@x402/core/types";
import type { FacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/facilitator";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/facilitator";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import {
  defaultReply,
  flattenPrompt,
  readBody,
  schemaBreakingReply,
  symbolsIn,
  usageOf,
  writeCompletion,
  type ReplyFn,
  type StandInFault,
  type StandInRequest,
} from "./chatCompletions.js";
import { paymentIdOf } from "./paymentIdentifier.js";
import { StandInResourceServer, type OfferChange, type VerifiedPayment } from "./standInResourceServer.js";
import { UsdcChain } from "./usdcChain.js";


/** EIP-3009's typed data, as the provider signs it and the stand-in checks it. */
export const TRANSFER_WITH_AUTHORIZATION = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;
export { holdReply, readBody, type ReplyFn, type StandInFault, type StandInRequest } from "./chatCompletions.js";

export interface AcceptedPayment {
  model: string;
  from: string;
  to: string;
  value: bigint;
  nonce: string;
  /** The raw payment header, so a test can try to replay it. */
  header: string;
  time: number;
  /** The on-chain transfer that settled it (the stand-in chain's). */
  transaction: string;
  scheme: "exact" | "upto";
  /** `upto`: the maximum the payer signed (`value` is what was settled). */
  maxValue?: bigint;
  paymentId?: string;
}

export interface CallLog {
  model: string;
  paid: boolean;
  auth?: string;
  status: number;
  stream: boolean;
  fault?: StandInFault["kind"];
}

export interface StandInOptions {
  /** USDC per call, by model id. */
  prices: Record<string, number>;
  network?: "base" | "base-sepolia";
  payTo?: `0x${string}`;
  /** Bearer tokens that pay by account instead of x402 (the gateway reports `usage.cost`). */
  apiKeys?: string[];
  /** Extra cost per extra symbol in one batched call, as a fraction of the model's price. */
  batchSymbolFactor?: number;
  reply?: ReplyFn;
  /** How long each answered call takes, as a model that thinks (benchmarks bound by concurrency, not CPU). */
  delayMs?: number;
  /** Which x402 the stand-in speaks: v2 headers, standard v1 (offer in the body), or the Dreams Router's dialect (default). */
  x402?: "v2" | "v1" | "dreams";
  /** More offers beside the real one (each a change to it): wrong asset, other network, another payee... */
  extraOffers?: OfferChange[];
  /**
   * v2 only: the real offer is `upto`, its amount the maximum (the model's price), settled after
   * the reply for what the call used: `perTokenAtomic` per prompt and completion token, at most the
   * maximum, unless `settleAtomic` asks for another amount (a faulty or greedy server). Needs a
   * real chain (`signer`) with Permit2 and the upto proxy. `sponsors`: the gas-sponsoring
   * extension the 402 declares for a payer with no Permit2 allowance yet (default: an EIP-2612
   * approval, which the proxy's `settleWithPermit` submits).
   */
  upto?: {
    perTokenAtomic: number;
    settleAtomic?: (usedAtomic: bigint, maxAtomic: bigint) => bigint;
    sponsors?: "eip2612GasSponsoring" | "erc20ApprovalGasSponsoring" | "none";
  };
  /**
   * The facilitator's signer on a real chain (test/support/chainFacilitator.ts): payments then
   * settle on it with transferWithAuthorization. Absent: the in-memory stand-in chain.
   */
  signer?: FacilitatorEvmSigner;
  /** Port on 127.0.0.1 (0 picks a free one). */
  port?: number;
}

export const USDC_ASSET = {
  base: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
  "base-sepolia": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
} as const;
export const TOKEN_NAME = { base: "USD Coin", "base-sepolia": "USDC" } as const;
export const CAIP2 = { base: "eip155:8453", "base-sepolia": "eip155:84532" } as const;

export const STANDIN_PAYEE = "0x00000000000000000000000000000000000a11ce" as const;

export class RouterStandIn {
  readonly payments: AcceptedPayment[] = [];
  readonly refused: { model: string; reason: string }[] = [];
  /** The payment headers the facilitator refused, at verification or at settlement. */
  readonly refusedHeaders: string[] = [];
  readonly calls: CallLog[] = [];
  readonly sessions = new Map<string, string>();
  private readonly faults = new Map<string, { fault: StandInFault; left: number }>();
  private readonly sockets = new Set<Socket>();
  private readonly hung = new Set<ServerResponse>();
  private reply: ReplyFn;
  readonly network: "base" | "base-sepolia";
  readonly payTo: `0x${string}`;
  readonly chain: UsdcChain;
  /** Payments answered from the payment-identifier cache (not verified or charged again). */
  readonly duplicates: string[] = [];
  private readonly facilitator = new x402Facilitator();
  /** Payment-identifiers refused with 409: another payment under an id already used. */
  readonly conflicts: string[] = [];
  /** The v2 handshake, on the reference resource server (absent in v1 and the Dreams dialect). */
  private v2: StandInResourceServer | undefined;
  url = "";

  private constructor(
    private readonly server: Server,
    private readonly opts: StandInOptions,
  ) {
    this.reply = opts.reply ?? defaultReply;
    this.network = opts.network ?? "base-sepolia";
    this.payTo = opts.payTo ?? STANDIN_PAYEE;
    this.chain = new UsdcChain(TOKEN_NAME[this.network], USDC_ASSET[this.network]);
    // The handshake's verification and settlement are the reference facilitator's, over the stand-in chain.
    const signer = opts.signer ?? (this.chain.signer as never as FacilitatorEvmSigner);
    this.facilitator.register([CAIP2.base, CAIP2["base-sepolia"]], new ExactEvmScheme(signer, { simulateInSettle: false }));
    this.facilitator.registerV1(["base", "base-sepolia"] as never, new ExactEvmSchemeV1(signer, { simulateInSettle: false }));
    if (opts.upto) this.facilitator.register([CAIP2.base, CAIP2["base-sepolia"]], new UptoEvmScheme(signer));
  }

  get mode(): "v2" | "v1" | "dreams" {
    return this.opts.x402 ?? "dreams";
  }

  static async start(opts: StandInOptions): Promise<RouterStandIn> {
    const server = createServer();
    const standIn = new RouterStandIn(server, opts);
    server.on("request", (req, res) => {
      standIn.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) standIn.json(res, 500, { error: { message: String((err as Error).message) } });
        else res.destroy();
      });
    });
    server.on("connection", (s) => {
      standIn.sockets.add(s);
      s.on("close", () => standIn.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
    standIn.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    if (standIn.mode === "v2") {
      const network = standIn.network;
      const upto = opts.upto;
      standIn.v2 = await StandInResourceServer.start(
        {
          url: standIn.url,
          network: CAIP2[network],
          asset: USDC_ASSET[network],
          tokenName: TOKEN_NAME[network],
          payTo: standIn.payTo,
          scheme: upto ? "upto" : "exact",
          decoys: opts.extraOffers ?? [],
          ...(upto && upto.sponsors !== "none" ? { sponsors: upto.sponsors ?? "eip2612GasSponsoring" } : {}),
        },
        standIn.facilitator,
      );
    }
    return standIn;
  }

  /** Makes `model` fail in the given way for the next `times` calls (all calls by default). */
  setFault(model: string, fault: StandInFault | undefined, times = Infinity): void {
    if (fault) this.faults.set(model, { fault, left: times });
    else this.faults.delete(model);
  }

  setReply(reply: ReplyFn): void {
    this.reply = reply;
  }

  setPrice(model: string, usdc: number): void {
    this.opts.prices[model] = usdc;
  }

  /** Atomic USDC units the stand-in charges for one call to `model` about `symbols` symbols. */
  priceAtomic(model: string, symbols = 1): bigint {
    const usdc = this.opts.prices[model] ?? 0;
    const factor = 1 + (this.opts.batchSymbolFactor ?? 0.2) * Math.max(0, symbols - 1);
    return BigInt(Math.round(usdc * factor * 1_000_000));
  }

  paidAtomic(): bigint {
    return this.payments.reduce((s, p) => s + p.value, 0n);
  }

  callsTo(model: string): CallLog[] {
    return this.calls.filter((c) => c.model === model);
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- HTTP --------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?")[0];
    const body = await readBody(req);
    if (req.method === "POST" && path === "/v1/auth/wallet-login") return this.walletLogin(body, res);
    if (req.method === "GET" && path === "/v1/models/detailed") {
      return this.json(res, 200, { success: true, models: Object.keys(this.opts.prices).map((id) => ({ id, name: id, pricing: { prompt: 0, completion: 0 } })) });
    }
    if (req.method === "POST" && path === "/v1/chat/completions") return this.chat(req, body, res);
    return this.json(res, 404, { error: { message: `no route ${req.method} ${path}` } });
  }

  private async walletLogin(body: string, res: ServerResponse): Promise<void> {
    const { walletAddress, signature, message } = JSON.parse(body) as { walletAddress: `0x${string}`; signature: `0x${string}`; message: string };
    const ok = await verifyMessage({ address: walletAddress, message, signature }).catch(() => false);
    if (!ok || !message.includes(walletAddress)) return this.json(res, 401, { success: false, error: "bad wallet signature" });
    const token = `sess-${randomUUID()}`;
    this.sessions.set(token, walletAddress);
    this.json(res, 200, {
      success: true,
      sessionToken: token,
      user: { id: walletAddress, walletAddress, balance: 0, authMethod: "wallet", createdAt: Date.now(), updatedAt: Date.now() },
    });
  }

  private async chat(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    let parsed: { model?: string; stream?: boolean; messages?: { role: string; content: unknown }[] };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      return this.json(res, 400, { error: { message: "body is not JSON" } });
    }
    const model = String(parsed.model ?? "");
    const stream = parsed.stream === true;
    const log: CallLog = { model, paid: false, status: 0, stream };
    this.calls.push(log);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      log.status = status;
      this.json(res, status, payload, headers);
    };
    // Sends what the resource server answered (its headers carry the content type).
    const instruct = (r: HTTPResponseInstructions) => {
      log.status = r.status;
      res.writeHead(r.status, r.headers);
      res.end(JSON.stringify(r.body ?? {}));
    };

    if (!(model in this.opts.prices)) return send(404, { error: { message: `model ${model} not found` } });
    const prompt = flattenPrompt(parsed.messages ?? []);
    const request: StandInRequest = { model, stream, prompt, symbols: symbolsIn(prompt) };

    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (bearer) log.auth = this.sessions.has(bearer) ? "session" : "api-key";
    if (bearer && !this.sessions.has(bearer) && !(this.opts.apiKeys ?? []).includes(bearer)) {
      return send(401, { error: { message: "Invalid API key or session token" } });
    }
    const byAccount = bearer !== undefined && !this.sessions.has(bearer);

    const slot = this.faults.get(model);
    const fault = slot && slot.left > 0 ? slot.fault : undefined;
    const useFault = () => {
      if (slot) slot.left--;
      log.fault = fault!.kind;
    };
    if (fault?.kind === "http-500") {
      useFault();
      return send(500, { error: { message: "upstream provider failed", code: 500 } });
    }
    if (fault?.kind === "http-429") {
      useFault();
      return send(429, { error: { message: "rate limited", code: 429 } }, { "retry-after": String(fault.retryAfterSeconds) });
    }
    if (fault?.kind === "hang" && !fault.afterPayment) {
      useFault();
      this.hung.add(res);
      res.on("close", () => this.hung.delete(res));
      return;
    }

    const price = this.priceAtomic(model, request.symbols.length);
    let settled: Record<string, string> = {};
    // An `upto` payment verified now and settled after the reply, for what the reply used.
    let uptoDue: VerifiedPayment | undefined;
    if (!byAccount && this.v2) {
      const gate = await this.v2.gate(req, {
        priceAtomic: price,
        refuseValid: () => (fault?.kind === "402-repeat" ? (useFault(), true) : false),
      });
      if (gate.kind === "respond") {
        if (gate.refused) this.refuse(model, gate.refused.reason, gate.refused.header);
        return instruct(gate.response);
      }
      if (gate.kind === "conflict") {
        this.conflicts.push(gate.id);
        return send(409, { error: "payment identifier already used with different payload", paymentId: gate.id });
      }
      if (gate.kind === "repeat") {
        // Like a real server: the same payment sent again is answered, not charged again.
        this.duplicates.push(gate.id);
        settled = this.v2.receiptHeaders(gate.response);
        log.paid = true;
      } else if (gate.payment.requirements.scheme === "upto") {
        uptoDue = gate.payment;
      } else {
        const done = await this.v2.settle(gate.payment);
        if (!done.ok) {
          this.refuse(model, done.reason, gate.payment.header);
          return instruct(done.response);
        }
        this.record(log, gate.payment.payload, "exact", gate.payment.header, done.settlement);
        settled = done.headers;
      }
    } else if (!byAccount) {
      const paid = await this.payV1(req, model, price, fault, useFault);
      if ("ask" in paid) return send(402, paid.ask.body, paid.ask.headers);
      this.record(log, paid.payload, "exact", paid.header, paid.settlement);
      settled = { "x-payment-response": encodePaymentResponseHeader(paid.settlement) };
    }

    if (fault?.kind === "hang") {
      useFault();
      this.hung.add(res);
      res.on("close", () => this.hung.delete(res));
      return;
    }

    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    let content: string;
    if (fault?.kind === "schema") {
      useFault();
      content = schemaBreakingReply;
    } else {
      content = this.reply(request);
    }
    const usage = usageOf(prompt, content, Number(price) / 1_000_000);
    if (uptoDue && this.opts.upto && this.v2) {
      const { perTokenAtomic, settleAtomic } = this.opts.upto;
      const max = BigInt(uptoDue.requirements.amount);
      const used = BigInt(usage.total_tokens * perTokenAtomic);
      const due = settleAtomic ? settleAtomic(used, max) : used < max ? used : max;
      const done = await this.v2.settle(uptoDue, due);
      if (!done.ok) {
        this.refuse(model, done.reason, uptoDue.header);
        return instruct(done.response);
      }
      this.record(log, uptoDue.payload, "upto", uptoDue.header, done.settlement, due);
      settled = done.headers;
      usage.cost = Number(due) / 1_000_000;
    }
    const id = `chatcmpl-${randomUUID().slice(0, 8)}`;

    const malformed = fault?.kind === "malformed";
    if (malformed) useFault();
    log.status = 200;
    writeCompletion(res, { id, model, content, usage, stream, headers: settled, malformed });
  }

  /**
   * Standard v1 and the Dreams dialect, which the reference resource server does not speak (it
   * answers v2 only): the offer in the 402 body (and, for Dreams, in `x-payment-required`), the
   * payment in `x-payment`, verified and settled by the reference facilitator directly.
   */
  private async payV1(
    req: IncomingMessage,
    model: string,
    price: bigint,
    fault: StandInFault | undefined,
    useFault: () => void,
  ): Promise<{ ask: { body: unknown; headers: Record<string, string> } } | { payload: PaymentPayload; header: string; settlement: SettleResponse }> {
    const offer = (change: OfferChange = {}) => ({
      scheme: change.scheme ?? "exact",
      network: change.network ?? this.network,
      payTo: change.payTo ?? this.payTo,
      maxTimeoutSeconds: 300,
      asset: change.asset ?? USDC_ASSET[this.network],
      extra: { name: TOKEN_NAME[this.network], version: "2" },
      maxAmountRequired: BigInt(Math.round(Number(price) * (change.priceFactor ?? 1))).toString(),
      resource: `${this.url}/chat/completions`,
      description: `chat completion with ${model}`,
      mimeType: "application/json",
    });
    const real = offer();
    const accepts = [...(this.opts.extraOffers ?? []).map((c) => offer(c)), real];
    const headers: Record<string, string> = this.mode === "dreams" ? { "x-payment-required": JSON.stringify(real) } : {};
    const ask = (error: string) => ({ ask: { body: { x402Version: 1, error, accepts }, headers } });
    const header = req.headers["x-payment"];
    if (typeof header !== "string") return ask("payment required");
    let payload: PaymentPayload;
    try {
      payload = decodePaymentSignatureHeader(header);
    } catch {
      this.refused.push({ model, reason: "payment header is not base64 JSON" });
      return ask("payment header is not base64 JSON");
    }
    // v1 names only scheme and network: it pays the real offer.
    const target = real as unknown as PaymentRequirements;
    const verdict = await this.facilitator.verify(payload, target).catch((e: Error) => ({ isValid: false, invalidReason: e.message, invalidMessage: undefined }));
    if (!verdict.isValid) {
      const reason = `${verdict.invalidReason ?? "invalid"}${verdict.invalidMessage ? `: ${verdict.invalidMessage}` : ""}`;
      this.refuse(model, reason, header);
      return ask(reason);
    }
    if (fault?.kind === "402-repeat") {
      useFault();
      this.refused.push({ model, reason: "gateway refused the payment (injected)" });
      return ask("payment could not be settled");
    }
    const settlement = await this.facilitator.settle(payload, target).catch((e: Error) => ({ success: false, errorReason: e.message, transaction: "", network: target.network }) as SettleResponse);
    if (!settlement.success) {
      const reason = `settle: ${settlement.errorReason}`;
      this.refuse(model, reason, header);
      return ask(reason);
    }
    return { payload, header, settlement };
  }

  private refuse(model: string, reason: string, header?: string): void {
    this.refused.push({ model, reason });
    if (header !== undefined) this.refusedHeaders.push(header);
  }

  /** A settled payment: `settledAtomic` for `upto` (less than the signed maximum, as the reply used). */
  private record(log: CallLog, payload: PaymentPayload, scheme: "exact" | "upto", header: string, settlement: SettleResponse, settledAtomic?: bigint): void {
    const signed = signedTerms(payload);
    const paymentId = paymentIdOf(payload);
    log.paid = true;
    this.payments.push({
      model: log.model,
      ...signed,
      value: settledAtomic ?? signed.value,
      scheme,
      ...(settledAtomic === undefined ? {} : { maxValue: signed.value }),
      header,
      time: Date.now(),
      transaction: settlement.transaction,
      ...(payload.x402Version === 2 && paymentId ? { paymentId } : {}),
    });
  }

  private json(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(payload));
  }
}

/** Who signed a payment, to whom, for how much (the maximum, for `upto`), under which nonce. */
function signedTerms(payload: PaymentPayload): { from: string; to: string; value: bigint; nonce: string } {
  const p = payload.payload as {
    authorization?: { from: string; to: string; value: string; nonce: string };
    permit2Authorization?: { from: string; nonce: string; permitted: { amount: string }; witness: { to: string } };
  };
  if (p.permit2Authorization) {
    const a = p.permit2Authorization;
    return { from: a.from, to: a.witness.to, value: BigInt(a.permitted.amount), nonce: a.nonce };
  }
  const a = p.authorization!;
  return { from: a.from, to: a.to, value: BigInt(a.value), nonce: a.nonce };
}
