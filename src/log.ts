import { pino, stdTimeFunctions } from "pino";
import { prettyFactory } from "pino-pretty";
import { inert } from "./domain/inertText.js";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Log {
  debug(msg: string, extra?: unknown): void;
  info(msg: string, extra?: unknown): void;
  warn(msg: string, extra?: unknown): void;
  error(msg: string, extra?: unknown): void;
}

export interface LogOptions {
  /** Human-readable lines; JSON (one object a line) when false. Default: pretty when stderr is a terminal. */
  pretty?: boolean;
}

const SECRET_KEYS = ["token", "apiKey", "api_key", "secret", "password", "privateKey", "private_key", "authorization", "Authorization", "cookie", '["x-payment"]', '["payment-signature"]'];

/**
 * Where secrets sit in what we log as `detail`, one and two levels down (pino's paths have no
 * recursive wildcard). Values that land elsewhere, such as a token inside an error message, are
 * caught by the value redaction on the finished line.
 */
export const REDACTED_PATHS = SECRET_KEYS.flatMap((k) => {
  const key = k.startsWith("[") ? k : `.${k}`;
  return [`detail${key}`, `detail.*${key}`, `detail.headers${key}`, `detail.*.headers${key}`];
});

/** What an error contributes to a line: its kind and message; the stack only when debugging. */
function errorDetail(err: Error, withStack: boolean): Record<string, unknown> {
  // A short message for the chat often wraps the raw error (an exchange's full answer): the log keeps both.
  const cause = err.cause instanceof Error ? `${err.cause.name}: ${err.cause.message}` : err.cause !== undefined ? String(err.cause) : undefined;
  return {
    type: inert(err.name),
    message: inert(err.message, { lines: true }),
    ...(cause ? { cause: inert(cause.length > 4000 ? `${cause.slice(0, 4000)}…` : cause, { lines: true }) } : {}),
    ...(withStack && err.stack ? { stack: inert(err.stack, { lines: true }) } : {}),
  };
}

/**
 * Detail with every string's control characters made visible (a pretty line is printed as is, and
 * JSON keeps C1 and bidi characters raw). Plain objects and arrays are walked a few levels down;
 * anything else is left to pino.
 */
function inertDetail(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return inert(value, { lines: true });
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => inertDetail(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inertDetail(v, depth + 1)]));
}

/**
 * Logs on pino, to stderr (stdout belongs to the console chat). Two layers keep secrets out: pino
 * censors the known secret fields of structured detail, and every finished line passes through
 * `redact`, which replaces the configured secret values wherever they appear (an error message
 * that quotes a token, a URL with a password).
 */
export function createLog(level: LogLevel, redact: (s: string) => string, write: (line: string) => void = (l) => process.stderr.write(l + "\n"), opts: LogOptions = {}): Log {
  const pretty = opts.pretty ?? Boolean(process.stderr.isTTY);
  const prettify = pretty
    ? prettyFactory({ colorize: Boolean(process.stderr.isTTY) && opts.pretty === undefined && !process.env.NO_COLOR, ignore: "pid,hostname", translateTime: "UTC:yyyy-mm-dd HH:MM:ss.l'Z'", singleLine: true })
    : undefined;
  // A synchronous destination: a line is written before the call returns, so nothing is lost
  // when the process exits right after logging.
  const destination = {
    write(line: string): void {
      const out = prettify ? prettify(line) : line;
      write(redact(out).replace(/\n$/, ""));
    },
  };
  const logger = pino(
    {
      level,
      base: undefined,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    destination,
  );
  // The message and detail carry text from outside (names, command lines, exchange and model
  // replies): their control characters are made visible before pino writes them, so a log read
  // in a terminal is never obeyed by it. (The finished line is not filtered: its colours are ours.)
  const emit = (lvl: LogLevel, msg: string, extra?: unknown) => {
    if (!logger.isLevelEnabled(lvl)) return;
    if (extra === undefined) return logger[lvl](inert(redact(msg)));
    const detail = extra instanceof Error ? errorDetail(extra, level === "debug") : typeof extra === "string" ? inert(redact(extra), { lines: true }) : inertDetail(extra);
    logger[lvl]({ detail }, inert(redact(msg)));
  };
  return {
    debug: (m, e) => emit("debug", m, e),
    info: (m, e) => emit("info", m, e),
    warn: (m, e) => emit("warn", m, e),
    error: (m, e) => emit("error", m, e),
  };
}
