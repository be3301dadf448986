// The console at a terminal: completion, colour and history as plain functions; the console with
// readline in terminal mode on stand-in TTY streams (a log line written above the prompt, which is
// redrawn with what was typed); and the product itself in a real pseudo-terminal (util-linux
// `script`): a prompt, Tab completion, coloured replies, Up for the last command, history kept in
// DATA_DIR, Ctrl-D to stop. Piped, the product's output carries no escape code and no prompt.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsoleChat, PROMPT } from "../src/chat/console/consoleChat.js";
import { colourWanted, complete, historyFromFile, historyToFile, paint } from "../src/chat/console/terminal.js";
import { inert } from "../src/domain/inertText.js";
import { COMMANDS } from "../commands/registry.js";
import { freshRedisUrl, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { runProduct } from "./support/product.js";

const ESC = "\x1b";
/** What a terminal shows once its cursor moves are done (colours and cursor moves taken out). */
const shown = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
const source = { commands: COMMANDS, symbols: () => ["BTC/USDT", "ETH/USDT", "DOGE/USDT"] };

describe("completion", () => {
  it("completes command names, with or without the slash", () => {
    expect(complete("/de", source)).toEqual([["/decide"], "/de"]);
    expect(complete("dec", source)).toEqual([["/decide"], "dec"]);
    // Every command that starts so, and nothing else: the list follows the registry.
    expect(complete("/p", source)[0]).toEqual(COMMANDS.map((c) => `/${c.name}`).filter((n) => n.startsWith("/p")).sort());
    expect(complete("/po", source)[0]).toEqual(["/positions"]);
    // Nothing matches: every command is offered, and the word is left as typed.
    expect(complete("/zz", source)[0]).toContain("/help");
  });

  it("completes symbols, choices, limit names and the literal words of a usage", () => {
    expect(complete("/decide ", source)).toEqual([["BTC", "DOGE", "ETH"], ""]);
    expect(complete("/decide d", source)).toEqual([["DOGE"], "d"]);
    expect(complete("/trade ", source)[0]).toEqual(["buy", "sell"]);
    expect(complete("/trade buy E", source)).toEqual([["ETH"], "E"]);
    expect(complete("/limits max_p", source)[0]).toEqual(["max_position", "max_positions"]);
    expect(complete("/model a", source)[0]).toEqual(["auto"]);
    expect(complete("/pause ", source)[0]).toEqual(["all"]);
    expect(complete("/session r", source)[0]).toEqual(["revoke"]);
    expect(complete("/nosuch x", source)[0]).toEqual([]);
  });
});

describe("colour", () => {
  it("follows NO_COLOR and FORCE_COLOR, else the terminal", () => {
    expect(colourWanted({}, true)).toBe(true);
    expect(colourWanted({}, false)).toBe(false);
    expect(colourWanted({ NO_COLOR: "1" }, true)).toBe(false);
    expect(colourWanted({ NO_COLOR: "" }, true)).toBe(true);
    expect(colourWanted({ FORCE_COLOR: "1" }, false)).toBe(true);
    expect(colourWanted({ FORCE_COLOR: "0" }, true)).toBe(false);
    expect(colourWanted({ NO_COLOR: "1", FORCE_COLOR: "1" }, true)).toBe(false);
  });

  it("colours BUY green and SELL red, errors red, alerts yellow, and adds nothing else", () => {
    expect(paint("Order: BUY 0.1 BTC")).toBe(`Order: ${ESC}[32m${ESC}[1mBUY${ESC}[0m 0.1 BTC`);
    expect(paint("SELLING is not SELL")).toBe(`SELLING is not ${ESC}[31m${ESC}[1mSELL${ESC}[0m`);
    expect(paint("Unknown symbol", "error")).toBe(`${ESC}[1m${ESC}[31mUnknown symbol${ESC}[0m`);
    expect(paint("[ALERT] low", "alert")).toBe(`${ESC}[33m[ALERT] low${ESC}[0m`);
    expect(paint("plain text")).toBe("plain text");
    // Text from outside is made inert first: the only escapes left are the colours.
    const hostile = paint(inert(`${ESC}]0;pwned\x07 BUY ${ESC}[2J`), "alert");
    expect(hostile.replace(/\x1b\[[0-9;]*m/g, "")).not.toContain(ESC);
  });
});

describe("history file", () => {
  it("is oldest first on disk, newest first in readline, and bounded", () => {
    const lines = Array.from({ length: 12 }, (_, i) => `/audit ${i}`);
    const history = historyFromFile(lines.join("\n") + "\n\n", 10);
    expect(history).toEqual(lines.slice(2).reverse());
    expect(historyToFile(history, 5)).toBe(lines.slice(-5).join("\n") + "\n");
    expect(historyToFile([], 5)).toBe("");
  });
});

/** A stream that says it is a terminal, as process.stdout does at one. */
const tty = <T extends object>(s: T) => Object.assign(s, { isTTY: true, columns: 120, rows: 40 });

describe("the console at a terminal (in-process)", () => {
  let t: TestApp;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "console-tty-"));
    t = await startTestApp(testConfig((c) => (c.redis.dataDir = dataDir)));
  });
  afterAll(async () => {
    await t.app.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("prompts, writes a log line above the prompt and redraws what was typed, and keeps the history", async () => {
    writeFileSync(join(dataDir, "console_history"), "/status\n");
    const input = tty(new PassThrough());
    const output = tty(new PassThrough());
    const logs = tty(new PassThrough());
    let out = "";
    output.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const ownWrite = logs.write;
    let ended = false;
    const chat = new ConsoleChat(t.app, { input, output, logs, env: {}, onEnd: () => (ended = true) }, "op");
    await chat.start();
    await waitFor("the prompt", async () => shown(out).endsWith(PROMPT));
    input.write("/who");
    await waitFor("the typed text", async () => shown(out).endsWith("/who"));
    const before = out.length;
    logs.write("a log line\n");
    const after = out.slice(before);
    // Cleared, (the log goes to its own stream), then the prompt redrawn with the typed text.
    expect(after.startsWith(`${ESC}[2K${ESC}[1G`)).toBe(true);
    expect(after).toContain(`${PROMPT}/who`);
    input.write("ami\r");
    await waitFor("the reply", async () => out.includes("You are op (console user console)"));
    // Notices: an alert in yellow, a trade with its SELL in red, each written above the prompt.
    await chat.deliver({ kind: "alert", text: "USDC for model calls is low: $0.80" });
    await chat.deliver({ kind: "trade", text: "Stop loss: SELL 0.1 BTC" });
    expect(out).toContain(`${ESC}[2K${ESC}[1G${ESC}[33m[ALERT] USDC for model calls is low: $0.80${ESC}[0m`);
    expect(out).toContain(`[TRADE] Stop loss: ${ESC}[31m${ESC}[1mSELL${ESC}[0m 0.1 BTC`);
    // Up brings the last line back.
    input.write(`${ESC}[A`);
    await waitFor("the recalled line", async () => shown(out).endsWith("/whoami"));
    input.write("\x15\r");
    await waitFor("the history file", async () => readFileSync(join(dataDir, "console_history"), "utf8") === "/status\n/whoami\n");
    input.write("\x04");
    await waitFor("the end of input", async () => ended);
    // Closed: the log stream has its own write back.
    expect(logs.write).toBe(ownWrite);
  });
});

