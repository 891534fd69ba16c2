// scripts/bench/tokenizer_ref.mjs -- the npm reference tokenizers on the HH-RLHF
// harmless-base test text, single-threaded, for scripts/bench/tokenizer.lua.
// Prints one JSON line per measurement: {"impl", "encoding", "op", "mb_s", "tokens"};
// op "encode" counts input bytes per second, op "decode" output bytes per second
// (the ids of every document, encoded beforehand, back to bytes or a string).
// Needs the packages of scripts/package.json installed in build/npm.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const require = createRequire(path.join(root, "build/npm/package.json"));
const hh = gunzipSync(readFileSync(path.join(root, "../shared/data/hh-rlhf/harmless-base-test.jsonl.gz"))).toString("utf8");
const docs = [];
for (const line of hh.split("\n")) {
  if (!line.trim()) continue;
  const o = JSON.parse(line);
  docs.push(o.chosen, o.rejected);
}
const bytes = docs.reduce((n, s) => n + Buffer.byteLength(s), 0);

function bench(impl, encoding, op, fn) {
  let best = Infinity, tokens = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = process.hrtime.bigint();
    const n = fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
    tokens = n;
  }
  const r = { impl, encoding, op, mb_s: +(bytes / best / 1e6).toFixed(2), bytes };
  r[op === "encode" ? "tokens" : "out_units"] = tokens; // decode: bytes or UTF-16 units out
  console.log(JSON.stringify(r));
}

// encode every document; decode every document's ids (made once, outside the timing)
function both(impl, name, encode, decode) {
  bench(impl, name, "encode", () => {
    let n = 0;
    for (const s of docs) n += encode(s).length;
    return n;
  });
  const ids = docs.map((s) => encode(s));
  bench(impl, name, "decode", () => {
    let n = 0;
    for (const x of ids) n += decode(x).length;
    return n;
  });
}

const { get_encoding } = require("tiktoken");
for (const name of ["r50k_base", "cl100k_base"]) {
  const enc = get_encoding(name);
  both("tiktoken-wasm", name, (s) => enc.encode_ordinary(s), (x) => enc.decode(x));
  enc.free();
}
for (const [mod, name] of [["gpt-tokenizer/encoding/r50k_base", "r50k_base"], ["gpt-tokenizer/encoding/cl100k_base", "cl100k_base"]]) {
  const { encode, decode } = require(mod);
  both("gpt-tokenizer", name, (s) => encode(s), (x) => decode(x));
}
