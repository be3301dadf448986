import { balance, refill } from "./balance.js";
import { pause, resume } from "./control.js";
import { decide } from "./decide.js";
import { model } from "./model.js";
import { report } from "./report.js";
import { positions, status } from "./status.js";
import { audit } from "./audit.js";
import { limits } from "./limits.js";
import { intervalCommand, symbolsCommand } from "./symbols.js";
import { trade } from "./trade.js";
import { cancelOrder, close, orders, stop, stopEntry, takeProfit } from "./orders.js";
import { grant, revoke, users } from "./users.js";
import { whoami } from "./whoami.js";
import { dashboard } from "./dashboard.js";
import { session } from "./session.js";
import { daily, exportBooks, monthly, performance, profit, trades, weekly } from "./profit.js";
import { confirmButtons, type PendingAction } from "../src/chat/confirmations.js";
import { redisRefusal } from "../src/redis/refusals.js";
import { shortPlain } from "../src/domain/inertText.js";
import { attachReplyExtras } from "../src/chat/charts/hooks.js";
import type { CommandCall, CommandDispatcher, PressOutcome } from "../src/chat/types.js";
import { defineCommand, noArgs, ROLE_RANK, type ChatUser, type Command, type CommandContext, type CommandHost, type CommandReply, type Needs } from "./types.js";

const help = defineCommand<undefined, Needs>({
  name: "help",
  summary: "This list",
  usage: "/help",
  minRole: "viewer",
  personal: true,
  parse: noArgs("/help"),
  async run(_, { user }) {
    const lines = ["Commands:"];
    for (const c of COMMANDS) {
      if (ROLE_RANK[user.role] < ROLE_RANK[c.minRole]) continue;
      lines.push(`  ${c.usage.padEnd(20)} ${c.summary}${c.example ? ` (e.g. ${c.example})` : ""}`);
    }
    return { text: lines.join("\n") };
  },
});

const answer = (yes: boolean) =>
  defineCommand<string, CommandHost>({
    name: yes ? "confirm" : "cancel",
    summary: yes ? "Confirm what a button asks (where there are no buttons)" : "Cancel what a button asks",
    usage: yes ? "/confirm ID" : "/cancel ID",
    minRole: "viewer",
    options: [{ name: "id", description: "The id shown with the question", kind: "string", required: true }],
    parse(args) {
      const id = args[0];
      if (args.length !== 1 || !id || !/^[A-Za-z0-9_-]{6,24}$/.test(id)) {
        return { ok: false, error: `Usage: /${yes ? "confirm" : "cancel"} ID, with the id shown under the question.` };
      }
      return { ok: true, value: id };
    },
    async run(id, ctx) {
      const out = await ctx.app.chat.press(`cf:${id}:${yes ? "ok" : "no"}`, ctx.user, ctx.where ?? ctx.user.platform, confirmedRunner(ctx.app));
      return out.alert ? { text: out.final ? `${out.toast}\n\n${out.final}` : out.toast, error: true } : { text: out.final ?? out.toast };
    },
  });

// /model belongs to the model layer's owner; what the chat layer needs of it is added here.
const modelCommand: Command = {
  ...model,
  mutates: (args) => (args as { kind: string }).kind !== "list",
  options: [{ name: "name", description: "A model to choose, or auto for the default order; empty to list", kind: "string", required: false }],
};

/**
 * With APPROVALS=2, what these ask to confirm needs a second admin (another person than the one
 * who asked): loosening a risk limit, a refill, a trade above the confirmation threshold.
 */
const NEEDS_SECOND_ADMIN: ReadonlySet<string> = new Set(["limits", "refill", "trade"]);
const APPROVE_LABELS = { yes: "Approve", no: "Reject" };

export const COMMANDS: Command[] = [help, decide, balance, refill, pause, resume, modelCommand, status, positions, report, profit, daily, weekly, monthly, performance, trades, exportBooks, session, trade, orders, cancelOrder, stop, takeProfit, close, stopEntry, limits, symbolsCommand, intervalCommand, users, grant, revoke, audit, whoami, dashboard, answer(true), answer(false)];

const byName = new Map(COMMANDS.map((c) => [c.name, c]));

/** Splits "/decide@my_bot BTC" into the command name and its words. */
export function parseCommandLine(text: string): { name: string; args: string[] } | undefined {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const head = words[0];
  if (!head || !head.startsWith("/") || head.length < 2) return undefined;
  return { name: head.slice(1).split("@")[0]!.toLowerCase(), args: words.slice(1) };
}

export const findCommand = (name: string): Command | undefined => byName.get(name);

/**
 * A failure in a few plain words for the chat: never an exchange's raw answer (an HTML error
 * page), never a secret. The full error goes to the log.
 */
const errorText = (err: unknown, redact: (s: string) => string, max: number) => redisRefusal(err) ?? shortPlain(redact(err instanceof Error ? err.message : String(err)), max);

