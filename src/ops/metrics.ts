// The process's Prometheus metrics, on prom-client. Any part of the agent can add a gauge read at
// scrape time (`metrics.gauge("frontend_active", () => lease.held ? 1 : 0)`) or a counter it
// increments itself; names get the "agent_" prefix. A gauge whose source fails or is slow (Redis
// down) is left out of that scrape and counted, so /metrics always answers.
import { createRequire } from "node:module";
import type { Counter, Gauge, Registry } from "prom-client";

type PromClient = typeof import("prom-client");
// Loaded with the first registry: a process that serves no metrics (METRICS_PORT unset) never loads it.
let prom: PromClient | undefined;
const promClient = () => (prom ??= createRequire(import.meta.url)("prom-client") as PromClient);

/** One labelled value of a gauge. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** What a gauge's source returns: one value (true/false count as 1/0), labelled values, or nothing to report. */
export type GaugeValue = number | boolean | undefined | Sample[];

export interface GaugeOptions {
  help?: string;
  /** The label names its samples use. */
  labels?: readonly string[];
}

const PREFIX = "agent_";

/**
 * A gauge that can have no value at all in a scrape: prom-client reports an unlabelled gauge as 0
 * after a reset, and a 0 from a source that did not answer would read as a real zero.
 */
type ReadGauge = Gauge<string> & { empty: boolean };
let readGauge: (new (config: ConstructorParameters<PromClient["Gauge"]>[0]) => ReadGauge) | undefined;
const ReadGaugeClass = () =>
  (readGauge ??= class extends promClient().Gauge<string> {
    empty = false;
    override async get() {
      const m = await super.get();
      return this.empty ? { ...m, values: [] } : m;
    }
  });
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export class MetricsRegistry {
  readonly registry: Registry;
  private readonly errors: Registry;
  private readonly collectErrors: Counter<"gauge">;

  constructor(private readonly opts: { timeoutMs?: number; defaultMetrics?: boolean } = {}) {
    const { Counter, Registry, collectDefaultMetrics } = promClient();
    this.registry = new Registry();
    this.errors = new Registry();
    // Memory, CPU, event-loop lag and handles of this process (process_*, nodejs_*).
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.collectErrors = new Counter({
      name: `${PREFIX}metrics_collect_errors_total`,
      help: "Gauges left out of a scrape because their source failed or took too long",
      labelNames: ["gauge"],
      registers: [this.errors],
    });
  }

  /** Adds a gauge read at every scrape. The name gets the agent_ prefix unless it has it. */
  gauge(name: string, read: () => GaugeValue | Promise<GaugeValue>, options: GaugeOptions = {}): void {
    const full = this.name(name);
    const timeoutMs = this.opts.timeoutMs ?? 2_000;
    const errors = this.collectErrors;
    const labelNames = [...(options.labels ?? [])];
    new (ReadGaugeClass())({
      name: full,
      help: options.help ?? full.replace(/_/g, " "),
      labelNames,
      registers: [this.registry],
      async collect() {
        const self = this as ReadGauge;
        self.reset();
        self.empty = true;
        let value: GaugeValue;
        try {
          value = await withTimeout(Promise.resolve().then(read), timeoutMs);
        } catch {
          errors.inc({ gauge: full });
          return;
        }
        if (value === undefined) return;
        self.empty = false;
        if (typeof value === "boolean") this.set(value ? 1 : 0);
        else if (typeof value === "number") this.set(value);
        else for (const s of value) this.set(s.labels, s.value);
      },
    });
  }

  /** Adds a counter the caller increments. */
  counter<L extends string>(name: string, help: string, labels: readonly L[] = []): Counter<L> {
    return new (promClient().Counter)({ name: this.name(name), help, labelNames: [...labels], registers: [this.registry] });
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async text(): Promise<string> {
    // The gauges are read in parallel, and their failures are only known once all are read: the
    // error counter is rendered after them, so a scrape reports its own failures.
    const gauges = await this.registry.metrics();
    return `${gauges}\n${await this.errors.metrics()}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private name(name: string): string {
    const full = name.startsWith(PREFIX) ? name : PREFIX + name;
    if (!NAME.test(full)) throw new Error(`metric name ${JSON.stringify(name)}: use letters, digits and _ only`);
    if (this.registry.getSingleMetric(full)) throw new Error(`metric ${full} is registered twice`);
    return full;
  }
}

/** `p`, or a rejection once `ms` have passed without it. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
