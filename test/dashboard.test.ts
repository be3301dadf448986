// The dashboard's API: every route answers in its schema, and every refusal is a refusal (no
// sign-in, a forged or stale Telegram sign-in, an expired link, a link replayed after /revoke, a
// viewer asking for the audit log), audited.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDashboardFor } from "../src/dashboard/serve.js";
import type { DashboardServer } from "../src/dashboard/server.js";
import { REPLY_SCHEMAS } from "../src/dashboard/schemas.js";
import { checkInitData, signLink, verifyLink } from "../src/dashboard/auth.js";
import type { ChatUser } from "../commands/types.js";
import { startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { BOT_TOKEN, dashboardLink, signedInitData } from "./support/dashboard.js";

let t: TestApp;
let server: DashboardServer;
const admin: ChatUser = { id: "u-admin", name: "tester-admin", platform: "console", role: "admin" };
const viewer: ChatUser = { id: "111", name: "@vera", platform: "telegram", role: "viewer" };
const tgAdmin: ChatUser = { id: "222", name: "@ada", platform: "telegram", role: "admin" };

beforeAll(async () => {
  t = await startTestApp(
    testConfig((c) => {
      c.chat.telegram.token = BOT_TOKEN;
      c.chat.telegram.allowedUsers = [
        { id: "111", role: "viewer" },
        { id: "222", role: "admin" },
        { id: "333", role: "viewer" },
        { id: "555", role: "viewer" },
      ];
    }),
  );
  server = await startDashboardFor(t.app, { host: "127.0.0.1", port: 0 });
  // A few decisions to read: two symbols, a minute apart.
  for (const s of ["BTC", "ETH", "BTC", "ETH", "BTC"]) {
    t.clock.advance(60_000);
    expect((await t.run(`/decide ${s}`, "trader")).error).toBeFalsy();
  }
});
afterAll(async () => {
  await server?.stop();
  await t?.app.stop();
});

const tokenOf = (url: string) => new URL(url).searchParams.get("t")!;
const get = (path: string, auth?: string) => fetch(server.url + path, auth ? { headers: { authorization: auth } } : {});
const bearer = (url: string) => `Bearer ${tokenOf(url)}`;

async function lastAudit() {
  return (await t.app.chat.audit.recent(1))[0];
}

describe("the dashboard API", () => {
  it("answers every route, in its schema, to a link made by /dashboard", async () => {
    const { url, reply } = await dashboardLink(t.app, admin);
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toMatch(/valid 15 min/);
    expect(url.startsWith(server.url + "/?t=")).toBe(true);
    const auth = bearer(url);
    const routes: [keyof typeof REPLY_SCHEMAS, string][] = [
      ["/api/me", ""],
      ["/api/positions", ""],
      ["/api/orders", "?limit=10"],
      ["/api/trades", ""],
      ["/api/equity", ""],
      ["/api/price", "?symbol=BTC"],
      ["/api/diary", "?limit=10"],
      ["/api/spend", "?days=7"],
      ["/api/balance", "?days=7"],
      ["/api/audit", "?limit=5"],
      ["/api/status", ""],
    ];
    for (const [route, query] of routes) {
      const res = await get(route + query, auth);
      expect(res.status, route).toBe(200);
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors https://web.telegram.org");
      const body = await res.json();
      expect(() => REPLY_SCHEMAS[route].parse(body), route).not.toThrow();
    }
    const me = (await (await get("/api/me", auth)).json()) as { role: string; paper: boolean; symbols: string[] };
    expect(me).toMatchObject({ role: "admin", paper: true });
    expect(me.symbols).toContain("BTC/USDT");
    const price = (await (await get("/api/price?symbol=BTC&limit=50", auth)).json()) as { candles: unknown[] };
    expect(price.candles.length).toBe(50);
    const spend = (await (await get("/api/spend?days=7", auth)).json()) as { perDay: unknown[]; caps: { dailyMicro: number } };
    expect(spend.perDay).toHaveLength(7);
    expect(spend.caps.dailyMicro).toBe(t.app.config.balance.dailyBudget * 1e6);
    const schemas = (await (await get("/api/schemas", auth)).json()) as Record<string, unknown>;
    expect(Object.keys(schemas)).toEqual(Object.keys(REPLY_SCHEMAS));
  });

  it("serves the page to a valid link with the security headers, and never a secret", async () => {
    const { url } = await dashboardLink(t.app, admin);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/static/app.js">');
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors https://web.telegram.org");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    const secret = await t.app.dashboard.secret();
    for (const path of ["/api/me", "/api/status", "/api/balance", "/api/spend", "/api/audit?limit=100", "/static/app.js"]) {
      const text = await (await get(path, bearer(url))).text();
      expect(text).not.toContain(BOT_TOKEN);
      expect(text).not.toContain(secret);
    }
  });

  it("filters the diary by symbol and action, and pages through it without repeats", async () => {
    const { url } = await dashboardLink(t.app, admin);
    const auth = bearer(url);
    type Page = { entries: { id: string; symbol: string; action: string; reasons: string[]; indicators: Record<string, unknown>; model: string }[]; next: string | null };
    const all = (await (await get("/api/diary?limit=50", auth)).json()) as Page;
    expect(all.entries.length).toBeGreaterThanOrEqual(5);
    expect(all.entries[0]!.model).toBe("offline-engine");
    expect(all.entries[0]!.indicators).toHaveProperty("rsi14");
    const btc = (await (await get("/api/diary?symbol=BTC", auth)).json()) as Page;
    expect(btc.entries.length).toBe(all.entries.filter((e) => e.symbol === "BTC/USDT").length);
    expect(btc.entries.every((e) => e.symbol === "BTC/USDT")).toBe(true);
    const action = all.entries[0]!.action;
    const byAction = (await (await get(`/api/diary?action=${action}`, auth)).json()) as Page;
    expect(byAction.entries.length).toBe(all.entries.filter((e) => e.action === action).length);
    // One at a time: the same entries, in the same order, each once.
    const seen: string[] = [];
    let cursor: string | null = "";
    while (cursor !== null) {
      const page = (await (await get(`/api/diary?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, auth)).json()) as Page;
      seen.push(...page.entries.map((e) => e.id));
      cursor = page.next;
      expect(seen.length).toBeLessThanOrEqual(all.entries.length);
    }
    expect(seen).toEqual(all.entries.map((e) => e.id));
    for (const bad of ["/api/diary?action=moon", "/api/diary?symbol=NOPE", "/api/diary?limit=0", "/api/diary?cursor=%3Cscript%3E", "/api/price?symbol=NOPE"]) {
      const res = await get(bad, auth);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/must be/);
    }
  });

  it("lists resting limit orders and every filled order, and sums P&L as the books do", async () => {
    const auth = bearer((await dashboardLink(t.app, admin)).url);
    expect((await t.run("/trade buy BTC 40", "trader")).error).toBeFalsy();
    t.clock.advance(60_000);
    expect((await t.run("/trade sell BTC all", "trader")).error).toBeFalsy();
    const eth = await t.app.services.market.lastPrice("ETH/USDT");
    const limit = Math.floor(eth * 0.5);
    expect((await t.run(`/trade buy ETH 30 @ ${limit}`, "trader")).text).toMatch(/rest|limit/i);

    const orders = (await (await get("/api/orders?limit=20", auth)).json()) as { open: { symbol: string; limitPrice: number }[]; filled: { symbol: string; side: string; clientOrderId: string }[] };
    expect(orders.open).toEqual([expect.objectContaining({ symbol: "ETH/USDT", limitPrice: limit })]);
    // The manual trades are there, not only the decisions' orders.
    const manual = orders.filled.filter((o) => o.symbol === "BTC/USDT" && o.clientOrderId.startsWith("manual"));
    expect(manual.map((o) => o.side).sort()).toEqual(["buy", "sell"]);

    const trades = (await (await get("/api/trades", auth)).json()) as { realizedPnl: number; bySymbol: { symbol: string; pnl: number }[] };
    const books = await t.app.services.portfolio.realizedPnl();
    expect(trades.realizedPnl).toBeCloseTo(books, 6);
    expect(trades.bySymbol.reduce((a, r) => a + r.pnl, 0)).toBeCloseTo(books, 6);
  });

  it("lets a viewer see everything but the audit log (403, audited)", async () => {
    const { url } = await dashboardLink(t.app, viewer);
    const auth = bearer(url);
    expect(((await (await get("/api/me", auth)).json()) as { role: string }).role).toBe("viewer");
    for (const path of ["/api/positions", "/api/diary", "/api/spend", "/api/status"]) expect((await get(path, auth)).status, path).toBe(200);
    const res = await get("/api/audit", auth);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/Only admins/);
    expect(await lastAudit()).toMatchObject({ platform: "telegram", userId: "111", result: "refused", command: "GET /api/audit" });
  });

  it("refuses no sign-in with a 401 and the page that says how to get a link, audited", async () => {
    const page = await fetch(server.url + "/");
    expect(page.status).toBe(401);
    const html = await page.text();
    expect(html).toContain("/dashboard");
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await lastAudit()).toMatchObject({ result: "refused", command: "GET /", detail: "there is no sign-in with this request" });
    const api = await get("/api/positions");
    expect(api.status).toBe(401);
    expect(((await api.json()) as { how: string }).how).toMatch(/\/dashboard/);
    // Repeated, it is refused every time but written once a minute: a stranger cannot flush the log.
    for (let i = 0; i < 20; i++) expect((await get("/api/diary")).status).toBe(401);
    const lines = (await t.app.chat.audit.recent(200)).filter((e) => e.detail === "there is no sign-in with this request");
    expect(lines).toHaveLength(1);
  });

  it("refuses a link whose signature is wrong (a role raised by hand)", async () => {
    const { url } = await dashboardLink(t.app, viewer);
    const token = tokenOf(url);
    const [body, sig] = token.split(".") as [string, string];
    const claim = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, unknown>;
    const raised = Buffer.from(JSON.stringify({ ...claim, r: "admin" })).toString("base64url");
    const res = await get("/api/audit", `Bearer ${raised}.${sig}`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toMatch(/signature is wrong/);
    expect(await lastAudit()).toMatchObject({ userId: "111", result: "refused", detail: "the link's signature is wrong" });
    // Signed with another key: refused too.
    const other = signLink({ platform: "console", id: "x", name: "x", role: "admin", iat: t.clock.now, exp: t.clock.now + 60_000 }, "another-key-that-is-long-enough-32");
    expect((await get("/api/me", `Bearer ${other}`)).status).toBe(401);
  });

  it("refuses an expired link, page and API alike", async () => {
    const { url } = await dashboardLink(t.app, admin);
    expect((await fetch(url)).status).toBe(200);
    t.clock.advance(15 * 60_000 + 1);
    const page = await fetch(url);
    expect(page.status).toBe(401);
    expect(await page.text()).toMatch(/The link expired at/);
    const res = await get("/api/me", bearer(url));
    expect(res.status).toBe(401);
    expect(await lastAudit()).toMatchObject({ result: "refused", detail: expect.stringMatching(/expired/) });
  });

  it("refuses a link replayed after /revoke, and the revoked person's Telegram sign-in", async () => {
    const person: ChatUser = { id: "333", name: "@rex", platform: "telegram", role: "viewer" };
    const { url } = await dashboardLink(t.app, person);
    expect((await get("/api/me", bearer(url))).status).toBe(200);
    const initData = signedInitData({ id: 333, username: "rex" }, Math.floor(t.clock.now / 1000));
    expect((await get("/api/me", `tma ${initData}`)).status).toBe(200);
    expect((await t.run("/revoke telegram 333")).text).toMatch(/has no access any more/);
    const replay = await get("/api/me", bearer(url));
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toMatch(/not on the allow-list|access was changed/);
    expect((await fetch(url)).status).toBe(401);
    expect((await get("/api/me", `tma ${initData}`)).status).toBe(401);
    // Given back: an old link stays dead (made before the change), a new one works.
    t.clock.advance(1000);
    await t.run("/grant telegram 333 viewer");
    t.clock.advance(1000);
    expect((await get("/api/me", bearer(url))).status).toBe(401);
    const fresh = await dashboardLink(t.app, person);
    expect((await get("/api/me", bearer(fresh.url))).status).toBe(200);
  });

  it("lets a Telegram Mini App in by its signed initData, with the allow-list's role", async () => {
    const now = Math.floor(t.clock.now / 1000);
    const ok = await get("/api/me", `tma ${signedInitData({ id: 222, username: "ada" }, now)}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ role: "admin", user: { platform: "telegram", id: "222", name: "@ada" } });
    // EventSource sends no header: the same data in the query works too.
    expect((await get(`/api/me?tma=${encodeURIComponent(signedInitData({ id: 111 }, now))}`)).status).toBe(200);
    // The Mini App's page loads without a token (Telegram puts its data in the fragment).
    expect((await fetch(server.url + "/tg")).status).toBe(200);
  });

  it("refuses a forged initData (another bot's token, or a changed user) and a stale one", async () => {
    const now = Math.floor(t.clock.now / 1000);
    const forged = await get("/api/me", `tma ${signedInitData({ id: 222 }, now, "999999:ANOTHER-bot-token_abcdefghijkl")}`);
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as { error: string }).error).toMatch(/not signed by this bot/);
    const changed = signedInitData({ id: 111 }, now).replace(encodeURIComponent('"id":111'), encodeURIComponent('"id":222'));
    expect((await get("/api/me", `tma ${changed}`)).status).toBe(401);
    const stale = await get("/api/me", `tma ${signedInitData({ id: 222 }, now - 2 * 3600)}`);
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as { error: string }).error).toMatch(/min old/);
    expect(await lastAudit()).toMatchObject({ result: "refused", detail: expect.stringMatching(/min old/) });
    // A stranger, signed right, but not on the allow-list.
    expect((await get("/api/me", `tma ${signedInitData({ id: 444 }, now)}`)).status).toBe(401);
  });

  it("streams a new decision as a server-sent event", async () => {
    const { url } = await dashboardLink(t.app, admin);
    const ac = new AbortController();
    const res = await fetch(`${server.url}/api/events?t=${tokenOf(url)}`, { signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    let text = "";
    const reader = res.body!.getReader();
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })().catch(() => {});
    await waitFor("the stream to open", async () => text.includes(": connected"));
    t.clock.advance(60_000);
    const reply = await t.run("/decide DOGE", "trader");
    expect(reply.error).toBeFalsy();
    const event = await waitFor("the decision event", async () => /event: decision\ndata: (.*)\n/.exec(text)?.[1]);
    expect(JSON.parse(event)).toMatchObject({ type: "decision", symbol: "DOGE/USDT" });
    // An alert the chats get reaches the page too.
    await t.app.notifier.notify({ type: "model-alert", message: "Daily AI budget 80% spent" });
    const alert = await waitFor("the alert event", async () => /event: alert\ndata: (.*)\n/.exec(text)?.[1]);
    expect(JSON.parse(alert)).toMatchObject({ type: "alert", kind: "alert", text: "Daily AI budget 80% spent" });
    ac.abort();
    await reading;
  });

  it("on Telegram with an https address, /dashboard answers with a Mini App button; never a link in a group", async () => {
    const links = t.app.dashboard;
    const before = links.baseUrl!;
    try {
      // As if DASHBOARD_PUBLIC_URL were https (without one, the address follows the server).
      links.servedAt("https://board.example.org");
      const { handleCommand } = await import("../commands/registry.js");
      const button = await handleCommand("/dashboard", { user: tgAdmin, app: t.app, where: "telegram private chat (222)" });
      expect(button.buttons?.[0]?.[0]).toMatchObject({ webAppUrl: "https://board.example.org/tg" });
      expect(button.text).not.toMatch(/https?:\/\//);
      const group = await handleCommand("/dashboard", { user: tgAdmin, app: t.app, where: 'telegram supergroup "team" (-1001)' });
      expect(group.error).toBe(true);
      expect(group.text).toMatch(/private chat/);
    } finally {
      links.servedAt(before);
    }
  });
});