/** The product in a pseudo-terminal (util-linux script), typed at like a person. */
function inPty(env: Record<string, string>) {
  const child = spawn("script", ["-q", "-e", "-c", `${process.execPath} --import tsx src/main.ts`, "/dev/null"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", TERM: "xterm-256color", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const io = { out: "" };
  child.stdout.on("data", (d: Buffer) => (io.out += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (io.out += d.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { child, io, exited, type: (s: string) => child.stdin.write(s) };
}

// util-linux `script` gives the pseudo-terminal (Debian and Ubuntu install it with bsdutils).
const hasScript = spawnSync("script", ["--version"]).status === 0;

describe.skipIf(!hasScript)("the product in a pseudo-terminal (util-linux script)", () => {
  it("has a prompt, Tab completion, colour, Up for history, and stops on Ctrl-D", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "console-pty-"));
    const p = inPty({ REDIS_URL: await freshRedisUrl(), REDIS_AUTOSTART: "false", DATA_DIR: dataDir });
    try {
      await waitFor("the prompt after the banner", async () => /SIMULATED TRADING[\s\S]*> $/.test(shown(p.io.out)), 60_000);
      // Tab in a keystroke of its own: readline takes a Tab pasted with other text as text.
      p.type("/he");
      await waitFor("/he echoed", async () => shown(p.io.out).endsWith("/he"));
      p.type("\t");
      await waitFor("/he completed", async () => shown(p.io.out).endsWith("/help"));
      p.type("\r");
      await waitFor("the command list", async () => p.io.out.includes("Commands:"));
      p.type("/decide d");
      await waitFor("/decide d echoed", async () => shown(p.io.out).endsWith("/decide d"));
      p.type("\t");
      await waitFor("the symbol completed", async () => shown(p.io.out).endsWith("/decide DOGE"));
      p.type("\x15/decide NOPE\r");
      await waitFor("the refusal", async () => p.io.out.includes('Unknown symbol "NOPE"'));
      expect(p.io.out).toContain(`${ESC}[1m${ESC}[31mUnknown symbol "NOPE"`);
      const mark = p.io.out.length;
      p.type(`${ESC}[A`);
      await waitFor("the last command recalled", async () => shown(p.io.out.slice(mark)).endsWith("/decide NOPE"));
      p.type("\x15\x04");
      expect(await p.exited).toBe(0);
      expect(readFileSync(join(dataDir, "console_history"), "utf8")).toBe("/help\n/decide NOPE\n");
    } catch (err) {
      throw new Error(`${(err as Error).message}; the terminal showed: ${JSON.stringify(p.io.out.slice(-1500))}`);
    } finally {
      p.child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  it("with NO_COLOR keeps the prompt but adds no colour; Ctrl-C clears a line, then stops", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "console-pty-"));
    const p = inPty({ REDIS_URL: await freshRedisUrl(), REDIS_AUTOSTART: "false", DATA_DIR: dataDir, NO_COLOR: "1" });
    try {
      await waitFor("the prompt", async () => /SIMULATED TRADING[\s\S]*> $/.test(shown(p.io.out)), 60_000);
      p.type("/decide NOPE\r");
      await waitFor("the refusal", async () => p.io.out.includes('Unknown symbol "NOPE"'));
      expect(p.io.out.match(/.{0,60}\x1b\[[0-9;]*m.{0,60}/g) ?? []).toEqual([]);
      // Ctrl-C clears a typed line; on an empty line it stops the agent as the signal does.
      p.type("/stat");
      await waitFor("/stat echoed", async () => shown(p.io.out).endsWith("> /stat"));
      p.type("\x03");
      await waitFor("the line cleared", async () => shown(p.io.out).endsWith("> "));
      p.type("\x03");
      expect(await p.exited).toBe(0);
      expect(p.io.out).toContain("Stopping (Ctrl-C)");
    } finally {
      p.child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe("the product piped", () => {
  it("writes plain lines: no escape code, no prompt", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "console-pipe-"));
    try {
      const { code, out, err } = await runProduct("/help\n/decide NOPE\n/trade buy BTC 20\n", { REDIS_URL: await freshRedisUrl(), REDIS_AUTOSTART: "false", DATA_DIR: dataDir });
      expect(code, err).toBe(0);
      expect(out).toContain('Unknown symbol "NOPE"');
      expect(out).toMatch(/BUY|Bought|bought/);
      expect(out).not.toContain(ESC);
      expect(err).not.toContain(ESC);
      expect(out.split("\n").some((l) => l.startsWith(PROMPT))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