const mutates = (c: Command, args: unknown): boolean => (typeof c.mutates === "function" ? c.mutates(args) : c.mutates === true);
const runsRemotely = (c: Command, args: unknown): boolean => (typeof c.remote === "function" ? c.remote(args) : c.remote === true);

/** Runs a command's core here, or on a worker when this process is a frontend only and the command is one that must. */
function runCore(command: Command, args: unknown, ctx: CommandContext): Promise<CommandReply> {
  const remote = ctx.app.remote;
  if (!remote || !runsRemotely(command, args)) return command.run(args, ctx);
  return remote.run(
    {
      command: command.name,
      args,
      user: ctx.user,
      ...(ctx.where ? { where: ctx.where } : {}),
      ...(ctx.confirmationId ? { confirmationId: ctx.confirmationId } : {}),
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
    },
    ctx.progress,
  );
}

/**
 * A worker runs a command a frontend sent it (roles and confirmations were checked there). The
 * request id is the chat message's when the frontend named one, else the job's, so a worker taking
 * over a crashed one's job (or a redelivered message) makes the same decision and the same order
 * ids, and neither orders nor pays twice.
 */
export async function runRemoteCall(
  host: CommandHost,
  call: { command: string; args: unknown; user: ChatUser; where?: string; confirmationId?: string },
  requestId: string,
  progress: (text: string) => Promise<void>,
): Promise<CommandReply> {
  const command = byName.get(call.command);
  if (!command || !command.remote) return { text: `/${call.command.slice(0, 30)} does not run on a worker; nothing was done.`, error: true };
  const ctx: CommandContext = { user: call.user, app: host, progress, requestId, ...(call.where ? { where: call.where } : {}), ...(call.confirmationId ? { confirmationId: call.confirmationId } : {}) };
  try {
    return await command.run(call.args, ctx);
  } catch (err) {
    host.log.error(`/${command.name} failed on this worker`, err);
    return { text: `/${command.name} failed: ${errorText(err, host.redact, 300)}`, error: true };
  }
}

function auditEntry(ctx: CommandContext, line: string, result: "ok" | "failed" | "refused" | "asked", detail: string) {
  return ctx.app.chat.audit.record({
    platform: ctx.user.platform,
    userId: ctx.user.id,
    user: ctx.user.name,
    role: ctx.user.role,
    where: ctx.where ?? ctx.user.platform,
    command: line,
    result,
    detail,
  });
}

export type Prepared = { ok: true; command: Command; args: unknown; line: string } | { ok: false; reply: CommandReply };

/**
 * Reads a command line and checks the user may run it, without running it: quick, so a platform
 * can answer a refusal at once (and privately) and only then start slow work.
 */
export async function prepareCommand(text: string, ctx: CommandContext): Promise<Prepared> {
  const line = parseCommandLine(text);
  const refuse = (t: string): Prepared => ({ ok: false, reply: { text: t, error: true, ephemeral: true } });
  if (!line) return refuse("Commands start with /. Type /help for the list.");
  const command = byName.get(line.name);
  if (!command) return refuse(`Unknown command /${line.name.slice(0, 30)}. Type /help for the list.`);
  const shown = `/${command.name}${line.args.length ? " " + line.args.join(" ") : ""}`.slice(0, 200);
  if (ROLE_RANK[ctx.user.role] < ROLE_RANK[command.minRole]) {
    const text = `Sorry, /${command.name} needs the ${command.minRole} role; you are a ${ctx.user.role}. Nothing was changed.`;
    if (command.mutates) await auditEntry(ctx, shown, "refused", `needs ${command.minRole}`);
    return refuse(text);
  }
  const parsed = command.parse(line.args, ctx);
  if (!parsed.ok) return refuse(parsed.error);
  return { ok: true, command, args: parsed.value, line: shown };
}

