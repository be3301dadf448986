// A stand-in for Binance's spot REST API on 127.0.0.1, in Binance's own formats, for ccxt to talk
// to over loopback: public market data (exchangeInfo, klines, ticker, depth) and the signed
// account endpoints (order create/fetch/cancel, open orders, my trades, account balances), with
// HMAC-SHA256 signatures checked as Binance does. It matches orders against its own price, keeps
// balances, enforces LOT_SIZE / NOTIONAL filters, rejects duplicates of an open client order id,
// and has knobs for what a test needs: thin liquidity (partial fills), a rejection, a response lost
// after the order was placed, an HTML error page (as a CDN in front of the API sends) after the
// order was placed, failing lookups, a failing account endpoint, and a gap in the candles. As on Binance, the fee can
// be paid in BNB (25% off, at the BNB/quote price; in the asset received when BNB runs short),
// and an order's trades are listed by /myTrades a little after its status says it filled. The
// shapes follow the real responses ccxt recorded from Binance (ccxt/ccxt,
// ts/src/test/static/response/binance.json). Its market stream speaks
// Binance's websocket protocol (SUBSCRIBE, kline events) over a hand-written RFC 6455 server, so
// ccxt.pro's watchOHLCV can follow it.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Candle } from "../../src/domain/types.js";

export interface StandInSymbol {
  /** Binance id, e.g. "BTCUSDT". */
  id: string;
  base: string;
  quote: string;
  candles: Candle[];
  tickSize?: string;
  stepSize?: string;
  minQty?: string;
  minNotional?: string;
}

export interface StandInOptions {
  apiKey: string;
  secret: string;
  symbols: StandInSymbol[];
  balances?: Record<string, number>;
  /** Taker fee as a fraction (Binance's default 0.001). */
  feeRate?: number;
  /**
   * Binance charges the fee in the asset received, or in BNB when the account pays fees with BNB
   * (at a 25% discount, priced at BNB/quote: a BNB symbol must be served); "quote" forces USDT.
   */
  feeIn?: "received" | "quote" | "BNB";
  /** Candle length in ms (2h by default). */
  intervalMs?: number;
}

type Status = "NEW" | "PARTIALLY_FILLED" | "FILLED" | "CANCELED" | "EXPIRED" | "REJECTED";

export interface StandInOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  price: string;
  origQty: number;
  executedQty: number;
  quoteQty: number;
  status: Status;
  type: "MARKET" | "LIMIT";
  side: "BUY" | "SELL";
  time: number;
  updateTime: number;
  fills: { price: number; qty: number; commission: number; commissionAsset: string; tradeId: number; time: number }[];
}

export interface LoggedRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  signed: boolean;
}

