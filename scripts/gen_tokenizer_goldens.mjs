// scripts/gen_tokenizer_goldens.mjs -- write the tokenizer goldens in
// tests/fixtures/tokenizer from the npm reference implementations:
//   tiktoken (encode_ordinary)                      r50k_base, cl100k_base, o200k_base
//   @huggingface/tokenizers (add_special_tokens: false)  GPT-2, Llama 3, Qwen3 tokenizer.json
//
// Outputs (all small, committed; CI never needs npm):
//   corpus.jsonl          one JSON string per line: synthetic, varied documents
//   <name>.golden         per corpus line: "<count> <ids...>", or "-" when the
//                         document is not comparable for that reference (see below)
//   trained.json          a 1000-token BPE that `rlaif.tokenizer.train` learns from
//                         corpus.jsonl (pattern cl100k, two specials), and
//   trained.golden        @huggingface/tokenizers' ids for the corpus with it:
//                         the training round trip (needs ./rlaif built)
//   hh_<name>.hash        per HH-RLHF document (chosen, then rejected, of each pair
//                         in ../shared/data/hh-rlhf/harmless-base-test.jsonl.gz):
//                         "<count> <fnv1a32 of ids>" -- the multi-MB check without
//                         committing multi-MB of ids
//
// The reference packages are installed outside the source tree:
//   mkdir -p build/npm && cp scripts/package.json build/npm/ && (cd build/npm && npm install)
//   node scripts/gen_tokenizer_goldens.mjs
//
// Known reference differences, kept out of the tokenizer.json goldens (marked "-"):
// @huggingface/tokenizers is a JavaScript port; its ByteLevel regex uses JS `\s`
// (adds U+FEFF, misses U+0085) and it folds `(?i:'s)` in ASCII only (misses 'ſ).
// The Rust tokenizers library and tiktoken use Unicode White_Space and Unicode case
// folding, as rlaif does; tiktoken goldens cover those characters.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
import { gunzipSync } from "node:zlib";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const require = createRequire(path.join(root, "build/npm/package.json"));
const { get_encoding } = require("tiktoken");
const { Tokenizer } = require("@huggingface/tokenizers");

const shared = path.join(root, "../shared/data");
const out = path.join(root, "tests/fixtures/tokenizer");
mkdirSync(out, { recursive: true });

// ---- deterministic PRNG ----
let seed = 0x2545f491;
const rnd = () => {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
};
const pick = (a) => a[Math.floor(rnd() * a.length)];

// ---- the synthetic corpus ----
const docs = [];
const add = (s) => docs.push(s);

