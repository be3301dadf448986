// A stand-in for the hosted Dreams Router as it runs today (origin https://ai.xgate.run), for tests
// and the chain demo: permit sessions (Daydreams' own `upto`), settled on the local chain.
//
// Built from Daydreams' published code, not from our client:
// - the payment side is their facilitator's upto code, vendored in ./daydreams/ (PROVENANCE.md):
//   verifyUptoPayment through their UptoEvmScheme, trackUptoPayment on their session store, the
//   x-upto-session-id answer of their middleware, settleUptoSession and their sweeper, whose
//   settlement is `permit(owner, spender, cap, deadline, v, r, s)` then `transferFrom(owner, payTo,
//   pendingSpent)` sent by the facilitator's signer to the real FiatToken on the dev chain;
// - the wire (GET /v1/config, the payment header and its payload, the refusal codes and the body
//   shapes) is what Daydreams' router client (openclaw-x402-router src/agents/x402-payment.ts)
//   reads and sends.
// What is ours, because the published sources do not show it: the catalogue's shape (OpenRouter's,
// the router being an OpenRouter fork), matching a payment to the offer (see `matches`), and the
// three refusals the hosted router sends that the facilitator does not produce:
// settlement_blocked, session_permit_mismatch and insufficient_token_balance, each made to happen
// the real way (a failed settlement, two permits at one nonce, an empty wallet on chain).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { erc20Abi, getAddress, type Address } from "viem";
import { x402Facilitator } from "@x402/core/facilitator";
import { encodePaymentRequiredHeader } from "@x402/core/http";
import type { Network, PaymentPayload, PaymentRequired, PaymentRequirements } from "@x402/core/types";
import type { FacilitatorEvmSigner } from "@x402/evm";
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
import { DEFAULT_PAYMENT_HEADER_ALIASES, resolveHeaderWithAliases } from "./daydreams/middleware/core.js";
import { UptoEvmScheme } from "./daydreams/upto/evm/facilitator.js";
import { createUptoModule, type UptoModule } from "./daydreams/upto/module.js";
import { extractUptoAuthorization, generateSessionId } from "./daydreams/upto/sessionId.js";
import type { UptoFacilitatorClient } from "./daydreams/upto/settlement.js";
import { InMemoryUptoSessionStore, type UptoSession } from "./daydreams/upto/store.js";
import { formatSession, trackUptoPayment, TRACKING_ERROR_MESSAGES, TRACKING_ERROR_STATUS } from "./daydreams/upto/tracking.js";
import { CAIP2, TOKEN_NAME, USDC_ASSET } from "./routerStandIn.js";

/** One catalogue entry. The router bills a permit call by `perCallUsd` (its 402's amount). */
export interface XgateModel {
  id: string;
  name: string;
  ownedBy: string;
  contextLength: number;
  perCallUsd: number;
}

/**
 * The default catalogue, ids as the hosted router names them (`provider:model`). Odd amounts, so a
 * booked cost can only have come from this catalogue: 0.001013, 0.002027, 0.012041 and 0.020063
 * USDC per call.
 */
export const XGATE_MODELS: readonly XgateModel[] = [
  { id: "meta:llama-3.3-70b", name: "Meta: Llama 3.3 70B Instruct", ownedBy: "meta", contextLength: 131_072, perCallUsd: 0.001013 },
  { id: "google:gemini-2.5-flash", name: "Google: Gemini 2.5 Flash", ownedBy: "google", contextLength: 1_048_576, perCallUsd: 0.002027 },
  { id: "anthropic:claude-sonnet-4-6", name: "Anthropic: Claude Sonnet 4.6", ownedBy: "anthropic", contextLength: 200_000, perCallUsd: 0.012041 },
  { id: "openai:gpt-5", name: "OpenAI: GPT-5", ownedBy: "openai", contextLength: 400_000, perCallUsd: 0.020063 },
];
export const XGATE_AUTO = "auto";

/** A model's or the gateway's fault (./chatCompletions.ts); 402-repeat has no meaning for sessions. */
export type XgateFault = Exclude<StandInFault, { kind: "402-repeat" }>;

