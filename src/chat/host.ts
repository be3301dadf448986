// What a chat platform (console, Telegram, Discord) is given by the composition root: the
// commands to serve, the chat layer's shared parts, where notices come from, and a few settings.
import type { Config } from "../config/config.js";
import type { AgentMode, MarketSymbol } from "../domain/types.js";
import type { Ledger } from "../ledger/ledger.js";
import type { Log } from "../log.js";
import type { NotifierHub } from "./notifier.js";
import type { ChatServices } from "./services.js";
import type { CommandDispatcher } from "./types.js";

export interface ChatHost {
  commands: CommandDispatcher;
  chat: ChatServices;
  notifier: NotifierHub;
  log: Log;
  redact(text: string): string;
  symbols: MarketSymbol[];
  /** Calls `listener` whenever `symbols` changed (a /symbols here or on another process); returns what unsubscribes. */
  onSymbolsChanged?(listener: () => void): () => void;
  mode: Pick<AgentMode, "trading">;
  config: { chat: Config["chat"]; redis: Pick<Config["redis"], "dataDir"> };
  services: { clock: () => number; ledger: Ledger };
}