// English dialogue and prose
add("\n\nHuman: What's the best way to learn to cook?\n\nAssistant: Start with a few simple recipes you enjoy, and cook them often.");
add("Hello world! This is a test. It's 5 o'clock somewhere, isn't it? I'd say we're done; they'll agree, you've seen.");
add("The quick brown fox jumps over the lazy dog.  Two  spaces,   three   spaces.    \n   Indented line.\n");
add("  leading spaces and trailing spaces   ");
add("Mr. O'Neil's dog—an 'odd' one—barked \"loudly\" at 3:45 p.m. (EST) [sic] {ok} <tag> @user #hash $100 50% a&b *bold* _it_ ~x~ `code` ^ | \\ /");
// contractions in all cases
add("I'm you're he's she'll they've it'd we'd don't DON'T I'M YOU'RE HE'S SHE'LL THEY'VE IT'D 'S 'T 'RE 'VE 'M 'LL 'D");
add("iT'S yOu'Re We'Ve tHeY'lL sHe'D i'M 's't're've'm'll'd ''s '' ' 's 'sup 'tis 'Twas 'll've 'x 'é 'Ünïcödé");
add("rock'n'roll, O'Reilly, l'amour, aujourd'hui, Ma'am, y'all'd've, 'quoted', \"'nested'\", it’s (curly) vs it's");
// code
add("#include <stdio.h>\nint main(void) {\n\tint x = 42; /* answer */\n\tprintf(\"%d\\n\", x);\n\treturn 0;\n}\n");
add("def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n");
add("const f = async (x) => { await fetch(`/api/${x}?q=1&r=2`); return x ?? null; };\n// TODO: fix\r\nlet a=[1,2,3].map(v=>v**2);");
add("<html>\n  <body class=\"main\">\n    <p>Hi &amp; bye</p>\n  </body>\n</html>\n{\"key\": [1, 2.5e-3, true, null], \"s\": \"\\u00e9\"}");
add("SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%smith%' ORDER BY id DESC;\n\n\n-- done\n\t\t\n");
add("fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u8> = vec![0xff; 16]; println!(\"{:?}\", v); Ok(()) }");
add("path/to/file.txt C:\\Windows\\System32 https://example.com/a/b?c=d#e user@mail.org 192.168.0.1 ::1 a//b///c");
// scripts
add("Привет, мир! Как дела? Это тест токенизатора. Ёжик в тумане. ПРИВЕТ МИР.");
add("你好，世界！这是一个分词器测试。我们今天去公园散步吧。日本語のテキストも含めます：東京は晴れです。カタカナ。");
add("مرحبا بالعالم! هذا اختبار. العربية تكتب من اليمين إلى اليسار. ٠١٢٣٤٥٦٧٨٩");
add("नमस्ते दुनिया! यह एक परीक्षण है। हिन्दी में लिखा गया पाठ। क्षत्रिय ज्ञान");
add("Γειά σου κόσμε! ΑΥΤΟ ΕΙΝΑΙ ΤΕΣΤ. שלום עולם! สวัสดีชาวโลก 안녕하세요 세계! Ǆemal ǅemal ǆemal");
add("Tiếng Việt có dấu: Hà Nội, Thành phố Hồ Chí Minh, người, được, những. Türkçe: İstanbul, ılık, ŞEKER.");
add("Ελληνικά και ελληνικά ΣΣ σς, Deutsch: Straße STRASSE Grüße, Français: élève, Ça, Œuvre, Español: ¿Qué? ¡Sí! Niño.");
// emoji, ZWJ, variation selectors
add("Family: 👨‍👩‍👧‍👦 flag: 🏳️‍🌈 🇺🇸🇯🇵 skin: 👋🏽👍🏿 heart: ❤️ ❤ keycap: 1️⃣ #️⃣ 🧑‍💻 👩🏾‍🚀 text😀emoji😀😀😀");
add("🙂🙃😉 ✨🔥💯 🐍🦀 ☕️ ✔︎ ✅ ❌ 𝓗𝓮𝓵𝓵𝓸 𝕄𝕒𝕥𝕙 𝟙𝟚𝟛 🀄 𐍈 𝄞");
// combining marks and normalization
add("e\u0301 vs \u00e9, a\u0308 vs \u00e4, n\u0303 vs \u00f1, A\u030a vs \u00c5 vs \u212b, \u1e9b\u0323, Zalgo: Z\u0334\u0321\u0327a\u0336\u0314l\u0335g\u0338o\u0337");
add("\u0301leading mark, marks after digits 1\u0301 2\u0308, after space \u0301 x, ﬁ ligature, ＦＵＬＬＷＩＤＴＨ ｈａｌｆ ｶﾀｶﾅ");
add("Vie\u0302\u0323t Nam, co\u0301 da\u0302\u0301u, \u1100\u1161\u11a8 (jamo), \u0915\u094d\u0937 (virama), \u0e01\u0e34\u0e48");
// digits
add("0 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 12345678901234567890");
add("1,234,567.89 3.14159 -42 +7 1e10 0x1F 2024-01-15 12:30:45 v1.2.3 ١٢٣٤ ۱۲۳ १२३४ １２３４ ²³ ½ ¼ Ⅻ ⅷ 一二三 ⑳");
add("a1b2c3 abc123def 123abc A1 1st 2nd 3rd 4th 10000th 99bottles $5.99 €10 £3 ¥1000 100% 50/50");
// odd whitespace
add("tab\there\ttabs\t\t\tend\t");
add("CRLF line\r\nnext line\r\n\r\nblank above\r\n");
add("lone CR\rhere\r\r and LF\n\n\nthree");
add("NBSP\u00a0here\u00a0\u00a0twice, ideographic\u3000space\u3000\u3000, thin\u2009space, em\u2003space, nnbsp\u202fx");
add("line sep\u2028para sep\u2029vertical\u000btab form\u000cfeed mongolian\u180evowel zero\u200bwidth");
add("   \n   \n\n  \t \n \t\t x \n\n\n\n  y\t\n");
add("end with newline\n");
add("end with spaces   ");
add("\n\n\n");
add(" ");
add("x");
add("");
// special token text (plain text unless allowed)
add("<|endoftext|> is plain text here <|im_start|> <|begin_of_text|> <|fim_prefix|> <|endofprompt|>");
// pathological runs
add(" ".repeat(10000));
add("a".repeat(5000));
add("é".repeat(3000));
add("!".repeat(3000) + " " + "\n".repeat(2000) + "9".repeat(2000));
add("ab".repeat(2500) + " " + "的".repeat(2000));
add("x" + " ".repeat(5000) + "y" + "\t".repeat(3000) + "z" + " \n".repeat(1000));
add("A".repeat(4000) + "a".repeat(10) + "'S");

