-- tests/spec/gguf_spec.lua -- GGUF export and import against llama.cpp itself:
-- node-llama-cpp 3.21.1's prebuilt llama.cpp (tests/node/llamacpp.mjs) loads
-- what m:save_gguf / `rlaif export-gguf` write, tokenizes test strings exactly
-- as rlaif does (the trained fixture tokenizer and GPT-2's; Qwen3, Llama 3,
-- cl100k, o200k, r50k in a #slow test; vocabulary-only files from ../shared), and
-- continues prompts greedily as rlaif does on two small trained models
-- (tests/fixtures/gguf, scripts/gen_gguf_fixtures.lua); rlaif reads its exports
-- back identically. The llama.cpp parts skip only when scripts/test-npm.sh could
-- not reach the npm registry.
local helper = require "spec.helper"
local rlaif = require "rlaif"
local json = rlaif.core.json

local TOKENIZER = "tests/fixtures/tokenizer/trained.json"
local PROMPTS = { "Hello world! This is", "The quick brown fox", "\n\nHuman: What is the best way to",
  "I think that" }
local TEXTS = { "Hello world! It's 5 o'clock somewhere, isn't it? I'd say we're done.",
  "  leading spaces and trailing spaces   ", "Tabs\tand\nnew\r\nlines\n\n\n  indented",
  "numbers 1 12 123 1234 12345 3.14159 -42", "caf\u{e9} na\u{ef}ve \u{4e2d}\u{6587} \u{1f600} emoji",
  "DON'T SHOUT; they'll agree, you've seen.", "<|endoftext|> is plain text here", "a" }

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)))
  return d
end

local function run(cmd)
  local p = io.popen("env -u LD_PRELOAD " .. cmd .. " 2>&1; echo rc=$?")
  local out = p:read("a")
  p:close()
  return out:gsub("rc=(%d+)\n$", ""), tonumber(out:match("rc=(%d+)\n$"))
end

-- the node that runs node-llama-cpp, or nil, why
local function npm_node()
  local why = helper.read_file("build/npm-test/UNAVAILABLE")
  if why then return nil, why end
  local node = (helper.read_file("build/npm-test/node-path") or ""):gsub("%s+$", "")
  if node == "" or not helper.read_file("build/npm-test/node_modules/node-llama-cpp/package.json") then
    return nil, "build/npm-test is missing: run `sh scripts/test-npm.sh` (make test does)"
  end
  if not helper.read_file("build/npm-test/node_modules/@node-llama-cpp/linux-x64/package.json") then
    return nil, "node-llama-cpp has prebuilt binaries for linux-x64 only"
  end
  return node
end

