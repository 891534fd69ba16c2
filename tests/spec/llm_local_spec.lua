-- The `local` backend of rlaif.llm (lua/rlaif/llm_local.lua): completions and
-- top-K log-probabilities from an in-process model, checked against values
-- computed here independently from m:forward; the labeler end to end on it.
local rlaif = require "rlaif"
local helper = require "spec.helper"
local labeler = require "rlaif.labeler"

local TOKENIZER = "tests/fixtures/tokenizer/trained.json"
local EOS = 998   -- <|endoftext|> in the trained tokenizer

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) end

local function mkdtemp()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function copy(src, dst)
  local f = assert(io.open(src, "rb"))
  local s = f:read("a")
  f:close()
  f = assert(io.open(dst, "wb"))
  f:write(s)
  f:close()
end

-- A tiny Llama with the tokenizer's vocabulary; lm_head scaled so that the
-- next-token distributions are peaked (clear argmaxes, varied outputs).
local function tiny_model(eos)
  local m = rlaif.model.new { arch = "llama", vocab_size = 1000, n_layer = 2, n_head = 4, n_kv_head = 2, d_model = 32,
    d_ff = 64, max_seq = 256, seed = 7, eos_id = eos or EOS, tie_embeddings = false }
  m:param("lm_head.weight"):mul_(40)
  return m
end

