// Ledger retention: entries past the retention go to the archive, then become daily aggregates.
// A seeded ledger of 40 days (3 symbols every hour, paid, failed, cached and free decisions, x402
// receipts) is rolled up with a 3-day retention, so this month's report and the 14-day chart read
// mostly aggregates; what /report says and what the chart draws must not change.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runLedgerRollup } from "../jobs/ledgerRollup.js";
import { spendSeries } from "../src/chat/charts/costChart.js";
import { loadConfig } from "../src/config/config.js";
import { JsonlArchive, type ArchiveLine, type LedgerArchive } from "../src/ledger/archive.js";
import { dayKey, monthKey, type ChargeRecord, type DecisionRecord, type Ledger, type PaymentReceipt } from "../src/ledger/ledger.js";
import { paymentFigures } from "../src/ledger/report.js";
import { LedgerRollup, retentionCutoff } from "../src/ledger/rollup.js";
import { snapshot, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const RETENTION = 3;
const MODELS = ["openai/gpt-4o", "anthropic/claude-3-5-sonnet", "groq/llama-3.1-8b-instant"];
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"] as const;

let t: TestApp | undefined;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ledger-archive-"));
});
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Seeded {
  decisions: DecisionRecord[];
  charges: ChargeRecord[];
}

/** A varied but deterministic ledger from NOW - 40 days to NOW, written through the real booking path. */
async function seed(ledger: Ledger): Promise<Seeded> {
  const out: Seeded = { decisions: [], charges: [] };
  const receipt = (n: number): PaymentReceipt | undefined =>
    n % 4 === 0 ? { status: "settled", network: "base-sepolia", transaction: `0x${n.toString(16).padStart(64, "0")}`, x402Version: 1, scheme: "exact" } : n % 4 === 1 ? { status: "pending", network: "base-sepolia" } : n % 9 === 2 ? { status: "failed" } : undefined;
  let n = 0;
  const writes: Promise<unknown>[] = [];
  for (let time = NOW - 40 * DAY; time <= NOW; time += HOUR) {
    for (const [s, symbol] of SYMBOLS.entries()) {
      n++;
      const at = time + s * 1000 + (n % 7) * 61_000;
      if (at > NOW) continue;
      const model = MODELS[n % 3]!;
      const kind = n % 10;
      const id = `sched:${symbol}:job-${n}`;
      const cost = kind === 0 || kind === 1 ? 0 : 1_000 + ((n * 7919) % 90_000);
      const record: DecisionRecord = {
        id,
        time: at,
        symbol,
        trigger: n % 13 === 0 ? "chat" : "schedule",
        model: kind === 1 ? "offline-engine" : model,
        costMicro: cost,
        latencyMs: 300 + (n % 50) * 17,
        outcome: kind === 0 ? "skipped" : kind === 2 ? "failed" : kind === 3 ? "refused" : kind === 4 ? "order" : "no-order",
        ...(kind === 4 ? { action: "buy" as const, sizePct: 5, confidence: 0.7, order: { id: `o-${n}`, side: "buy" as const, qty: 0.01, avgPrice: 60_000, fee: 0.6, status: "filled" as const } } : {}),
        reasons: ["rsi oversold", "trend up"],
        indicators: { price: 60_000 + n, rsi: 30 + (n % 40) },
        attempts: kind === 0 ? [] : [{ model, ok: kind !== 2 && kind !== 5, latencyMs: 250 + (n % 30) * 11, costMicro: cost }, ...(kind === 5 ? [{ model: MODELS[(n + 1) % 3]!, ok: true, latencyMs: 400, costMicro: 0 }] : [])],
        ...(kind === 1 ? { freeBecause: "budget" as const } : {}),
        ...(kind === 6 ? { saver: "cache" as const, savedMicro: 50_000 } : {}),
      };
      out.decisions.push(record);
      writes.push(ledger.put(record));
      if (cost > 0) {
        const r = receipt(n);
        const charge: ChargeRecord = { decisionId: `${id}:0`, time: at + 5, model, costMicro: cost, ...(r ? { receipt: r } : {}) };
        out.charges.push(charge);
        writes.push(ledger.charge(charge));
        if (kind === 5) {
          const second: ChargeRecord = { decisionId: `${id}:1`, time: at + 9, model: MODELS[(n + 1) % 3]!, costMicro: 777 };
          out.charges.push(second);
          writes.push(ledger.charge(second));
        }
      }
      if (writes.length > 500) await Promise.all(writes.splice(0));
    }
  }
  await Promise.all(writes);
  return out;
}

/** What the report, the chart and the month's payments show now. */
async function views(app: TestApp) {
  const ledger = app.app.services.ledger;
  const monthStart = Date.UTC(2026, 10, 1);
  return {
    report: (await app.run("/report")).text,
    chart: spendSeries(await ledger.charges(NOW - 14 * DAY, NOW), NOW, 14),
    lastMonthSpend: (await ledger.charges(Date.UTC(2026, 9, 1), monthStart - 1)).reduce((s, c) => s + c.costMicro, 0),
    monthPayments: paymentFigures(await ledger.charges(monthStart, NOW)),
    // Wholly rolled up: its latest links come from the aggregates.
    lastMonthPayments: paymentFigures(await ledger.charges(Date.UTC(2026, 9, 1), monthStart - 1)),
  };
}

