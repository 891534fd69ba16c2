// tests/servers/fake_labeler.mjs -- a loopback fake LLM for the labeler's end-to-end
// tests and benchmark. Plain Node 20 (http module only, no npm packages).
//
// It answers OpenAI /v1/completions and /v1/chat/completions (non-streaming) like a
// labeler with a HIDDEN PREFERENCE RULE plus an injected POSITION BIAS: the prompt's
// last "X 1 - ..." and "X 2 - ..." lines are the two responses shown, each carrying
// a hidden quality "qN"; P(label "1") = sigmoid(scale * (q1 - q2) + bias). The first
// generated position lists " 1", "1", " 2", "2" and " The" with log-probabilities
// that split each label's mass 70/30 between the two spellings and give 10% to
// " The" (so a client must sum spelling variants). A prompt (or last message)
// ending in "Rationale:" gets a short rationale. Every answer waits --delay ms.
// A single response ("Response - ..." and no pair; the harmless-rate template) gets
// P(label "1" = harmful) = sigmoid(-scale * q + bias).
//
// Faults, written anywhere in the prompt (e.g. inside a response):
//   [[fail=CODE]]          answer HTTP CODE with an OpenAI-style error body, every attempt
//   [[fail=CODE,times=N]]  only the first N attempts of this prompt text
//   [[nolabel]]            answer 200 with alternatives that hold no label token
//   [[empty]]              answer 200 with `"choices": []`
//
// Usage: node fake_labeler.mjs [--port 0] [--port-file F] [--delay MS] [--scale S]
//        [--bias B] [--ttl S] [--count-file F]  (count-file: requests served, on exit)
import http from "node:http";
import fs from "node:fs";

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith("--")) args[a.slice(2)] = process.argv[i + 1];
}
const DELAY = Number(args.delay || 0);
const SCALE = Number(args.scale || 0.5);
const BIAS = Number(args.bias || 0);
const TTL = Number(args.ttl || 600);
let served = 0;
const attempts = new Map();

const sigmoid = (x) => 1 / (1 + Math.exp(-x));
const q = (s) => { const m = /q(-?\d+)/.exec(s || ""); return m ? Number(m[1]) : 0; };

function shown(text) {
  let r1 = null, r2 = null, m;
  const re1 = /[A-Za-z]+ 1 - ([^\n]*)/g, re2 = /[A-Za-z]+ 2 - ([^\n]*)/g;
  while ((m = re1.exec(text))) r1 = m[1];
  while ((m = re2.exec(text))) r2 = m[1];
  return [r1, r2];
}

function labelTop(text) {
  const [r1, r2] = shown(text);
  const single = r1 === null && r2 === null ? /Response - ([^\n]*)/.exec(text) : null;
  const p1 = single ? sigmoid(-SCALE * q(single[1]) + BIAS) : sigmoid(SCALE * (q(r1) - q(r2)) + BIAS);
  if (/\[\[nolabel\]\]/.test(text)) return [{ token: " The", logprob: Math.log(0.6) }, { token: " A", logprob: Math.log(0.3) }];
  const top = [
    { token: " 1", logprob: Math.log(0.9 * p1 * 0.7) }, { token: "1", logprob: Math.log(0.9 * p1 * 0.3) },
    { token: " 2", logprob: Math.log(0.9 * (1 - p1) * 0.7) }, { token: "2", logprob: Math.log(0.9 * (1 - p1) * 0.3) },
    { token: " The", logprob: Math.log(0.1) },
  ].sort((a, b) => b.logprob - a.logprob);
  return top;
}

function reply(path, body) {
  const chat = path.endsWith("/chat/completions");
  const text = chat ? body.messages.map((m) => m.content).join("\n") : body.prompt;
  const usage = { prompt_tokens: Math.ceil(text.length / 4), completion_tokens: 1, total_tokens: 0 };
  if (/Rationale:\s*$/.test(text)) {
    const r = " The summary with the higher q is better.";
    usage.completion_tokens = 9;
    if (chat) return { id: "x", object: "chat.completion", model: body.model, usage,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: r }, logprobs: null }] };
    return { id: "x", object: "text_completion", model: body.model, usage,
      choices: [{ index: 0, finish_reason: "stop", text: r, logprobs: null }] };
  }
  const k = Math.max(1, Math.min(Number(body.logprobs === true ? body.top_logprobs : body.logprobs) || 5, 5));
  const top = labelTop(text).slice(0, k);
  const tok = top[0];
  if (chat) {
    return { id: "x", object: "chat.completion", model: body.model, usage,
      choices: [{ index: 0, finish_reason: "length", message: { role: "assistant", content: tok.token },
        logprobs: { content: [{ token: tok.token, logprob: tok.logprob, bytes: [...Buffer.from(tok.token)],
          top_logprobs: top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: [...Buffer.from(t.token)] })) }] } }] };
  }
  const tl = {};
  for (const t of top) tl[t.token] = t.logprob;
  return { id: "x", object: "text_completion", model: body.model, usage,
    choices: [{ index: 0, finish_reason: "length", text: tok.token,
      logprobs: { tokens: [tok.token], token_logprobs: [tok.logprob], top_logprobs: [tl], text_offset: [0] } }] };
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "bad json" } }));
      return;
    }
    const text = typeof body.prompt === "string" ? body.prompt
      : (body.messages || []).map((m) => m.content).join("\n");
    const f = /\[\[fail=(\d+)(?:,times=(\d+))?\]\]/.exec(text || "");
    let status = 200, out;
    if (f) {
      const n = (attempts.get(text) || 0) + 1;
      attempts.set(text, n);
      if (f[2] === undefined || n <= Number(f[2])) {
        status = Number(f[1]);
        out = JSON.stringify({ error: { message: `injected failure ${f[1]}`, type: "server_error", code: null } });
      }
    }
    if (out === undefined) {
      out = (text || "").includes("[[empty]]")
        ? JSON.stringify({ id: "x", object: "text_completion", model: body.model, choices: [] })
        : JSON.stringify(reply(req.url, body));
    }
    const send = () => {
      served++;
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
      res.end(out);
    };
    if (DELAY > 0) setTimeout(send, DELAY); else send();
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(args.port || 0), "127.0.0.1", () => {
  const port = server.address().port;
  if (args["port-file"]) fs.writeFileSync(args["port-file"], String(port));
  else console.log(port);
});
const bye = () => {
  if (args["count-file"]) fs.writeFileSync(args["count-file"], String(served));
  process.exit(0);
};
process.on("SIGTERM", bye);
process.on("SIGINT", bye);
setTimeout(bye, TTL * 1000).unref();