/** The sweeper's thresholds: createUptoSweeper's options, same defaults. */
export interface XgateSweeperOptions {
  /** Settle an open session with pending spend after this long idle (default 2 min). */
  idleSettleMs?: number;
  /** Close a session after this long idle (default 30 min). */
  longIdleCloseMs?: number;
  /** Settle and close this many seconds before the permit's deadline (default 60). */
  deadlineBufferSec?: number;
  /** Settle at num/den of the cap (default 9/10). */
  capThresholdNum?: bigint;
  capThresholdDen?: bigint;
  /** How often the sweeper runs (default 30 s); 0: never on its own, only `sweep()`. */
  intervalMs?: number;
}

export interface XgateStandInOptions {
  /**
   * The facilitator's signer on the chain (test/support/chainFacilitator.ts). Its address is
   * `pay_to`: the permit's spender, who submits permit + transferFrom and receives the USDC.
   * The stand-in sends its transactions one at a time (see `oneAtATime`).
   */
  signer: FacilitatorEvmSigner;
  network?: "base" | "base-sepolia";
  models?: readonly XgateModel[];
  /** The model `auto` routes to (default: the cheapest). */
  autoRoutesTo?: string;
  /** Bearer keys billed to an account instead of a permit (the reply reports `usage.cost`). */
  apiKeys?: string[];
  /** Also answer each permit call's cost in `x-token-cost` (atomic USDC), as the facilitator's tokenMeteredApi example does. */
  reportCost?: boolean;
  sweeper?: XgateSweeperOptions;
  reply?: ReplyFn;
  /** How long each answered call takes. */
  delayMs?: number;
  /** What a session is charged per call, given the catalogue's price (default: the price). */
  overcharge?: (priceAtomic: bigint, model: string) => bigint;
  /** Told of every settlement, as it completes. */
  onSettlement?: (s: XgateSettlement) => void;
  /** Port on 127.0.0.1 (0 picks a free one). */
  port?: number;
}

export interface XgateCall {
  path: string;
  model: string;
  stream: boolean;
  status: number;
  auth: "permit" | "api-key" | "none";
  /** The refusal's code (cap_exhausted, invalid_permit_signature, ...). */
  code?: string;
  sessionId?: string;
  payer?: string;
  /** What the session or account was charged for this call (atomic USDC). */
  chargedAtomic?: bigint;
  fault?: XgateFault["kind"];
}

export interface XgateSettlement {
  sessionId: string;
  /** settleUptoSession's reason: idle_timeout, cap_threshold, deadline_buffer, auto_close, or the caller's. */
  reason: string;
  /** What this batch tried to move: the session's pendingSpent. */
  amount: bigint;
  success: boolean;
  /** The transferFrom transaction ("" when it failed before one was sent). */
  transaction: string;
  errorReason?: string;
  payer?: string;
  atMs: number;
}

export interface XgateAccountCharge {
  apiKey: string;
  model: string;
  atomic: bigint;
}

/** The session store, telling the stand-in each new settlement outcome as settleUptoSession writes it. */
class ObservedStore extends InMemoryUptoSessionStore {
  private readonly seen = new WeakSet<object>();
  constructor(private readonly onSettled: (id: string, session: UptoSession) => void) {
    super();
  }
  override set(id: string, session: UptoSession): void {
    super.set(id, session);
    const last = session.lastSettlement;
    if (last && !this.seen.has(last)) {
      this.seen.add(last);
      this.onSettled(id, session);
    }
  }
}

type Refusal = { status: number; body: unknown; headers?: Record<string, string>; code: string };

export class XgateStandIn {
  /** Origin, no /v1 (the router's paths all start with /v1). */
  url = "";
  readonly calls: XgateCall[] = [];
  readonly settlements: XgateSettlement[] = [];
  readonly accountCharges: XgateAccountCharge[] = [];
  readonly network: Network;
  readonly chainId: number;
  readonly asset: Address;
  readonly tokenName: string;
  readonly payTo: Address;
  readonly upto: UptoModule;
  private readonly facilitator = new x402Facilitator();
  private readonly sweeper: ReturnType<UptoModule["createSweeper"]>;
  private readonly inflight = new Set<Promise<unknown>>();
  /** The amount each session's settlement in flight is moving (settleUptoSession does not say). */
  private readonly settling = new Map<string, bigint>();
  private readonly settlementWaiters: { match: (s: XgateSettlement) => boolean; resolve: (s: XgateSettlement) => void }[] = [];
  private readonly faults = new Map<string, { fault: XgateFault; left: number }>();
  private readonly sockets = new Set<Socket>();
  private readonly hung = new Set<ServerResponse>();
  private readonly models: Map<string, XgateModel>;
  private readonly autoTarget: string;
  private reply: ReplyFn;
  private delayMs: number;
  private overcharge: ((priceAtomic: bigint, model: string) => bigint) | undefined;