const archived = (lines: ArchiveLine[], kind: ArchiveLine["kind"]) => lines.filter((l) => l.kind === kind).map((l) => l.record);
const byTime = <T extends { time: number }>(xs: T[]) => [...xs].sort((a, b) => a.time - b.time || JSON.stringify(a).localeCompare(JSON.stringify(b)));

async function readArchive(archive: JsonlArchive): Promise<ArchiveLine[]> {
  return (await Promise.all(["2026-10", "2026-11"].map((m) => archive.read(m)))).flat();
}

describe("ledger rollup", () => {
  it("keeps /report, the cost chart and the month's payments identical, and archives every rolled-up entry", async () => {
    t = await startTestApp(testConfig());
    t.clock.now = NOW;
    const ledger = t.app.services.ledger;
    const seeded = await seed(ledger);
    const before = await views(t);
    expect(before.report).toMatch(/This month: \$\d+\.\d{4} of \$100\.00/);
    expect(before.monthPayments.settled).toBeGreaterThan(100);

    const archive = new JsonlArchive(dir);
    const rollup = new LedgerRollup(t.app.redis, archive);
    const result = await runLedgerRollup({ services: { clock: () => NOW }, rollup, retentionDays: RETENTION, log: { info: () => {} } });
    const cutoff = retentionCutoff(NOW, RETENTION);
    expect(cutoff).toBe(Date.UTC(2026, 10, 19));
    const old = { decisions: seeded.decisions.filter((d) => d.time < cutoff), charges: seeded.charges.filter((c) => c.time < cutoff) };
    expect(result.days[0]).toBe(dayKey(NOW - 40 * DAY));
    expect(result.days.at(-1)).toBe("2026-11-18");
    expect([result.decisions, result.charges]).toEqual([old.decisions.length, old.charges.length]);

    // Gone from Redis in detail, kept in the archive whole.
    expect(await ledger.decisions(0, cutoff - 1)).toEqual([]);
    expect(await t.app.redis.zcount("ledger:charges", "-inf", `(${cutoff}`)).toBe(0);
    expect(await t.app.redis.exists(`ledger:charged:${old.charges[0]!.decisionId}`)).toBe(0);
    expect(await ledger.decisions(cutoff, NOW)).toHaveLength(seeded.decisions.length - old.decisions.length);
    const lines = await readArchive(archive);
    expect(lines).toHaveLength(old.decisions.length + old.charges.length);
    expect(byTime(archived(lines, "decision") as DecisionRecord[])).toEqual(byTime(old.decisions));
    expect(byTime(archived(lines, "charge") as ChargeRecord[])).toEqual(byTime(old.charges));
    for (const l of lines) expect(l.day).toBe(dayKey((l.record as { time: number }).time));
    expect(readdirSync(dir).sort()).toEqual(["archive-id", "ledger-2026-10.jsonl", "ledger-2026-11.jsonl"]);

    const after = await views(t);
    expect(after).toEqual(before);

    // A second run the same day finds nothing to do and changes nothing, in Redis or on disk.
    const redisBefore = await snapshot(t.url);
    const files = readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8"));
    expect(await rollup.run(cutoff)).toEqual({ days: [], decisions: 0, charges: 0 });
    expect(await snapshot(t.url)).toEqual(redisBefore);
    expect(readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8"))).toEqual(files);
  });

  it("loses nothing and counts nothing twice when it dies between the archive and Redis", async () => {
    t = await startTestApp(testConfig());
    t.clock.now = NOW;
    const ledger = t.app.services.ledger;
    const seeded = await seed(ledger);
    const before = await views(t);
    const archive = new JsonlArchive(dir);
    const cutoff = retentionCutoff(NOW, RETENTION);

    // The process dies right after the first day's lines are synced, before its MULTI.
    const dying: LedgerArchive = {
      append: async (month, lines) => {
        await archive.append(month, lines);
        throw new Error("process killed");
      },
    };
    await expect(new LedgerRollup(t.app.redis, dying).run(cutoff)).rejects.toThrow("process killed");
    expect(await views(t)).toEqual(before);

    await new LedgerRollup(t.app.redis, archive).run(cutoff);
    expect(await views(t)).toEqual(before);
    const lines = await readArchive(archive);
    const firstDay = dayKey(NOW - 40 * DAY);
    const old = seeded.decisions.filter((d) => d.time < cutoff).length + seeded.charges.filter((c) => c.time < cutoff).length;
    const twice = lines.filter((l) => l.day === firstDay).length / 2;
    expect(lines).toHaveLength(old + twice);
    expect(new Set(lines.map((l) => JSON.stringify(l))).size).toBe(old);
  });

  it("merges entries that reach an already rolled-up day into its aggregate", async () => {
    t = await startTestApp(testConfig());
    t.clock.now = NOW;
    const ledger = t.app.services.ledger;
    await seed(ledger);
    const archive = new JsonlArchive(dir);
    const rollup = new LedgerRollup(t.app.redis, archive);
    const cutoff = retentionCutoff(NOW, RETENTION);
    await rollup.run(cutoff);
    const day = Date.UTC(2026, 10, 10);
    const spent = async () => (await ledger.charges(day, day + DAY - 1)).reduce((s, c) => s + c.costMicro, 0);
    const was = await spent();
    expect(was).toBeGreaterThan(0);

    const late: ChargeRecord = { decisionId: "late:0", time: day + 12 * HOUR, model: "openai/gpt-4o", costMicro: 12_345 };
    await ledger.charge(late);
    expect(await spent()).toBe(was + 12_345);
    const result = await rollup.run(cutoff);
    expect(result).toEqual({ days: ["2026-11-10"], decisions: 0, charges: 1 });
    expect(await spent()).toBe(was + 12_345);
    const [agg] = await ledger.rollups(day, day);
    expect(agg!.charges.perModel["openai/gpt-4o"]!.costMicro).toBe((await ledger.charges(day, day)).find((c) => c.model === "openai/gpt-4o")!.costMicro);
    expect((await archive.read(monthKey(day))).filter((l) => l.kind === "charge" && (l.record as ChargeRecord).decisionId === "late:0")).toHaveLength(1);
  });
});

describe("one archive for every worker", () => {
  it("rolls nothing up on a worker whose archive is not the one earlier rollups wrote to, so no month is split", async () => {
    t = await startTestApp(testConfig());
    t.clock.now = NOW;
    const ledger = t.app.services.ledger;
    await seed(ledger);
    const cutoff = retentionCutoff(NOW, RETENTION);
    const shared = new JsonlArchive(join(dir, "shared"));
    // The first rollup names the archive; a day rolled up there.
    await new LedgerRollup(t.app.redis, shared).run(Date.UTC(2026, 9, 20));
    const before = await snapshot(t.url);

    // A worker in another container, with its own folder: it must not start a second archive.
    const own = new JsonlArchive(join(dir, "own"));
    await expect(new LedgerRollup(t.app.redis, own).run(cutoff)).rejects.toThrow(/is not the one earlier rollups wrote to.*LEDGER_ARCHIVE_DIR/);
    expect(await snapshot(t.url)).toEqual(before);
    expect(readdirSync(join(dir, "own"))).toEqual(["archive-id"]);

    // A worker that mounts the shared archive (another JsonlArchive on the same folder) goes on.
    const result = await new LedgerRollup(t.app.redis, new JsonlArchive(join(dir, "shared"))).run(cutoff);
    expect(result.days.length).toBeGreaterThan(0);
    expect(await ledger.decisions(0, cutoff - 1)).toEqual([]);
  });
});

describe("retention settings", () => {
  it("reads AUDIT_TTL_DAYS, LEDGER_RETENTION_DAYS and LEDGER_ARCHIVE_DIR, and refuses a retention below one day", () => {
    const ok = loadConfig({ AUDIT_TTL_DAYS: "0.5", LEDGER_RETENTION_DAYS: "60", LEDGER_ARCHIVE_DIR: "/var/lib/agent/archive" });
    expect(ok.ok && ok.config.retention).toEqual({ auditTtlMs: 12 * HOUR, ledgerDays: 60, archiveDir: "/var/lib/agent/archive" });
    const bad = loadConfig({ LEDGER_RETENTION_DAYS: "0" });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.message).toContain(`LEDGER_RETENTION_DAYS: expected a whole number between 1 and 3650, got "0"`);
    expect(() => retentionCutoff(NOW, 0)).toThrow(/at least 1/);
  });

  it("gives the agent's audit copy of a decision the configured TTL, and schedules the daily rollup", async () => {
    t = await startTestApp(testConfig((c) => (c.retention.auditTtlMs = DAY)));
    expect(await t.app.schedule()).toContainEqual(expect.objectContaining({ name: "ledger rollup", every: "daily at 00:15 UTC" }));
    expect(await t.app.schedule()).toContainEqual(expect.objectContaining({ name: "daily cost report", every: "daily at 20:00 UTC" }));
    await t.run("/decide BTC");
    const ttls = async () => {
      const out: number[] = [];
      for (const key of await t!.app.redis.keys("*")) out.push(await t!.app.redis.ttl(key));
      return out.filter((s) => s > 0);
    };
    // The audit copy is written when the decision's run ends, possibly just after the reply.
    const seen = await waitFor("the audit copy", async () => {
      const s = await ttls();
      return s.some((x) => x > DAY / 1000 - 60 && x <= DAY / 1000) && s;
    });
    // Nothing the agent wrote kept the 3-day default.
    expect(seen.filter((x) => x > DAY / 1000 && x <= 3 * DAY / 1000)).toEqual([]);
  });
});
