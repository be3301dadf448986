import type { Redis } from "ioredis";
import type { Config } from "../config/config.js";
import type { Log } from "../log.js";
import { ROLE_RANK, type ChatUser, type CommandReply, type Platform, type PressOutcome } from "./types.js";

export type { PressOutcome } from "./types.js";
import { AccessControl } from "./access.js";
import { AuditLog, type AuditResult } from "./audit.js";
import { ConfirmationStore, parseButtonAction, type MessageRef, type PendingAction } from "./confirmations.js";
import { DeliveryClaims } from "./deliveries.js";
import { ChatMoves } from "./chatMoves.js";

/** How a platform edits a message it posted (to show a confirmation's outcome, without buttons). */
export type MessageEditor = (ref: MessageRef, text: string) => Promise<void>;

/** What an approval does when it is answered or runs out; returns the outcome in words. */
export type ApprovalHandler = (action: PendingAction, answer: "approved" | "rejected" | "expired", by?: ChatUser) => Promise<string>;

/** Runs a confirmed command as the person who pressed (the registry does, so roles and the audit log apply). */
export type ConfirmedRunner = (action: PendingAction, presser: ChatUser, where: string) => Promise<CommandReply>;

/** What the chat layer's shared parts are built from. */
export interface ChatServicesDeps {
  redis: Redis;
  chat: Config["chat"];
  clock: () => number;
  log: Log;
}


const clockTime = (t: number) => new Date(t).toISOString().slice(11, 19) + " UTC";
const firstLine = (s: string) => s.split("\n")[0]!;

/**
 * The chat layer's shared parts for one app: who may do what, the audit log, and the pending
 * confirmations with the platforms that can edit their messages. One per app (the composition
 * root builds it), whatever the number of platforms, so a button pressed on Telegram also updates
 * its copy on Discord.
 */
export class ChatServices {
  /** The one a host carries. */
  static of(host: { chat: ChatServices }): ChatServices {
    return host.chat;
  }

  readonly access: AccessControl;
  readonly audit: AuditLog;
  readonly confirmations: ConfirmationStore;
  /** Incoming updates some frontend already took (Telegram redelivers what a dead one never confirmed). */
  readonly deliveries: DeliveryClaims;
  /** Chats that moved to a new id (a Telegram group that became a supergroup). */
  readonly moves: ChatMoves;
  approvalHandler: ApprovalHandler | undefined;
  private readonly editors = new Map<Platform, MessageEditor>();
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> = Promise.resolve();

  private readonly log: Log;

  constructor(deps: ChatServicesDeps) {
    this.log = deps.log;
    this.access = new AccessControl(deps.redis, deps.chat);
    this.audit = new AuditLog(deps.redis, deps.clock);
    this.confirmations = new ConfirmationStore(deps.redis, deps.clock);
    this.deliveries = new DeliveryClaims(deps.redis);
    this.moves = new ChatMoves(deps.redis);
  }

  addEditor(platform: Platform, editor: MessageEditor): void {
    this.editors.set(platform, editor);
  }

  /** Edits every message that carried this action's buttons; one platform failing does not stop the others. */
  async finish(action: PendingAction, text: string): Promise<void> {
    const refs = await this.confirmations.refs(action.id);
    await Promise.all(
      refs.map(async (ref) => {
        try {
          await this.editors.get(ref.platform)?.(ref, text);
        } catch (err) {
          this.log.warn(`could not edit the ${ref.platform} message of confirmation ${action.id}`, err);
        }
      }),
    );
  }

  private async auditAction(action: PendingAction, result: AuditResult, detail: string, by?: ChatUser, where?: string): Promise<void> {
    await this.audit.record({
      platform: by?.platform ?? action.requester?.platform ?? "console",
      userId: by?.id ?? action.requester?.id ?? "agent",
      user: by?.name ?? action.requester?.name ?? "the agent",
      role: by?.role ?? "none",
      where: where ?? action.where ?? "",
      command: action.line,
      result,
      detail,
    });
  }