  private constructor(
    private readonly server: Server,
    private readonly opts: XgateStandInOptions,
  ) {
    const net = opts.network ?? "base-sepolia";
    this.network = CAIP2[net];
    this.chainId = Number(this.network.split(":")[1]);
    this.asset = getAddress(USDC_ASSET[net]);
    this.tokenName = TOKEN_NAME[net];
    this.payTo = getAddress(opts.signer.getAddresses()[0]!);
    this.models = new Map((opts.models ?? XGATE_MODELS).map((m) => [m.id, m]));
    const cheapest = [...this.models.values()].sort((a, b) => a.perCallUsd - b.perCallUsd)[0];
    this.autoTarget = opts.autoRoutesTo ?? cheapest?.id ?? "";
    this.reply = opts.reply ?? defaultReply;
    this.delayMs = opts.delayMs ?? 0;
    this.overcharge = opts.overcharge;
    this.facilitator.register(this.network, new UptoEvmScheme(oneAtATime(opts.signer)));
    // The facilitator client the session code settles through, watched so a test can await it.
    const client: UptoFacilitatorClient = {
      settle: (payload, requirements) => {
        this.settling.set(generateSessionId(payload), BigInt(requirements.amount));
        const run = this.facilitator.settle(payload, requirements);
        this.inflight.add(run);
        const done = () => this.inflight.delete(run);
        run.then(done, done);
        return run;
      },
    };
    const store = new ObservedStore((id, session) => this.recordSettlement(id, session));
    const { intervalMs, ...thresholds } = opts.sweeper ?? {};
    this.upto = createUptoModule({ store, facilitatorClient: client, sweeperConfig: { ...thresholds, intervalMs: intervalMs || 30_000 } });
    this.sweeper = this.upto.createSweeper();
    if (intervalMs !== 0) this.sweeper.start();
  }

