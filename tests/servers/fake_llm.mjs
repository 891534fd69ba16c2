// tests/servers/fake_llm.mjs -- a loopback fake LLM server for the rlaif.llm tests and
// benchmark. Plain Node 20 (http module only, no npm packages).
//
// It speaks every backend's wire format (OpenAI chat/completions incl. SSE and n>1,
// llama.cpp /completion incl. the old `probs` format, Ollama /api/generate and
// /api/chat with NDJSON, TGI /generate and /generate_stream, Gemini generateContent
// and streamGenerateContent?alt=sse, Anthropic /v1/messages) with deterministic
// answers, and injects faults on demand through directives written in the prompt:
//
//   "[[fail=429,times=2,ra_ms=200]] hello"  first 2 attempts get 429 + retry-after-ms
//   fail=CODE       status to answer with (error body in the backend's own shape)
//   times=N         how many attempts of this prompt are affected (default: all)
//   ra=S ra_ms=MS ra_date=S should_retry=true|false retry_delay=S (Gemini RetryInfo)
//   body=quota|logprobs|overloaded|echo_key   special error bodies (echo_key repeats the
//                   Authorization header in the message, as some servers do)
//   drop            close the connection without answering
//   cut             send half the body with the full Content-Length, then close
//   truncate        a 200 whose JSON body is cut in half (clean end of response)
//   garbage         a 200 whose body is not JSON
//   empty           a 200 whose `choices` is empty (OpenAI formats)
//   midstream       a stream that sends one chunk, then an error object (HTTP 200)
//   early           a stream that ends without its end marker
//   stall=MS        send the headers, then nothing for MS milliseconds
//   delay=MS        answer after MS milliseconds
//   nospace crlf comments   SSE framing variants (data: without space, CRLF, ": ping")
//   legacy          llama.cpp: the pre-2024 {content, probs:[{tok_str, prob}]} format
//   close           answer with "Connection: close" (the client must open a new one)
//   idle_close=MS   answer normally, then close the connection MS ms later, while the
//                   client keeps it idle for reuse
//
// Attempts are counted per prompt text. Every request is appended to --log as one
// JSON line {t, method, path, headers, body} so that tests can check retry counts,
// delays and that the API key was sent as a header.
//
// Usage: node fake_llm.mjs [--port 0] [--port-file F] [--log F] [--delay MS] [--ttl S] [--workers N]
//
// --workers N (benchmarks only) serves from N node:cluster workers sharing the port, so
// that the server is not the bottleneck of a 256-way benchmark on a small machine. Fault
// directives count attempts per worker, so the tests always run with one process.
import cluster from "node:cluster";
import http from "node:http";
import fs from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith("--") ? all[i + 1] : "1"]);
    return acc;
  }, []),
);
const PORT = Number(args.port || 0);
const LOG = args.log || null;
const FIXED_DELAY = Number(args.delay || 0);
const TTL = Number(args.ttl || 900);

const attempts = new Map();
let counter = 0;

// ---- the deterministic answer ----

const WORDS = ["1", " is", " better", "."];
const FILLERS = ["2", "3", " the", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q"];

function answer(maxTokens, k, choice, impossible) {
  const n = Math.max(0, Math.min(maxTokens ?? WORDS.length, WORDS.length));
  const toks = [];
  for (let p = 0; p < n; p++) {
    const token = p === 0 && choice % 2 === 1 ? "2" : WORDS[p];
    const lp = -0.1 * (p + 1);
    const top = [{ token, logprob: lp }];
    let f = 0;
    while (top.length < k) {
      const alt = FILLERS[f++];
      if (alt === token) continue;
      // the last alternative is "impossible": the backend's sentinel for -inf
      const v = top.length === k - 1 && k >= 3 ? impossible : -2 - top.length;
      top.push({ token: alt, logprob: v });
    }
    toks.push({ token, logprob: lp, top: top.slice(0, k) });
  }
  return { text: toks.map((t) => t.token).join(""), toks, finish: n < WORDS.length ? "length" : "stop" };
}

const bytesOf = (s) => [...Buffer.from(s, "utf8")];

// ---- helpers ----

function promptText(body) {
  if (typeof body.prompt === "string") return body.prompt;
  if (typeof body.inputs === "string") return body.inputs;
  if (Array.isArray(body.messages) && body.messages.length) {
    const m = body.messages[body.messages.length - 1];
    return typeof m.content === "string" ? m.content : JSON.stringify(m.content);
  }
  if (Array.isArray(body.contents) && body.contents.length) {
    const c = body.contents[body.contents.length - 1];
    return (c.parts || []).map((p) => p.text || "").join("");
  }
  return "";
}

function directives(text) {
  const d = {};
  const m = /\[\[([^\]]*)\]\]/.exec(text);
  if (!m) return d;
  for (const part of m[1].split(",")) {
    const [k, v] = part.split("=");
    if (k.trim()) d[k.trim()] = v === undefined ? true : v.trim();
  }
  return d;
}

