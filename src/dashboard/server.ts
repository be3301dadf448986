// The team dashboard: a read-only API (every reply checked against its schema), server-sent
// events for live updates, and the page that reads them. Nothing here changes state, except the
// audit line a refused visitor leaves.
import { readFileSync } from "node:fs";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import type { z } from "zod";
import type { AuditEntry } from "../chat/audit.js";
import { ROLE_RANK, type Platform, type Role } from "../chat/types.js";
import type { MarketSymbol } from "../domain/types.js";
import { projectPath } from "../paths.js";
import { checkInitData, peekLink, standing, verifyLink, type AccessReader, type DashboardViewer } from "./auth.js";
import { LiveFeed, type LiveSources } from "./live.js";
import { readAudit, readBalance, readDiary, readEquity, readOrders, readPositions, readPrice, readSpend, readTrades, type DashboardSources } from "./reads.js";
import * as S from "./schemas.js";

export interface DashboardHost {
  sources: DashboardSources;
  access: AccessReader;
  audit: { record(e: Omit<AuditEntry, "time">): Promise<void> };
  live: LiveSources;
  /** Checks Mini App sign-ins; without it only links let anyone in. */
  telegramBotToken?: string;
  /** Signs and checks the personal links. */
  linkSecret: string;
  /** How old a Mini App sign-in may be. */
  initDataMaxAgeMs?: number;
  mode: { trading: "paper" | "live"; market: string; model: string };
  paused(): Promise<boolean>;
  status(): Promise<{ status: "ok" | "unavailable"; failing: string[]; parts: Record<string, { ok: boolean; detail?: string }> }>;
  log: { warn(msg: string): void; info(msg: string): void };
}

export interface DashboardServer {
  host: string;
  port: number;
  /** http://host:port, as bound. */
  url: string;
  stop(): Promise<void>;
}

const PUBLIC = (f: string) => projectPath("src", "dashboard", "public", f);
const CHARTS = projectPath("node_modules", "lightweight-charts", "dist", "lightweight-charts.standalone.production.js");

/** The page and its scripts, read once. */
function loadAssets(): Record<string, { body: Buffer; type: string }> {
  try {
    return readAssets();
  } catch (err) {
    throw new Error(`the dashboard's page cannot be read (${(err as NodeJS.ErrnoException).path ?? (err as Error).message}): src/dashboard/public and node_modules/lightweight-charts must be beside the code`);
  }
}

function readAssets(): Record<string, { body: Buffer; type: string }> {
  const js = "text/javascript; charset=utf-8";
  return {
    "/static/app.js": { body: readFileSync(PUBLIC("app.js")), type: js },
    "/static/style.css": { body: readFileSync(PUBLIC("style.css")), type: "text/css; charset=utf-8" },
    "/static/lightweight-charts.js": { body: readFileSync(CHARTS), type: js },
    page: { body: readFileSync(PUBLIC("index.html")), type: "text/html; charset=utf-8" },
  };
}

// Telegram's web client frames the Mini App; nothing else may.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors https://web.telegram.org",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
  "cache-control": "no-store",
};

