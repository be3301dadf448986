import type { ChatServices } from "../src/chat/services.js";
import type { Notifier } from "../src/chat/notifier.js";
import type { ChatHealth, ChatUser, CommandOption, CommandReply, Role } from "../src/chat/types.js";
import type { Config } from "../src/config/config.js";
import type { DecideRequest } from "../src/decision/request.js";
import type { AgentMode, MarketSymbol } from "../src/domain/types.js";
import type { DashboardLinks } from "../src/dashboard/links.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";
import type { Log } from "../src/log.js";
import type { PermitSessions } from "../src/payments/permitSessions.js";
import type { DecisionServices } from "../src/pipeline/decide.js";
import type { ReconciliationLog } from "../src/portfolio/reconcile.js";
import type { ScheduleLine } from "../src/queue/scheduler.js";
import type { StoredLimits } from "../src/risk/limitsStore.js";
import type { ScheduleControl } from "../src/queue/runtimeSchedule.js";

export { ROLE_RANK, type ChatUser, type CommandOption, type CommandReply, type Platform, type ReplyButton, type ReplyImage, type Role } from "../src/chat/types.js";

/**
 * Everything a command may use, built once by the composition root (src/app.ts). Each command
 * declares the part it uses with `Needs<...>`, and the type checker holds it to that part.
 */
export interface CommandHost {
  services: DecisionServices;
  notifier: Notifier;
  chat: ChatServices;
  limitsStore: StoredLimits;
  /** /symbols and /interval: the schedule chosen at run time, for the whole cluster. */
  control: ScheduleControl;
  reconciliations: ReconciliationLog;
  config: { chat: Pick<Config["chat"], "tradeConfirmAbove" | "confirmTimeoutMs" | "approvals" | "approvalsTimeoutMs">; market: Pick<Config["market"], "timeframe"> };
  mode: AgentMode;
  symbols: MarketSymbol[];
  startedAt: number;
  /** Makes one decision now. */
  decide(req: DecideRequest, user?: ChatUser): Promise<DecisionRecord>;
  schedule(): Promise<ScheduleLine[]>;
  costReport(now?: number): Promise<string>;
  redact(text: string): string;
  log: Log;
  /** The team dashboard's ways in (personal links, the Telegram Mini App). */
  dashboard?: DashboardLinks;
  /** The wallet's permit sessions with the router, when it is paid by one. */
  sessions?: PermitSessions;
  /** Matches the chain's batches to the books now (the chain reconciliation); [] without a chain wallet. */
  reconcileChain?(): Promise<unknown[]>;
  /** Each running chat platform's health (every one ok: all fine); set once they have started. */
  chatHealth?(): ChatHealth;
  /**
   * Set in a frontend-only process: commands marked `remote` run on a worker through the queue
   * (src/cluster/remoteCommands.ts) instead of here. Unset (role all, a worker): they run here.
   */
  remote?: RemoteRunner;
}

/** Runs a command's core on a worker and brings its answer back. */
export interface RemoteRunner {
  run(call: { command: string; args: unknown; user: ChatUser; where?: string; confirmationId?: string }, progress?: (text: string) => Promise<void>): Promise<CommandReply>;
}

/** The part of the host a command uses: some top-level parts, and some of the decision services. */
export type Needs<K extends Exclude<keyof CommandHost, "services"> = never, S extends keyof DecisionServices = never> = Pick<CommandHost, K> & {
  services: Pick<DecisionServices, S>;
};

export interface CommandContext<H = CommandHost> {
  user: ChatUser;
  app: H;
  /** Where the command was typed, for the audit log, e.g. "telegram chat -1001 topic 7". */
  where?: string;
  /** Shows a first answer at once; the platform replaces it with the final reply. */
  progress?: (text: string) => Promise<void>;
  /** Set when the command runs because its confirmation was pressed. */
  confirmationId?: string;
  /** Stable across a re-run of the same request (a worker took over a crashed one's job): ids made from it dedupe. */
  requestId?: string;
}

export type ParseResult<A> = { ok: true; value: A } | { ok: false; error: string };

/** A chat command, written once and served by every platform (console, Telegram, Discord). */
export interface Command<A = unknown, H = CommandHost> {
  name: string;
  summary: string;
  /** e.g. "/refill AMOUNT" */
  usage: string;
  example?: string;
  minRole: Role;
  /** Its arguments in order, for typed options; none means it takes no arguments. */
  options?: CommandOption[];
  /** Its replies are for the asker only (Discord: ephemeral). */
  personal?: boolean;
  /** Running it can change state: it goes into the audit log. A function when that depends on the arguments. */
  mutates?: boolean | ((args: A) => boolean);
  /** A question to confirm with a button first, or undefined to run at once. */
  confirm?(args: A, ctx: CommandContext<H>): Promise<string | undefined>;
  /** Its core runs on a worker when the process is a frontend only (it trades, decides or pays). */
  remote?: boolean | ((args: A) => boolean);
  /** Turns the words after the command into typed arguments, or says how to do it right. */
  parse(args: string[], ctx: CommandContext<H>): ParseResult<A>;
  run(args: A, ctx: CommandContext<H>): Promise<CommandReply>;
}

/** A command that uses only `H` of the host; the registry serves it with the whole host. */
export function defineCommand<A, H = CommandHost>(c: Command<A, H> & (CommandHost extends H ? unknown : never)): Command<unknown> {
  return c as unknown as Command<unknown>;
}

export const noArgs = (usage: string) => (args: string[]): ParseResult<undefined> =>
  args.length === 0 ? { ok: true, value: undefined } : { ok: false, error: `This command takes no arguments. Usage: ${usage}` };
