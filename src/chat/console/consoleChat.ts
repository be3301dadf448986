import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { clearLine, createInterface, cursorTo, type Interface } from "node:readline";
import type { Writable } from "node:stream";
import { inert } from "../../domain/inertText.js";
import type { ChatUser, CommandReply, PlatformHealth, ReplyFile, ReplyImage } from "../types.js";
import type { ChatHost } from "../host.js";
import type { Notice, NoticeKind } from "../notifier.js";
import type { ChatPlatform, PlatformIo } from "../platform.js";
import { colourWanted, complete, historyFromFile, historyToFile, paint, type Tone } from "./terminal.js";

const LABEL: Record<NoticeKind, string> = {
  trade: "TRADE",
  decision: "DECISION",
  alert: "ALERT",
  critical: "CRITICAL",
  report: "REPORT",
  error: "ERROR",
  info: "INFO",
};

export type ConsoleIo = NonNullable<PlatformIo["console"]>;

/** Lines kept in the history file and in memory. */
export const HISTORY_LINES = 500;
export const PROMPT = "> ";

const TONE: Partial<Record<NoticeKind, Tone>> = { alert: "alert", critical: "critical", error: "error", trade: "trade" };
const isTty = (s: unknown) => Boolean((s as { isTTY?: boolean }).isTTY);

/**
 * The console chat: commands typed on stdin, replies and notices on stdout. The person at the
 * console owns the process, so they are an admin. Input that ends (Ctrl-D, or a pipe that runs
 * dry) calls `onEnd` only after every reply in flight has been written. A terminal has no buttons
 * or pictures: a confirmation says which command answers it, and a chart is saved to a file.
 *
 * At a terminal (input and output both TTYs) it is readline with `terminal: true`: a prompt, line
 * editing, history (Up/Down, kept in DATA_DIR/console_history), Tab completion of commands, their
 * choices and symbols, and colour (NO_COLOR, FORCE_COLOR). Whatever else writes to the terminal
 * (the log on stderr, a notice) clears the prompt line first and redraws it after, with what was
 * being typed, so a log line never lands in the middle of a command. Piped, none of this: plain
 * lines in, plain lines out.
 */
export class ConsoleChat implements ChatPlatform {
  readonly name = "console";
  readonly user: ChatUser;
  private rl: Interface | undefined;
  private stopped = false;
  /** Replies in the order the lines were typed: one command at a time. */
  private queue: Promise<void> = Promise.resolve();
  private readonly interactive: boolean;
  private readonly colour: boolean;
  private readonly historyFile: string;
  /** The log stream's own write, while the console writes its lines above the prompt. */
  private logWrite: Writable["write"] | undefined;
  private closed = false;

  constructor(
    private readonly app: ChatHost,
    private readonly io: ConsoleIo,
    userName = process.env.USER ?? "console",
    private readonly chartDir = join(app.config.redis.dataDir, "charts"),
  ) {
    this.user = { id: "console", name: userName, platform: "console", role: "admin" };
    this.interactive = io.interactive ?? (isTty(io.input) && isTty(io.output));
    this.colour = colourWanted(io.env ?? {}, isTty(io.output));
    this.historyFile = join(app.config.redis.dataDir, "console_history");
  }

  /** Everything the console prints passes here: text from outside is shown, never obeyed by the terminal. */
  private write(text: string, tone: Tone = "reply"): void {
    let shown = inert(text, { lines: true });
    // Colours are added after inert(): they are ours, and nothing from outside can add one.
    if (this.colour) shown = paint(shown, tone);
    this.above(() => this.io.output.write(shown.endsWith("\n") ? shown : shown + "\n"));
  }

  /** Writes above the prompt: the prompt line is cleared, then redrawn with what was typed so far. */
  private above(write: () => void): void {
    const rl = this.rl;
    if (!this.interactive || !rl || this.closed) return void write();
    clearLine(this.io.output, 0);
    cursorTo(this.io.output, 0);
    write();
    rl.prompt(true);
  }

  private async saveImage(image: ReplyImage): Promise<string> {
    await mkdir(this.chartDir, { recursive: true });
    const stamp = new Date(this.app.services.clock()).toISOString().replace(/[-:]/g, "").slice(0, 15);
    const path = join(this.chartDir, `${stamp}-${image.name}`);
    await writeFile(path, image.png);
    return path;
  }

  /** A reply's file (an export), saved under the data dir beside the charts; its path. */
  private async saveFile(file: ReplyFile): Promise<string> {
    const dir = join(this.chartDir, "..", "exports");
    await mkdir(dir, { recursive: true });
    const stamp = new Date(this.app.services.clock()).toISOString().replace(/[-:]/g, "").slice(0, 15);
    // The name comes from our own command, but a path separator in it must never leave the folder.
    const path = join(dir, `${stamp}-${basename(file.name)}`);
    await writeFile(path, file.data);
    return path;
  }

