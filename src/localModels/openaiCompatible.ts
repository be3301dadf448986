// A model on any OpenAI-compatible chat completions endpoint (Ollama's /v1, LM Studio, vLLM,
// llama.cpp's server), as an AI SDK language model the trading agent can call like a router model.
// Free: no payment is ever signed for it. It streams, because @daydreamsai/core always streams.
import type { ModelV2 } from "../agent/scriptedModel.js";

type CallOptions = Parameters<ModelV2["doStream"]>[0];
type StreamResult = Awaited<ReturnType<ModelV2["doStream"]>>;
type StreamPart = StreamResult["stream"] extends ReadableStream<infer P> ? P : never;
type GenerateResult = Awaited<ReturnType<ModelV2["doGenerate"]>>;
type FinishReason = Extract<StreamPart, { type: "finish" }>["finishReason"];

/** The prefix a local model's id carries in the chain, the ledger and recordings: local:NAME. */
export const LOCAL_PREFIX = "local:";
export const isLocalModel = (id: string) => id.startsWith(LOCAL_PREFIX);
export const localName = (id: string) => (isLocalModel(id) ? id.slice(LOCAL_PREFIX.length) : id);

export interface LocalModelSettings {
  /** The endpoint's base, with its /v1 (http://127.0.0.1:11434/v1 for Ollama). */
  baseURL: string;
  /** The model's name on that server (llama3.2, qwen2.5:7b, ...). */
  model: string;
  /** Sent as a Bearer token when set (vLLM --api-key, LM Studio); Ollama ignores it. */
  apiKey?: string;
  fetch?: typeof fetch;
}

interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The AI SDK's prompt as OpenAI chat messages with plain text content (what every such server reads). */
export function toChatMessages(prompt: CallOptions["prompt"]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of prompt) {
    if (m.role === "system") out.push({ role: "system", content: m.content });
    else if (m.role === "user" || m.role === "assistant") {
      const text = m.content.map((p) => (p.type === "text" ? p.text : "")).join("");
      out.push({ role: m.role, content: text });
    }
    // Tool messages: the agent's actions are parsed from the reply text, never sent as tools.
  }
  return out;
}

function finishReason(r: unknown): FinishReason {
  switch (r) {
    case "stop":
      return "stop";
    case "length":
      return "length";
    case "tool_calls":
      return "tool-calls";
    case "content_filter":
      return "content-filter";
    case null:
    case undefined:
      return "unknown";
    default:
      return "other";
  }
}

/** What the server said went wrong, from an OpenAI-style body ({error: {message}}) or Ollama's native one ({error: "..."}). */
export function errorMessage(body: string): string {
  try {
    const v = JSON.parse(body) as { error?: unknown; message?: unknown };
    const e = v.error;
    if (typeof e === "string") return e;
    if (e && typeof e === "object" && typeof (e as { message?: unknown }).message === "string") return (e as { message: string }).message;
    if (typeof v.message === "string") return v.message;
  } catch {
    // Not JSON: the text is the message.
  }
  return body.trim().slice(0, 300);
}

function usageOf(u: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | undefined) {
  return { inputTokens: u?.prompt_tokens, outputTokens: u?.completion_tokens, totalTokens: u?.total_tokens };
}

