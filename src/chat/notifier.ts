import type { ChatUser } from "../../commands/types.js";

export type NoticeKind = "trade" | "decision" | "alert" | "critical" | "report" | "error" | "info";

export interface Notice {
  kind: NoticeKind;
  text: string;
}

/** Where notices go: the console, a Telegram chat, a Discord channel. */
export interface NoticeSink {
  readonly name: string;
  /** `origin` is the user whose command caused the notice; a sink may skip echoing it back to them. */
  deliver(notice: Notice, origin?: ChatUser): Promise<void>;
}

export interface Notifier {
  notify(notice: Notice, origin?: ChatUser): Promise<void>;
}

/** Fans a notice out to every chat platform. One failing platform never blocks the others. */
export class NotifierHub implements Notifier {
  private readonly sinks: NoticeSink[] = [];

  constructor(private readonly onError: (sink: string, err: unknown) => void = () => {}) {}

  add(sink: NoticeSink): void {
    this.sinks.push(sink);
  }

  async notify(notice: Notice, origin?: ChatUser): Promise<void> {
    await Promise.all(
      this.sinks.map((s) => s.deliver(notice, origin).catch((err: unknown) => this.onError(s.name, err))),
    );
  }
}