// random mixtures: characters from many classes, to exercise every scanner branch
const pool = [
  " ", " ", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "\r",
  "a", "b", "z", "Q", "E", "hello", "World", "HTTP", "iPhone", "'", "'s", "'T", "'re", "'LL", "'d", "'m", "'ve",
  "0", "7", "42", "123", "2024", "١", "½", "Ⅻ",
  ".", ",", "!", "?", "-", "/", "//", "(", ")", "...", "—", "“", "”", "#", "@", "$", "_", "=",
  "é", "ß", "Ü", "ǅ", "ʰ", "ᵃ", "\u0301", "\u0308", "\u093f",
  "ж", "Ж", "中", "文", "カ", "ア", "한", "ا", "ب", "क", "्", "ष", "ก", "\u0e48",
  "😀", "👨‍👩‍👧", "🇫🇷", "❤️", "𝓗", "𝟙",
];
for (let d = 0; d < 160; d++) {
  const n = 20 + Math.floor(rnd() * 120);
  let s = "";
  for (let i = 0; i < n; i++) s += pick(pool);
  add(s);
}
// tiktoken-only documents (see the header): U+0085, U+FEFF, 'ſ
const tiktokenOnly = new Set();
for (const s of ["next\u0085line \u0085\u0085 x", "\ufeffBOM start and \ufeff inside \ufeff\ufeff", "it'ſ long s 'ſ 'S"]) {
  tiktokenOnly.add(docs.length);
  add(s);
}

writeFileSync(path.join(out, "corpus.jsonl"), docs.map((s) => JSON.stringify(s)).join("\n") + "\n");

// ---- references ----
const fnv = (ids) => {
  let h = 0x811c9dc5;
  for (const id of ids) h = Math.imul(h ^ id, 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
};

const refs = [];
for (const name of ["r50k_base", "cl100k_base", "o200k_base"]) {
  const enc = get_encoding(name);
  refs.push({ name, ref: "tiktoken encode_ordinary", hf: false, encode: (s) => Array.from(enc.encode_ordinary(s)) });
}
for (const [name, dir] of [["gpt2_hf", "gpt2"], ["llama3", "llama3"], ["qwen3", "qwen3"]]) {
  const json = JSON.parse(readFileSync(path.join(shared, "tokenizers", dir, "tokenizer.json"), "utf8"));
  let config = {};
  try { config = JSON.parse(readFileSync(path.join(shared, "tokenizers", dir, "tokenizer_config.json"), "utf8")); } catch { /* none */ }
  const tok = new Tokenizer(json, config);
  refs.push({ name, ref: "@huggingface/tokenizers add_special_tokens=false", hf: true,
    encode: (s) => tok.encode(s, { add_special_tokens: false }).ids });
}

// the training round trip: rlaif trains, @huggingface/tokenizers encodes
if (existsSync(path.join(root, "rlaif"))) {
  const lua = path.join(os.tmpdir(), "rlaif_train_fixture.lua");
  writeFileSync(lua, `
local rlaif = require "rlaif"
local json = require("rlaif.core").json
local texts = {}
for line in io.lines("tests/fixtures/tokenizer/corpus.jsonl") do texts[#texts + 1] = json.decode(line) end
assert(rlaif.tokenizer.train { texts = texts, vocab_size = 1000, pattern = "cl100k",
  special = { "<|endoftext|>", "<|pad|>" }, output = "tests/fixtures/tokenizer/trained.json" })
`);
  execFileSync(path.join(root, "rlaif"), [lua], { cwd: root, stdio: "inherit" });
  const json = JSON.parse(readFileSync(path.join(out, "trained.json"), "utf8"));
  const tok = new Tokenizer(json, {});
  refs.push({ name: "trained", ref: "@huggingface/tokenizers add_special_tokens=false on rlaif-trained", hf: true,
    encode: (s) => tok.encode(s, { add_special_tokens: false }).ids, noHash: true });
} else {
  console.warn("./rlaif is not built: trained.json and trained.golden not regenerated");
}

// HF tokenizers recognise added tokens in text; rlaif does so only when allowed, so
// the comparison (test side) allows all specials for the tokenizer.json goldens.
for (const r of refs) {
  const lines = [`# rlaif tokenizer golden v1 ${r.name} (${r.ref})`];
  docs.forEach((s, i) => {
    if (r.hf && tiktokenOnly.has(i)) { lines.push("-"); return; }
    const ids = r.encode(s);
    lines.push(`${ids.length}${ids.length ? " " : ""}${ids.join(" ")}`);
  });
  writeFileSync(path.join(out, `${r.name}.golden`), lines.join("\n") + "\n");
}

// ---- HH-RLHF hashes ----
const hh = gunzipSync(readFileSync(path.join(shared, "hh-rlhf/harmless-base-test.jsonl.gz"))).toString("utf8");
const hhDocs = [];
for (const line of hh.split("\n")) {
  if (!line.trim()) continue;
  const o = JSON.parse(line);
  hhDocs.push(o.chosen, o.rejected);
}
for (const r of refs) {
  if (r.noHash) continue;
  const lines = [`# rlaif tokenizer hh-rlhf hashes v1 ${r.name} (${r.ref}); count fnv1a32(ids)`];
  for (const s of hhDocs) {
    const ids = r.encode(s);
    lines.push(`${ids.length} ${fnv(ids)}`);
  }
  writeFileSync(path.join(out, `hh_${r.name}.hash`), lines.join("\n") + "\n");
}
console.log(`wrote ${docs.length} corpus documents, ${hhDocs.length} HH-RLHF hashes, ${refs.length} references`);
