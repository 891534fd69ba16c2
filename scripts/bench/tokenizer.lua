-- scripts/bench/tokenizer.lua -- rlaif.tokenizer throughput, load time, decode
-- speed and worst-case scaling, with the npm references (tiktoken-wasm and
-- gpt-tokenizer, via scripts/bench/tokenizer_ref.mjs) run on the same text in the
-- same run when node and build/npm/node_modules are available.
--
-- Text: every `chosen` and `rejected` transcript of ../shared/data/hh-rlhf/
-- harmless-base-test.jsonl.gz (4,624 documents, 3.16 MB). Method: best of 3 passes.
--   encode_1t   tok:count(doc) for each document, one thread (the engine; no Lua tables)
--   encode_lua  tok:encode(doc) for each document (includes building the Lua id arrays)
--   batch       tok:encode_batch(docs) on rlaif.get_threads() threads
--   decode      tok:decode(ids) of each document (bytes out per second)
--   decode_packed  tok:decode(p) of each document's packed ids (tok:encode(doc,
--               {packed = true}): one int32 string, no Lua table; bytes out per
--               second, with packed_ratio = decode_packed / decode (table form)
--   c_*         the engine alone, without Lua: scripts/bench/tokenizer_c.c, built here
--               against build/librlaif.a (load, encode, decode into a reused buffer)
--   load_ms     tokenizer.load, best of 3
--   worst       10k and 100k identical characters (spaces, 'a'): MB/s should stay flat
-- Prints one JSON line per measurement; the reference lines (op encode or decode)
-- carry "ratio" = rlaif MB/s / reference MB/s (encode_1t, or decode through Lua)
-- and for decode also "packed_ratio" (decode_packed through Lua) and "c_ratio"
-- (the engine's decode). Skips everything when
-- ../shared is absent.

local rlaif = require "rlaif"
local core = require "rlaif.core"
local json = core.json
local clock = core.clock

local SHARED = "../shared/data/"
local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

if not exists(SHARED .. "hh-rlhf/harmless-base-test.jsonl.gz") then
  io.write('{"bench":"tokenizer","skipped":"../shared/data is absent"}\n')
  return
end

local docs, bytes = {}, 0
do
  local f = assert(io.popen("gzip -dc " .. SHARED .. "hh-rlhf/harmless-base-test.jsonl.gz"))
  for line in f:lines() do
    if line:find("%S") then
      local o = json.decode(line)
      docs[#docs + 1] = o.chosen
      docs[#docs + 1] = o.rejected
      bytes = bytes + #o.chosen + #o.rejected
    end
  end
  f:close()
end

local function best_of(n, fn)
  local best = math.huge
  for _ = 1, n do
    local t0 = clock()
    fn()
    local dt = clock() - t0
    if dt < best then best = dt end
  end
  return best
end

local function emit(t)
  io.write(json.encode(t), "\n")
  io.stdout:flush()
end

local cases = {
  { "gpt2 (r50k_base.tiktoken)", "tokenizers/tiktoken/r50k_base.tiktoken", "r50k_base" },
  { "gpt2 (vocab.bpe)", "tokenizers/gpt2/vocab.bpe" },
  { "gpt2 (tokenizer.json)", "tokenizers/gpt2/tokenizer.json" },
  { "cl100k_base", "tokenizers/tiktoken/cl100k_base.tiktoken", "cl100k_base" },
  { "o200k_base", "tokenizers/tiktoken/o200k_base.tiktoken" },
  { "llama3", "tokenizers/llama3/tokenizer.json" },
  { "qwen3", "tokenizers/qwen3/tokenizer.json" },
}

-- The C benchmark: documents as string.pack("<s4") records, the program built
-- with the Makefile's libraries. Skipped (c_* absent) when it cannot be built.
local docs_file = os.tmpname()
do
  local f = assert(io.open(docs_file, "wb"))
  for i = 1, #docs do f:write(string.pack("<s4", docs[i])) end
  f:close()
end
local cbench = "build/bench/tokenizer_c"
do
  local cc = os.getenv("CC") or "cc"
  local arch = io.popen(cc .. " -print-multiarch 2>/dev/null"):read("l") or "x86_64-linux-gnu"
  local blis = "/usr/lib/" .. arch .. "/blis-openmp"
  local cmd = string.format("mkdir -p build/bench && %s -O2 -march=x86-64-v2 -std=c11 -D_GNU_SOURCE "
    .. "-Isrc/core -Iinclude "
    .. "scripts/bench/tokenizer_c.c build/librlaif.a -L%s -Wl,-rpath,%s -lblis -lpcre2-8 -lutf8proc "
    .. "-fopenmp -lpthread -lm -o %s 2>&1", cc, blis, blis, cbench)
  local p = io.popen(cmd)
  local out = p:read("a")
  if not p:close() then
    emit { bench = "tokenizer", c_bench = "skipped", why = out }
    cbench = nil
  end
end

local function c_bench(path, encoding)
  if not cbench then return {} end
  local p = io.popen(string.format("%s '%s' %s '%s' 5", cbench, path, encoding or "-", docs_file))
  local line = p:read("l")
  p:close()
  return line and json.decode(line) or {}
end

local threads = rlaif.get_threads()
local single, single_dec, single_cdec, single_pdec = {}, {}, {}, {}
for _, c in ipairs(cases) do
  local name, path, ref = c[1], SHARED .. c[2], c[3]
  local tok
  local load_s = best_of(3, function()
    if tok then tok:free() end
    tok = assert(rlaif.tokenizer.load(path))
  end)
  local ntok = 0
  local enc1 = best_of(3, function()
    ntok = 0
    for i = 1, #docs do ntok = ntok + tok:count(docs[i]) end
  end)
  local all = {}
  local encl = best_of(3, function()
    for i = 1, #docs do all[i] = tok:encode(docs[i]) end
  end)
  local batch = best_of(3, function() tok:encode_batch(docs) end)
  local dec = best_of(3, function()
    for i = 1, #docs do tok:decode(all[i]) end
  end)
  local packed = {}
  for i = 1, #docs do packed[i] = tok:encode(docs[i], { packed = true }) end
  local pdec = best_of(3, function()
    for i = 1, #docs do tok:decode(packed[i]) end
  end)
  local mbs, dmbs, pmbs = bytes / enc1 / 1e6, bytes / dec / 1e6, bytes / pdec / 1e6
  local cr = c_bench(path, ref)
  if ref then
    single[ref] = math.max(single[ref] or 0, mbs)
    single_dec[ref] = math.max(single_dec[ref] or 0, dmbs)
    single_cdec[ref] = cr.decode_mb_s and math.max(single_cdec[ref] or 0, cr.decode_mb_s)
    single_pdec[ref] = math.max(single_pdec[ref] or 0, pmbs)
  end
  emit {
    bench = "tokenizer", tokenizer = name, bytes = bytes, tokens = ntok,
    load_ms = load_s * 1e3,
    encode_1t_mb_s = mbs,
    encode_lua_mb_s = bytes / encl / 1e6,
    batch_mb_s = bytes / batch / 1e6, threads = threads,
    decode_mb_s = dmbs, decode_packed_mb_s = pmbs, packed_ratio = pmbs / dmbs,
    c_load_ms = cr.load_ms, c_encode_mb_s = cr.encode_mb_s, c_decode_mb_s = cr.decode_mb_s,
  }
  -- worst case: n identical characters, 10k vs 100k
  local worst = {}
  for _, ch in ipairs { " ", "a" } do
    for _, n in ipairs { 10000, 100000 } do
      local s = string.rep(ch, n)
      local dt = best_of(3, function() tok:count(s) end)
      worst[#worst + 1] = string.format("%q x %d: %.1f MB/s", ch, n, n / dt / 1e6)
    end
  end
  emit { bench = "tokenizer", tokenizer = name, worst = table.concat(worst, "; ") }
  tok:free()
end

-- the npm references, same text, same run
local have_node = os.execute("command -v node >/dev/null 2>&1")
if have_node and exists("build/npm/node_modules/tiktoken/package.json") then
  local f = io.popen("node scripts/bench/tokenizer_ref.mjs")
  for line in f:lines() do
    local r = json.decode(line)
    if type(r) == "table" then
      local dec = r.op == "decode"
      local ours = (dec and single_dec or single)[r.encoding]
      local c = dec and single_cdec[r.encoding] or nil
      local p = dec and single_pdec[r.encoding] or nil
      emit {
        bench = "tokenizer", reference = r.impl, encoding = r.encoding, op = r.op, mb_s = r.mb_s,
        tokens = r.tokens, rlaif_mb_s = ours, ratio = ours and ours / r.mb_s,
        rlaif_packed_mb_s = p, packed_ratio = p and p / r.mb_s,
        rlaif_c_mb_s = c, c_ratio = c and c / r.mb_s,
      }
    end
  end
  f:close()
else
  emit { bench = "tokenizer", reference = "skipped",
         why = "needs node and `cd build/npm && npm install` (scripts/package.json)" }
end
os.remove(docs_file)