-- log_softmax of the logits at (1-based) position t of one sequence, in double precision.
local function ref_logprobs(m, ids, t)
  local logits = m:forward(ids)
  local row = logits[1][t or #ids]:totable()
  local mx = -math.huge
  for _, x in ipairs(row) do if x > mx then mx = x end end
  local s = 0
  for _, x in ipairs(row) do s = s + math.exp(x - mx) end
  local lse = mx + math.log(s)
  local out = {}
  for v, x in ipairs(row) do out[v] = x - lse end
  return out
end

local function ref_argmax(row)
  local best = 1
  for v = 2, #row do if row[v] > row[best] then best = v end end
  return best - 1
end

-- Greedy decoding by full forward passes (no KV cache), stopping after EOS.
local function ref_greedy(m, ids, n)
  local seq = table.move(ids, 1, #ids, 1, {})
  local out = {}
  for _ = 1, n do
    local id = ref_argmax(ref_logprobs(m, seq))
    out[#out + 1] = id
    if id == EOS then break end
    seq[#seq + 1] = id
  end
  return out
end

describe("rlaif.llm local backend #unit", function()
  local dir, m, tok, c

  setup(function()
    dir = mkdtemp()
    m = tiny_model()
    assert(m:save(dir))
    copy(TOKENIZER, dir .. "/tokenizer.json")
    tok = assert(rlaif.tokenizer.load(TOKENIZER))
    assert.equal(1000, tok:vocab_size())
    c = rlaif.llm.client { api = "local", model = dir, batch_size = 3 }
  end)

  teardown(function()
    for _, f in ipairs { "config.json", "model.safetensors", "tokenizer.json" } do os.remove(dir .. "/" .. f) end
    os.remove(dir)
  end)

  it("is built by rlaif.llm.client and has the client interface", function()
    assert.equal("local", c.api)
    assert.equal(dir, c.model)
    for _, f in ipairs { "complete", "try_complete", "complete_many", "stats", "summary", "reset_stats", "close" } do
      assert.is_function(c[f])
    end
    helper.raises(function() rlaif.llm.client { api = "local", model = dir, bogus = 1 } end,
      "llm.client", "'bogus'")
    helper.raises(function() rlaif.llm.client { api = "local" } end, "llm.client", "`model`", "is required")
    helper.raises(function() rlaif.llm.client { api = "local", model = dir .. "/missing" } end,
      "llm.client", "cannot read " .. dir .. "/missing/config.json")
    -- the trained tokenizer has more tokens than the gpt2 fixture's vocabulary
    local ok, err = pcall(rlaif.llm.client, { api = "local", model = "tests/fixtures/model/gpt2",
      tokenizer = TOKENIZER })
    assert.is_false(ok)
    assert.matches("tokenizer has 1000 tokens", tostring(err))
    local rm = rlaif.model.load("tests/fixtures/model/gpt2_reward", { head = "reward" })
    ok, err = pcall(rlaif.llm.client, { api = "local", model = rm, tokenizer = TOKENIZER })
    assert.is_false(ok)
    assert.matches("reward head", tostring(err))
    -- transport options of the HTTP backends are accepted (the CLI passes them)
    local c2 = rlaif.llm.client { api = "local", model = m, tokenizer = tok, concurrency = 16, timeout = 5 }
    assert.equal(16, c2.concurrency)
    assert.equal("local", c2.model)
  end)

  it("shows progress through rlaif.progress", function()
    local out = { buf = {} }
    function out:write(...) for _, v in ipairs { ... } do self.buf[#self.buf + 1] = tostring(v) end end
    function out.flush() end
    local reqs = {}
    for i = 1, 4 do reqs[i] = { prompt = "ab" .. i, max_tokens = 2, temperature = 0 } end
    reqs[5] = { prompt = "x", logit_bias = { [1] = 1 } }
    c:complete_many(reqs, { progress = { tty = true, stream = out, redraw = 0 } })
    local text = table.concat(out.buf)
    assert.matches("\rllm %[#+%] 5/5 100%% [%d.]+ req/s ETA 0s errors 1 *\n", text)
    assert.matches("\nllm: 5 requests, 4 ok %(0 cached%), 1 failed in", text)
  end)

  it("works on a checkpoint saved with its tokenizer (m:save(dir, {tokenizer = tok}))", function()
    local d2 = mkdtemp()
    finally(function() os.execute("rm -rf '" .. d2 .. "'") end)
    assert.is_true(m:save(d2, { tokenizer = tok }))
    local c2 = rlaif.llm.client { api = "local", model = d2 }
    local req = { prompt = "The cat", max_tokens = 4, temperature = 0, logprobs = 3 }
    local a, b = c:complete(req), c2:complete(req)
    assert.equal(a.text, b.text)
    assert.same(a.choices[1].tokens, b.choices[1].tokens)
    assert.same(tok:encode("a b c"), rlaif.tokenizer.load(d2):encode("a b c"))
    local ok, err = m:save(d2, { tokenizer = tok })   -- saving again replaces the files
    assert.is_true(ok, err)
    assert.equal("config.json\nmodel.safetensors\ntokenizer.json\n", io.popen("ls '" .. d2 .. "'"):read("a"))
  end)

  it("greedy completions equal argmax decoding by m:forward, batched or not", function()
    local texts = { "Hello world", "The summary is", "a", "Text - the cat sat on the mat.\nSummary 1 -" }
    local reqs = {}
    for i, p in ipairs(texts) do reqs[i] = { prompt = p, max_tokens = 6, temperature = 0, logprobs = 0 } end
    local rs, info = c:complete_many(reqs)
    assert.equal(#texts, info.ok)
    for i, p in ipairs(texts) do
      local ids = tok:encode(p, { add_special = true })
      local want = ref_greedy(m, ids, 6)
      local r = rs[i]
      assert.is_true(r.ok)
      assert.is_false(r.cached)
      assert.equal(1, r.attempts)
      assert.equal(#ids, r.usage.prompt_tokens)
      assert.equal(#want, r.usage.completion_tokens)
      local got = {}
      for k, t in ipairs(r.choices[1].tokens) do
        got[k] = t.id
        assert.equal(tok:token(t.id), t.bytes)
        assert.same({}, t.top)   -- logprobs = 0: the token's logprob, no alternatives
      end
      assert.same(want, got)
      local text_ids = want[#want] == EOS and table.move(want, 1, #want - 1, 1, {}) or want
      assert.equal(r.text, r.choices[1].text)
      -- text = decoded ids, with invalid UTF-8 bytes replaced by U+FFFD
      local raw = tok:decode(text_ids)
      if utf8.len(raw) then assert.equal(raw, r.text) end
      assert.equal(want[#want] == EOS and "stop" or "length", r.choices[1].finish_reason)
      -- one request alone gives the same answer as inside the batch
      local one = c:complete(reqs[i])
      assert.equal(r.text, one.text)
    end
  end)

  it("top-K log-probabilities equal log_softmax of m:forward's logits", function()
    local ids = tok:encode("Summary 2 - a dog ran. Preferred Summary=", { add_special = true })
    for _, K in ipairs { 1, 5, 1000 } do
      for _, n in ipairs { 1, 3 } do   -- max_tokens 1 is one forward pass; 3 goes through generation
        local r = c:complete { prompt = ids, max_tokens = n, temperature = 0, logprobs = K }
        local toks = r.choices[1].tokens
        assert.equal(n, #toks)
        local seq = table.move(ids, 1, #ids, 1, {})
        for pos = 1, n do
          local ref = ref_logprobs(m, seq)
          local t = toks[pos]
          assert.equal(ref_argmax(ref), t.id)
          assert.is_true(close(ref[t.id + 1], t.logprob, 1e-4))
          assert.equal(K, #t.top)
          local order = {}
          for v = 1, #ref do order[v] = v end
          table.sort(order, function(a, b) return ref[a] > ref[b] end)
          local bad = nil   -- plain checks (thousands of them), one assertion per position
          for k, alt in ipairs(t.top) do
            if k > 1 and alt.logprob > t.top[k - 1].logprob then bad = "not sorted at " .. k end
            if not close(ref[order[k]], alt.logprob, 1e-4) then bad = "not the k-th largest at " .. k end
            if not close(ref[alt.id + 1], alt.logprob, 1e-4) then bad = "wrong logprob for id " .. alt.id end
            if tok:token(alt.id) ~= alt.bytes or type(alt.token) ~= "string" then bad = "bad text at " .. k end
          end
          assert.is_nil(bad)
          assert.equal(t.id, t.top[1].id)
          seq[#seq + 1] = t.id
        end
      end
    end
  end)

  it("runs the labeler end to end: p_ab / p_ba are the softmax over the label tokens' logprobs", function()
    local seen = {}
    local proxy = { api = c.api, model = c.model, concurrency = c.concurrency }
    function proxy.complete_many(_, reqs, opts)
      for _, q in ipairs(reqs) do seen[#seen + 1] = q end
      return c:complete_many(reqs, opts)
    end
    -- label variants in the vocabulary: every token whose text, leading whitespace stripped, is the label
    local variants = { {}, {} }
    for id = 0, tok:vocab_size() - 1 do
      local s = (tok:token(id) or ""):gsub("^%s+", "")
      if s == "1" then variants[1][#variants[1] + 1] = id end
      if s == "2" then variants[2][#variants[2] + 1] = id end
    end
    assert.is_true(#variants[1] > 0 and #variants[2] > 0)
    local function p_first(prompt)   -- P(label "1") from the model directly
      local lp = ref_logprobs(m, tok:encode(prompt, { add_special = true }))
      local l = {}
      for k = 1, 2 do
        local acc = {}
        for _, id in ipairs(variants[k]) do acc[#acc + 1] = lp[id + 1] end
        l[k] = labeler.logsumexp(acc)
      end
      return 1 / (1 + math.exp(l[2] - l[1]))
    end
    -- logprobs = 1: the backend adds the label tokens to the top-1 itself (logprobs_tokens)
    local L = labeler.new { client = proxy, template = "summarize-base", logprobs = 1 }
    local data = {
      { id = "p1", context = "The cat sat on the mat all day.", a = "A cat sat.", b = "A dog ran." },
      { id = "p2", context = "Rain fell in the city.", a = "It rained.", b = "Sunny skies." },
      { id = "p3", context = "Stocks rose sharply.", a = "Markets up.", b = "Markets down a lot today." },
    }
    local s = L:label(data)
    assert.equal(3, s.ok)
    assert.equal(6, #seen)
    for _, q in ipairs(seen) do assert.same({ "1", "2" }, q.logprobs_tokens) end
    for i, rec in ipairs(s.records) do
      local d = data[i]
      assert.equal("ok", rec.status)
      assert.equal(d.id, rec.id)
      local ab, ba
      for _, q in ipairs(seen) do
        assert.equal(1, q.max_tokens)
        if q.prompt:find(d.context, 1, true) then
          if q.prompt:find("Summary 1 - " .. d.a, 1, true) then ab = q.prompt else ba = q.prompt end
        end
      end
      assert.is_string(ab)
      assert.is_string(ba)
      local p_ab = p_first(ab)
      local p_ba = 1 - p_first(ba)   -- the swapped order shows the dataset's first response second
      assert.is_nil(rec.floored)
      assert.is_true(close(p_ab, rec.p_ab, 1e-5))
      assert.is_true(close(p_ba, rec.p_ba, 1e-5))
      assert.is_true(close((p_ab + p_ba) / 2, rec.p, 1e-5))
      assert.equal(dir, rec.model)
      -- one pair at a time gives the same numbers as the batch
      local one = L:label_one(d)
      assert.is_true(close(one.p, rec.p, 1e-6))
    end
    -- chat format with an assistant prefill runs too
    local Lc = labeler.new { client = c, template = "summarize-base", logprobs = 1000, format = "chat",
      chat = "prefill" }
    assert.equal("ok", Lc:label_one(data[1]).status)
  end)

  it("dtype = \"bf16\" loads the judge in bf16: logprobs and soft labels near the float32 judge", function()
    local cb = rlaif.llm.client { api = "local", model = dir, dtype = "bf16" }
    assert.equal("bf16", cb._m:dtype())
    assert.equal("float32", c._m:dtype())
    assert.equal("float32", rlaif.llm.client { api = "local", model = dir, dtype = "float32" }._m:dtype())
    -- tolerance: |bf16 - float32| <= 0.05 (1 + |float32|) on every top-5 logprob
    -- (the model bf16 logits tolerance; this peaked fixture: 0.034 at most, measured)
    local worst = 0
    for _, prompt in ipairs { "Summary 2 - a dog ran. Preferred Summary=", "The cat sat", "Rain fell in" } do
      local ids = tok:encode(prompt, { add_special = true })
      local r32 = c:complete { prompt = ids, max_tokens = 1, temperature = 0, logprobs = 1000 }
      local r16 = cb:complete { prompt = ids, max_tokens = 1, temperature = 0, logprobs = 1000 }
      local lp16 = {}
      for _, alt in ipairs(r16.choices[1].tokens[1].top) do lp16[alt.id] = alt.logprob end
      local top = r32.choices[1].tokens[1].top
      for k = 1, 5 do
        local d = math.abs(lp16[top[k].id] - top[k].logprob)
        worst = math.max(worst, d)
        assert.is_true(d <= 0.05 * (1 + math.abs(top[k].logprob)),
          string.format("%q top %d: bf16 %.5f float32 %.5f", prompt, k, lp16[top[k].id], top[k].logprob))
      end
    end
    assert.is_true(worst > 0)   -- the weights really are rounded (the judges differ)
    -- the labeler's soft labels: within 0.02 of the float32 judge's
    local data = {
      { id = "p1", context = "The cat sat on the mat all day.", a = "A cat sat.", b = "A dog ran." },
      { id = "p2", context = "Rain fell in the city.", a = "It rained.", b = "Sunny skies." },
    }
    local s32 = labeler.new { client = c, template = "summarize-base", logprobs = 1 }:label(data)
    local s16 = labeler.new { client = cb, template = "summarize-base", logprobs = 1 }:label(data)
    assert.equal(2, s16.ok)
    for i = 1, 2 do
      assert.is_true(close(s32.records[i].p, s16.records[i].p, 0.02),
        string.format("pair %d: bf16 p %.4f float32 p %.4f", i, s16.records[i].p, s32.records[i].p))
    end
    -- option errors name the function, the key and what was expected
    helper.raises(function() rlaif.llm.client { api = "local", model = dir, dtype = "fp16" } end,
      "llm.client", "'dtype'", "bf16", "fp16")
    helper.raises(function() rlaif.llm.client { api = "local", model = dir, dtype = 16 } end,
      "llm.client", "'dtype'", "bf16", "got 16")
    -- a model object is never converted: load it with the dtype instead
    helper.raises(function() rlaif.llm.client { api = "local", model = m, tokenizer = tok, dtype = "bf16" } end,
      "llm.client", "'dtype'", "rlaif.model.load")
    assert.equal("float32", m:dtype())
  end)

  it("echoes the prompt with its log-probabilities; max_tokens = 0 only scores it", function()
    local ids = tok:encode("The summary is", { add_special = true })
    local e = c:complete { prompt = "The summary is", max_tokens = 0, echo = true, logprobs = 2 }
    assert.equal("The summary is", e.text)
    assert.equal("length", e.choices[1].finish_reason)
    assert.equal(0, e.usage.completion_tokens)
    local t = e.choices[1].tokens
    assert.equal(#ids, #t)
    assert.is_nil(t[1].logprob)   -- the first token has no context
    assert.is_nil(t[1].top)
    assert.equal(ids[1], t[1].id)
    for k = 2, #ids do
      local ref = ref_logprobs(m, ids, k - 1)
      assert.equal(ids[k], t[k].id)
      assert.is_true(close(ref[ids[k] + 1], t[k].logprob), "position " .. k)
      assert.equal(2, #t[k].top)
      assert.equal(ref_argmax(ref), t[k].top[1].id)
    end
    -- with generation: the prompt's tokens, then the generated ones (as without echo)
    local g = c:complete { prompt = "The summary is", max_tokens = 3, temperature = 0, logprobs = 1 }
    local eg = c:complete { prompt = "The summary is", max_tokens = 3, temperature = 0, logprobs = 1, echo = true }
    assert.equal("The summary is" .. g.text, eg.text)
    assert.equal(#ids + #g.choices[1].tokens, #eg.choices[1].tokens)
    for k, tk in ipairs(g.choices[1].tokens) do
      assert.equal(tk.id, eg.choices[1].tokens[#ids + k].id)
      assert.is_true(close(tk.logprob, eg.choices[1].tokens[#ids + k].logprob))
    end
    -- without logprobs: the text only; without echo, max_tokens = 0 gives an empty answer
    assert.equal("The summary is" .. g.text, c:complete { prompt = "The summary is", max_tokens = 3,
      temperature = 0, echo = true }.text)
    local z = c:complete { prompt = "x", max_tokens = 0 }
    assert.equal("", z.text)
    assert.equal(0, #z.choices[1].tokens)
  end)

  it("renders chat messages with the plain template (prefill continues the answer)", function()
    local msgs = { { role = "system", content = "Be brief." }, { role = "user", content = "Which, 1 or 2?" } }
    local want = "System: Be brief.\n\nUser: Which, 1 or 2?\n\nAssistant:"
    local r = c:complete { messages = msgs, max_tokens = 3, temperature = 0 }
    local r2 = c:complete { prompt = want, max_tokens = 3, temperature = 0 }
    assert.equal(#tok:encode(want), r.usage.prompt_tokens)
    assert.equal(r2.text, r.text)
    msgs[3] = { role = "assistant", content = "Preferred=" }
    local p = c:complete { messages = msgs, max_tokens = 3, temperature = 0 }
    local p2 = c:complete { prompt = want .. " Preferred=", max_tokens = 3, temperature = 0 }
    assert.equal(p2.text, p.text)
    -- a function template
    local cf = rlaif.llm.client { api = "local", model = m, tokenizer = tok,
      chat_template = function(ms) return ms[#ms].content end }
    assert.equal(c:complete { prompt = "Which, 1 or 2?", max_tokens = 2, temperature = 0 }.text,
      cf:complete { messages = { { role = "user", content = "Which, 1 or 2?" } }, max_tokens = 2,
        temperature = 0 }.text)
  end)

  it("stops at stop strings and at the end-of-sequence token", function()
    local full = c:complete { prompt = "Hello world", max_tokens = 8, temperature = 0, logprobs = 0 }
    assert.equal("length", full.choices[1].finish_reason)
    local toks = full.choices[1].tokens
    -- a stop string made of the 3rd token's bytes: the text ends before it
    local stop = toks[3].bytes
    local before = toks[1].bytes .. toks[2].bytes
    assert.is_nil(before:find(stop, 1, true))
    local r = c:complete { prompt = "Hello world", max_tokens = 8, temperature = 0, stop = { "zzzz-none", stop },
      logprobs = 0 }
    assert.equal("stop", r.choices[1].finish_reason)
    assert.equal(utf8.len(before) and before or r.text, r.text)
    assert.equal(3, r.usage.completion_tokens)
    assert.is_true(#r.choices[1].tokens <= 3)
    -- a model whose EOS is the token the prompt greedily continues with: nothing but EOS is generated
    local first = toks[1].id
    local m2 = tiny_model(first)
    local c2 = rlaif.llm.client { api = "local", model = m2, tokenizer = tok }
    local e = c2:complete { prompt = "Hello world", max_tokens = 8, temperature = 0, logprobs = 3 }
    assert.equal("", e.text)
    assert.equal("stop", e.choices[1].finish_reason)
    assert.equal(1, e.usage.completion_tokens)
    assert.equal(first, e.choices[1].tokens[1].id)   -- the end token keeps its alternatives
    assert.equal(3, #e.choices[1].tokens[1].top)
  end)

  it("samples reproducibly: seed, n, sample index, independent of the batch", function()
    local q = { prompt = "The summary is", max_tokens = 6, temperature = 1.0, seed = 11, n = 3 }
    local a = c:complete(q)
    local b = c:complete(q)
    assert.equal(3, #a.choices)
    for j = 1, 3 do assert.equal(a.choices[j].text, b.choices[j].text) end
    local rs = c:complete_many { { prompt = "x", max_tokens = 2, temperature = 0 }, q,
      { prompt = "y", max_tokens = 4, temperature = 0.5 } }
    for j = 1, 3 do assert.equal(a.choices[j].text, rs[2].choices[j].text) end
    -- sample indexes give different, reproducible draws
    local texts = {}
    for k = 1, 4 do
      texts[k] = c:complete { prompt = "The summary is", max_tokens = 6, temperature = 1.5, sample = k }.text
      assert.equal(texts[k], c:complete { prompt = "The summary is", max_tokens = 6, temperature = 1.5,
        sample = k }.text)
    end
    local distinct = {}
    for _, t in ipairs(texts) do distinct[t] = true end
    assert.is_true(next(distinct, next(distinct)) ~= nil)   -- at least two different samples
    -- greedy n > 1: n identical choices; usage counts all of them
    local g = c:complete { prompt = "a", max_tokens = 2, temperature = 0, n = 2 }
    assert.equal(2, #g.choices)
    assert.equal(g.choices[1].text, g.choices[2].text)
    assert.equal(1, g.choices[2].index)
  end)

  it("answers bad requests with error objects, in input order", function()
    local long = {}
    for i = 1, 256 do long[i] = 5 end
    local reqs = {
      "not a table",
      { prompt = "a", messages = { { role = "user", content = "b" } } },
      { max_tokens = 1 },
      { prompt = long, max_tokens = 1 },
      { prompt = { 1, 2, 1000 } },
      { prompt = "a", max_tokens = -1 },
      { prompt = "a", temperature = -1 },
      { prompt = "a", logprobs = -2 },
      { prompt = "a", top_p = 0 },
      { prompt = "a", stop = { 1 } },
      { messages = { { role = "user" } } },
      { prompt = "a", logit_bias = { [5] = 1 } },
      { prompt = "a", max_tokens = 1, temperature = 0 },
    }
    local kinds = { "invalid", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid", "invalid",
      "invalid", "invalid", "capability" }
    c:reset_stats()
    local rs, info = c:complete_many(reqs)
    assert.equal(#reqs, #rs)
    for i, kind in ipairs(kinds) do
      assert.is_false(rs[i].ok, "request " .. i)
      assert.equal(kind, rs[i].kind, "request " .. i)
      assert.equal(1, rs[i].attempts)
      assert.is_string(rs[i].message)
    end
    assert.matches("context is 256", rs[4].message)
    assert.is_true(rs[#reqs].ok)
    assert.equal(1, info.ok)
    assert.equal(#kinds, info.failed)
    local st = c:stats()
    assert.equal(#reqs, st.requests)
    assert.equal(11, st.errors.invalid)
    assert.equal(1, st.errors.capability)
    assert.equal(#kinds, st.failed)
    assert.equal(1, st.models[dir].requests)
    assert.matches("1 ok, 12 failed", c:summary())
    -- complete raises the error object; try_complete returns it
    local ok, err = pcall(c.complete, c, { prompt = long })
    assert.is_false(ok)
    assert.equal("invalid", err.kind)
    assert.matches("^llm.complete: invalid: ", tostring(err))
    local r, e = c:try_complete { prompt = "a", logit_bias = { [1] = 2 } }
    assert.is_nil(r)
    assert.equal("capability", e.kind)
    -- max_tokens beyond the context is cut to it
    local near = table.move(long, 1, 250, 1, {})
    local cut = c:complete { prompt = near, max_tokens = 50, temperature = 0 }
    assert.is_true(cut.usage.completion_tokens <= 6)
  end)
end)
