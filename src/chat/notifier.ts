import { toNotice, type Notice, type NoticeInput } from "./notices.js";
import type { ChatUser } from "./types.js";

export { NOTICE_LABEL, type Notice, type NoticeInput, type NoticeKind } from "./notices.js";

/** Where notices go: the console, a Telegram chat, a Discord channel. */
export interface NoticeSink {
  readonly name: string;
  /** `origin` is the user whose command caused the notice; a sink may skip echoing it back to them. */
  deliver(notice: Notice, origin?: ChatUser): Promise<void>;
}

export interface Notifier {
  /** Tells every chat what happened; `origin` is the user whose command caused it. */
  notify(notice: NoticeInput, origin?: ChatUser): Promise<void>;
}

/** Adds to a notice before it goes out (a chart for the daily report), once for every sink. */
export type NoticeDecorator = (notice: Notice) => Promise<Notice>;

/** Fans a notice out to every chat platform. One failing platform never blocks the others. */
export class NotifierHub implements Notifier {
  private readonly sinks: NoticeSink[] = [];
  private readonly decorators: NoticeDecorator[] = [];
  private readonly observers = new Set<(notice: Notice) => void>();
  private forward: { when: () => boolean; to: (input: NoticeInput, origin?: ChatUser) => Promise<void> } | undefined;

  constructor(private readonly onError: (sink: string, err: unknown) => void = () => {}) {}

  add(sink: NoticeSink): void {
    this.sinks.push(sink);
  }

  remove(sink: NoticeSink): void {
    const i = this.sinks.indexOf(sink);
    if (i >= 0) this.sinks.splice(i, 1);
  }

  /** The names of the chats notices go to now (for /metrics). */
  sinkNames(): string[] {
    return this.sinks.map((s) => s.name);
  }

  /**
   * Hears every notice delivered here, after the sinks were handed it (the dashboard's live
   * updates); not a chat, so it is not in sinkNames. Returns what stops it.
   */
  observe(listener: (notice: Notice) => void): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  decorate(d: NoticeDecorator): void {
    this.decorators.push(d);
  }

  /**
   * Sends notices elsewhere while `when` holds: a process that does not serve chat (a worker, a
   * standby frontend) hands them to the cluster's notice stream instead of to sinks it lacks.
   */
  forwardWhen(when: () => boolean, to: (input: NoticeInput, origin?: ChatUser) => Promise<void>): void {
    this.forward = { when, to };
  }

  async notify(input: NoticeInput, origin?: ChatUser): Promise<void> {
    if (this.forward?.when()) return this.forward.to(input, origin);
    return this.deliverHere(input, origin);
  }

  /** Delivers to this process's own sinks, never forwarding (the notice stream's consumer calls it). */
  async deliverHere(input: NoticeInput, origin?: ChatUser): Promise<void> {
    let n = toNotice(input);
    for (const d of this.decorators) {
      try {
        n = await d(n);
      } catch (err) {
        // A chart that fails to render must not cost the team the notice itself.
        this.onError("decorator", err);
      }
    }
    await Promise.all(this.sinks.map((s) => s.deliver(n, origin).catch((err: unknown) => this.onError(s.name, err))));
    for (const o of this.observers) {
      try {
        o(n);
      } catch (err) {
        this.onError("observer", err);
      }
    }
  }
}