  static async start(opts: XgateStandInOptions): Promise<XgateStandIn> {
    const server = createServer();
    const standIn = new XgateStandIn(server, opts);
    server.on("request", (req, res) => {
      standIn.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) standIn.json(res, 500, { error: { code: "internal_error", message: String((err as Error).message) } });
        else res.destroy();
      });
    });
    server.on("connection", (s) => {
      standIn.sockets.add(s);
      s.on("close", () => standIn.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
    standIn.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return standIn;
  }

  // ---- what tests drive ------------------------------------------------------------------------

  /** Makes `model` fail in the given way for the next `times` calls (all calls by default). */
  setFault(model: string, fault: XgateFault | undefined, times = Infinity): void {
    if (fault) this.faults.set(model, { fault, left: times });
    else this.faults.delete(model);
  }

  setReply(reply: ReplyFn): void {
    this.reply = reply;
  }

  /** A slow answer: every answered call takes `ms` more. */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Charge sessions something else than the catalogue says (undefined: the catalogue again). */
  setOvercharge(fn: ((priceAtomic: bigint, model: string) => bigint) | undefined): void {
    this.overcharge = fn;
  }

  /** The catalogue's price of one call, in atomic USDC (6 decimals); `auto` costs what it routes to. */
  priceAtomic(model: string): bigint {
    const m = this.models.get(model === XGATE_AUTO ? this.autoTarget : model);
    if (!m) throw new Error(`no model ${model} in the stand-in's catalogue`);
    return BigInt(Math.round(m.perCallUsd * 1_000_000));
  }

  /** Every session, as the facilitator's formatSession shows it, with its id and permit. */
  sessions(): (ReturnType<typeof formatSession> & { id: string; owner: string; nonce: string })[] {
    return [...this.upto.store.entries()].map(([id, s]) => this.view(id, s));
  }

  session(id: string): (ReturnType<typeof formatSession> & { id: string; owner: string; nonce: string }) | undefined {
    const s = this.upto.store.get(id);
    return s ? this.view(id, s) : undefined;
  }

  /**
   * One sweep now (the sweeper's own logic), resolving when the settlements it started are done.
   * While blocks are not mined (automine off) that is only when they are again, or when the
   * signer's confirmation timeout fails them: don't await it inside such a hold.
   */
  async sweep(): Promise<void> {
    this.sweeper.sweep();
    await this.settled();
  }

  /** The upto module's settleSession: settle a session's pending spend now, and close it if asked. */
  async settle(sessionId: string, reason = "manual_settlement", closeAfter = false): Promise<void> {
    await this.upto.settleSession(sessionId, reason, closeAfter);
  }

  /** Closes every session that is not closed yet, settling what it owes first (settleSession(..., true)). */
  async closeSessions(reason = "manual_close"): Promise<void> {
    const open = [...this.upto.store.entries()].filter(([, s]) => s.status !== "closed").map(([id]) => id);
    await Promise.all(open.map((id) => this.upto.settleSession(id, reason, true)));
  }

  /** Resolves when no settlement is in flight. */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    // settleUptoSession writes its outcome right after the facilitator answers: let it.
    await new Promise((r) => setImmediate(r));
  }

  /** Resolves with the next settlement (matching `match`) to complete from now on. */
  nextSettlement(match: (s: XgateSettlement) => boolean = () => true): Promise<XgateSettlement> {
    return new Promise((resolve) => this.settlementWaiters.push({ match, resolve }));
  }

  /** USDC (atomic) billed to an API key. */
  accountSpentAtomic(apiKey: string): bigint {
    return this.accountCharges.filter((c) => c.apiKey === apiKey).reduce((s, c) => s + c.atomic, 0n);
  }

  callsTo(model: string): XgateCall[] {
    return this.calls.filter((c) => c.model === model);
  }

  async close(): Promise<void> {
    this.sweeper.stop();
    for (const res of this.hung) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const body = await readBody(req);
    if (req.method === "GET" && path === "/v1/config") return this.json(res, 200, this.config());
    if (req.method === "GET" && path === "/v1/models") return this.json(res, 200, this.catalogue());
    if (req.method === "POST" && path === "/v1/chat/completions") return this.chat(req, path, body, res);
    // Everything else, /auth/wallet-login included (the router as it runs today lists no login).
    return this.json(res, 404, { error: { code: "not_found", message: `no route ${req.method} ${path}` } });
  }

  /** GET /v1/config, the shape Daydreams' client reads (fetchRouterConfig). */
  private config() {
    return {
      networks: [
        {
          network_id: this.network,
          name: this.chainId === 8453 ? "Base" : "Base Sepolia",
          chain_id: this.chainId,
          asset: { address: this.asset, symbol: "USDC", decimals: 6 },
          pay_to: this.payTo,
          active: true,
        },
      ],
      payment_required: true,
      payment_header: "PAYMENT-SIGNATURE",
      eip712_config: { domain_name: this.tokenName, domain_version: "2" },
    };
  }

  /**
   * GET /v1/models. The hosted router's shape is not published; it is an OpenRouter fork, so this
   * is OpenRouter's list shape (our assumption). Prices are USD strings; the router bills a permit
   * call its per-call price (`request`), so the per-token prices are "0".
   */
  private catalogue() {
    const entry = (m: XgateModel, id = m.id, name = m.name) => ({
      id,
      name,
      object: "model",
      created: 1_767_225_600,
      owned_by: m.ownedBy,
      context_length: m.contextLength,
      pricing: { prompt: "0", completion: "0", request: m.perCallUsd.toFixed(6) },
    });
    const auto = this.models.get(this.autoTarget);
    return {
      object: "list",
      data: [...[...this.models.values()].map((m) => entry(m)), ...(auto ? [{ ...entry(auto, XGATE_AUTO, "Auto (Smart Routing)"), owned_by: "xgate" }] : [])],
    };
  }

  private requirements(model: string, price: bigint): PaymentRequirements {
    return {
      scheme: "upto",
      network: this.network,
      asset: this.asset,
      amount: price.toString(),
      payTo: this.payTo,
      // Daydreams' client signs one-hour permits and reuses them; the facilitator's verification
      // does not read this field. An hour, so the offer does not contradict the client it serves.
      maxTimeoutSeconds: 3600,
      extra: { name: this.tokenName, version: "2" },
    };
  }

  /** A 402 carrying the offer, as the reference resource server sends it (base64 PAYMENT-REQUIRED). */
  private paymentRequired(model: string, price: bigint, code: string, message: string): Refusal {
    const required: PaymentRequired = {
      x402Version: 2,
      error: code,
      resource: { url: `${this.url}/v1/chat/completions`, description: `chat completion with ${model}`, mimeType: "application/json" },
      accepts: [this.requirements(model, price)],
    };
    return {
      status: 402,
      code,
      headers: { "PAYMENT-REQUIRED": encodePaymentRequiredHeader(required) },
      body: { error: { code, message } },
    };
  }

  private async chat(req: IncomingMessage, path: string, body: string, res: ServerResponse): Promise<void> {
    let parsed: { model?: unknown; stream?: unknown; messages?: { role: string; content: unknown }[] };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      return this.json(res, 400, { error: { code: "invalid_request", message: "body is not JSON" } });
    }
    const model = String(parsed.model ?? "");
    const stream = parsed.stream === true;
    const log: XgateCall = { path, model, stream, status: 0, auth: "none" };
    this.calls.push(log);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}, code?: string) => {
      log.status = status;
      if (code) log.code = code;
      this.json(res, status, payload, headers);
    };
    const refuse = (r: Refusal) => send(r.status, r.body, r.headers, r.code);

    if (model !== XGATE_AUTO && !this.models.has(model)) {
      return send(404, { error: { code: "model_not_found", message: `model ${model} not found; GET /v1/models lists them` } }, {}, "model_not_found");
    }
    const answeredBy = model === XGATE_AUTO ? this.autoTarget : model;
    const price = this.priceAtomic(model);
    const prompt = flattenPrompt(parsed.messages ?? []);
    const request: StandInRequest = { model: answeredBy, stream, prompt, symbols: symbolsIn(prompt) };

    const slot = this.faults.get(model);
    const fault = slot && slot.left > 0 ? slot.fault : undefined;
    const useFault = () => {
      if (slot) slot.left--;
      log.fault = fault!.kind;
    };
    // Gateway-level faults come before payment: nothing is charged.
    if (fault?.kind === "http-500") {
      useFault();
      return send(500, { error: { code: "upstream_error", message: "upstream provider failed" } });
    }
    if (fault?.kind === "http-429") {
      useFault();
      return send(429, { error: { code: "rate_limited", message: "rate limited" } }, { "retry-after": String(fault.retryAfterSeconds) });
    }
    if (fault?.kind === "hang" && !fault.afterPayment) {
      useFault();
      return this.hang(res);
    }

    // The payment header, with the alias the published middleware accepts. A payment wins over a
    // Bearer key (Daydreams' client strips Authorization when it pays); a Bearer key alone bills its account.
    const header = resolveHeaderWithAliases((n) => headerOf(req, n), "PAYMENT-SIGNATURE", DEFAULT_PAYMENT_HEADER_ALIASES);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const headers: Record<string, string> = {};
    let costUsd: number | undefined;
    if (header === undefined && bearer !== undefined) {
      log.auth = "api-key";
      if (!(this.opts.apiKeys ?? []).includes(bearer)) {
        return send(401, { error: { code: "invalid_api_key", message: "Invalid API key" } }, {}, "invalid_api_key");
      }
      this.accountCharges.push({ apiKey: bearer, model, atomic: price });
      log.chargedAtomic = price;
      costUsd = Number(price) / 1_000_000;
    } else if (header === undefined) {
      return refuse(this.paymentRequired(model, price, "payment_required", "Payment required: sign an upto permit (GET /v1/config) and send it in PAYMENT-SIGNATURE"));
    } else {
      log.auth = "permit";
      const paid = await this.takePayment(header, model, price, log);
      if ("status" in paid) return refuse(paid);
      headers["x-upto-session-id"] = paid.sessionId;
      if (this.opts.reportCost) headers["x-token-cost"] = paid.charged.toString();
    }

    if (fault?.kind === "hang") {
      useFault();
      return this.hang(res);
    }
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    let content: string;
    if (fault?.kind === "schema") {
      useFault();
      content = schemaBreakingReply;
    } else {
      content = this.reply(request);
    }
    const usage = usageOf(prompt, content, costUsd ?? 0);
    // A permit call's reply carries no cost: the session is the receipt (x-token-cost if reportCost).
    const shownUsage = costUsd === undefined ? (({ cost: _cost, ...u }) => u)(usage) : usage;
    const malformed = fault?.kind === "malformed";
    if (malformed) useFault();
    log.status = 200;
    writeCompletion(res, { id: `gen-${randomUUID().slice(0, 12)}`, model: answeredBy, content, usage: shownUsage as typeof usage, stream, headers, malformed });
  }

  /**
   * A permit payment, as the published middleware takes it (processBeforeHandle): decode, match to
   * the offer, the facilitator's verify, then trackUptoPayment, plus the hosted router's own
   * refusals. Everything after the last await runs in one turn, so the session checks and the
   * tracking cannot interleave with another call's.
   */
  private async takePayment(header: string, model: string, price: bigint, log: XgateCall): Promise<Refusal | { sessionId: string; charged: bigint }> {
    let payload: PaymentPayload;
    try {
      payload = JSON.parse(Buffer.from(header, "base64").toString("utf8")) as PaymentPayload;
      if (!payload || typeof payload !== "object" || !payload.accepted || !payload.payload) throw new Error("shape");
    } catch {
      // Not a payment at all (the reference server cannot decode it either): a bad request.
      return { status: 400, code: "invalid_payment_header", body: { error: { code: "invalid_payment_header", message: "PAYMENT-SIGNATURE is not base64 JSON of an x402 v2 payment" } } };
    }
    const auth = extractUptoAuthorization(payload);
    if (auth) log.payer = auth.owner;
    if (payload.x402Version !== 2) return this.paymentRequired(model, price, "unsupported_x402_version", `x402Version ${String(payload.x402Version)} is not supported; send 2`);
    if (!this.matches(payload.accepted)) return this.paymentRequired(model, price, "no_matching_requirements", "No matching payment requirements");

    const requirements = this.requirements(model, price);
    const verdict = await this.facilitator.verify(payload, requirements).catch((e: Error) => ({ isValid: false, invalidReason: e.message }));
    if (!verdict.isValid) {
      const reason = verdict.invalidReason ?? "invalid_payment";
      return this.paymentRequired(model, price, reason, `payment verification failed: ${reason}`);
    }
    // The hosted router refuses a wallet that cannot pay the call (Daydreams' client turns this
    // into its "token balance too low" message). Checked against this call's price, as x402's
    // exact verification checks the amount; the session's unsettled spend is not counted.
    const owner = getAddress(auth!.owner);
    const balance = (await this.opts.signer.readContract({ address: this.asset, abi: erc20Abi, functionName: "balanceOf", args: [owner] })) as bigint;
    if (balance < price) {
      return {
        ...this.paymentRequired(model, price, "insufficient_token_balance", ""),
        body: { error: { code: "insufficient_token_balance", message: `Insufficient token balance: ${owner} holds ${balance} atomic USDC, the call costs ${price}` } },
      };
    }

    // No await from here on.
    const sessionId = generateSessionId(payload);
    log.sessionId = sessionId;
    const existing = this.upto.store.get(sessionId);
    if (existing?.lastSettlement && !existing.lastSettlement.receipt.success) {
      // The session's last settlement failed (its permit could not be applied, allowance short...):
      // the router takes no more calls on it; the client must sign a new permit.
      const why = existing.lastSettlement.receipt.errorReason ?? "settlement_failed";
      return { status: 402, code: "settlement_blocked", body: { error: { code: "settlement_blocked", message: `Session settlement blocked after previous settlement failure (${why}); sign a new permit` }, sessionId } };
    }
    if (!existing) {
      const holder = this.nonceHolder(payload, sessionId);
      if (holder) {
        // Two permits from one wallet at one nonce (two workers that each read nonces(owner)):
        // only one can ever be applied on chain, so the second session is refused.
        return {
          status: 402,
          code: "session_permit_mismatch",
          body: { error: { code: "session_permit_mismatch", message: `Permit nonce ${auth!.nonce} of ${owner} is held by another open session; reuse that permit or sign at the wallet's next nonce once it settles` }, sessionId },
        };
      }
    }
    const charged = this.overcharge ? this.overcharge(price, model) : price;
    const tracking = trackUptoPayment(this.upto.store, payload, { ...requirements, amount: charged.toString() });
    if (!tracking.success) {
      // The published middleware's tracking-error answer, verbatim in shape.
      return {
        status: TRACKING_ERROR_STATUS[tracking.error],
        code: tracking.error,
        body: { error: tracking.error, message: TRACKING_ERROR_MESSAGES[tracking.error], sessionId: tracking.sessionId },
      };
    }
    log.chargedAtomic = charged;
    return { sessionId, charged };
  }

  /**
   * Whether the payment's `accepted` names our offer. Daydreams' client sends `accepted` without
   * amount or maxTimeoutSeconds, so @x402/core's strict matching (deepEqual of accepted and the
   * offer) would never match it: the hosted router must match by scheme, network, asset and payTo
   * (addresses case-insensitive), and so does this.
   */
  private matches(accepted: Partial<PaymentRequirements>): boolean {
    const same = (a: unknown, b: string) => typeof a === "string" && a.toLowerCase() === b.toLowerCase();
    return accepted.scheme === "upto" && accepted.network === this.network && same(accepted.asset, this.asset) && same(accepted.payTo, this.payTo);
  }

  /**
   * Another session holding the same wallet's permit nonce: not closed, or closed with spend its
   * permit may still settle on a retry (settleUptoSession keeps a failed close retryable).
   */
  private nonceHolder(payload: PaymentPayload, sessionId: string): string | undefined {
    const mine = extractUptoAuthorization(payload);
    if (!mine) return undefined;
    for (const [id, s] of this.upto.store.entries()) {
      if (id === sessionId || (s.status === "closed" && s.pendingSpent === 0n)) continue;
      const theirs = extractUptoAuthorization(s.paymentPayload);
      if (
        theirs &&
        s.paymentPayload.accepted.network === payload.accepted.network &&
        s.paymentPayload.accepted.asset.toLowerCase() === payload.accepted.asset.toLowerCase() &&
        theirs.owner.toLowerCase() === mine.owner.toLowerCase() &&
        BigInt(theirs.nonce) === BigInt(mine.nonce)
      ) {
        return id;
      }
    }
    return undefined;
  }

  private recordSettlement(sessionId: string, session: UptoSession): void {
    const last = session.lastSettlement!;
    const s: XgateSettlement = {
      sessionId,
      reason: last.reason,
      amount: this.settling.get(sessionId) ?? 0n,
      success: last.receipt.success,
      transaction: last.receipt.transaction,
      ...(last.receipt.errorReason ? { errorReason: last.receipt.errorReason } : {}),
      ...(last.receipt.payer ? { payer: last.receipt.payer } : {}),
      atMs: last.atMs,
    };
    this.settling.delete(sessionId);
    this.settlements.push(s);
    this.opts.onSettlement?.(s);
    for (const w of [...this.settlementWaiters]) {
      if (w.match(s)) {
        this.settlementWaiters.splice(this.settlementWaiters.indexOf(w), 1);
        w.resolve(s);
      }
    }
  }

  private view(id: string, s: UptoSession) {
    const auth = extractUptoAuthorization(s.paymentPayload);
    return { id, ...formatSession(s), owner: auth?.owner ?? "", nonce: auth?.nonce ?? "" };
  }

  private hang(res: ServerResponse): void {
    this.hung.add(res);
    res.on("close", () => this.hung.delete(res));
  }

  private json(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(payload));
  }
}