  /**
   * A button press (or /confirm, /cancel). Only the person who asked, or someone with the action's
   * role, may answer; the first answer wins, even against a press racing it on another platform.
   * `onAccepted` hears the presser's answer as soon as the press has won, before the confirmed work
   * runs (a refill may wait a minute for its receipt): a platform that must acknowledge a press
   * quickly (Telegram's callback answer) answers then, and edits the message when the work is done.
   */
  async press(buttonAction: string, presser: ChatUser | undefined, where: string, run: ConfirmedRunner, onAccepted?: (toast: string) => void): Promise<PressOutcome> {
    const parsed = parseButtonAction(buttonAction);
    if (!parsed) return { toast: "This button is not one of mine.", alert: true };
    const found = await this.confirmations.get(parsed.id);
    if (!found) return { toast: "Nothing is waiting under that id: it is unknown or too old.", alert: true };
    const { action } = found;
    if (!presser) return { toast: "Sorry, you are not on this bot's allow-list, so you cannot answer this. Nothing was changed.", alert: true };
    const isRequester = action.requester?.platform === presser.platform && action.requester.id === presser.id;
    if (!isRequester && ROLE_RANK[presser.role] < ROLE_RANK[action.pressRole]) {
      const who = action.requester ? `${action.requester.name} (who asked) or an ${action.pressRole}` : `a ${action.pressRole} or above`;
      return { toast: `Only ${who} can answer this. Nothing was changed.`, alert: true };
    }

    // Two people, not one twice: the asker's own Approve never counts as the second.
    if (action.secondApprover && parsed.yes && isRequester) {
      return { toast: `You asked for this, so it needs another admin's approval (APPROVALS=2); your own press does not count. You can still cancel it. Nothing was changed.`, alert: true };
    }
    const r = await this.confirmations.resolve(action.id, parsed.yes ? "confirmed" : "cancelled", presser.name);
    if (r.result === "missing") return { toast: "Nothing is waiting under that id: it is unknown or too old.", alert: true };
    if (r.result === "already") {
      const how = r.state === "expired" ? "expired" : `already ${r.state === "confirmed" ? (action.kind === "approval" ? "approved" : "confirmed") : action.kind === "approval" ? "rejected" : "cancelled"}${r.by ? ` by ${r.by}` : ""}`;
      return { toast: `Too late: this was ${how}. Nothing more was done.`, alert: true };
    }
    if (r.result === "expired") {
      const final = await this.expire(action);
      return { toast: `Too late: this expired at ${clockTime(action.expiresAt)}. Nothing was done.`, alert: true, final };
    }

    const approval = action.kind === "approval" || action.secondApprover === true;
    const verdict = parsed.yes ? (approval ? "✅ Approved" : "✅ Confirmed") : approval ? "✖ Rejected" : "✖ Cancelled";
    onAccepted?.(`${verdict} by ${presser.name}.${parsed.yes || action.kind === "approval" ? " Working on it…" : " Nothing was done."}`);
    let outcome: string;
    if (action.kind === "approval") {
      outcome = this.approvalHandler ? await this.approvalHandler(action, parsed.yes ? "approved" : "rejected", presser) : "Approval mode is off in this process: nothing was done.";
      outcome = `${parsed.yes ? "✅ Approved" : "✖ Rejected"} by ${presser.name}.\n${outcome}`;
    } else if (parsed.yes) {
      const reply = await run(action, presser, where);
      const word = action.secondApprover ? "Approved" : "Confirmed";
      outcome = `${reply.error ? `⚠ ${word}` : `✅ ${word}`} by ${presser.name}${action.secondApprover && action.requester ? ` (asked by ${action.requester.name})` : ""}.\n${reply.text}`;
    } else {
      outcome = `✖ ${action.secondApprover ? "Rejected" : "Cancelled"} by ${presser.name}. Nothing was done.`;
    }
    // Who asked and who approved, both in the record.
    const asked = action.secondApprover && action.requester ? `asked by ${action.requester.name} (${action.requester.platform} ${action.requester.id}), ${parsed.yes ? "approved" : "rejected"} by ${presser.name} (${presser.platform} ${presser.id}): ` : "";
    await this.auditAction(action, parsed.yes ? "confirmed" : "cancelled", asked + firstLine(outcome.split("\n")[1] ?? outcome), presser, where);
    const final = `${action.prompt}\n\n${outcome}`;
    await this.finish(action, final);
    return { toast: firstLine(outcome), alert: false, final };
  }

  private async expire(action: PendingAction): Promise<string> {
    let outcome = action.kind === "approval" ? "Not approved in time: no order." : action.secondApprover ? "No second admin approved in time: cancelled, nothing was done." : "Nobody confirmed in time: nothing was done.";
    if (action.kind === "approval" && this.approvalHandler) outcome = await this.approvalHandler(action, "expired");
    await this.auditAction(action, "expired", outcome);
    const final = `${action.prompt}\n\n⌛ Expired at ${clockTime(action.expiresAt)}. ${outcome}`;
    await this.finish(action, final);
    return final;
  }

  /** Expires whatever ran out unanswered, and edits its messages. */
  async sweep(): Promise<number> {
    const run = this.sweeping.then(async () => {
      const due = await this.confirmations.expireDue();
      for (const action of due) await this.expire(action);
      return due.length;
    });
    this.sweeping = run.catch(() => 0);
    return run;
  }

  startSweeper(everyMs = 1000): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      this.sweep().catch((err: unknown) => this.log.error("confirmation sweep", err));
    }, everyMs);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.sweeping;
  }
}
