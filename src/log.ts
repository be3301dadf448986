export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Log {
  debug(msg: string, extra?: unknown): void;
  info(msg: string, extra?: unknown): void;
  warn(msg: string, extra?: unknown): void;
  error(msg: string, extra?: unknown): void;
}

/**
 * Logs to stderr (stdout belongs to the console chat). Every line passes through `redact`, so a
 * secret that ends up in an error message never reaches the log.
 */
export function createLog(level: LogLevel, redact: (s: string) => string, write: (line: string) => void = (l) => process.stderr.write(l + "\n")): Log {
  const emit = (lvl: LogLevel, msg: string, extra?: unknown) => {
    if (RANK[lvl] < RANK[level]) return;
    let detail = "";
    if (extra instanceof Error) detail = ` ${extra.message}`;
    else if (extra !== undefined) detail = ` ${typeof extra === "string" ? extra : JSON.stringify(extra)}`;
    write(redact(`${new Date().toISOString()} ${lvl.toUpperCase()} ${msg}${detail}`));
  };
  return {
    debug: (m, e) => emit("debug", m, e),
    info: (m, e) => emit("info", m, e),
    warn: (m, e) => emit("warn", m, e),
    error: (m, e) => emit("error", m, e),
  };
}
