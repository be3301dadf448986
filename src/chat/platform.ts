// One interface for every chat platform (the console, Telegram, Discord, and whichever comes next),
// and the entry by which the registry (platforms.ts) knows one. A platform lives in its own folder
// under src/chat/ and exports its entry from platform.ts there; the registry starts, stops, asks the
// health of and hands notices to each through this interface, and nothing else names it.
import type { Readable, Writable } from "node:stream";
import type { ChatHost } from "./host.js";
import type { NoticeSink } from "./notifier.js";
import type { Platform, PlatformHealth } from "./types.js";

/** A running chat platform: it takes commands, posts notices (as a NoticeSink) and says how it is. */
export interface ChatPlatform extends NoticeSink {
  readonly name: Platform;
  /**
   * Connects and starts taking commands; resolves once it does. Rejects when it cannot start: the
   * registry then logs why, calls failedToStart, and tells the other platforms.
   */
  start(): Promise<void>;
  /** What the log says once start() is through, after the platform's name (e.g. "@bot ready (long polling)"); nothing when undefined. */
  readyLine(): string | undefined;
  /** Stops taking commands, after the replies and notices in flight are out. */
  stop(): Promise<void>;
  /** Whether it works now, and what is wrong when not. A plain read, cheap enough for every scrape. */
  health(): PlatformHealth;
  /** Called by the registry when start() failed: health() says so from then on. */
  failedToStart(reason: string): void;
}

/** What the process hands the platforms besides the host: the terminal, for the console. */
export interface PlatformIo {
  console?: {
    input: Readable;
    output: Writable;
    /** Called when the input ends (Ctrl-D, a pipe that runs dry), after the replies in flight. */
    onEnd: () => void;
    /** Lines are read only once this resolves (the banner is out), so replies follow it. */
    readAfter?: Promise<void>;
    /**
     * A person at a terminal: a prompt, line editing, history and completion. Default: when both
     * input and output are terminals. Piped, the console reads and writes plain lines.
     */
    interactive?: boolean;
    /** Where the process logs (stderr): on the same terminal, a log line is written above the prompt. */
    logs?: Writable;
    /** NO_COLOR and FORCE_COLOR are read from here (default: process.env). */
    env?: Record<string, string | undefined>;
  };
}

/** How the registry knows a platform: whether this process runs it, and how to build it. */
export interface ChatPlatformEntry {
  readonly name: Platform;
  /** Why it is off (e.g. "set TELEGRAM_BOT_TOKEN"), as the startup banner says; undefined when it is on. */
  offReason(chat: ChatHost["config"]["chat"], io?: PlatformIo): string | undefined;
  /** Builds it, unstarted. A platform's library (grammy, discord.js) is imported here, so only when it is on. */
  create(host: ChatHost, io: PlatformIo): Promise<ChatPlatform>;
}
