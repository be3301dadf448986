import { Redis } from "ioredis";
import { buildApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import type { ChatUser, CommandReply, Role } from "../../commands/types.js";
import { handleCommand } from "../../commands/registry.js";
import type { Notice, NoticeSink } from "../../src/chat/notifier.js";
import { scriptedModel, type ModelV2 } from "../../src/agent/scriptedModel.js";
import { ModelLayer } from "../../src/models/modelLayer.js";

/** A Redis URL with a database of its own for this test file, flushed. */
export async function freshRedisUrl(): Promise<string> {
  const base = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
  const db = 8 + (worker % 8);
  const url = `${base}/${db}`;
  const r = new Redis(url);
  await r.flushdb();
  await r.quit();
  return url;
}

export function testConfig(edit: (c: Config) => void = () => {}): Config {
  const loaded = loadConfig({});
  if (!loaded.ok) throw new Error(loaded.message);
  const config = loaded.config;
  config.chat.console = false;
  config.logLevel = "error";
  // Tests that watch a scheduled decision want the first one at once; test/control.test.ts checks the default (one interval).
  config.schedule.firstDecision = "now";
  edit(config);
  return config;
}

/** Collects every notice, as a chat platform would receive them. */
export class CapturedNotices implements NoticeSink {
  readonly name = "captured";
  readonly notices: Notice[] = [];
  async deliver(n: Notice): Promise<void> {
    this.notices.push(n);
  }
  of(kind: Notice["kind"]): Notice[] {
    return this.notices.filter((n) => n.kind === kind);
  }
}

/**
 * A model that always answers with the given reply, served through the router's code path. Like a
 * gateway billing an account, it reports what the call cost (`estimateUsdc`) in its reply.
 */
export function scriptedModels(reply: () => string, estimateUsdc = 0.05, id = "test/scripted"): ModelLayer {
  const factory = (modelId: string): ModelV2 => {
    const model = scriptedModel(modelId, reply);
    return {
      ...model,
      doStream: async (o) => {
        const { stream, ...rest } = await model.doStream(o);
        const cost = new TransformStream<StreamPart, StreamPart>({
          transform: (part, c) => c.enqueue(part.type === "finish" ? { ...part, providerMetadata: { openrouter: { usage: { cost: estimateUsdc } } } } : part),
        });
        return { ...rest, stream: stream.pipeThrough(cost) };
      },
    };
  };
  return new ModelLayer({ factory, primary: id, fallbacks: [], estimateUsdc });
}
type StreamPart = Awaited<ReturnType<ModelV2["doStream"]>>["stream"] extends ReadableStream<infer P> ? P : never;

export const buyReply = (sizePct: number, extra: Record<string, unknown> = {}) =>
  `<response><reasoning>test</reasoning><action_call name="ExecuteTrade">${JSON.stringify({ side: "buy", sizePct, confidence: 0.8, reasons: ["scripted buy"], ...extra })}</action_call></response>`;
export const sellReply = (sizePct: number) =>
  `<response><action_call name="ExecuteTrade">${JSON.stringify({ side: "sell", sizePct, confidence: 0.8, reasons: ["scripted sell"] })}</action_call></response>`;

export interface TestApp {
  app: App;
  notices: CapturedNotices;
  url: string;
  clock: { now: number; advance(ms: number): void };
  run(text: string, role?: Role): Promise<CommandReply>;
}

export async function startTestApp(config: Config, opts: AppOptions & { url?: string } = {}): Promise<TestApp> {
  const url = opts.url ?? (await freshRedisUrl());
  const clock = { now: Date.UTC(2026, 10, 22, 12, 0, 0), advance(ms: number) { this.now += ms; } };
  const app = await buildApp(config, url, { clock: () => clock.now, queuePrefix: `bull-test`, ...opts });
  const notices = new CapturedNotices();
  app.notifier.add(notices);
  const run = (text: string, role: Role = "admin") => {
    const user: ChatUser = { id: `u-${role}`, name: `tester-${role}`, platform: "console", role };
    return handleCommand(text, { user, app }, app.redact);
  };
  return { app, notices, url, clock, run };
}

/** Every key and value in the database, to prove a command changed nothing. */
export async function snapshot(url: string): Promise<Record<string, string>> {
  const r = new Redis(url);
  const out: Record<string, string> = {};
  for (const key of (await r.keys("*")).sort()) {
    const type = await r.type(key);
    if (type === "string") out[key] = (await r.get(key)) ?? "";
    else if (type === "hash") out[key] = JSON.stringify(await r.hgetall(key));
    else if (type === "zset") out[key] = JSON.stringify(await r.zrange(key, "0", "-1", "WITHSCORES"));
    else if (type === "list") out[key] = JSON.stringify(await r.lrange(key, 0, -1));
    else if (type === "set") out[key] = JSON.stringify((await r.smembers(key)).sort());
    else out[key] = type;
  }
  await r.quit();
  return out;
}

/** Like snapshot, less the audit log: a refused or failed command is audited and changes nothing else. */
export async function stateSnapshot(url: string): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await snapshot(url)).filter(([key]) => !key.startsWith("audit:")));
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