const INTERVALS: Record<string, number> = { "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000 };
const fmt = (n: number) => n.toFixed(8);
const decimals = (step: string) => (step.includes(".") ? step.replace(/0+$/, "").split(".")[1]!.length : 0);

class BinanceError extends Error {
  constructor(readonly http: number, readonly code: number, msg: string) {
    super(msg);
  }
}

export class BinanceStandIn {
  readonly requests: LoggedRequest[] = [];
  readonly orders: StandInOrder[] = [];
  readonly balances: Record<string, { free: number; locked: number }> = {};
  /** Most base quantity one market order can fill; more expires unfilled (a partial fill). */
  liquidity: Record<string, number> = {};
  /** The next order is refused with this Binance error (e.g. { code: -2010, msg: "..." }). */
  rejectNext: { code: number; msg: string } | undefined;
  /** The next order is placed, then the connection is dropped before the reply (a lost response). */
  dropNextOrderResponse = false;
  /** The connection of the next order request is dropped before the order is placed: it never reaches the book. */
  dropNextOrderRequest = false;
  /** The next order is placed (and fills), and its answer waits for this promise: an order in flight. */
  holdNextOrderResponse: Promise<void> | undefined;
  /** The next order is placed, then answered 503 -1007 ("execution status unknown"), as Binance may. */
  unknownStatusNext = false;
  /**
   * The next order is placed (and fills as usual), then answered 500 with an HTML page instead of
   * JSON, as the CDN in front of Binance's API answers when its origin fails mid-request.
   */
  html500AfterNextOrder = false;
  /** This many order lookups (GET /api/v3/order) fail: 503 -1008 (overloaded), or the CDN's HTML 500 page. */
  failLookups = 0;
  lookupFailure: "overloaded" | "html500" = "overloaded";
  /** This many account reads (GET /api/v3/account: balances) answer the CDN's HTML 500 page. */
  failAccount = 0;
  /** Market-data requests (klines) answer 503 this many times, as during an outage (or the CDN's HTML 500 page, or 429 past the request weight). */
  failKlines = 0;
  klinesFailure: "overloaded" | "html500" | "rateLimited" = "overloaded";
  /** Where fees are charged (see StandInOptions.feeIn); may change during a test. */
  feeIn: NonNullable<StandInOptions["feeIn"]>;
  /** A trade shows in /myTrades only this long after it happened (Binance lists them a little after the order's status). */
  tradesListedAfterMs = 0;
  /** /myTrades answers with every trade of the symbol whatever orderId asks, as a listing by time window does. */
  myTradesIgnoreOrderId = false;
  /** Websocket subscriptions received, e.g. ["btcusdt@kline_2h"]. */
  readonly subscriptions: string[] = [];
  private readonly sockets = new Set<{ socket: Socket; streams: Set<string> }>();
  private server!: Server;
  private nextOrderId = 1000;
  private nextTradeId = 5000;
  private readonly symbols = new Map<string, StandInSymbol>();
  url = "";

  private constructor(private readonly opts: StandInOptions) {
    this.feeIn = opts.feeIn ?? "received";
    for (const s of opts.symbols) this.symbols.set(s.id, { ...s, candles: s.candles.map((c) => ({ ...c })) });
    for (const [asset, free] of Object.entries(opts.balances ?? {})) this.balances[asset] = { free, locked: 0 };
  }

  static async start(opts: StandInOptions): Promise<BinanceStandIn> {
    const s = new BinanceStandIn(opts);
    s.server = createServer((req, res) => void s.handle(req, res));
    s.server.on("upgrade", (req: IncomingMessage, socket: Socket) => s.upgrade(req, socket));
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  async stop(): Promise<void> {
    for (const c of this.sockets) c.socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- scenario controls -------------------------------------------------------------------

  candles(id: string): Candle[] {
    return this.sym(id).candles;
  }

  /** Replaces the candle history (the last one is the forming candle). */
  setCandles(id: string, candles: Candle[]): void {
    this.sym(id).candles = candles.map((c) => ({ ...c }));
  }

  /** The price market orders fill at: the forming candle's close. */
  price(id: string): number {
    return this.sym(id).candles.at(-1)!.close;
  }

  /** Moves the forming candle to `price` (high and low stretch to contain it). */
  setPrice(id: string, price: number): void {
    const c = this.sym(id).candles.at(-1)!;
    c.close = price;
    c.high = Math.max(c.high, price);
    c.low = Math.min(c.low, price);
  }

  balance(asset: string): number {
    return this.balances[asset]?.free ?? 0;
  }

  setBalance(asset: string, free: number): void {
    this.balances[asset] = { free, locked: this.balances[asset]?.locked ?? 0 };
  }

  /** Fills up to `qty` of the open limit order (at its limit price), as a counterparty would. */
  fillLimit(orderId: number, qty: number): void {
    const o = this.orders.find((x) => x.orderId === orderId);
    if (!o || (o.status !== "NEW" && o.status !== "PARTIALLY_FILLED")) throw new Error(`no open order ${orderId}`);
    const s = this.sym(o.symbol);
    const fill = Math.min(qty, o.origQty - o.executedQty);
    const price = Number(o.price);
    if (o.side === "BUY") this.locked(s.quote, -fill * price);
    else this.locked(s.base, -fill);
    this.settle(o, s, fill, price);
    o.status = o.executedQty >= o.origQty - 1e-12 ? "FILLED" : "PARTIALLY_FILLED";
  }

  /** An order placed by someone else (the web UI, another bot): a resting limit order. */
  placeForeignOrder(id: string, side: "BUY" | "SELL", qty: number, price: number): StandInOrder {
    return this.create({ symbol: id, side, type: "LIMIT", timeInForce: "GTC", quantity: String(qty), price: String(price), newClientOrderId: `web_${this.nextOrderId}` });
  }

  posts(): LoggedRequest[] {
    return this.requests.filter((r) => r.method === "POST" && r.path === "/api/v3/order");
  }

  /** Sends a kline event to every websocket subscribed to this symbol's candles. */
  pushKline(id: string, candle: Candle, closed: boolean, interval = "2h"): number {
    const stream = `${id.toLowerCase()}@kline_${interval}`;
    const step = INTERVALS[interval] ?? 7_200_000;
    const event = {
      e: "kline",
      E: Date.now(),
      s: id,
      k: { t: candle.time, T: candle.time + step - 1, s: id, i: interval, f: 100, L: 200, o: fmt(candle.open), c: fmt(candle.close), h: fmt(candle.high), l: fmt(candle.low), v: fmt(candle.volume), n: 100, x: closed, q: fmt(candle.volume * candle.close), V: "0", Q: "0", B: "0" },
    };
    let sent = 0;
    for (const c of this.sockets) {
      if (c.streams.has(stream)) {
        sendText(c.socket, JSON.stringify(event));
        sent++;
      }
    }
    return sent;
  }

  /** Cuts every websocket, as a network blip would. */
  dropWebsockets(): void {
    for (const c of this.sockets) c.socket.destroy();
    this.sockets.clear();
  }

  private upgrade(req: IncomingMessage, socket: Socket): void {
    const key = req.headers["sec-websocket-key"];
    if (typeof key !== "string") return void socket.destroy();
    const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    this.requests.push({ method: "WS", path: new URL(req.url ?? "/", "http://127.0.0.1").pathname, params: {}, signed: false });
    const conn = { socket, streams: new Set<string>() };
    this.sockets.add(conn);
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const frame = readFrame(buffer);
        if (!frame) break;
        buffer = buffer.subarray(frame.length);
        if (frame.opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          this.sockets.delete(conn);
          return;
        }
        if (frame.opcode === 0x9) socket.write(encodeFrame(0xa, frame.payload));
        if (frame.opcode !== 0x1) continue;
        const msg = JSON.parse(frame.payload.toString("utf8")) as { method?: string; params?: string[]; id?: number };
        if (msg.method === "SUBSCRIBE") {
          for (const p of msg.params ?? []) {
            conn.streams.add(p);
            this.subscriptions.push(p);
          }
          sendText(socket, JSON.stringify({ result: null, id: msg.id }));
        } else if (msg.method === "UNSUBSCRIBE") {
          for (const p of msg.params ?? []) conn.streams.delete(p);
          sendText(socket, JSON.stringify({ result: null, id: msg.id }));
        }
      }
    });
    socket.on("close", () => this.sockets.delete(conn));
    socket.on("error", () => this.sockets.delete(conn));
  }

  // ---- HTTP --------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const body = await new Promise<string>((resolve) => {
      let data = "";
      req.on("data", (chunk: Buffer) => (data += chunk.toString("utf8")));
      req.on("end", () => resolve(data));
    });
    const query = url.search.slice(1);
    const params: Record<string, string> = Object.fromEntries(new URLSearchParams(query + (body ? `&${body}` : "")));
    const signed = "signature" in params;
    this.requests.push({ method: req.method ?? "GET", path: url.pathname, params, signed });
    const json = (status: number, payload: unknown) => {
      res.writeHead(status, { "content-type": "application/json;charset=UTF-8" });
      res.end(JSON.stringify(payload));
    };
    const html500 = () => {
      res.writeHead(500, { "content-type": "text/html", "x-cache": "Error from cloudfront", via: "1.1 0a1b2c3d4e5f.cloudfront.net (CloudFront)" });
      res.end(CDN_ERROR_PAGE);
    };
    try {
      const route = `${req.method} ${url.pathname}`;
      const privateRoutes = ["POST /api/v3/order", "GET /api/v3/order", "DELETE /api/v3/order", "GET /api/v3/openOrders", "GET /api/v3/account", "GET /api/v3/myTrades"];
      if (privateRoutes.includes(route)) this.authenticate(req, query, body, params);
      switch (route) {
        case "GET /api/v3/ping":
          return json(200, {});
        case "GET /api/v3/time":
          return json(200, { serverTime: Date.now() });
        case "GET /api/v3/exchangeInfo":
          return json(200, this.exchangeInfo());
        case "GET /api/v3/klines":
          if (this.failKlines > 0) {
            this.failKlines--;
            if (this.klinesFailure === "html500") return html500();
            if (this.klinesFailure === "rateLimited") {
              res.writeHead(429, { "content-type": "application/json;charset=UTF-8", "retry-after": "1" });
              res.end(JSON.stringify({ code: -1003, msg: "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API." }));
              return;
            }
            return json(503, { code: -1008, msg: "Server is currently overloaded with other requests. Please try again in a few minutes." });
          }
          return json(200, this.klines(params));
        case "GET /api/v3/ticker/24hr":
          return json(200, this.ticker(params.symbol ?? ""));
        case "GET /api/v3/depth":
          return json(200, this.depth(params.symbol ?? "", Number(params.limit ?? 100)));
        case "POST /api/v3/order": {
          if (this.dropNextOrderRequest) {
            this.dropNextOrderRequest = false;
            req.socket.destroy();
            return;
          }
          const order = this.create(params);
          if (this.holdNextOrderResponse) {
            const hold = this.holdNextOrderResponse;
            this.holdNextOrderResponse = undefined;
            await hold;
          }
          if (this.html500AfterNextOrder) {
            this.html500AfterNextOrder = false;
            return html500();
          }
          if (this.unknownStatusNext) {
            this.unknownStatusNext = false;
            return json(503, { code: -1007, msg: "Timeout waiting for response from backend server. Send status unknown; execution status unknown." });
          }
          if (this.dropNextOrderResponse) {
            this.dropNextOrderResponse = false;
            req.socket.destroy();
            return;
          }
          return json(200, this.full(order));
        }
        case "GET /api/v3/order":
          if (this.failLookups > 0) {
            this.failLookups--;
            if (this.lookupFailure === "html500") return html500();
            return json(503, { code: -1008, msg: "Server is currently overloaded with other requests. Please try again in a few minutes." });
          }
          return json(200, this.view(this.find(params)));
        case "DELETE /api/v3/order":
          return json(200, this.cancel(params));
        case "GET /api/v3/openOrders":
          return json(200, this.orders.filter((o) => (o.status === "NEW" || o.status === "PARTIALLY_FILLED") && (!params.symbol || o.symbol === params.symbol)).map((o) => this.view(o)));
        case "GET /api/v3/account":
          if (this.failAccount > 0) {
            this.failAccount--;
            return html500();
          }
          return json(200, this.account());
        case "GET /api/v3/myTrades":
          return json(200, this.myTrades(params));
        default:
          return json(404, { code: -1100, msg: `stand-in does not serve ${route}` });
      }
    } catch (err) {
      if (err instanceof BinanceError) return json(err.http, { code: err.code, msg: err.message });
      return json(500, { code: -1000, msg: `An unknown error occurred while processing the request. (${(err as Error).message})` });
    }
  }

  private authenticate(req: IncomingMessage, query: string, body: string, params: Record<string, string>): void {
    if (req.headers["x-mbx-apikey"] !== this.opts.apiKey) throw new BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.");
    // The signature covers the query string followed by the body, minus the signature itself.
    const total = (query + body).replace(/&?signature=[0-9a-f]+/, "");
    const expected = createHmac("sha256", this.opts.secret).update(total).digest("hex");
    const given = params.signature ?? "";
    if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
      throw new BinanceError(400, -1022, "Signature for this request is not valid.");
    }
    const ts = Number(params.timestamp);
    const window = Number(params.recvWindow ?? 5000);
    if (!Number.isFinite(ts) || Math.abs(Date.now() - ts) > window) {
      throw new BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.");
    }
  }

  private sym(id: string | undefined): StandInSymbol {
    const s = this.symbols.get(id ?? "");
    if (!s) throw new BinanceError(400, -1121, "Invalid symbol.");
    return s;
  }

  private exchangeInfo() {
    return {
      timezone: "UTC",
      serverTime: Date.now(),
      rateLimits: [
        { rateLimitType: "REQUEST_WEIGHT", interval: "MINUTE", intervalNum: 1, limit: 6000 },
        { rateLimitType: "ORDERS", interval: "SECOND", intervalNum: 10, limit: 100 },
      ],
      exchangeFilters: [],
      symbols: [...this.symbols.values()].map((s) => ({
        symbol: s.id,
        status: "TRADING",
        baseAsset: s.base,
        baseAssetPrecision: 8,
        quoteAsset: s.quote,
        quotePrecision: 8,
        quoteAssetPrecision: 8,
        baseCommissionPrecision: 8,
        quoteCommissionPrecision: 8,
        orderTypes: ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        icebergAllowed: true,
        ocoAllowed: true,
        otoAllowed: true,
        quoteOrderQtyMarketAllowed: true,
        allowTrailingStop: true,
        cancelReplaceAllowed: true,
        isSpotTradingAllowed: true,
        isMarginTradingAllowed: false,
        filters: [
          { filterType: "PRICE_FILTER", minPrice: s.tickSize ?? "0.01000000", maxPrice: "1000000.00000000", tickSize: s.tickSize ?? "0.01000000" },
          { filterType: "LOT_SIZE", minQty: s.minQty ?? "0.00001000", maxQty: "9000.00000000", stepSize: s.stepSize ?? "0.00001000" },
          { filterType: "NOTIONAL", minNotional: s.minNotional ?? "5.00000000", applyMinToMarket: true, maxNotional: "9000000.00000000", applyMaxToMarket: false, avgPriceMins: 5 },
        ],
        permissions: [],
        permissionSets: [["SPOT"]],
        defaultSelfTradePreventionMode: "EXPIRE_MAKER",
        allowedSelfTradePreventionModes: ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
      })),
    };
  }

  private klines(p: Record<string, string>): unknown[] {
    const s = this.sym(p.symbol);
    const step = INTERVALS[p.interval ?? ""] ?? this.opts.intervalMs ?? 7_200_000;
    const limit = Math.min(1000, Number(p.limit ?? 500));
    let rows = s.candles;
    if (p.startTime) rows = rows.filter((c) => c.time >= Number(p.startTime));
    if (p.endTime) rows = rows.filter((c) => c.time <= Number(p.endTime));
    rows = p.startTime ? rows.slice(0, limit) : rows.slice(-limit);
    return rows.map((c) => [c.time, fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume), c.time + step - 1, fmt(c.volume * c.close), 1000, "0.00000000", "0.00000000", "0"]);
  }

  private ticker(id: string) {
    const s = this.sym(id);
    const c = s.candles.at(-1)!;
    const first = s.candles.at(-12) ?? s.candles[0]!;
    return {
      symbol: id,
      priceChange: fmt(c.close - first.open),
      priceChangePercent: (((c.close - first.open) / first.open) * 100).toFixed(3),
      weightedAvgPrice: fmt(c.close),
      prevClosePrice: fmt(s.candles.at(-2)?.close ?? c.open),
      lastPrice: fmt(c.close),
      lastQty: "0.01000000",
      bidPrice: fmt(c.close - 0.01),
      bidQty: "1.50000000",
      askPrice: fmt(c.close + 0.01),
      askQty: "2.00000000",
      openPrice: fmt(first.open),
      highPrice: fmt(Math.max(...s.candles.slice(-12).map((x) => x.high))),
      lowPrice: fmt(Math.min(...s.candles.slice(-12).map((x) => x.low))),
      volume: fmt(s.candles.slice(-12).reduce((a, x) => a + x.volume, 0)),
      quoteVolume: "0.00000000",
      openTime: first.time,
      closeTime: Date.now(),
      firstId: 1,
      lastId: 100,
      count: 100,
    };
  }

  private depth(id: string, limit: number) {
    const price = this.price(id);
    const levels = Math.min(limit, 20);
    const tick = Number(this.sym(id).tickSize ?? "0.01");
    return {
      lastUpdateId: 1027024 + this.orders.length,
      bids: Array.from({ length: levels }, (_, i) => [fmt(price - tick * (i + 1)), fmt(0.5 + i * 0.25)]),
      asks: Array.from({ length: levels }, (_, i) => [fmt(price + tick * (i + 1)), fmt(0.4 + i * 0.2)]),
    };
  }

  private account() {
    return {
      makerCommission: 10,
      takerCommission: 10,
      buyerCommission: 0,
      sellerCommission: 0,
      commissionRates: { maker: "0.00100000", taker: "0.00100000", buyer: "0.00000000", seller: "0.00000000" },
      canTrade: true,
      canWithdraw: true,
      canDeposit: true,
      brokered: false,
      requireSelfTradePrevention: false,
      preventSor: false,
      updateTime: Date.now(),
      accountType: "SPOT",
      balances: Object.entries(this.balances).map(([asset, b]) => ({ asset, free: fmt(b.free), locked: fmt(b.locked) })),
      permissions: ["SPOT"],
      uid: 354937868,
    };
  }

  private locked(asset: string, delta: number): void {
    const b = (this.balances[asset] ??= { free: 0, locked: 0 });
    b.locked += delta;
    b.free -= delta;
  }

  private credit(asset: string, delta: number): void {
    const b = (this.balances[asset] ??= { free: 0, locked: 0 });
    b.free += delta;
  }

  /** Moves the assets for `qty` filled at `price` and records the fill with its commission. */
  private settle(o: StandInOrder, s: StandInSymbol, qty: number, price: number): void {
    if (qty <= 0) return;
    const feeRate = this.opts.feeRate ?? 0.001;
    const quoteAmount = qty * price;
    let commission: number;
    let commissionAsset: string;
    // Paying with BNB: 25% off, priced at BNB/quote, and only while the account has the BNB for it.
    const bnb = this.feeIn === "BNB" ? Number(((quoteAmount * feeRate * 0.75) / this.price(`BNB${s.quote}`)).toFixed(8)) : 0;
    if (bnb > 0 && this.balance("BNB") >= bnb) {
      commission = bnb;
      commissionAsset = "BNB";
      this.credit("BNB", -bnb);
      if (o.side === "BUY") {
        this.credit(s.quote, -quoteAmount);
        this.credit(s.base, qty);
      } else {
        this.credit(s.base, -qty);
        this.credit(s.quote, quoteAmount);
      }
    } else if (o.side === "BUY") {
      this.credit(s.quote, -quoteAmount);
      if (this.feeIn !== "quote") {
        commission = qty * feeRate;
        commissionAsset = s.base;
        this.credit(s.base, qty - commission);
      } else {
        commission = quoteAmount * feeRate;
        commissionAsset = s.quote;
        this.credit(s.base, qty);
        this.credit(s.quote, -commission);
      }
    } else {
      this.credit(s.base, -qty);
      commission = quoteAmount * feeRate;
      commissionAsset = s.quote;
      this.credit(s.quote, quoteAmount - commission);
    }
    o.executedQty += qty;
    o.quoteQty += quoteAmount;
    o.updateTime = Date.now();
    o.fills.push({ price, qty, commission, commissionAsset, tradeId: this.nextTradeId++, time: o.updateTime });
  }

  private create(p: Record<string, string>): StandInOrder {
    const s = this.sym(p.symbol);
    if (this.rejectNext) {
      const r = this.rejectNext;
      this.rejectNext = undefined;
      throw new BinanceError(400, r.code, r.msg);
    }
    const clientOrderId = p.newClientOrderId ?? `web_${this.nextOrderId}`;
    if (!/^[a-zA-Z0-9-_]{1,36}$/.test(clientOrderId)) {
      throw new BinanceError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.");
    }
    if (this.orders.some((o) => o.clientOrderId === clientOrderId && (o.status === "NEW" || o.status === "PARTIALLY_FILLED"))) {
      throw new BinanceError(400, -2010, "Duplicate order sent.");
    }
    const type = p.type as "MARKET" | "LIMIT";
    const side = p.side as "BUY" | "SELL";
    if (type !== "MARKET" && type !== "LIMIT") throw new BinanceError(400, -1116, "Invalid orderType.");
    const qty = Number(p.quantity);
    const step = s.stepSize ?? "0.00001000";
    if (!(qty > 0)) throw new BinanceError(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.");
    if (qty < Number(s.minQty ?? "0.00001") || Math.abs(qty - Number(qty.toFixed(decimals(step)))) > 1e-12) {
      throw new BinanceError(400, -1013, "Filter failure: LOT_SIZE");
    }
    const market = this.price(s.id);
    const limitPrice = type === "LIMIT" ? Number(p.price) : undefined;
    if (type === "LIMIT" && !(limitPrice! > 0)) throw new BinanceError(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.");
    // Binance: a LIMIT order needs timeInForce, and its price on the PRICE_FILTER's tick.
    if (type === "LIMIT" && !["GTC", "IOC", "FOK"].includes(p.timeInForce ?? "")) throw new BinanceError(400, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.");
    if (type === "LIMIT") {
      const tick = Number(s.tickSize ?? "0.01");
      if (Math.abs(limitPrice! / tick - Math.round(limitPrice! / tick)) > 1e-6) throw new BinanceError(400, -1013, "Filter failure: PRICE_FILTER");
    }
    const refPrice = limitPrice ?? market;
    if (qty * refPrice < Number(s.minNotional ?? "5")) throw new BinanceError(400, -1013, "Filter failure: NOTIONAL");
    const needQuote = side === "BUY" ? qty * refPrice : 0;
    if (side === "BUY" && this.balance(s.quote) < needQuote) throw new BinanceError(400, -2010, "Account has insufficient balance for requested action.");
    if (side === "SELL" && this.balance(s.base) < qty - 1e-12) throw new BinanceError(400, -2010, "Account has insufficient balance for requested action.");

    const now = Date.now();
    const order: StandInOrder = {
      symbol: s.id,
      orderId: this.nextOrderId++,
      clientOrderId,
      price: type === "LIMIT" ? fmt(limitPrice!) : "0.00000000",
      origQty: qty,
      executedQty: 0,
      quoteQty: 0,
      status: "NEW",
      type,
      side,
      time: now,
      updateTime: now,
      fills: [],
    };
    this.orders.push(order);
    const marketable = type === "MARKET" || (side === "BUY" ? limitPrice! >= market : limitPrice! <= market);
    if (marketable) {
      const available = this.liquidity[s.id] ?? Infinity;
      const fill = Math.min(qty, available);
      this.settle(order, s, fill, type === "MARKET" ? market : limitPrice!);
      if (fill >= qty) order.status = "FILLED";
      // A market order that runs out of book expires with what it got; a limit order rests.
      else if (type === "MARKET") order.status = "EXPIRED";
      else {
        order.status = fill > 0 ? "PARTIALLY_FILLED" : "NEW";
        this.lockRest(order, s);
      }
    } else {
      this.lockRest(order, s);
    }
    return order;
  }

  private lockRest(o: StandInOrder, s: StandInSymbol): void {
    const rest = o.origQty - o.executedQty;
    if (o.side === "BUY") this.locked(s.quote, rest * Number(o.price));
    else this.locked(s.base, rest);
  }

  private find(p: Record<string, string>): StandInOrder {
    const o = this.orders.find(
      (x) => x.symbol === p.symbol && (p.orderId ? String(x.orderId) === p.orderId : x.clientOrderId === p.origClientOrderId),
    );
    if (!o) throw new BinanceError(400, -2013, "Order does not exist.");
    return o;
  }

  private cancel(p: Record<string, string>) {
    const o = this.find(p);
    if (o.status !== "NEW" && o.status !== "PARTIALLY_FILLED") throw new BinanceError(400, -2011, "Unknown order sent.");
    const s = this.sym(o.symbol);
    const rest = o.origQty - o.executedQty;
    if (o.side === "BUY") this.locked(s.quote, -rest * Number(o.price));
    else this.locked(s.base, -rest);
    o.status = "CANCELED";
    o.updateTime = Date.now();
    return { ...this.common(o), origClientOrderId: o.clientOrderId, clientOrderId: `cancel_${o.orderId}`, transactTime: o.updateTime };
  }

  private myTrades(p: Record<string, string>) {
    const list = this.orders.filter((o) => o.symbol === p.symbol && (!p.orderId || this.myTradesIgnoreOrderId || String(o.orderId) === p.orderId));
    const listedBefore = Date.now() - this.tradesListedAfterMs;
    return list.flatMap((o) =>
      o.fills.filter((f) => f.time <= listedBefore).map((f) => ({
        symbol: o.symbol,
        id: f.tradeId,
        orderId: o.orderId,
        orderListId: -1,
        price: fmt(f.price),
        qty: fmt(f.qty),
        quoteQty: fmt(f.price * f.qty),
        commission: fmt(f.commission),
        commissionAsset: f.commissionAsset,
        time: f.time,
        isBuyer: o.side === "BUY",
        isMaker: false,
        isBestMatch: true,
      })),
    );
  }

  private common(o: StandInOrder) {
    return {
      symbol: o.symbol,
      orderId: o.orderId,
      orderListId: -1,
      clientOrderId: o.clientOrderId,
      price: o.price,
      origQty: fmt(o.origQty),
      executedQty: fmt(o.executedQty),
      origQuoteOrderQty: "0.00000000",
      cummulativeQuoteQty: fmt(o.quoteQty),
      status: o.status,
      timeInForce: "GTC",
      type: o.type,
      side: o.side,
      selfTradePreventionMode: "EXPIRE_MAKER",
    };
  }

  /** The POST reply with newOrderRespType=FULL. */
  private full(o: StandInOrder) {
    return {
      ...this.common(o),
      transactTime: o.time,
      workingTime: o.time,
      fills: o.fills.map((f) => ({ price: fmt(f.price), qty: fmt(f.qty), commission: fmt(f.commission), commissionAsset: f.commissionAsset, tradeId: f.tradeId })),
    };
  }

  /** GET /api/v3/order: no fills in it, as on Binance. */
  private view(o: StandInOrder) {
    return {
      ...this.common(o),
      stopPrice: "0.00000000",
      icebergQty: "0.00000000",
      time: o.time,
      updateTime: o.updateTime,
      isWorking: true,
      workingTime: o.time,
    };
  }
}

/** The page CloudFront serves when the origin behind it fails (its shape; the ids are made up). */
export const CDN_ERROR_PAGE = `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">
<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">
<TITLE>ERROR: The request could not be satisfied</TITLE>
</HEAD><BODY>
<H1>500 ERROR</H1>
<H2>The request could not be satisfied.</H2>
<HR noshade size="1px">
We can't connect to the server for this app or website at this time. There might be too much traffic or a configuration error. Try again later, or contact the app or website owner.
<BR clear="all">
If you provide content to customers through CloudFront, you can find steps to troubleshoot and help prevent this error by reviewing the CloudFront documentation.
<BR clear="all">
<HR noshade size="1px">
<PRE>
Generated by cloudfront (CloudFront)
Request ID: 7xq2Zb9Kd0aN3vLr5tYhUe1WfGs8Pq4Mc6JoIiTu2RnBkXyVwAz==
</PRE>
<ADDRESS>
</ADDRESS>
</BODY></HTML>`;

// ---- RFC 6455 framing (server side: client frames are masked, ours are not) ------------------

function readFrame(buf: Buffer): { opcode: number; payload: Buffer; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskLen = masked ? 4 : 0;
  if (buf.length < offset + maskLen + len) return undefined;
  const mask = masked ? buf.subarray(offset, offset + 4) : undefined;
  const payload = Buffer.from(buf.subarray(offset + maskLen, offset + maskLen + len));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return { opcode, payload, length: offset + maskLen + len };
}

function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

function sendText(socket: Socket, text: string): void {
  socket.write(encodeFrame(0x1, Buffer.from(text, "utf8")));
}

/** Real candles moved in time so that the last one opened `formingAgeMs` ago and is still forming. */
export function candlesEndingNow(recorded: Candle[], count: number, stepMs = 7_200_000, formingAgeMs = 60_000): Candle[] {
  const formingOpen = Date.now() - formingAgeMs;
  return recorded.slice(-count).map((c, i, all) => ({ ...c, time: formingOpen - (all.length - 1 - i) * stepMs }));
}