  /** The text, then how to answer its buttons, then where its chart and files were saved. */
  private async render(reply: Pick<CommandReply, "text" | "image" | "confirmationId" | "files">, yes = "confirm", no = "cancel"): Promise<string> {
    const lines = [reply.text];
    if (reply.confirmationId) lines.push(`  → ${yes} with /confirm ${reply.confirmationId}, or ${no} with /cancel ${reply.confirmationId}`);
    if (reply.image) {
      try {
        lines.push(`  Chart: ${await this.saveImage(reply.image)} (${reply.image.alt})`);
      } catch (err) {
        lines.push(`  (chart not saved: ${this.app.redact((err as Error).message)})`);
      }
    }
    for (const file of reply.files ?? []) {
      try {
        lines.push(`  File: ${await this.saveFile(file)} (${file.caption})`);
      } catch (err) {
        lines.push(`  (file ${file.name} not saved: ${this.app.redact((err as Error).message)})`);
      }
    }
    return lines.join("\n");
  }

  async deliver(notice: Notice, origin?: ChatUser): Promise<void> {
    // The console already shows its own command's reply; do not print it twice.
    if (origin?.platform === "console") return;
    const body = await this.render(notice, "approve", "reject");
    this.write(`[${LABEL[notice.kind]}] ${body.replace(/\n/g, "\n  ")}`, TONE[notice.kind] ?? "reply");
  }

  /** Reads lines once `readAfter` resolves; resolves at once (a terminal needs no connecting). */
  async start(): Promise<void> {
    void (this.io.readAfter ?? Promise.resolve()).then(() => this.read());
  }

  private read(): void {
    if (this.stopped || this.rl) return;
    const rl = this.interactive ? this.terminal() : createInterface({ input: this.io.input, terminal: false });
    this.rl = rl;
    rl.on("line", (line) => {
      if (!line.trim()) {
        if (this.interactive) rl.prompt();
        return;
      }
      this.queue = this.queue.then(() =>
        this.app.commands
          .handle(line, { user: this.user, where: "console", progress: async (t) => this.write(t) })
          .then(async (reply) => this.write(await this.render(reply), reply.error ? "error" : "reply"))
          .catch((err: unknown) => this.write(`Error: ${this.app.redact(String(err))}`, "error")),
      );
    });
    rl.on("close", () => {
      this.closed = true;
      this.restoreLogs();
      // Closed by stop() (the lease went elsewhere, or the process stops): the input has not ended.
      if (this.stopped) return;
      if (this.interactive) this.io.output.write("\n");
      void this.queue.then(() => this.io.onEnd());
    });
    if (this.interactive) rl.prompt();
  }

  /** readline for a person: prompt, history, completion; Ctrl-C clears a typed line, or stops the process on an empty one. */
  private terminal(): Interface {
    let history: string[] = [];
    try {
      history = historyFromFile(readFileSync(this.historyFile, "utf8"), HISTORY_LINES);
    } catch {
      // No history yet (or unreadable): start without.
    }
    const rl = createInterface({
      input: this.io.input,
      output: this.io.output,
      terminal: true,
      prompt: PROMPT,
      history,
      historySize: HISTORY_LINES,
      removeHistoryDuplicates: true,
      completer: (line: string) => complete(line, { commands: this.app.commands.list(), symbols: () => this.app.symbols }),
    });
    rl.on("history", (lines: string[]) => {
      void mkdir(this.app.config.redis.dataDir, { recursive: true })
        .then(() => writeFile(this.historyFile, historyToFile(lines, HISTORY_LINES), { mode: 0o600 }))
        .catch((err: unknown) => this.app.log.warn("console history not saved", err));
    });
    // In raw mode Ctrl-C is a key, not a signal: an empty line stops the process as the signal would.
    rl.on("SIGINT", () => {
      if (rl.line) {
        rl.write(null, { ctrl: true, name: "e" });
        rl.write(null, { ctrl: true, name: "u" });
        return;
      }
      this.io.output.write("\n");
      process.kill(process.pid, "SIGINT");
    });
    const logs = this.io.logs;
    if (logs && isTty(logs)) {
      const original = logs.write;
      this.logWrite = original;
      logs.write = ((...args: Parameters<Writable["write"]>) => {
        let result = true;
        this.above(() => (result = original.apply(logs, args)));
        return result;
      }) as Writable["write"];
    }
    return rl;
  }

  private restoreLogs(): void {
    if (this.io.logs && this.logWrite) this.io.logs.write = this.logWrite;
    this.logWrite = undefined;
  }

  /** The banner says it (the console is read once the banner is out). */
  readyLine(): undefined {
    return undefined;
  }

  /** Stops reading (lines typed meanwhile wait in the input for the next start) and finishes the replies in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.rl?.close();
    this.restoreLogs();
    await this.queue;
  }

  health(): PlatformHealth {
    return { ok: true, problems: [] };
  }

  failedToStart(): void {}
}
