// The dashboard's live updates: a new or changed decision (read from the ledger, so decisions
// made by a worker elsewhere show too), a fill, and an alert (the notices delivered here).
import type { Notice } from "../chat/notifier.js";
import type { DecisionRecord } from "../ledger/ledger.js";

export type LiveEvent =
  | { type: "decision"; id: string; symbol: string; action: string; outcome: string; time: number }
  | { type: "fill"; symbol: string; text: string; time: number }
  | { type: "alert"; kind: string; text: string; time: number };

export interface LiveSources {
  decisionsSince(from: number): Promise<DecisionRecord[]>;
  /** Hears the notices delivered in this process; returns what stops it. */
  observe(listener: (n: Notice) => void): () => void;
  clock: () => number;
}

/** How far back a decision's outcome is still watched for a change (an order filled after "decided"). */
const WATCH_MS = 10 * 60_000;

/**
 * One watcher for every open event stream: it polls the ledger's newest decisions while anyone
 * listens, and stops when the last listener leaves.
 */
export class LiveFeed {
  private readonly listeners = new Set<(e: LiveEvent) => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopObserving: (() => void) | undefined;
  private seen = new Map<string, string>();
  private since = 0;
  private polling = false;

  constructor(
    private readonly s: LiveSources,
    private readonly everyMs = 1_000,
  ) {}

  subscribe(listener: (e: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) void this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  private emit(e: LiveEvent): void {
    for (const l of this.listeners) l(e);
  }

  private async start(): Promise<void> {
    this.since = this.s.clock();
    // What exists now is not news: remember it without telling.
    await this.poll(false);
    this.stopObserving = this.s.observe((n) => {
      const time = this.s.clock();
      const e = n.event;
      // Decisions come from the ledger (also the ones no notice is raised for, like /decide).
      if (e?.type === "decision") return;
      if (n.kind === "trade") this.emit({ type: "fill", symbol: e && "symbol" in e ? String(e.symbol) : "", text: n.text, time });
      else if (n.kind === "alert" || n.kind === "critical" || n.kind === "error") this.emit({ type: "alert", kind: n.kind, text: n.text, time });
    });
    if (this.listeners.size > 0 && !this.timer) this.timer = setInterval(() => void this.poll(true), this.everyMs);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopObserving?.();
    this.stopObserving = undefined;
  }

  /** Reads the decisions of the watched window and tells the new ones, and those whose outcome changed. */
  async poll(tell = true): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const records = await this.s.decisionsSince(this.since - WATCH_MS);
      const now = this.s.clock();
      const next = new Map<string, string>();
      for (const d of records) {
        next.set(d.id, d.outcome);
        if (this.seen.get(d.id) === d.outcome) continue;
        if (tell) {
          this.emit({ type: "decision", id: d.id, symbol: d.symbol, action: d.action ?? "none", outcome: d.outcome, time: d.time });
          if (d.order && d.order.status !== "rejected" && d.order.qty > 0 && d.outcome === "order") this.emit({ type: "fill", symbol: d.symbol, text: `${d.order.side.toUpperCase()} ${d.order.qty} ${d.symbol} @ ${d.order.avgPrice}`, time: d.time });
        }
      }
      this.seen = next;
      this.since = Math.max(this.since, now - WATCH_MS);
    } catch {
      // Redis away for a moment: the next tick reads again.
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    this.listeners.clear();
    this.stop();
  }
}
