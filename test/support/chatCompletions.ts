// The OpenAI chat-completions side shared by the router stand-ins (./routerStandIn.ts, the older
// Dreams dialect; ./xgateStandIn.ts, the hosted router's permit sessions): what a request asks, the
// reply a model gives, the faults a model or gateway shows, and the reply on the wire (a JSON body,
// or server-sent events when streaming), including the malformed one.
import type { IncomingMessage, ServerResponse } from "node:http";

export type StandInFault =
  | { kind: "http-500" }
  | { kind: "http-429"; retryAfterSeconds: number }
  /** Never answers (until the client gives up). Before payment by default: a dead model. */
  | { kind: "hang"; afterPayment?: boolean }
  /** Paid, then a reply that is not a valid chat-completions stream or body. */
  | { kind: "malformed" }
  /** Paid, then a well-formed reply whose action breaks the decision schema. */
  | { kind: "schema" }
  /** Answers 402 again to a valid payment: the gateway refuses to take it. */
  | { kind: "402-repeat" };

export interface StandInRequest {
  model: string;
  stream: boolean;
  /** The whole prompt, flattened to text. */
  prompt: string;
  /** Symbols the prompt asks about ("Decide now on BTC/USDT", or a batch list). */
  symbols: string[];
}

export type ReplyFn = (req: StandInRequest) => string;

/** The reply a model gives when the test chose nothing: hold on every symbol asked about. */
export const holdReply = (symbol?: string) =>
  `<response><reasoning>stand-in</reasoning><action_call name="RiskManagement">${JSON.stringify({
    ...(symbol ? { symbol } : {}),
    stance: "hold",
    confidence: 0.6,
    reasons: ["stand-in hold"],
  })}</action_call></response>`;

export const defaultReply: ReplyFn = (req) =>
  req.symbols.length > 1 ? `<response>${req.symbols.map((s) => holdReply(s).replace(/<\/?response>/g, "")).join("")}</response>` : holdReply();

/** The `schema` fault's reply: well-formed, but its action breaks the decision schema. */
export const schemaBreakingReply = `<response><reasoning>all in</reasoning><action_call name="ExecuteTrade">${JSON.stringify({ side: "buy", sizePct: 500, confidence: 3, reasons: [] })}</action_call></response>`;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** USD, as OpenRouter-style gateways report it. */
  cost: number;
}

/** Token counts as the stand-ins estimate them (4 characters a token), with the cost in USD. */
export function usageOf(prompt: string, content: string, costUsd: number): Usage {
  const prompt_tokens = Math.ceil(prompt.length / 4);
  const completion_tokens = Math.ceil(content.length / 4);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens, cost: costUsd };
}

/**
 * Writes a chat completion: a `chat.completion` body, or `chat.completion.chunk` events ending in
 * `[DONE]` when streaming, with the usage in the last chunk; `malformed` cuts it off mid-JSON.
 */
export function writeCompletion(
  res: ServerResponse,
  r: { id: string; model: string; content: string; usage: Usage; stream: boolean; headers?: Record<string, string>; malformed?: boolean },
): void {
  const headers = r.headers ?? {};
  const { id, model, content, usage } = r;
  if (r.malformed) {
    if (r.stream) {
      res.writeHead(200, { "content-type": "text/event-stream", ...headers });
      res.end(`data: {"id":"${id}","choices":[{"delta":{"content":"<response><action_call name=\\"Exec`);
    } else {
      res.writeHead(200, { "content-type": "application/json", ...headers });
      res.end(`{"id":"${id}","choices":[{"message":{"role":"assist`);
    }
    return;
  }
  if (!r.stream) {
    res.writeHead(200, { "content-type": "application/json", ...headers });
    res.end(
      JSON.stringify({
        id,
        object: "chat.completion",
        model,
        provider: "stand-in",
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
        usage,
      }),
    );
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers });
  const chunk = (delta: object, extra: object = {}) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, provider: "stand-in", choices: [{ index: 0, delta, ...extra }] })}\n\n`;
  let out = chunk({ role: "assistant", content: "" });
  for (let i = 0; i < content.length; i += 64) out += chunk({ content: content.slice(i, i + 64) });
  out += `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage })}\n\n`;
  out += "data: [DONE]\n\n";
  res.end(out);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (data += c));
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

export function flattenPrompt(messages: { role: string; content: unknown }[]): string {
  return messages
    .map((m) =>
      typeof m.content === "string"
        ? m.content
        : Array.isArray(m.content)
          ? m.content.map((p: { text?: string }) => p.text ?? "").join("")
          : "",
    )
    .join("\n");
}

/** The symbols a prompt asks about: a batch list, or the agent's "Decide now on X". */
export function symbolsIn(prompt: string): string[] {
  const batch = /Symbols to decide: ([A-Z0-9/, ]+)/.exec(prompt);
  if (batch) return batch[1]!.split(",").map((s) => s.trim()).filter(Boolean);
  const one = /Decide now on ([A-Z0-9]+\/[A-Z0-9]+)/.exec(prompt);
  return one ? [one[1]!] : [];
}
