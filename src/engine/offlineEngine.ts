// The built-in offline engine: deterministic, free, the last resort when no model can answer.
// Its rules are a strategy file like any user's (strategies/offline.ts); the agent runs them here
// in process, without a thread, because they are the agent's own code and cannot hang.
export { decideOffline, OFFLINE_RULES, type OfflineLimits, type OfflineRules } from "../../strategies/offline.js";

/** Model id recorded on decisions made without an LLM. */
export const OFFLINE_MODEL_ID = "offline-engine";
