// A stand-in for Ollama's OpenAI-compatible API (/v1/chat/completions, /v1/models), written from
// Ollama's own source (ollama/ollama, 2026: middleware/openai.go ChatMiddleware and ChatWriter,
// openai/openai.go NewError, toChunk and FinishChunk, server/routes.go ChatHandler and
// streamResponse, server/prompt.go chatPrompt) and its docs/openai.md, not from our client:
//  - a model that is not pulled: 404 {"error":{"message":"model 'NAME' not found","type":"not_found_error","param":null,"code":null}};
//  - a prompt longer than the context: Ollama drops the oldest non-system messages first (truncate
//    is on by default, and /v1 cannot turn it off) but always keeps the last one, silently; the
//    usage's prompt_tokens (cached and evaluated, llm/llama_server.go promptEvalCount) then counts
//    only what was kept. When the last message alone does not fit, llama-server answers 400 and
//    Ollama passes its body on as the message, under "invalid_request_error". (llama.cpp's own
//    server truncates nothing: `truncate: false` answers its 400 body directly, for any prompt too long);
//  - a cold model is loaded by the first request: nothing at all is written (no headers) until the
//    first token, since gin writes the headers with the first chunk of the stream;
//  - streaming: a first chunk with role "assistant", content chunks, a finish chunk with an empty
//    delta, a usage chunk with no choices when stream_options.include_usage, then "data: [DONE]";
//    a thinking model sends its reasoning in delta.reasoning before the content.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface StandInModel {
  /** What the model answers, from the messages it was sent. */
  reply: (messages: { role: string; content: string }[]) => string;
  /** Context window in tokens (Ollama's num_ctx); a token is counted as 4 characters here. */
  numCtx?: number;
  /** A cold start: the first request waits this long before the first token (the model loads). */
  loadMs?: number;
  /** Every request waits this long before the first token. */
  firstTokenMs?: number;
  /** A thinking model's reasoning, streamed before the answer in delta.reasoning. */
  thinking?: string;
  /** false: refuse any prompt over the context with llama-server's 400, as llama.cpp's server does (Ollama truncates). */
  truncate?: boolean;
}

export interface OllamaCall {
  model: string;
  stream: boolean;
  messages: { role: string; content: string }[];
  headers: Record<string, string | string[] | undefined>;
  at: number;
}

const tokens = (s: string) => Math.ceil(s.length / 4);

export class OllamaStandIn {
  readonly calls: OllamaCall[] = [];
  private readonly models = new Map<string, StandInModel & { loaded: boolean }>();
  private server?: Server;
  url = "";

  /** `ollama pull NAME`: a name without a tag is NAME:latest, as Ollama names it. */
  pull(name: string, model: StandInModel): void {
    this.models.set(name.includes(":") ? name : `${name}:latest`, { ...model, loaded: false });
  }

  /** `ollama rm NAME`. */
  remove(name: string): void {
    this.models.delete(name.includes(":") ? name : `${name}:latest`);
  }

  callsTo(name: string): OllamaCall[] {
    return this.calls.filter((c) => c.model === name);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private find(name: string) {
    return this.models.get(name.includes(":") ? name : `${name}:latest`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    if (req.method === "GET" && req.url === "/v1/models") {
      const data = [...this.models.keys()].map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: "library" }));
      return json(res, 200, { object: "list", data });
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "text/plain" });
      return void res.end("404 page not found");
    }
    let body: { model?: string; messages?: { role: string; content: unknown }[]; stream?: boolean; stream_options?: { include_usage?: boolean }; max_tokens?: number };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch (err) {
      return json(res, 400, openaiError(400, (err as Error).message));
    }
    if (!body.messages || body.messages.length === 0) return json(res, 400, openaiError(400, "[] is too short - 'messages'"));
    const name = body.model ?? "";
    if (name === "") return json(res, 400, openaiError(400, "model is required"));
    const messages = body.messages.map((m) => ({ role: m.role, content: typeof m.content === "string" ? m.content : JSON.stringify(m.content) }));
    this.calls.push({ model: name, stream: body.stream === true, messages, headers: { ...req.headers }, at: Date.now() });
    const model = this.find(name);
    if (!model) return json(res, 404, openaiError(404, `model '${name}' not found`));

    // chatPrompt: drop the oldest non-system messages until the prompt fits, but never the last one.
    const numCtx = model.numCtx ?? 4096;
    const system = messages.filter((m) => m.role === "system");
    let kept = messages;
    for (let i = 0; model.truncate !== false && i < messages.length; i++) {
      kept = [...system.filter((m) => messages.indexOf(m) < i), ...messages.slice(i)];
      if (tokens(kept.map((m) => m.content).join("\n")) <= numCtx || i === messages.length - 1) break;
    }
    const promptTokens = tokens(kept.map((m) => m.content).join("\n"));
    if (promptTokens >= numCtx) {
      // llama-server's refusal, passed on by Ollama as the message of a 400.
      const inner = { error: { code: 400, message: `request (${promptTokens} tokens) exceeds the available context size (${numCtx} tokens), try increasing it`, type: "exceed_context_size_error", n_prompt_tokens: promptTokens, n_ctx: numCtx } };
      return model.truncate === false ? json(res, 400, inner) : json(res, 400, openaiError(400, JSON.stringify(inner)));
    }

    const wait = (model.loaded ? 0 : (model.loadMs ?? 0)) + (model.firstTokenMs ?? 0);
    model.loaded = true;
    if (wait > 0) {
      // Nothing is written while the model loads: the client sees no headers yet.
      const gone = await new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), wait);
        res.on("close", () => {
          clearTimeout(t);
          r(true);
        });
      });
      if (gone) return;
    }
    let answer = model.reply(kept);
    let finish = "stop";
    if (body.max_tokens !== undefined && tokens(answer) > body.max_tokens) {
      answer = answer.slice(0, body.max_tokens * 4);
      finish = "length";
    }
    const id = `chatcmpl-${Math.floor(Math.random() * 999)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens(answer), total_tokens: promptTokens + tokens(answer) };
    if (!body.stream) {
      return json(res, 200, { id, object: "chat.completion", created, model: name, system_fingerprint: "fp_ollama", choices: [{ index: 0, message: { role: "assistant", content: answer }, finish_reason: finish }], usage });
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: name, system_fingerprint: "fp_ollama", choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`;
    let first = true;
    const role = () => (first ? ((first = false), { role: "assistant" }) : {});
    if (model.thinking) res.write(chunk({ ...role(), content: "", reasoning: model.thinking }, null));
    // Tokens of a few characters each, as a model streams them.
    for (let i = 0; i < answer.length || first; i += 24) res.write(chunk({ ...role(), content: answer.slice(i, i + 24) }, null));
    res.write(chunk({}, finish));
    if (body.stream_options?.include_usage) res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: name, system_fingerprint: "fp_ollama", choices: [], usage })}\n\n`);
    res.end("data: [DONE]\n\n");
  }
}

function openaiError(status: number, message: string) {
  const type = status === 400 ? "invalid_request_error" : status === 404 ? "not_found_error" : "api_error";
  return { error: { message, type, param: null, code: null } };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body) + "\n");
}
