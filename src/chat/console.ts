import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { handleCommand } from "../../commands/registry.js";
import type { ChatUser } from "../../commands/types.js";
import type { App } from "../app.js";
import type { Notice, NoticeSink } from "./notifier.js";

const LABEL: Record<Notice["kind"], string> = {
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
 * dry) calls `onEnd` only after every reply in flight has been written.
 */
export class ConsoleChat implements NoticeSink {
  readonly name = "console";
  readonly user: ChatUser;

  constructor(
    private readonly app: App,
    private readonly input: Readable,
    private readonly output: Writable,
    userName = process.env.USER ?? "console",
  ) {
    this.user = { id: "console", name: userName, platform: "console", role: "admin" };
  }

  private write(text: string): void {
    this.output.write(text.endsWith("\n") ? text : text + "\n");
  }

  async deliver(notice: Notice, origin?: ChatUser): Promise<void> {
    // The console already shows its own command's reply; do not print it twice.
    if (origin?.platform === "console") return;
    this.write(`[${LABEL[notice.kind]}] ${notice.text.replace(/\n/g, "\n  ")}`);
  }

  start(onEnd: () => void): void {
    const rl = createInterface({ input: this.input, terminal: false });
    // One command at a time, in the order typed: replies to pasted or piped lines stay in order.
    let queue: Promise<void> = Promise.resolve();
    rl.on("line", (line) => {
      if (!line.trim()) return;
      queue = queue.then(() =>
        handleCommand(line, { user: this.user, app: this.app }, this.app.redact)
          .then((reply) => this.write(reply.text))
          .catch((err: unknown) => this.write(`Error: ${this.app.redact(String(err))}`)),
      );
    });
    rl.on("close", () => {
      void queue.then(onEnd);
    });
  }
}