export function localModel(s: LocalModelSettings): ModelV2 {
  const base = s.baseURL.replace(/\/+$/, "");
  const url = `${base}/chat/completions`;
  const f = s.fetch ?? fetch;
  const modelId = `${LOCAL_PREFIX}${s.model}`;

  const request = async (opts: CallOptions, stream: boolean) => {
    const body: Record<string, unknown> = {
      model: s.model,
      messages: toChatMessages(opts.prompt),
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
      ...(opts.maxOutputTokens !== undefined ? { max_tokens: opts.maxOutputTokens } : {}),
      ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      ...(opts.topP !== undefined ? { top_p: opts.topP } : {}),
      ...(opts.stopSequences?.length ? { stop: opts.stopSequences } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    };
    const headers: Record<string, string> = { "content-type": "application/json", ...(s.apiKey ? { authorization: `Bearer ${s.apiKey}` } : {}) };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = v;
    const res = await f(url, { method: "POST", headers, body: JSON.stringify(body), ...(opts.abortSignal ? { signal: opts.abortSignal } : {}) });
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      const said = errorMessage(text);
      const hint = res.status === 404 && /not found/i.test(said) ? ` (is it pulled? ollama pull ${s.model})` : "";
      // Loaded here, on a failed call: the ai SDK is not loaded by a process that never asks a model.
      const { APICallError } = await import("ai");
      throw new APICallError({
        message: `${modelId}: HTTP ${res.status} ${said}${hint}`,
        url,
        requestBodyValues: body,
        statusCode: res.status,
        responseHeaders: Object.fromEntries(res.headers.entries()),
        responseBody: text,
        isRetryable: res.status === 429 || res.status >= 500,
      });
    }
    return { res, body };
  };

  return {
    specificationVersion: "v2",
    provider: "openai-compatible",
    modelId,
    supportedUrls: {},

    async doGenerate(opts): Promise<GenerateResult> {
      const { res, body } = await request(opts, false);
      const v = (await res.json()) as { choices?: { message?: { content?: string }; finish_reason?: string }[]; usage?: Parameters<typeof usageOf>[0] };
      const choice = v.choices?.[0];
      return {
        content: [{ type: "text", text: choice?.message?.content ?? "" }],
        finishReason: finishReason(choice?.finish_reason),
        usage: usageOf(v.usage),
        warnings: [],
        request: { body },
      };
    },

    async doStream(opts): Promise<StreamResult> {
      const { res, body } = await request(opts, true);
      if (!res.body) throw new Error(`${modelId}: the server answered with no body`);
      const promptChars = (body.messages as ChatMessage[]).reduce((a, m) => a + m.content.length, 0);
      let buffer = "";
      let started = false;
      let finish: FinishReason = "unknown";
      let usage = usageOf(undefined);
      const textId = "0";
      const decoder = new TextDecoder();
      const events = new TransformStream<Uint8Array, StreamPart>({
        start(c) {
          c.enqueue({ type: "stream-start", warnings: [] });
        },
        transform(chunk, c) {
          buffer += decoder.decode(chunk, { stream: true });
          // Server-sent events: one event per blank-line-separated block, its data on "data:" lines.
          for (let cut = buffer.search(/\r?\n\r?\n/); cut >= 0; cut = buffer.search(/\r?\n\r?\n/)) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
            const data = block
              .split(/\r?\n/)
              .filter((l) => l.startsWith("data:"))
              .map((l) => l.slice(5).replace(/^ /, ""))
              .join("\n");
            if (data === "" || data === "[DONE]") continue;
            let v: { error?: unknown; choices?: { delta?: { content?: unknown }; finish_reason?: string | null }[]; usage?: Parameters<typeof usageOf>[0] };
            try {
              v = JSON.parse(data) as typeof v;
            } catch {
              c.enqueue({ type: "error", error: new Error(`${modelId}: a stream event that is not JSON: ${data.slice(0, 120)}`) });
              continue;
            }
            // vLLM and llama.cpp report a failure inside the stream, after the 200.
            if (v.error !== undefined) {
              c.enqueue({ type: "error", error: new Error(`${modelId}: ${errorMessage(data)}`) });
              continue;
            }
            const choice = v.choices?.[0];
            const delta = choice?.delta?.content;
            // A thinking model's reasoning (delta.reasoning) is not the answer: only content is.
            if (typeof delta === "string" && delta !== "") {
              if (!started) {
                started = true;
                c.enqueue({ type: "text-start", id: textId });
              }
              c.enqueue({ type: "text-delta", id: textId, delta });
            }
            if (choice?.finish_reason) finish = finishReason(choice.finish_reason);
            if (v.usage) usage = usageOf(v.usage);
          }
        },
        flush(c) {
          if (started) c.enqueue({ type: "text-end", id: textId });
          // Ollama fits an over-long prompt into its context by dropping messages, silently: the
          // model then answers without the market it was meant to read. Its usage says so: far
          // fewer prompt tokens than the text we sent can be (any tokenizer gives more than one
          // token per 8 characters). Such an answer is refused, whatever it says.
          const read = usage.inputTokens;
          if (read !== undefined && read > 0 && promptChars > 2_000 && read * 8 < promptChars) {
            c.enqueue({ type: "error", error: new Error(`${modelId}: prompt cut by the server's context (${read} of about ${Math.round(promptChars / 4)} tokens read), answer not used; raise it (Ollama: OLLAMA_CONTEXT_LENGTH=8192)`) });
          }
          c.enqueue({ type: "finish", finishReason: finish, usage });
        },
      });
      return { stream: res.body.pipeThrough(events), request: { body }, response: { headers: Object.fromEntries(res.headers.entries()) } };
    },
  };
}
