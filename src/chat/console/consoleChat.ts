import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { inert } from "../../domain/inertText.js";
import type { ChatUser, CommandReply, PlatformHealth, ReplyFile, ReplyImage } from "../types.js";
import type { ChatHost } from "../host.js";
import type { Notice, NoticeKind } from "../notifier.js";
import type { ChatPlatform, PlatformIo } from "../platform.js";

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

/**
 * The console chat: commands typed on stdin, replies and notices on stdout. The person at the
 * console owns the process, so they are an admin. Input that ends (Ctrl-D, or a pipe that runs
 * dry) calls `onEnd` only after every reply in flight has been written. A terminal has no buttons
 * or pictures: a confirmation says which command answers it, and a chart is saved to a file.
 */
export class ConsoleChat implements ChatPlatform {
  readonly name = "console";
  readonly user: ChatUser;
  private rl: Interface | undefined;
  private stopped = false;
  /** Replies in the order the lines were typed: one command at a time. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly app: ChatHost,
    private readonly io: ConsoleIo,
    userName = process.env.USER ?? "console",
    private readonly chartDir = join(app.config.redis.dataDir, "charts"),
  ) {
    this.user = { id: "console", name: userName, platform: "console", role: "admin" };
  }

  /** Everything the console prints passes here: text from outside is shown, never obeyed by the terminal. */
  private write(text: string): void {
    const shown = inert(text, { lines: true });
    this.io.output.write(shown.endsWith("\n") ? shown : shown + "\n");
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
    this.write(`[${LABEL[notice.kind]}] ${body.replace(/\n/g, "\n  ")}`);
  }

  /** Reads lines once `readAfter` resolves; resolves at once (a terminal needs no connecting). */
  async start(): Promise<void> {
    void (this.io.readAfter ?? Promise.resolve()).then(() => this.read());
  }

  private read(): void {
    if (this.stopped || this.rl) return;
    const rl = createInterface({ input: this.io.input, terminal: false });
    this.rl = rl;
    rl.on("line", (line) => {
      if (!line.trim()) return;
      this.queue = this.queue.then(() =>
        this.app.commands
          .handle(line, { user: this.user, where: "console", progress: async (t) => this.write(t) })
          .then(async (reply) => this.write(await this.render(reply)))
          .catch((err: unknown) => this.write(`Error: ${this.app.redact(String(err))}`)),
      );
    });
    rl.on("close", () => {
      // Closed by stop() (the lease went elsewhere, or the process stops): the input has not ended.
      if (this.stopped) return;
      void this.queue.then(() => this.io.onEnd());
    });
  }

  /** The banner says it (the console is read once the banner is out). */
  readyLine(): undefined {
    return undefined;
  }

  /** Stops reading (lines typed meanwhile wait in the input for the next start) and finishes the replies in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.rl?.close();
    await this.queue;
  }

  health(): PlatformHealth {
    return { ok: true, problems: [] };
  }

  failedToStart(): void {}
}