/** Runs a prepared command: asks for a confirmation first when it wants one, and audits what changes state. */
export async function executeCommand(p: Extract<Prepared, { ok: true }>, ctx: CommandContext, redact: (s: string) => string = (s) => s): Promise<CommandReply> {
  const { command, args, line } = p;
  const audited = mutates(command, args);
  try {
    if (command.confirm && !ctx.confirmationId) {
      const question = await command.confirm(args, ctx);
      if (question) {
        const services = ctx.app.chat;
        const twoPeople = ctx.app.config.chat.approvals >= 2 && NEEDS_SECOND_ADMIN.has(command.name);
        const ttl = twoPeople ? ctx.app.config.chat.approvalsTimeoutMs : ctx.app.config.chat.confirmTimeoutMs;
        const action = await services.confirmations.create(
          {
            kind: "command",
            line,
            command: command.name,
            args,
            requester: { platform: ctx.user.platform, id: ctx.user.id, name: ctx.user.name },
            pressRole: "admin",
            prompt: question,
            ...(twoPeople ? { secondApprover: true } : {}),
            ...(ctx.where ? { where: ctx.where } : {}),
          },
          ttl,
        );
        await auditEntry(ctx, line, "asked", `${twoPeople ? "second admin's approval" : "confirmation"} ${action.id}`);
        if (twoPeople) {
          // The other admins may not be in this chat: the alert chats of every platform get the buttons too.
          await ctx.app.notifier.notify({ type: "second-approval", prompt: question, asker: ctx.user.name, expiresAt: action.expiresAt, buttons: confirmButtons(action.id, APPROVE_LABELS), confirmationId: action.id }, ctx.user);
          return {
            text: `${question}\nNeeds a second admin's approval (APPROVALS=2): an admin other than ${ctx.user.name} presses Approve within ${Math.round(ttl / 1000)} s, or types /confirm ${action.id}. Unanswered, it is cancelled.`,
            buttons: confirmButtons(action.id, APPROVE_LABELS),
            confirmationId: action.id,
          };
        }
        return {
          text: `${question}\nConfirm within ${Math.round(ttl / 1000)} s (only ${ctx.user.name} or an admin can).`,
          buttons: confirmButtons(action.id),
          confirmationId: action.id,
        };
      }
    }
    const reply = await attachReplyExtras(command.name, await runCore(command, args, ctx), ctx.app);
    if (audited) await auditEntry(ctx, line, reply.error ? "failed" : "ok", redact(reply.text));
    return command.personal ? { ...reply, ephemeral: true } : reply;
  } catch (err) {
    ctx.app.log.error(`/${command.name} failed`, err);
    const text = `/${command.name} failed: ${errorText(err, redact, 300)}`;
    if (audited) await auditEntry(ctx, line, "failed", text).catch(() => {});
    return { text, error: true };
  }
}

/**
 * Runs one line of chat input for one user. Never throws: bad input, a refused role or a failure
 * inside a command all come back as a short reply, and bad input changes nothing.
 */
export async function handleCommand(text: string, ctx: CommandContext, redact: (s: string) => string = (s) => s): Promise<CommandReply> {
  try {
    const p = await prepareCommand(text, ctx);
    return p.ok ? await executeCommand(p, ctx, redact) : p.reply;
  } catch (err) {
    ctx.app.log.error("command failed", err);
    return { text: `That failed: ${errorText(err, redact, 300)}`, error: true };
  }
}

/** Runs a command whose confirmation was just pressed, as the person who pressed it. */
export async function executeConfirmed(action: PendingAction, ctx: CommandContext): Promise<CommandReply> {
  const command = action.command ? byName.get(action.command) : undefined;
  if (!command) return { text: `Unknown command ${action.command ?? "(none)"}: nothing was done.`, error: true };
  if (ROLE_RANK[ctx.user.role] < ROLE_RANK[command.minRole]) {
    return { text: `/${command.name} needs the ${command.minRole} role; ${ctx.user.name} is a ${ctx.user.role}. Nothing was done.`, error: true };
  }
  try {
    return await runCore(command, action.args, ctx);
  } catch (err) {
    ctx.app.log.error(`/${command.name} failed`, err);
    return { text: `/${command.name} failed: ${errorText(err, ctx.app.redact, 300)}`, error: true };
  }
}

/** The runner the chat layer calls when a confirmation is pressed. */
const confirmedRunner = (app: CommandHost) => (action: PendingAction, presser: ChatUser, where: string) =>
  executeConfirmed(action, { user: presser, app, where, confirmationId: action.id });

/** A pressed button, from any platform. `user` is undefined for someone not on the allow-list. */
export async function handleButton(action: string, ctx: { user: ChatUser | undefined; app: CommandHost; where: string; onAccepted?: (toast: string) => void }): Promise<PressOutcome> {
  try {
    return await ctx.app.chat.press(action, ctx.user, ctx.where, confirmedRunner(ctx.app), ctx.onAccepted);
  } catch (err) {
    ctx.app.log.error("button failed", err);
    return { toast: `That failed: ${errorText(err, ctx.app.redact, 150)}`, alert: true };
  }
}

/** The commands for one host, as the platforms use them (they never import this folder). */
export function commandDispatcher(host: CommandHost): CommandDispatcher {
  const ctx = (call: CommandCall): CommandContext => ({ ...call, app: host });
  return {
    list: () => COMMANDS,
    find: findCommand,
    parseLine: parseCommandLine,
    prepare: (text, call) => prepareCommand(text, ctx(call)),
    execute: (prepared, call) => executeCommand(prepared as Extract<Prepared, { ok: true }>, ctx(call), host.redact),
    handle: (text, call) => handleCommand(text, ctx(call), host.redact),
    press: (action, user, where, onAccepted) => handleButton(action, { user, app: host, where, ...(onAccepted ? { onAccepted } : {}) }),
  };
}
