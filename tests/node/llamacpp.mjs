// tests/node/llamacpp.mjs -- llama.cpp itself (node-llama-cpp's prebuilt CPU
// binaries, never built here) reading GGUF files rlaif wrote
// (tests/spec/gguf_spec.lua compares what this prints with rlaif's own results).
// Needs build/npm-test (scripts/test-npm.sh).
//
// Usage: node llamacpp.mjs JOB.json, where JOB is a list of
//   {model: "x.gguf", vocab_only: bool, texts: ["..."], prompts: [[ids]], n: tokens}
// Prints one JSON list: per job {tokens: [[ids] per text], greedy: [{tokens: [ids],
// probs: [p of each chosen token]} per prompt]} or {error: message}.
// Greedy decoding is llama.cpp's (temperature 0), token by token, stopping after
// n tokens or after an end-of-generation token (which is included).
import { createRequire } from "node:module";
import path from "node:path";
import { readFileSync } from "node:fs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const require = createRequire(path.join(root, "build/npm-test/package.json"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
const out = [];
for (const job of jobs) {
  try {
    const model = await llama.loadModel({ modelPath: job.model, vocabOnly: !!job.vocab_only, gpuLayers: 0 });
    const r = { tokens: (job.texts || []).map((t) => Array.from(model.tokenize(t, false))), greedy: [] };
    if ((job.prompts || []).length > 0) {
      const context = await model.createContext({ contextSize: job.context || 256, sequences: 1, threads: 1 });
      for (const prompt of job.prompts) {
        const seq = context.getSequence();
        const toks = [], probs = [];
        for await (const item of seq.evaluateWithMetadata(prompt, { confidence: true },
          { temperature: 0, yieldEogToken: true })) {
          toks.push(item.token);
          probs.push(item.confidence);
          if (toks.length >= job.n || model.isEogToken(item.token)) break;
        }
        r.greedy.push({ tokens: toks, probs });
        seq.dispose();
      }
      await context.dispose();
    }
    await model.dispose();
    out.push(r);
  } catch (e) {
    out.push({ error: String(e && e.message || e) });
  }
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
