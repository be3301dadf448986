import { createServer, type AddressInfo } from "node:net";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const FILE = new URL("./results.json", import.meta.url);

/** Merges one benchmark's figures into bench/results.json, so each suite can run on its own. */
export function saveResults(suite: string, figures: Record<string, unknown>): void {
  const all = existsSync(FILE) ? (JSON.parse(readFileSync(FILE, "utf8")) as Record<string, unknown>) : {};
  all[suite] = { ...figures, measuredAt: new Date().toISOString(), node: process.version };
  writeFileSync(FILE, JSON.stringify(all, null, 2) + "\n");
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** A TCP port nothing listens on now, so benchmarks run side by side without sharing a Redis. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}