-- Greedy continuation by rlaif: n tokens or through the first eos; with the
-- smallest top-1/top-2 logit gap seen, and the chosen tokens' probabilities.
local function greedy(m, ids, n, eos)
  local seq, out, probs, gap = table.move(ids, 1, #ids, 1, {}), {}, {}, math.huge
  for _ = 1, n do
    local row = m:forward(seq)[1][#seq]:totable()
    local best, second = 1, nil
    for v = 2, #row do
      if row[v] > row[best] then second, best = best, v
      elseif not second or row[v] > row[second] then second = v end
    end
    gap = math.min(gap, row[best] - row[second])
    local mx, s = row[best], 0
    for _, x in ipairs(row) do s = s + math.exp(x - mx) end
    out[#out + 1], probs[#probs + 1] = best - 1, 1 / s
    if best - 1 == eos then break end
    seq[#seq + 1] = best - 1
  end
  return out, probs, gap
end

describe("GGUF #unit", function()
  local dir, tok
  setup(function()
    dir = tmpdir()
    tok = assert(rlaif.tokenizer.load(TOKENIZER))
  end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exports with `rlaif export-gguf` and m:save_gguf, and reads the files back", function()
    local out, rc = run(string.format("./rlaif export-gguf --model tests/fixtures/gguf/llama --tokenizer %s " ..
      "--out %s/llama_f32.gguf --name tiny-llama", TOKENIZER, dir))
    assert.equal(0, rc, out)
    assert.matches("llama, 2 layers", out)
    local m = rlaif.model.load("tests/fixtures/gguf/llama")
    local back = rlaif.model.load(dir .. "/llama_f32.gguf")
    for _, name in ipairs(m:names()) do
      assert.equal(0, (m:param(name) - back:param(name)):abs():max():item(), name)   -- bit for bit
    end
    local ids = tok:encode(PROMPTS[1])
    assert.same(m:forward(ids):totable(), back:forward(ids):totable())
    local info = assert(rlaif.core.gguf.read(dir .. "/llama_f32.gguf"))
    assert.equal(3, info.version)
    local md = info.metadata
    assert.equal("llama", md["general.architecture"])
    assert.equal("tiny-llama", md["general.name"])
    assert.equal(0, md["general.file_type"])
    assert.equal(32, md["llama.embedding_length"])
    assert.equal(2, md["llama.attention.head_count_kv"])
    assert.equal(8, md["llama.rope.dimension_count"])
    assert.equal("gpt2", md["tokenizer.ggml.model"])
    assert.equal("dbrx", md["tokenizer.ggml.pre"])   -- the cl100k regex without ignore_merges
    assert.equal(1000, #md["tokenizer.ggml.tokens"])
    assert.equal(3, md["tokenizer.ggml.token_type"][999])   -- <|endoftext|>: control
    assert.equal("<|endoftext|>", md["tokenizer.ggml.tokens"][999])
    assert.equal("\u{120}t", md["tokenizer.ggml.tokens"][tok:id(" t") + 1])   -- the byte-level alphabet
    assert.equal(998, md["tokenizer.ggml.eos_token_id"])
    local names = {}
    for _, t in ipairs(info.tensors) do names[t.name] = t end
    assert.same({ 1000, 32 }, names["output.weight"].shape)
    assert.equal("F32", names["blk.1.ffn_gate.weight"].type)
    -- F16 and Q8_0: matrices quantized, norms kept; the loader reads exactly what the file holds
    for _, ty in ipairs { "f16", "q8_0" } do
      local p = dir .. "/llama_" .. ty .. ".gguf"
      assert(m:save_gguf(p, { tokenizer = tok, type = ty }))
      local r = rlaif.core.gguf.read(p)
      local by = {}
      for _, t in ipairs(r.tensors) do by[t.name] = t.type end
      assert.equal(ty == "f16" and "F16" or "Q8_0", by["blk.0.attn_q.weight"])
      assert.equal("F32", by["blk.0.attn_norm.weight"])
      local b = rlaif.model.load(p)
      local v = rlaif.core.gguf.tensor(p, "blk.0.ffn_down.weight")
      assert.equal(0, (b:param("model.layers.0.mlp.down_proj.weight") - v):abs():max():item())
      local d = (b:param("model.layers.0.mlp.down_proj.weight") - m:param("model.layers.0.mlp.down_proj.weight"))
        :abs():max():item()
      assert.is_true(d > 0 and d < (ty == "f16" and 1e-3 or 0.05), ty .. " " .. d)
      assert.equal(ty == "f16" and "F16" or "Q8_0", by["blk.0.ffn_down.weight"])   -- 64 columns
      assert.equal(ty == "f16" and 1 or 7, r.metadata["general.file_type"])
    end
    -- GPT-2 too, and the tokenizer straight from a GGUF file
    assert(rlaif.model.load("tests/fixtures/gguf/gpt2"):save_gguf(dir .. "/gpt2_f32.gguf", { tokenizer = tok }))
    local g = rlaif.core.gguf.read(dir .. "/gpt2_f32.gguf")
    assert.equal("gpt2", g.metadata["general.architecture"])
    assert.is_true(g.metadata["gpt2.attention.layer_norm_epsilon"] > 0)
    local t2 = assert(rlaif.tokenizer.load(dir .. "/gpt2_f32.gguf"))
    for _, s in ipairs(TEXTS) do
      assert.same(tok:encode(s), t2:encode(s))
      assert.same(tok:encode(s, { allowed_special = "all" }), t2:encode(s, { allowed_special = "all" }))
    end
    -- a GGUF serves like a directory: the local backend takes model and tokenizer from it
    local c = rlaif.llm.client { api = "local", model = dir .. "/llama_f32.gguf" }
    local want = rlaif.llm.client { api = "local", model = "tests/fixtures/gguf/llama", tokenizer = TOKENIZER }
    local req = { prompt = PROMPTS[2], max_tokens = 6, temperature = 0 }
    assert.equal(want:complete(req).text, c:complete(req).text)
  end)

  it("refuses what it cannot write or read, naming the problem", function()
    local out, rc = run(string.format("./rlaif export-gguf --model tests/fixtures/model/gpt2_reward --tokenizer %s " ..
      "--out %s/r.gguf", TOKENIZER, dir))
    assert.equal(1, rc)
    assert.matches("tokenizer has 1000 tokens", out)
    out, rc = run(string.format("./rlaif export-gguf --model %s/llama_f32.gguf --out %s/llama_f32.gguf", dir, dir))
    assert.equal(2, rc)
    assert.matches("^rlaif export%-gguf: %-%-out " .. dir:gsub("%p", "%%%0") .. "/llama_f32%.gguf is the same " ..
      "file as %-%-model .*: an output must never overwrite an input\n$", out)
    -- another spelling of the same file, and the tokenizer's file, count too
    out, rc = run(string.format("./rlaif export-gguf --model %s/llama_f32.gguf --out %s/./llama_f32.gguf", dir, dir))
    assert.equal(2, rc)
    assert.matches("is the same file as %-%-model", out)
    out, rc = run(string.format("./rlaif export-gguf --model %s/llama_f32.gguf --tokenizer %s/llama_f32.gguf " ..
      "--out %s/../%s/llama_f32.gguf", dir, dir, dir, dir:match("[^/]+$")))
    assert.equal(2, rc)
    assert.matches("is the same file as %-%-", out)
    out, rc = run("./rlaif export-gguf --model x --out y --type q4")
    assert.equal(2, rc)
    assert.matches("option %-%-type must be one of", out)
    local m = rlaif.model.load("tests/fixtures/gguf/llama")
    assert.has_error(function() m:save_gguf(dir .. "/x.gguf", { tokenizer = tok, type = "q4_k" }) end,
      "model:save_gguf: option 'type' must be one of \"f32\", \"f16\", \"bf16\", \"q8_0\", got \"q4_k\"")
    assert.has_error(function() m:save_gguf(dir .. "/x.gguf", {}) end)
    local rm = rlaif.model.new { arch = "llama", vocab_size = 1000, n_layer = 1, n_head = 2, d_model = 8, d_ff = 8,
      head = "reward" }
    local ok, err = rm:save_gguf(dir .. "/x.gguf", { tokenizer = tok })
    assert.is_nil(ok)
    assert.matches("model.save_gguf: a reward model", err)
    -- a truncated file: an error naming the file and the tensor
    local full = helper.read_file(dir .. "/gpt2_f32.gguf")
    local f = assert(io.open(dir .. "/cut.gguf", "wb"))
    f:write(full:sub(1, #full - 5000))
    f:close()
    local m2, e2 = rlaif.model.try_load(dir .. "/cut.gguf")
    assert.is_nil(m2)
    assert.matches("cut%.gguf: tensor '.+' data .- extends past the end of the file", e2)
    local t, e3 = rlaif.tokenizer.try_load("tests/fixtures/gguf/ref.gguf")
    assert.is_nil(t)
    assert.matches("no tokenizer", e3)
  end)

  -- Run jobs through llama.cpp and check them against `expect` (see below).
  local function llamacpp(jobs, expect)
    local node, why = npm_node()
    if not node then
      pending("llama.cpp (node-llama-cpp) unavailable: " .. why)
      return
    end
    local jf = dir .. "/jobs.json"
    local f = assert(io.open(jf, "w"))
    f:write(json.encode(jobs))
    f:close()
    local p = io.popen(string.format("env -u LD_PRELOAD %s tests/node/llamacpp.mjs %s 2>%s.err", q(node), jf, jf))
    local out = p:read("a")
    p:close()
    local ok, res = pcall(json.decode, out)
    assert(ok and type(res) == "table", "llamacpp.mjs: " .. out .. (helper.read_file(jf .. ".err") or ""))
    for k, e in ipairs(expect) do
      local r = res[k]
      assert.is_nil(r.error, e.what .. ": " .. tostring(r.error))
      local t = e.tok or tok
      for i, s in ipairs(jobs[k].texts) do
        assert.same(t:encode(s), r.tokens[i], e.what .. " tokenizes " .. s)
      end
      for i, g in ipairs(e.greedy or {}) do
        local ours, probs, gap = g[1], g[2], g[3]
        local theirs = r.greedy[i]
        if e.ty == "f32" then
          -- the same weights: the same tokens (the margins make this meaningful) and probabilities
          assert.is_true(gap > 1e-3, e.what .. ": a near tie in prompt " .. i)
          assert.same(ours, theirs.tokens, e.what .. " continues " .. PROMPTS[i])
          for j, pr in ipairs(probs) do
            assert.is_true(math.abs(pr - theirs.probs[j]) < 2e-3, string.format("%s prompt %d token %d: p %g vs %g",
              e.what, i, j, pr, theirs.probs[j]))
          end
        else
          -- llama.cpp also rounds the activations it multiplies with F16 / Q8_0 weights:
          -- the first tokens agree, and the rest mostly
          local same = 0
          for j = 1, math.min(#ours, #theirs.tokens) do
            if ours[j] ~= theirs.tokens[j] then break end
            same = same + 1
          end
          assert.is_true(same >= math.min(4, #ours), e.what .. ": agrees on " .. same .. " tokens of prompt " .. i)
        end
      end
    end
  end

  -- vocabulary-only files of real models' tokenizers from ../shared
  local function shared_jobs(list, jobs, expect)
    for _, s in ipairs(list) do
      local path = helper.shared("data/tokenizers/" .. s)
      if path then
        local t = assert(rlaif.tokenizer.load(path))
        local p = dir .. "/" .. s:gsub("[/.]", "_") .. ".gguf"
        assert(t:save_gguf(p))
        jobs[#jobs + 1] = { model = p, vocab_only = true, texts = TEXTS, prompts = json.array {} }
        expect[#expect + 1] = { what = s, tok = t }
      end
    end
  end

  it("agrees with llama.cpp on tokens, greedy continuations and probabilities", function()
    local jobs, expect = {}, {}
    -- models: the trained fixtures in F32 (exact agreement), F16 and Q8_0
    local prompt_ids = {}
    for i, p in ipairs(PROMPTS) do prompt_ids[i] = tok:encode(p) end
    for _, arch in ipairs { "llama", "gpt2" } do
      local m = rlaif.model.load("tests/fixtures/gguf/" .. arch)
      for _, ty in ipairs { "f32", "f16", "q8_0" } do
        local p = string.format("%s/%s_%s_x.gguf", dir, arch, ty)
        assert(m:save_gguf(p, { tokenizer = tok, type = ty }))
        local back = rlaif.model.load(p)   -- what llama.cpp computes with: the file's weights
        local e = { what = arch .. " " .. ty, ty = ty, greedy = {} }
        for i, ids in ipairs(prompt_ids) do e.greedy[i] = { greedy(back, ids, 12, 998) } end
        jobs[#jobs + 1] = { model = p, texts = ty == "f32" and TEXTS or json.array {}, prompts = prompt_ids, n = 12 }
        expect[#expect + 1] = e
      end
    end
    -- and GPT-2's tokenizer.json (pre-tokenizer gpt-2); the larger vocabularies are in the #slow test
    shared_jobs({ "gpt2/tokenizer.json" }, jobs, expect)
    llamacpp(jobs, expect)
  end)

  -- `lua5.4 /usr/bin/busted --run=all tests/spec/gguf_spec.lua` (llama.cpp takes seconds per vocabulary)
  it("tokenizes like llama.cpp with Qwen3, Llama 3, cl100k, o200k and r50k vocabularies #slow", function()
    local jobs, expect = {}, {}
    -- qwen2 and llama-bpe pre-tokenizers; tiktoken files get merges recovered from their ranks
    shared_jobs({ "qwen3/tokenizer.json", "llama3/tokenizer.json", "tiktoken/cl100k_base.tiktoken",
      "tiktoken/o200k_base.tiktoken", "tiktoken/r50k_base.tiktoken" }, jobs, expect)
    if #jobs == 0 then
      pending("../shared is absent")
      return
    end
    llamacpp(jobs, expect)
  end)
end)