/**
 * The facilitator's signer, sending one transaction at a time. The published sweeper settles
 * sessions concurrently from one key; each send takes the account's next nonce from the node, so
 * two sends at the same moment took the same nonce and one settlement failed ("nonce too low").
 * viem's local nonce manager is no cure: a permit that reverts at gas estimation has already
 * consumed its nonce while a concurrent send took the next, leaving a gap ("nonce too high").
 * Hosted facilitators number transactions server-side (Daydreams' CDP signer); here, a queue:
 * a send starts when the previous one is in the node's pool. Receipts are still awaited in parallel.
 */
export function oneAtATime(signer: FacilitatorEvmSigner): FacilitatorEvmSigner {
  let last: Promise<unknown> = Promise.resolve();
  const queued = <T>(send: () => Promise<T>): Promise<T> => {
    const run = last.then(send, send);
    last = run.catch(() => undefined);
    return run;
  };
  return {
    getAddresses: () => signer.getAddresses(),
    readContract: (args) => signer.readContract(args),
    verifyTypedData: (args) => signer.verifyTypedData(args),
    writeContract: (args) => queued(() => signer.writeContract(args)),
    sendTransaction: (args) => queued(() => signer.sendTransaction(args)),
    waitForTransactionReceipt: (args) => signer.waitForTransactionReceipt(args),
    getCode: (args) => signer.getCode(args),
  };
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