const HOW = "Type /dashboard in the team's chat (Telegram, Discord or the console) for a new personal link; in Telegram its button opens the dashboard inside the app.";

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function refusalPage(why: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Dashboard: a new link is needed</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main class="refused"><h1>This link does not open the dashboard</h1><p>${escapeHtml(why[0]!.toUpperCase() + why.slice(1))}.</p><p>${escapeHtml(HOW)}</p></main></body></html>`;
}

type Authed = FastifyRequest & { viewer?: DashboardViewer };

export interface DashboardListen {
  host: string;
  port: number;
  /** How often an open event stream's sign-in is checked again (default 15 s). */
  recheckMs?: number;
}

export async function startDashboard(h: DashboardHost, o: DashboardListen): Promise<DashboardServer> {
  const assets = loadAssets();
  const feed = new LiveFeed(h.live);
  const streams = new Set<FastifyReply>();
  const app = Fastify({ logger: false, bodyLimit: 1024 });

  app.addHook("onRequest", async (_req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.raw.setHeader(k, v);
  });

  const clock = () => h.sources.clock();

  /** Who is asking, from the Authorization header, or the query (EventSource sends no headers). */
  async function authenticate(req: FastifyRequest): Promise<{ ok: true; viewer: DashboardViewer } | { ok: false; why: string; who?: { platform: Platform; id: string; name: string } }> {
    const q = req.query as Record<string, unknown>;
    const header = req.headers.authorization ?? "";
    const link = header.startsWith("Bearer ") ? header.slice(7) : typeof q.t === "string" ? q.t : undefined;
    const tma = header.startsWith("tma ") ? header.slice(4) : typeof q.tma === "string" ? q.tma : undefined;
    if (tma !== undefined) {
      if (!h.telegramBotToken) return { ok: false, why: "Telegram is not set up on this agent" };
      const c = checkInitData(tma, h.telegramBotToken, clock(), h.initDataMaxAgeMs ?? 3_600_000);
      if (!c.ok) return { ok: false, why: c.why };
      const role = await h.access.roleOf("telegram", c.user.id);
      const who = { platform: "telegram" as const, ...c.user };
      if (!role) return { ok: false, why: "you are not on the allow-list", who };
      return { ok: true, viewer: { ...who, role, via: "telegram" } };
    }
    if (link === undefined || link === "") return { ok: false, why: "there is no sign-in with this request" };
    const v = verifyLink(link, h.linkSecret, clock());
    const who = peekLink(link);
    if (!v.ok) return { ok: false, why: v.why, ...(who ? { who } : {}) };
    const s = await standing(h.access, v.claim);
    if (!s.ok) return { ok: false, why: s.why, ...(who ? { who } : {}) };
    return { ok: true, viewer: { platform: v.claim.platform, id: v.claim.id, name: v.claim.name, role: s.role, via: "link", expiresAt: v.claim.exp } };
  }

  // The audit log keeps its last 10,000 lines: a stranger repeating a refused request must not
  // push the team's own history out of it, so the same refusal from the same place is written
  // once a minute.
  const lastAudited = new Map<string, number>();
  async function refuse(req: FastifyRequest, why: string, who: { platform: Platform; id: string; name: string; role?: Role } | undefined, _status: 401 | 403): Promise<void> {
    const key = `${req.ip}|${who?.platform ?? ""}:${who?.id ?? ""}|${why}`;
    const now = Date.now();
    if ((lastAudited.get(key) ?? -Infinity) > now - 60_000) return;
    if (lastAudited.size > 10_000) lastAudited.clear();
    lastAudited.set(key, now);
    await h.audit
      .record({
        platform: who?.platform ?? "console",
        userId: who?.id ?? "-",
        user: who?.name ?? "unknown visitor",
        role: who?.role ?? "none",
        where: `dashboard from ${req.ip}`,
        command: `GET ${req.url.split("?")[0]}`,
        result: "refused",
        detail: why,
      })
      .catch(() => h.log.warn("dashboard: a refusal could not be audited (Redis)"));
  }

  const guard = (min: Role) => async (req: FastifyRequest, reply: FastifyReply) => {
    const a = await authenticate(req);
    if (!a.ok) {
      await refuse(req, a.why, a.who, 401);
      return reply.code(401).type("application/json").send({ error: `Not signed in: ${a.why}.`, how: HOW });
    }
    if (ROLE_RANK[a.viewer.role] < ROLE_RANK[min]) {
      await refuse(req, `${a.viewer.role} asked for what ${min}s only may see`, a.viewer, 403);
      return reply.code(403).type("application/json").send({ error: `Only ${min}s may see this; you are a ${a.viewer.role}.` });
    }
    (req as Authed).viewer = a.viewer;
  };

  const send = <T extends z.ZodType>(reply: FastifyReply, schema: T, data: z.input<T>) => reply.type("application/json").send(JSON.stringify(schema.parse(data)));

  const intArg = (v: unknown, def: number, min: number, max: number): number | string => {
    if (v === undefined || v === "") return def;
    const n = Number(v);
    return Number.isInteger(n) && n >= min && n <= max ? n : `a whole number from ${min} to ${max}`;
  };
  const bad = (reply: FastifyReply, what: string) => reply.code(400).type("application/json").send({ error: what });
  const symbolArg = (v: unknown): MarketSymbol | undefined | false => {
    if (v === undefined || v === "") return undefined;
    const s = String(v).toUpperCase();
    const full = s.includes("/") ? s : `${s}/${h.sources.quote}`;
    return h.sources.symbols.includes(full as MarketSymbol) ? (full as MarketSymbol) : false;
  };

  // The page: by link (checked here, so a dead link gets the page that says what to do), or as a
  // Telegram Mini App (/tg: Telegram passes its signed data in the address's fragment, which the
  // page sends with each request).
  app.get("/", async (req, reply) => {
    const a = await authenticate(req);
    if (!a.ok) {
      await refuse(req, a.why, a.who, 401);
      return reply.code(401).type("text/html; charset=utf-8").send(refusalPage(a.why));
    }
    return reply.type(assets.page!.type).send(assets.page!.body);
  });
  app.get("/tg", async (_req, reply) => reply.type(assets.page!.type).send(assets.page!.body));
  for (const path of ["/static/app.js", "/static/style.css", "/static/lightweight-charts.js"]) {
    app.get(path, async (_req, reply) => reply.type(assets[path]!.type).header("cache-control", "public, max-age=300").send(assets[path]!.body));
  }
  app.get("/favicon.ico", async (_req, reply) => reply.code(204).send());

  const viewer = (req: FastifyRequest) => (req as Authed).viewer!;
  app.get("/api/me", { preHandler: guard("viewer") }, async (req, reply) => {
    const v = viewer(req);
    return send(reply, S.meReply, {
      user: { platform: v.platform, id: v.id, name: v.name },
      role: v.role,
      paper: h.mode.trading === "paper",
      mode: h.mode,
      symbols: h.sources.symbols,
      quote: h.sources.quote,
      expiresAt: v.expiresAt ?? null,
    });
  });
  app.get("/api/positions", { preHandler: guard("viewer") }, async (_req, reply) => send(reply, S.positionsReply, await readPositions(h.sources)));
  app.get("/api/orders", { preHandler: guard("viewer") }, async (req, reply) => {
    const limit = intArg((req.query as Record<string, unknown>).limit, 50, 1, 500);
    if (typeof limit === "string") return bad(reply, `limit must be ${limit}`);
    return send(reply, S.ordersReply, await readOrders(h.sources, limit));
  });
  app.get("/api/trades", { preHandler: guard("viewer") }, async (_req, reply) => send(reply, S.tradesReply, await readTrades(h.sources)));
  app.get("/api/equity", { preHandler: guard("viewer") }, async (_req, reply) => send(reply, S.equityReply, await readEquity(h.sources)));
  app.get("/api/price", { preHandler: guard("viewer") }, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const symbol = symbolArg(q.symbol);
    if (!symbol) return bad(reply, `symbol must be one of ${h.sources.symbols.join(", ")}`);
    const limit = intArg(q.limit, 200, 10, 1000);
    if (typeof limit === "string") return bad(reply, `limit must be ${limit}`);
    return send(reply, S.priceReply, await readPrice(h.sources, symbol, limit));
  });
  app.get("/api/diary", { preHandler: guard("viewer") }, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const symbol = symbolArg(q.symbol);
    if (symbol === false) return bad(reply, `symbol must be one of ${h.sources.symbols.join(", ")}`);
    const action = q.action === undefined || q.action === "" ? undefined : String(q.action);
    if (action !== undefined && !["buy", "sell", "hold", "close", "none"].includes(action)) return bad(reply, "action must be buy, sell, hold, close or none");
    const limit = intArg(q.limit, 50, 1, 200);
    if (typeof limit === "string") return bad(reply, `limit must be ${limit}`);
    const cursor = q.cursor === undefined || q.cursor === "" ? undefined : String(q.cursor);
    if (cursor !== undefined && !/^\d{1,16}:[\w:./@+-]{1,200}$/.test(cursor)) return bad(reply, "cursor must be the `next` of the previous page");
    return send(reply, S.diaryReply, await readDiary(h.sources, { ...(symbol ? { symbol } : {}), ...(action ? { action } : {}), limit, ...(cursor ? { cursor } : {}) }));
  });
  app.get("/api/spend", { preHandler: guard("viewer") }, async (req, reply) => {
    const days = intArg((req.query as Record<string, unknown>).days, 30, 1, 366);
    if (typeof days === "string") return bad(reply, `days must be ${days}`);
    return send(reply, S.spendReply, await readSpend(h.sources, days));
  });
  app.get("/api/balance", { preHandler: guard("viewer") }, async (req, reply) => {
    const days = intArg((req.query as Record<string, unknown>).days, 30, 1, 366);
    if (typeof days === "string") return bad(reply, `days must be ${days}`);
    return send(reply, S.balanceReply, await readBalance(h.sources, days));
  });
  app.get("/api/audit", { preHandler: guard("admin") }, async (req, reply) => {
    const limit = intArg((req.query as Record<string, unknown>).limit, 100, 1, 1000);
    if (typeof limit === "string") return bad(reply, `limit must be ${limit}`);
    return send(reply, S.auditReply, await readAudit(h.sources, limit));
  });
  app.get("/api/status", { preHandler: guard("viewer") }, async (_req, reply) => {
    const [st, paused] = await Promise.all([h.status(), h.paused()]);
    return send(reply, S.statusReply, { ...st, paused });
  });
  app.get("/api/schemas", { preHandler: guard("viewer") }, async (_req, reply) => {
    const { toJSONSchema } = await import("zod");
    return reply.send(Object.fromEntries(Object.entries(S.REPLY_SCHEMAS).map(([k, s]) => [k, toJSONSchema(s)])));
  });

  app.get("/api/events", { preHandler: guard("viewer") }, async (req, reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
    raw.write(`retry: 3000\n: connected\n\n`);
    const expiresAt = viewer(req).expiresAt;
    const unsubscribe = feed.subscribe((e) => raw.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
    // A link's stream ends when the link does; the page then shows that a new link is needed.
    // Asked again every 15 s (recheckMs): a /revoke ends an open stream too.
    const ping = setInterval(() => {
      if (expiresAt !== undefined && clock() >= expiresAt) {
        raw.end(`event: expired\ndata: {}\n\n`);
        return;
      }
      void authenticate(req).then(
        (a) => (a.ok ? raw.write(`: ping\n\n`) : raw.end(`event: expired\ndata: ${JSON.stringify({ why: a.why })}\n\n`)),
        () => raw.write(`: ping\n\n`),
      );
    }, o.recheckMs ?? 15_000);
    streams.add(reply);
    raw.on("close", () => {
      clearInterval(ping);
      unsubscribe();
      streams.delete(reply);
    });
  });

  app.setNotFoundHandler(async (_req, reply) => reply.code(404).type("application/json").send({ error: "Not found. The dashboard's API is read-only: GET /api/me, /api/positions, /api/orders, /api/trades, /api/equity, /api/price, /api/diary, /api/spend, /api/balance, /api/audit, /api/status, /api/events." }));
  app.setErrorHandler(async (err, _req, reply) => {
    h.log.warn(`dashboard: ${(err as Error).message.split("\n")[0]}`);
    return reply.code(500).type("application/json").send({ error: "The dashboard could not read this just now; try again in a moment." });
  });

  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === "EADDRINUSE"
        ? `DASHBOARD_PORT ${o.port} is already in use on ${o.host}: choose another port, or leave DASHBOARD_PORT empty`
        : `the dashboard cannot listen on ${o.host}:${o.port} (${code ?? (err as Error).message}); check DASHBOARD_HOST and DASHBOARD_PORT`,
    );
  }
  const addr = app.server.address() as { address: string; port: number };
  const shown = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  return {
    host: addr.address,
    port: addr.port,
    url: `http://${shown}:${addr.port}`,
    async stop() {
      feed.close();
      for (const r of streams) r.raw.end();
      await app.close();
    },
  };
}
