import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { inert } from "../domain/inertText.js";
import type { ChatUser, CommandReply, ReplyImage } from "./types.js";
import type { ChatHost } from "./host.js";
import type { Notice, NoticeKind, NoticeSink } from "./notifier.js";

const LABEL: Record<NoticeKind, string> = {
  trade: "TRADE",
  decision: "DECISION",
  alert: "ALERT",
  critical: "CRITICAL",
  report: "REPORT",
  error: "ERROR",
  info: "INFO",
};

/**
 * The console chat: commands typed on stdin, replies and notices on stdout. The person at the
 * console owns the process, so they are an admin. Input that ends (Ctrl-D, or a pipe that runs
 * dry) calls `onEnd` only after every reply in flight has been written. A terminal has no buttons
 * or pictures: a confirmation says which command answers it, and a chart is saved to a file.
 */
export class ConsoleChat implements NoticeSink {
  readonly name = "console";
  readonly user: ChatUser;

  constructor(
    private readonly app: ChatHost,
    private readonly input: Readable,
    private readonly output: Writable,
    userName = process.env.USER ?? "console",
    private readonly chartDir = join(app.config.redis.dataDir, "charts"),
  ) {
    this.user = { id: "console", name: userName, platform: "console", role: "admin" };
  }

  /** Everything the console prints passes here: text from outside is shown, never obeyed by the terminal. */
  private write(text: string): void {
    const shown = inert(text, { lines: true });
    this.output.write(shown.endsWith("\n") ? shown : shown + "\n");
  }

  private async saveImage(image: ReplyImage): Promise<string> {
    await mkdir(this.chartDir, { recursive: true });
    const stamp = new Date(this.app.services.clock()).toISOString().replace(/[-:]/g, "").slice(0, 15);
    const path = join(this.chartDir, `${stamp}-${image.name}`);
    await writeFile(path, image.png);
    return path;
  }

  /** The text, then how to answer its buttons, then where its chart was saved. */
  private async render(reply: Pick<CommandReply, "text" | "image" | "confirmationId">, yes = "confirm", no = "cancel"): Promise<string> {
    const lines = [reply.text];
    if (reply.confirmationId) lines.push(`  → ${yes} with /confirm ${reply.confirmationId}, or ${no} with /cancel ${reply.confirmationId}`);
    if (reply.image) {
      try {
        lines.push(`  Chart: ${await this.saveImage(reply.image)} (${reply.image.alt})`);
      } catch (err) {
        lines.push(`  (chart not saved: ${this.app.redact((err as Error).message)})`);
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

  start(onEnd: () => void): void {
    const rl = createInterface({ input: this.input, terminal: false });
    // One command at a time, in the order typed: replies to pasted or piped lines stay in order.
    let queue: Promise<void> = Promise.resolve();
    rl.on("line", (line) => {
      if (!line.trim()) return;
      queue = queue.then(() =>
        this.app.commands.handle(line, { user: this.user, where: "console", progress: async (t) => this.write(t) })
          .then(async (reply) => this.write(await this.render(reply)))
          .catch((err: unknown) => this.write(`Error: ${this.app.redact(String(err))}`)),
      );
    });
    rl.on("close", () => {
      void queue.then(onEnd);
    });
  }
}
