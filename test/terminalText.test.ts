// Text from outside is shown, never obeyed by a terminal: a stranger on Telegram puts escape
// sequences in their display name, their group's title and their command; the console admin's
// /audit shows them as plain characters, and so do the logs.
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ConsoleChat } from "../src/chat/console/consoleChat.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { TelegramChat } from "../src/chat/telegram/telegramChat.js";
import { inert } from "../src/domain/inertText.js";
import { createLog } from "../src/log.js";
import { startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { TelegramStandIn, type TgChat, type TgUser } from "./support/telegramStandIn.js";

const ESC = "\x1b";
const BEL = "\x07";
// What the measured attack did: set the window title, clear the screen, plant an OSC 8 link, and
// go up a line and overwrite it with a fake status (CSI and OSC in their 7-bit and 8-bit forms).
const TITLE = `${ESC}]0;pwned${BEL}`;
const CLEAR = `${ESC}[2J${ESC}[H`;
const LINK = `${ESC}]8;;https://evil.example/${ESC}\\click${ESC}]8;;${ESC}\\`;
const OVERWRITE = `${ESC}[1A\r${ESC}[2KTrading: running, audit clean`;
const C1_CSI = "\u009b2J";
const BIDI = "\u202etxt.exe";

/** Any character a terminal would act on (newlines between lines aside). */
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe("inert", () => {
  it("makes every control character visible and leaves the rest alone", () => {
    expect(inert(`${TITLE}Mal`)).toBe("\\x1b]0;pwned\\x07Mal");
    expect(inert(OVERWRITE)).toBe("\\x1b[1A\\x0d\\x1b[2KTrading: running, audit clean");
    expect(inert(C1_CSI)).toBe("\\x9b2J");
    expect(inert(BIDI)).toBe("\\u202etxt.exe");
    expect(inert("a\nb\tc\x7f")).toBe("a\\x0ab\\x09c\\x7f");
    expect(inert("a\nb\tc\r", { lines: true })).toBe("a\nb\tc\\x0d");
    expect(inert("BTC/USDT: BUY 5% · RSI 41.2 — Größe ✓ 📈")).toBe("BTC/USDT: BUY 5% · RSI 41.2 — Größe ✓ 📈");
  });
});

describe("an escape sequence from a Telegram stranger", () => {
  let t: TestApp | undefined;
  let tg: TelegramStandIn | undefined;
  let telegram: TelegramChat | undefined;
  afterEach(async () => {
    await telegram?.stop();
    await t?.app.stop();
    await tg?.stop();
    telegram = undefined;
    t = undefined;
    tg = undefined;
  });

  it("is shown harmlessly by /audit on the console", async () => {
    tg = await new TelegramStandIn().start();
    t = await startTestApp(
      testConfig((c) => {
        c.chat.telegram.token = tg!.token;
        c.chat.telegram.apiUrl = tg!.apiRoot;
        c.chat.telegram.allowedUsers = [{ id: "101", role: "admin" }];
      }),
    );
    const open = new RateLimiter(() => ({ burst: 1e9, perSecond: 1e9 }), { burst: 1e9, perSecond: 1e9 });
    telegram = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, limiter: open });
    await telegram.start();

    // Not on the allow-list; no username, so the display name is what the audit log keeps.
    const mallory: TgUser = { id: 666, is_bot: false, first_name: `${TITLE}${CLEAR}Mal ${LINK}${C1_CSI}` };
    const group: TgChat = { id: -1009876543210, type: "supergroup", title: `team${BIDI}` };
    const { messageId } = tg.userSends(mallory, group, `/pause ${OVERWRITE}`);
    await waitFor("the refusal", async () => tg!.sent(group.id).some((m) => m.reply_to === messageId));
    await telegram.idle();

    const input = new PassThrough();
    const output = new PassThrough();
    let out = "";
    output.on("data", (d: Buffer) => (out += d.toString("utf8")));
    await new ConsoleChat(t.app, { input, output, onEnd: () => {} }, "op").start();
    input.write("/audit 5\n");
    await waitFor("the audit log on the console", async () => out.includes("not on the allow-list"));
    input.end();

    expect(out).not.toMatch(RAW_CONTROL);
    const line = out.split("\n").find((l) => l.includes("(telegram 666, none)"))!;
    // One line, with what was sent visible in it, the fake status inside it and not on a line of its own.
    expect(line).toContain("\\x1b]0;pwned\\x07\\x1b[2J\\x1b[HMal \\x1b]8;;https://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\\\x9b2J");
    expect(line).toContain('in telegram supergroup "team\\u202etxt.exe" (-1009876543210)');
    expect(line).toContain("/pause \\x1b[1A\\x0d\\x1b[2KTrading: running, audit clean → refused: not on the allow-list");
    expect(out.split("\n").filter((l) => l.startsWith("Trading: running"))).toEqual([]);
  });

  it("is written harmlessly to the log, pretty or JSON", () => {
    const hostile = `${TITLE}${CLEAR}Mal ${LINK}${C1_CSI}${BIDI}`;
    for (const pretty of [true, false]) {
      const lines: string[] = [];
      const log = createLog("info", (s) => s, (l) => lines.push(l), { pretty });
      log.warn(`Telegram: refused /pause from ${hostile}`);
      log.error("command failed", new Error(`exchange said ${OVERWRITE}`));
      log.info("detail", { user: hostile, reasons: [hostile] });
      log.warn("text detail", hostile);
      expect(lines).toHaveLength(4);
      for (const l of lines) expect(l, `pretty=${pretty}`).not.toMatch(RAW_CONTROL);
      // Visible: a backslash, then the escape's name (JSON doubles the backslash).
      expect(lines.join("\n")).toMatch(/\\+x1b\]0;pwned\\+x07/);
      expect(lines.join("\n")).toContain("Trading: running, audit clean");
    }
  });
});
