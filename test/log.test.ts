// The log on pino: levels, JSON and pretty lines, and no secret in either.
import { describe, expect, it } from "vitest";
import { loadConfig, redactSecrets } from "../src/config/config.js";
import { createLog } from "../src/log.js";

const TOKEN = "123456789:AAH-real-looking_bot-token-for-this-test";
const KEY = "0x" + "4c".repeat(32);

function configured() {
  const loaded = loadConfig({ TELEGRAM_BOT_TOKEN: TOKEN, X402_PRIVATE_KEY: KEY });
  if (!loaded.ok) throw new Error(loaded.message);
  return loaded.config;
}

function capture(pretty: boolean, level: "debug" | "info" = "info") {
  const config = configured();
  const lines: string[] = [];
  const log = createLog(level, (s) => redactSecrets(s, config), (l) => lines.push(l), { pretty });
  return { log, lines };
}

/** Everything a secret could leak through: a message, an error, a string, structured detail. */
function leakEverything(log: ReturnType<typeof capture>["log"]) {
  log.error(`telegram failed calling https://api.telegram.org/bot${TOKEN}/getMe`, new Error(`401 for bot${TOKEN}; signing with ${KEY.slice(2)}`));
  log.warn("router", `key ${KEY} rejected`);
  log.info("request", { url: "/v1/chat", token: "tok-abc-structured-1", headers: { authorization: "Bearer sk-structured-2" }, nested: { apiKey: "sk-structured-3" } });
}

describe("log", () => {
  it("writes one JSON object a line, with level, time and message, and no secret", () => {
    const { log, lines } = capture(false);
    leakEverything(log);
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.level)).toEqual(["error", "warn", "info"]);
    expect(parsed[0]!.msg).toBe("telegram failed calling https://api.telegram.org/bot[redacted]/getMe");
    expect(parsed[0]!.detail).toEqual({ type: "Error", message: "401 for bot[redacted]; signing with [redacted]" });
    expect(Date.parse(String(parsed[0]!.time))).toBeGreaterThan(0);
    // Known secret fields are censored by pino's path redaction even when no rule knows the value.
    expect(parsed[2]!.detail).toEqual({ url: "/v1/chat", token: "[redacted]", headers: { authorization: "[redacted]" }, nested: { apiKey: "[redacted]" } });
    const all = lines.join("\n");
    for (const secret of [TOKEN, KEY, KEY.slice(2), "tok-abc-structured-1", "sk-structured-2", "sk-structured-3"]) expect(all).not.toContain(secret);
  });

  it("writes readable lines in pretty mode, and no secret there either", () => {
    const { log, lines } = capture(true);
    leakEverything(log);
    const all = lines.join("\n");
    expect(all).toMatch(/ERROR.*telegram failed calling https:\/\/api\.telegram\.org\/bot\[redacted\]\/getMe/);
    expect(all).toMatch(/WARN.*router/);
    expect(() => JSON.parse(lines[0]!)).toThrow();
    for (const secret of [TOKEN, KEY, KEY.slice(2), "tok-abc-structured-1", "sk-structured-2", "sk-structured-3"]) expect(all).not.toContain(secret);
  });

  it("leaves out levels below the configured one, and shows a stack only when debugging", () => {
    const quiet = capture(false);
    quiet.log.debug("hidden");
    quiet.log.error("boom", new Error("bad"));
    expect(quiet.lines).toHaveLength(1);
    expect(quiet.lines[0]).not.toContain("stack");
    const loud = capture(false, "debug");
    loud.log.debug("shown");
    loud.log.error("boom", new Error("bad"));
    expect(loud.lines).toHaveLength(2);
    expect(JSON.parse(loud.lines[1]!).detail.stack).toMatch(/at /);
  });
});