function formatOf(path) {
  if (path.endsWith("/chat/completions")) return "openai-chat";
  if (path.endsWith("/completions")) return "openai-completions";
  if (path === "/completion") return "llamacpp";
  if (path === "/api/generate" || path === "/api/chat") return "ollama";
  if (path === "/generate" || path === "/generate_stream") return "tgi";
  if (path.includes(":generateContent") || path.includes(":streamGenerateContent")) return "gemini";
  if (path.endsWith("/v1/messages")) return "anthropic";
  return null;
}

function errorBody(fmt, status, kind, d, auth) {
  let msg = status === 429 ? "Rate limit reached, please try again later" : `fake failure ${status}`;
  if (kind === "echo_key") msg = `Incorrect API key provided: ${auth}`;
  if (kind === "quota") msg = "You exceeded your current quota, please check your plan and billing details.";
  if (kind === "logprobs") msg = "You are not allowed to request logprobs from this model";
  if (kind === "overloaded") msg = "Overloaded";
  switch (fmt) {
    case "ollama": return { error: msg };
    case "tgi": return { error: msg, error_type: status === 429 ? "overloaded" : "generation" };
    case "llamacpp": return { error: { code: status, message: msg, type: "server_error" } };
    case "gemini": {
      const e = { code: status, message: msg, status: status === 429 ? "RESOURCE_EXHAUSTED" : "INTERNAL", details: [] };
      if (kind === "quota") {
        e.message = "Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests_per_model_per_day";
        e.details.push({ "@type": "type.googleapis.com/google.rpc.QuotaFailure",
          violations: [{ quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier" }] });
      }
      if (d.retry_delay) e.details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${d.retry_delay}s` });
      return { error: e };
    }
    case "anthropic": {
      const e = { type: kind === "overloaded" || status === 529 ? "overloaded_error" : status === 429 ? "rate_limit_error" : "api_error", message: msg };
      if (kind === "quota") e.details = { error_code: "enforced_spend_limit_reached" };
      return { type: "error", error: e, request_id: "req_fake" };
    }
    default:
      return { error: { message: msg, type: kind === "quota" ? "insufficient_quota" : "invalid_request_error",
        param: null, code: kind === "quota" ? "insufficient_quota" : status === 429 ? "rate_limit_exceeded" : null } };
  }
}

// ---- per-format bodies: whole responses and stream events ----

function usageCounts(body, n, toks) {
  return { prompt: Math.ceil(promptText(body).length / 4) + 1, completion: toks.length * n };
}

function buildOpenAI(fmt, body, k) {
  const n = body.n || 1;
  const chat = fmt === "openai-chat";
  const choices = [];
  let ans;
  for (let c = 0; c < n; c++) {
    ans = answer(body.max_tokens, k, c, -9999.0);
    let logprobs = null;
    if (chat && body.logprobs) {
      logprobs = { content: ans.toks.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytesOf(t.token),
        top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytesOf(a.token) })) })) };
    } else if (!chat && typeof body.logprobs === "number") {
      let off = promptText(body).length;
      logprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
      for (const t of ans.toks) {
        logprobs.tokens.push(t.token);
        logprobs.token_logprobs.push(t.logprob);
        logprobs.top_logprobs.push(Object.fromEntries(t.top.map((a) => [a.token, a.logprob])));
        logprobs.text_offset.push(off);
        off += t.token.length;
      }
    }
    choices.push(chat
      ? { index: c, message: { role: "assistant", content: ans.text, refusal: null }, logprobs, finish_reason: ans.finish }
      : { text: ans.text, index: c, logprobs, finish_reason: ans.finish });
  }
  const u = usageCounts(body, n, ans.toks);
  return { id: `${chat ? "chatcmpl" : "cmpl"}-fake${++counter}`, object: chat ? "chat.completion" : "text_completion",
    created: 1700000000, model: body.model, choices,
    usage: { prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion } };
}

function streamOpenAI(fmt, body, k) {
  const n = body.n || 1;
  const chat = fmt === "openai-chat";
  const id = `${chat ? "chatcmpl" : "cmpl"}-fake${++counter}`;
  const base = { id, object: chat ? "chat.completion.chunk" : "text_completion", created: 1700000000, model: body.model };
  const events = [];
  const answers = [];
  for (let c = 0; c < n; c++) answers.push(answer(body.max_tokens, k, c, -9999.0));
  if (chat) for (let c = 0; c < n; c++) {
    events.push({ ...base, choices: [{ index: c, delta: { role: "assistant", content: "" },
      logprobs: body.logprobs ? { content: [], refusal: null } : null, finish_reason: null }] });
  }
  const len = answers[0].toks.length;
  for (let p = 0; p < len; p++) {
    for (let c = 0; c < n; c++) {   // choices interleave, as OpenAI does with n > 1
      const t = answers[c].toks[p];
      if (chat) {
        const lp = body.logprobs ? { content: [{ token: t.token, logprob: t.logprob, bytes: bytesOf(t.token),
          top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytesOf(a.token) })) }],
          refusal: null } : null;
        events.push({ ...base, choices: [{ index: c, delta: { content: t.token }, logprobs: lp, finish_reason: null }] });
      } else {
        const lp = typeof body.logprobs === "number" ? { tokens: [t.token], token_logprobs: [t.logprob],
          top_logprobs: [Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))], text_offset: [0] } : null;
        events.push({ ...base, choices: [{ text: t.token, index: c, logprobs: lp, finish_reason: null }] });
      }
    }
  }
  for (let c = 0; c < n; c++) {
    events.push({ ...base, choices: [chat ? { index: c, delta: {}, logprobs: null, finish_reason: answers[c].finish }
      : { text: "", index: c, logprobs: null, finish_reason: answers[c].finish }] });
  }
  if (body.stream_options && body.stream_options.include_usage) {
    const u = usageCounts(body, n, answers[0].toks);
    events.push({ ...base, choices: [], usage: { prompt_tokens: u.prompt, completion_tokens: u.completion,
      total_tokens: u.prompt + u.completion } });
  }
  return { events, done: "[DONE]" };
}

function llamaEntry(t) {
  return { id: 100 + t.token.length, token: t.token, bytes: bytesOf(t.token), logprob: t.logprob,
    top_logprobs: t.top.map((a, i) => ({ id: 200 + i, token: a.token, bytes: bytesOf(a.token), logprob: a.logprob })) };
}

function legacyEntry(t) {
  return { content: t.token, probs: t.top.map((a) => ({ tok_str: a.token, prob: Math.exp(a.logprob) })) };
}

function buildLlama(body, d) {
  const k = body.n_probs || 0;
  const ans = answer(body.n_predict, k, 0, -9999.0);
  const r = { content: ans.text, model: "fake-gguf", tokens_evaluated: Math.ceil(promptText(body).length / 4) + 1,
    tokens_predicted: ans.toks.length, stop: true, stop_type: ans.finish === "length" ? "limit" : "eos" };
  if (k > 0) r.completion_probabilities = ans.toks.map((t) => (d.legacy ? legacyEntry(t) : llamaEntry(t)));
  return r;
}

function streamLlama(body, d) {
  const k = body.n_probs || 0;
  const ans = answer(body.n_predict, k, 0, -9999.0);
  const events = ans.toks.map((t) => {
    const e = { content: t.token, stop: false };
    if (k > 0) e.completion_probabilities = [d.legacy ? legacyEntry(t) : llamaEntry(t)];
    return e;
  });
  events.push({ content: "", stop: true, stop_type: ans.finish === "length" ? "limit" : "eos", model: "fake-gguf",
    tokens_evaluated: 3, tokens_predicted: ans.toks.length });
  return { events, done: null };
}

function ollamaLp(t) {
  return { token: t.token, logprob: t.logprob, bytes: bytesOf(t.token),
    top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytesOf(a.token) })) };
}

function buildOllama(path, body) {
  const k = body.logprobs ? body.top_logprobs || 0 : 0;
  const ans = answer(body.options && body.options.num_predict, k, 0, -9999.0);
  const r = { model: body.model, created_at: "2025-01-01T00:00:00Z", done: true, done_reason: ans.finish,
    prompt_eval_count: Math.ceil(promptText(body).length / 4) + 1, eval_count: ans.toks.length };
  if (path === "/api/chat") r.message = { role: "assistant", content: ans.text };
  else r.response = ans.text;
  if (body.logprobs) r.logprobs = ans.toks.map(ollamaLp);
  return r;
}

function streamOllama(path, body) {
  const k = body.logprobs ? body.top_logprobs || 0 : 0;
  const ans = answer(body.options && body.options.num_predict, k, 0, -9999.0);
  const events = ans.toks.map((t) => {
    const e = { model: body.model, created_at: "2025-01-01T00:00:00Z", done: false };
    if (path === "/api/chat") e.message = { role: "assistant", content: t.token };
    else e.response = t.token;
    if (body.logprobs) e.logprobs = [ollamaLp(t)];
    return e;
  });
  const last = { model: body.model, created_at: "2025-01-01T00:00:00Z", done: true, done_reason: ans.finish,
    prompt_eval_count: 3, eval_count: ans.toks.length };
  if (path === "/api/chat") last.message = { role: "assistant", content: "" };
  else last.response = "";
  events.push(last);
  return { events, done: null };
}

const tgiTok = (t, i) => ({ id: 300 + i, text: t.token, logprob: t.logprob, special: false });
const tgiTop = (t) => t.top.map((a, i) => ({ id: 400 + i, text: a.token, logprob: a.logprob, special: false }));

function buildTgi(body) {
  const p = body.parameters || {};
  const k = p.top_n_tokens || 0;
  const ans = answer(p.max_new_tokens, k, 0, -9999.0);
  return { generated_text: ans.text, details: { finish_reason: ans.finish === "length" ? "length" : "eos_token",
    generated_tokens: ans.toks.length, seed: null, prefill: [], tokens: ans.toks.map(tgiTok),
    top_tokens: k > 0 ? ans.toks.map(tgiTop) : null } };
}

function streamTgi(body) {
  const p = body.parameters || {};
  const k = p.top_n_tokens || 0;
  const ans = answer(p.max_new_tokens, k, 0, -9999.0);
  const events = ans.toks.map((t, i) => {
    const e = { index: i + 1, token: tgiTok(t, i), generated_text: null, details: null };
    if (k > 0) e.top_tokens = tgiTop(t);
    return e;
  });
  const last = events[events.length - 1];
  if (last) {
    last.generated_text = ans.text;
    last.details = { finish_reason: ans.finish === "length" ? "length" : "eos_token",
      generated_tokens: ans.toks.length, seed: null };
  }
  return { events, done: null, nospace: true };
}

function geminiCand(t) {
  const c = { token: t.token };
  if (t.logprob !== 0) c.logProbability = t.logprob;   // proto3 JSON omits zeros
  return c;
}

function buildGemini(body, stream) {
  const g = body.generationConfig || {};
  const k = g.responseLogprobs ? g.logprobs || 0 : 0;
  const n = g.candidateCount || 1;
  const cands = [];
  let ans;
  for (let c = 0; c < n; c++) {
    ans = answer(g.maxOutputTokens, k, c, -1.2676506e30);
    const cand = { content: { parts: [{ text: ans.text }], role: "model" },
      finishReason: ans.finish === "length" ? "MAX_TOKENS" : "STOP", index: c };
    if (g.responseLogprobs) {
      cand.avgLogprobs = -0.2;
      cand.logprobsResult = { chosenCandidates: ans.toks.map(geminiCand),
        topCandidates: ans.toks.map((t) => ({ candidates: t.top.map(geminiCand) })) };
    }
    cands.push(cand);
  }
  const usageMetadata = { promptTokenCount: Math.ceil(promptText(body).length / 4) + 1,
    candidatesTokenCount: ans.toks.length * n, totalTokenCount: 0 };
  if (!stream) return { candidates: cands, usageMetadata, modelVersion: "gemini-fake-001", responseId: `g${++counter}` };
  const events = ans.toks.map((t) => ({ candidates: [{ content: { parts: [{ text: t.token }], role: "model" }, index: 0 }],
    modelVersion: "gemini-fake-001" }));
  events.push({ candidates: [{ content: { parts: [{ text: "" }], role: "model" }, index: 0,
    finishReason: ans.finish === "length" ? "MAX_TOKENS" : "STOP" }], usageMetadata, modelVersion: "gemini-fake-001" });
  return { events, done: null };
}

function buildAnthropic(body) {
  const ans = answer(body.max_tokens, 0, 0, -9999.0);
  return { id: `msg_fake${++counter}`, type: "message", role: "assistant", model: body.model,
    content: [{ type: "text", text: ans.text }], stop_reason: ans.finish === "length" ? "max_tokens" : "end_turn",
    stop_sequence: null, usage: { input_tokens: Math.ceil(promptText(body).length / 4) + 1, output_tokens: ans.toks.length } };
}

function streamAnthropic(body) {
  const ans = answer(body.max_tokens, 0, 0, -9999.0);
  const ev = (event, data) => ({ event, data });
  const events = [
    ev("message_start", { type: "message_start", message: { id: `msg_fake${++counter}`, type: "message",
      role: "assistant", model: body.model, content: [], usage: { input_tokens: 3, output_tokens: 1 } } }),
    ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    ev("ping", { type: "ping" }),
  ];
  for (const t of ans.toks) events.push(ev("content_block_delta", { type: "content_block_delta", index: 0,
    delta: { type: "text_delta", text: t.token } }));
  events.push(ev("content_block_stop", { type: "content_block_stop", index: 0 }));
  events.push(ev("message_delta", { type: "message_delta", delta: { stop_reason: ans.finish === "length" ? "max_tokens" : "end_turn" },
    usage: { output_tokens: ans.toks.length } }));
  events.push(ev("message_stop", { type: "message_stop" }));
  return { events, done: null, named: true };
}

// ---- sending ----

function sendStream(res, fmt, s, d) {
  const ndjson = fmt === "ollama";
  res.writeHead(200, { "content-type": ndjson ? "application/x-ndjson" : "text/event-stream",
    "x-request-id": `req_${++counter}` });
  const nl = d.crlf ? "\r\n" : "\n";
  const sp = s.nospace || d.nospace ? "" : " ";
  const frame = (e) => {
    if (ndjson) return JSON.stringify(e) + "\n";
    let out = d.comments ? `: ping${nl}` : "";
    if (s.named) out += `event: ${e.event}${nl}data:${sp}${JSON.stringify(e.data)}${nl}${nl}`;
    else out += `data:${sp}${JSON.stringify(e)}${nl}${nl}`;
    return out;
  };
  let events = s.events;
  if (d.midstream) {
    const err = fmt === "ollama" ? { error: "an error was encountered while running the model" }
      : fmt === "anthropic" ? { event: "error", data: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } } }
      : fmt === "tgi" ? { error: "Request failed during generation", error_type: "generation" }
      : { error: { message: "The server had an error while processing your request", type: "server_error", param: null, code: null } };
    res.end(frame(events[0]) + frame(err) + (s.done && !ndjson ? `data:${sp}${s.done}${nl}${nl}` : ""));
    return;
  }
  if (d.early) {
    res.end(events.slice(0, Math.max(1, events.length - 2)).map(frame).join(""));
    return;
  }
  let out = events.map(frame).join("");
  if (s.done) out += `data:${sp}${s.done}${nl}${nl}`;
  res.end(out);
}

function handle(req, res, raw) {
  // the URL parser only when there is something to parse (it is costly at 5,000 req/s)
  const url = /[?%#]/.test(req.url) ? new URL(req.url, "http://x") : null;
  const path = url ? url.pathname : req.url;
  if (LOG) {
    const entry = { t: Date.now() / 1000, method: req.method, path: req.url,
      headers: { authorization: req.headers.authorization, "x-api-key": req.headers["x-api-key"],
        "x-goog-api-key": req.headers["x-goog-api-key"], "anthropic-version": req.headers["anthropic-version"],
        "content-type": req.headers["content-type"] }, body: raw };
    fs.appendFileSync(LOG, JSON.stringify(entry) + "\n");
  }
  if (path === "/_reset") {
    attempts.clear();
    if (LOG) fs.writeFileSync(LOG, "");
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
    return;
  }
  const fmt = formatOf(path);
  let body;
  try { body = JSON.parse(raw || "{}"); } catch {
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "invalid JSON body", type: "invalid_request_error" } }));
    return;
  }
  if (!fmt) {
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: `no route ${path}`, type: "not_found_error" } }));
    return;
  }
  const text = promptText(body);
  const d = directives(text);
  const n = (attempts.get(text) || 0) + 1;
  attempts.set(text, n);
  const active = d.times === undefined || n <= Number(d.times);
  const go = () => respond(req, res, fmt, path, url, body, active ? d : {});
  const delay = Number(d.delay || 0) + FIXED_DELAY;
  if (delay > 0) setTimeout(go, delay); else go();
}

function respond(req, res, fmt, path, url, body, d) {
  if (d.drop) { req.socket.destroy(); return; }
  if (d.fail) {
    const status = Number(d.fail);
    const h = { "content-type": "application/json", "x-request-id": `req_${++counter}` };
    if (d.ra !== undefined) h["retry-after"] = d.ra;
    if (d.ra_ms !== undefined) h["retry-after-ms"] = d.ra_ms;
    if (d.ra_date !== undefined) h["retry-after"] = new Date(Date.now() + 1000 * Number(d.ra_date)).toUTCString();
    if (d.should_retry !== undefined) h["x-should-retry"] = d.should_retry;
    res.writeHead(status, h);
    res.end(JSON.stringify(errorBody(fmt, status, d.body, d, String(req.headers.authorization || ""))));
    return;
  }
  const stream = fmt === "ollama" ? body.stream !== false
    : fmt === "gemini" ? path.includes(":streamGenerateContent") : !!(body.stream || path === "/generate_stream");
  if (d.stall) {
    res.writeHead(200, { "content-type": stream ? "text/event-stream" : "application/json" });
    res.write(stream ? ": waiting\n\n" : "{");
    setTimeout(() => res.end(), Number(d.stall));
    return;
  }
  if (stream) {
    let s;
    if (fmt.startsWith("openai")) s = streamOpenAI(fmt, body, fmt === "openai-chat" ? body.top_logprobs || 0 : body.logprobs || 0);
    else if (fmt === "llamacpp") s = streamLlama(body, d);
    else if (fmt === "ollama") s = streamOllama(path, body);
    else if (fmt === "tgi") s = streamTgi(body);
    else if (fmt === "gemini") s = buildGemini(body, true);
    else s = streamAnthropic(body);
    sendStream(res, fmt, s, d);
    return;
  }
  let r;
  if (fmt.startsWith("openai")) r = buildOpenAI(fmt, body, fmt === "openai-chat" ? body.top_logprobs || 0 : body.logprobs || 0);
  else if (fmt === "llamacpp") r = buildLlama(body, d);
  else if (fmt === "ollama") r = buildOllama(path, body);
  else if (fmt === "tgi") r = buildTgi(body);
  else if (fmt === "gemini") r = buildGemini(body, false);
  else r = buildAnthropic(body);
  let out = JSON.stringify(r);
  if (d.garbage) out = "<html>502 Bad Gateway (but with status 200)</html>";
  if (d.empty && fmt.startsWith("openai")) out = JSON.stringify({ ...r, choices: [] });
  if (d.truncate) {
    res.writeHead(200, { "content-type": "application/json", "x-request-id": `req_${++counter}` });
    res.end(out.slice(0, out.length >> 1));
    return;
  }
  if (d.cut) {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
    res.write(out.slice(0, out.length >> 1));
    setTimeout(() => req.socket.destroy(), 20);
    return;
  }
  const h = { "content-type": "application/json", "content-length": Buffer.byteLength(out),
    "x-request-id": `req_${++counter}` };
  if (d.close) h.connection = "close";
  res.writeHead(200, h);
  res.end(out);
  if (d.idle_close) setTimeout(() => req.socket.destroy(), Number(d.idle_close));
}

const WORKERS = Math.max(1, Math.min(16, Number(args.workers || 1)));

function writePortFile(port) {
  if (!args["port-file"]) return;
  fs.writeFileSync(args["port-file"] + ".tmp", String(port));
  fs.renameSync(args["port-file"] + ".tmp", args["port-file"]);
}

if (WORKERS > 1 && cluster.isPrimary) {
  // the primary only forks, reports the (shared) port and takes the workers down with it
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  let reported = false;
  cluster.on("listening", (w, addr) => {
    if (reported) return;
    reported = true;
    writePortFile(addr.port);
    if (!args.quiet) console.error(`fake_llm listening on 127.0.0.1:${addr.port} (${WORKERS} workers)`);
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill("SIGTERM");
    process.exit(0);
  };
  setTimeout(stop, TTL * 1000).unref();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => handle(req, res, chunks.length === 1 ? chunks[0].toString("utf8")
      : Buffer.concat(chunks).toString("utf8")));
  });
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 130000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
  server.listen(PORT, "127.0.0.1", 4096, () => {
    if (cluster.isWorker) return;   // the primary reports the port
    const port = server.address().port;
    writePortFile(port);
    if (!args.quiet) console.error(`fake_llm listening on 127.0.0.1:${port}`);
  });
  // never outlive a crashed test run (or a dead primary)
  setTimeout(() => process.exit(0), TTL * 1000).unref();
  process.on("SIGTERM", () => process.exit(0));
  if (cluster.isWorker) process.on("disconnect", () => process.exit(0));
}
