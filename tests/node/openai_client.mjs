// tests/node/openai_client.mjs -- the official `openai` npm SDK as a client of
// `rlaif serve` (tests/spec/serve_spec.lua starts the server and checks what this
// prints against the in-process backend). Needs build/npm-test (scripts/test-npm.sh).
//
// Usage: node openai_client.mjs --url http://127.0.0.1:PORT/v1 --model NAME [--key K]
//        [--concurrent 40] [--prompts FILE.json]
// Prints one JSON object: every response as the SDK returned it, streams as the
// list of chunks, errors as {error: {name, status, type, code, param, message}}.
import { createRequire } from "node:module";
import path from "node:path";
import { readFileSync } from "node:fs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const require = createRequire(path.join(root, "build/npm-test/package.json"));
const OpenAI = require("openai").default || require("openai");

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const model = args.model;
const client = new OpenAI({ baseURL: args.url, apiKey: args.key || "sk-no-key-needed", maxRetries: 0,
  timeout: 120000 });
const prompts = args.prompts ? JSON.parse(readFileSync(args.prompts, "utf8")) : ["Hello world"];

async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    return { error: { name: e.constructor.name, status: e.status ?? null, type: e.type ?? e.error?.type ?? null,
      code: e.code ?? null, param: e.param ?? null, message: e.message } };
  }
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

const out = { sdk: JSON.parse(readFileSync(path.join(root, "build/npm-test/node_modules/openai/package.json"))).version };

out.models = await attempt(async () => {
  const list = [];
  for await (const m of client.models.list()) list.push(m);
  return list;
});
out.completion = await attempt(() => client.completions.create({ model, prompt: prompts[0], max_tokens: 6,
  temperature: 0, logprobs: 3 }));
out.chat = await attempt(() => client.chat.completions.create({ model, max_tokens: 5, temperature: 0,
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: prompts[0] }],
  logprobs: true, top_logprobs: 2 }));
out.completion_stream = await attempt(async () => collect(await client.completions.create({ model,
  prompt: prompts[0], max_tokens: 6, temperature: 0, logprobs: 3, stream: true })));
out.chat_stream = await attempt(async () => collect(await client.chat.completions.create({ model,
  max_tokens: 5, temperature: 0, stream: true, stream_options: { include_usage: true }, logprobs: true,
  top_logprobs: 2, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: prompts[0] }] })));
out.echo = await attempt(() => client.completions.create({ model, prompt: prompts[0], max_tokens: 0, echo: true,
  logprobs: 1 }));
out.sampled = await attempt(async () => {
  const q = { model, prompt: prompts[0], max_tokens: 6, temperature: 1, seed: 42, n: 2 };
  return [await client.completions.create(q), await client.completions.create(q)];
});
out.stream_n2 = await attempt(async () => collect(await client.chat.completions.create({ model, max_tokens: 4,
  temperature: 0.8, seed: 7, n: 2, stream: true, messages: [{ role: "user", content: prompts[0] }] })));

// errors the SDK turns into its exception classes
out.err_model = await attempt(() => client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 1 }));
out.err_temperature = await attempt(() => client.completions.create({ model, prompt: "x", temperature: 7 }));
out.err_top_logprobs = await attempt(() => client.chat.completions.create({ model, top_logprobs: 2,
  messages: [{ role: "user", content: "x" }] }));
out.err_messages = await attempt(() => client.chat.completions.create({ model, messages: [] }));
out.err_logit_bias = await attempt(() => client.completions.create({ model, prompt: "x", logit_bias: { "5": 1 } }));

// concurrent requests: all at once, completions and chats mixed
const n = Number(args.concurrent || 40);
const t0 = Date.now();
out.concurrent = await Promise.all(Array.from({ length: n }, (_, i) => attempt(async () => {
  const p = prompts[i % prompts.length];
  if (i % 2 === 0) {
    const r = await client.completions.create({ model, prompt: p, max_tokens: 5, temperature: 0 });
    return { i, prompt: p, kind: "completion", text: r.choices[0].text };
  }
  const r = await client.chat.completions.create({ model, max_tokens: 5, temperature: 0,
    messages: [{ role: "user", content: p }] });
  return { i, prompt: p, kind: "chat", text: r.choices[0].message.content };
})));
out.concurrent_ms = Date.now() - t0;

process.stdout.write(JSON.stringify(out) + "\n");
