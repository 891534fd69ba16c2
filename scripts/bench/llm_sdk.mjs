// scripts/bench/llm_sdk.mjs -- the reference for scripts/bench/llm.lua: the official
// `openai` npm SDK (Node 20) sends the same chat requests with the same concurrency
// to the same loopback server. Prints one JSON line:
//   {"impl":"openai-node","version","concurrency","n","seconds","rps","cpu_us_per_req","errors"}
// Needs the SDK in build/bench-llm (llm.lua runs `npm install` there at bench time).
// Usage: node llm_sdk.mjs --url http://127.0.0.1:PORT/v1 --n 5000 --concurrency 256
import { createRequire } from "node:module";
import path from "node:path";
import { readFileSync } from "node:fs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const require = createRequire(path.join(root, "build/bench-llm/package.json"));
const OpenAI = require("openai").default || require("openai");
const version = JSON.parse(readFileSync(path.join(root, "build/bench-llm/node_modules/openai/package.json"))).version;

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const n = Number(args.n || 1000);
const conc = Number(args.concurrency || 16);
const client = new OpenAI({ baseURL: args.url, apiKey: "sk-bench-not-a-key", maxRetries: 2, timeout: 600000 });

let errors = 0;
async function pool(total, tag) {
  let next = 0;
  async function worker() {
    while (next < total) {
      const i = next++;
      try {
        const r = await client.chat.completions.create({
          model: "fake-model", messages: [{ role: "user", content: `${tag} request ${i}: which is better?` }],
          max_tokens: 1, logprobs: true, top_logprobs: 5, temperature: 0,
        });
        if (!r.choices[0].logprobs.content[0].top_logprobs.length) errors++;
      } catch {
        errors++;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(conc, total) }, worker));
}

await pool(Math.min(conc, 256), "warmup");   // open the connections first, as llm.lua does
errors = 0;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await pool(n, "sdk");
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ impl: "openai-node", version, concurrency: conc, n, seconds: secs, rps: n / secs,
  cpu_us_per_req: (cpu.user + cpu.system) / n, errors }));
