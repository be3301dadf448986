import type { LanguageModel } from "ai";
import type { Decision } from "../domain/types.js";

export type ModelV2 = Exclude<LanguageModel, string>;
type StreamResult = Awaited<ReturnType<ModelV2["doStream"]>>;
type StreamPart = StreamResult["stream"] extends ReadableStream<infer P> ? P : never;

const usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };

/** Renders a decision as the agent's action call in @daydreamsai/core's XML reply protocol. */
export function decisionToAgentReply(d: Decision): string {
  const thought = `<reasoning>${escapeXml(d.reasons.join(" "))}</reasoning>`;
  let call: string;
  if (d.action === "buy" || d.action === "sell") {
    const args: Record<string, unknown> = { side: d.action, sizePct: d.sizePct, confidence: d.confidence, reasons: d.reasons };
    if (d.stopLossPct !== undefined) args.stopLossPct = d.stopLossPct;
    if (d.takeProfitPct !== undefined) args.takeProfitPct = d.takeProfitPct;
    call = `<action_call name="ExecuteTrade">${JSON.stringify(args)}</action_call>`;
  } else if (d.action === "close") {
    call = `<action_call name="ClosePosition">${JSON.stringify({ confidence: d.confidence, reasons: d.reasons })}</action_call>`;
  } else {
    call = `<action_call name="RiskManagement">${JSON.stringify({ stance: "hold", confidence: d.confidence, reasons: d.reasons })}</action_call>`;
  }
  return `<response>${thought}${call}</response>`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * A language model whose reply is computed in process, not generated. The offline decision engine
 * is served to the agent this way, so it travels the same path as a real model: the agent's
 * prompt, the XML reply, the action's schema and the decision's validation.
 */
export function scriptedModel(modelId: string, reply: () => string): ModelV2 {
  return {
    specificationVersion: "v2",
    provider: "local",
    modelId,
    supportedUrls: {},
    async doGenerate() {
      return { content: [{ type: "text", text: reply() }], finishReason: "stop", usage, warnings: [] };
    },
    async doStream() {
      const text = reply();
      const parts: StreamPart[] = [
        { type: "stream-start", warnings: [] },
        { type: "text-start", id: "0" },
        { type: "text-delta", id: "0", delta: text },
        { type: "text-end", id: "0" },
        { type: "finish", finishReason: "stop", usage },
      ];
      return {
        stream: new ReadableStream<StreamPart>({
          start(controller) {
            for (const p of parts) controller.enqueue(p);
            controller.close();
          },
        }),
      };
    },
  };
}