describe("an open event stream", () => {
  it("is ended by /revoke, not only new requests", async () => {
    const quick = await startDashboardFor(t.app, { host: "127.0.0.1", port: 0, recheckMs: 100 });
    try {
      const { url } = await dashboardLink(t.app, { id: "555", name: "@sam", platform: "telegram", role: "viewer" });
      const res = await fetch(`${quick.url}/api/events?t=${tokenOf(url)}`);
      expect(res.status).toBe(200);
      let text = "";
      const reader = res.body!.getReader();
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += new TextDecoder().decode(value);
        }
      })();
      await waitFor("a ping", async () => text.includes(": ping"));
      expect(text).not.toContain("event: expired");
      await t.run("/revoke telegram 555");
      await reading; // the server ends the stream
      expect(text).toMatch(/event: expired\ndata: \{"why":"(you are not on the allow-list|your access was changed after this link was made)"\}/);
    } finally {
      await quick.stop();
      t.app.dashboard.servedAt(server.url);
    }
  });
});

describe("the sign-in checks on their own", () => {
  it("checks initData exactly as Telegram signs it", () => {
    const now = Date.UTC(2026, 0, 1);
    const data = signedInitData({ id: 5, username: "u" }, now / 1000);
    expect(checkInitData(data, BOT_TOKEN, now, 3_600_000)).toMatchObject({ ok: true, user: { id: "5", name: "@u" } });
    expect(checkInitData(data + "&extra=1", BOT_TOKEN, now, 3_600_000)).toMatchObject({ ok: false });
    expect(checkInitData(data, BOT_TOKEN, now + 3_600_001, 3_600_000)).toMatchObject({ ok: false, why: expect.stringMatching(/old/) });
    expect(checkInitData("", BOT_TOKEN, now, 3_600_000)).toMatchObject({ ok: false });
  });

  it("signs links that expire", () => {
    const key = "k".repeat(32);
    const token = signLink({ platform: "discord", id: "1", name: "n", role: "trader", iat: 0, exp: 1000 }, key);
    expect(verifyLink(token, key, 999)).toMatchObject({ ok: true, claim: { role: "trader" } });
    expect(verifyLink(token, key, 1000)).toMatchObject({ ok: false });
    expect(verifyLink(token + "x", key, 0)).toMatchObject({ ok: false });
  });
});
