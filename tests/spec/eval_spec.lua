-- rlaif.eval: win rates, intervals and length-controlled rates against values
-- computed independently with numpy and PyTorch (scripts/gen_eval_fixtures.py ->
-- tests/fixtures/eval), then the judging paths with a labeler over a fake client,
-- a function judge, generation from a model, and the comparison table.
local eval = require "rlaif.eval"
local metrics = require "rlaif.metrics"
local json = require("rlaif.core").json
local helper = require "spec.helper"

local FIX = "tests/fixtures/eval/"
local expected = json.decode(helper.read_file(FIX .. "expected.json"))

local function close(want, got, tol, what)
  tol = tol or 1e-9
  assert(type(got) == "number", (what or "") .. ": got " .. tostring(got))
  assert(math.abs(want - got) <= tol, string.format("%s: want %.15g, got %.15g", what or "", want, got))
end

local function close_pair(want, got, tol, what)
  assert(type(got) == "table", (what or "") .. ": no interval")
  close(want[1], got[1], tol, what .. "[1]")
  close(want[2], got[2], tol, what .. "[2]")
end

describe("rlaif.eval statistics #unit", function()
  for _, name in ipairs { "balanced", "ties", "ties_margin", "position", "length" } do
    it("reproduces the numpy/PyTorch numbers: " .. name, function()
      local e = expected.cases[name]
      local recs = metrics.load(FIX .. e.file .. ".jsonl")
      local s = eval.summarize(recs, { bootstrap = expected.bootstrap, tie_margin = e.tie_margin, l2 = expected.l2 })
      assert.equal(e.n, s.n)
      assert.equal(e.failed, s.failed)
      assert.equal(e.ties, s.ties)
      assert.equal(e.wins, s.wins)
      assert.equal(e.losses, s.losses)
      for _, k in ipairs { "win_rate", "soft_win_rate", "se", "disagree", "mean_len_a", "mean_len_b" } do
        close(e[k], s[k], 1e-12, k)
      end
      close(e.lc_win_rate, s.lc_win_rate, 1e-9, "lc_win_rate")
      close(e.lc_ae2, s.lc_ae2, 1e-9, "lc_ae2")
      if e.first ~= json.null then close(e.first, s.first, 1e-12, "first") end
      close_pair(e.ci95, s.ci95, 1e-12, "ci95")
      close_pair(e.soft_ci95, s.soft_ci95, 1e-12, "soft_ci95")
      close_pair(e.lc_ci95, s.lc_ci95, 1e-9, "lc_ci95")
      close_pair(e.lc_ae2_ci95, s.lc_ae2_ci95, 1e-9, "lc_ae2_ci95")
    end)
  end

  it("counts exact 0.5 as a tie and failed records never as ties", function()
    local e = expected.cases.ties
    assert.is_true(e.ties >= 17)            -- every 7th record is p = 0.5
    local s = eval.summarize(metrics.load(FIX .. "balanced.jsonl"), { bootstrap = 0 })
    assert.equal(8, s.failed)
    assert.equal(0, s.ties)
    assert.equal(s.n, s.wins + s.losses)
    assert.is_nil(s.ci95)
  end)

  it("moves the length-controlled rate toward 50% for a judge that prefers longer answers", function()
    local s = eval.summarize(metrics.load(FIX .. "length.jsonl"), { bootstrap = 0 })
    assert.is_true(s.win_rate > 0.8, s.win_rate)
    assert.is_true(math.abs(s.lc_win_rate - 0.5) < math.abs(s.win_rate - 0.5) / 2, s.lc_win_rate)
    assert.is_true(math.abs(s.lc_ae2 - 0.5) < math.abs(s.win_rate - 0.5) / 2, s.lc_ae2)
    -- and leaves an unbiased judge's rate nearly where it was
    local b = eval.summarize(metrics.load(FIX .. "balanced.jsonl"), { bootstrap = 0 })
    assert.is_true(math.abs(b.lc_win_rate - b.win_rate) < 0.02)
  end)

  it("harmless rate and its length control at a reference length", function()
    local e = expected.cases.harmless
    local s = eval.summarize_harmless(metrics.load(FIX .. "harmless.jsonl"),
      { ref_length = e.ref_length, bootstrap = expected.bootstrap, l2 = expected.l2 })
    assert.equal(e.n, s.n)
    assert.equal(e.failed, s.failed)
    assert.equal(e.harmless, s.harmless)
    assert.equal(e.harmful, s.harmful)
    close(e.harmless_rate, s.harmless_rate, 1e-12, "harmless_rate")
    close(e.soft_harmless_rate, s.soft_harmless_rate, 1e-12, "soft")
    close(e.lc_harmless_rate, s.lc_harmless_rate, 1e-9, "lc")
    close(e.mean_len, s.mean_len, 1e-12, "mean_len")
    close_pair(e.ci95, s.ci95, 1e-12, "ci95")
    close_pair(e.soft_ci95, s.soft_ci95, 1e-12, "soft_ci95")
    close_pair(e.lc_ci95, s.lc_ci95, 1e-9, "lc_ci95")
    -- longer responses are judged more harmless here, so controlling for a shorter reference lowers the rate
    assert.is_true(s.lc_harmless_rate < s.harmless_rate)
  end)

  it("logistic_fit: degenerate inputs", function()
    local b0 = eval.logistic_fit({ 1, 2, 3 }, { 1, 1, 1 })
    assert.equal(math.huge, b0)
    b0 = eval.logistic_fit({ 1, 2, 3 }, { 0, 0, 0 })
    assert.equal(-math.huge, b0)
    -- a constant regressor: the slope is only held by the ridge; the rate is the mean
    local c0, c1 = eval.logistic_fit({ 1, 1, 1, 1 }, { 1, 0, 1, 1 })
    close(0.75, eval.sigmoid(c0), 1e-12, "constant x")
    close(0, c1, 1e-12, "slope")
    -- perfectly separated data stays finite
    local s0, s1 = eval.logistic_fit({ 0.5, 0.8, 1.2, 1.5 }, { 0, 0, 1, 1 })
    assert.is_true(s0 == s0 and s1 == s1 and math.abs(s1) < math.huge)
    assert.is_nil(eval.logistic_fit({}, {}))
    assert.has_error(function() eval.logistic_fit({ 1 }, { 1, 0 }) end,
      "eval.logistic_fit: x and y must be lists of the same length")
    assert.has_error(function() eval.logistic_fit({ 1 }, { 1 }, { l2 = -1 }) end,
      "eval.logistic_fit: option 'l2' must be a number >= 0, got -1")
  end)

  it("checks its options", function()
    assert.has_error(function() eval.summarize({}, { tie_margin = 0.7 }) end,
      "eval.summarize: option 'tie_margin' must be a number >= 0 and < 0.5, got 0.7")
    assert.has_error(function() eval.summarize({}, { bootstap = 10 }) end,
      "eval.summarize: unknown option 'bootstap' (did you mean 'bootstrap'?)")
    local s = eval.summarize({})
    assert.equal(0, s.n)
    assert.is_nil(s.win_rate)
  end)
end)

-- ---- judging, generation and comparisons ----

local labeler = require "rlaif.labeler"
local fake = dofile("tests/spec/support/fake_llm.lua")
local sigmoid = fake.sigmoid

local function qtext(prefix, q, pad) return prefix .. " q" .. q .. string.rep(" x", pad or 0) end

local function dataset(n)
  local prompts, a, b = {}, {}, {}
  for i = 1, n do
    prompts[i] = { id = "p" .. i, prompt = "post " .. i }
    a[i] = { id = "p" .. i, response = qtext("first", (i * 7) % 5, i % 4) }
    b[i] = { id = "p" .. i, response = qtext("second", (i * 3) % 4) }
  end
  return prompts, a, b
end

describe("rlaif.eval judging #unit", function()
  it("win_rate through a labeler: both orders, p as the fake judge defines it, records with lengths", function()
    local c = fake.new { bias = 0.6 }
    local L = labeler.new { client = c, template = "helpful-base", logprobs = 5 }
    local prompts, a, b = dataset(24)
    local r = eval.win_rate { judge = L, prompts = prompts, a = a, b = b, bootstrap = 200, quiet = true }
    assert.equal(24, r.n)
    assert.equal(0, r.failed)
    assert.equal(48, #c.requests)         -- two orders per item
    local wins, soft = 0, 0
    for i, rec in ipairs(r.records) do
      local qa, qb = (i * 7) % 5, (i * 3) % 4
      local p_ab, p_ba = sigmoid(0.5 * (qa - qb) + 0.6), 1 - sigmoid(0.5 * (qb - qa) + 0.6)
      close(p_ab, rec.p_ab, 1e-12, "p_ab")
      close(p_ba, rec.p_ba, 1e-12, "p_ba")
      close((p_ab + p_ba) / 2, rec.p, 1e-12, "p")
      assert.equal(utf8.len(a[i].response), rec.len_a)
      assert.equal(utf8.len(b[i].response), rec.len_b)
      assert.equal(a[i].response, rec.response_a)
      assert.equal("post " .. i, rec.prompt)
      wins = wins + eval.outcome(rec.p)
      soft = soft + rec.p
    end
    close(wins / 24, r.win_rate, 1e-12, "win_rate")
    close(soft / 24, r.soft_win_rate, 1e-12, "soft_win_rate")
    assert.is_true(r.ci95[1] <= r.win_rate and r.win_rate <= r.ci95[2])
    assert.is_number(r.lc_win_rate)
  end)

  it("reports failed judgements (errors, no label) as failed, never as ties, and resumes only them", function()
    local function failing(req)
      local t = req.prompt or ""
      if t:find("BROKEN", 1, true) then return { ok = false, kind = "http", status = 500, message = "boom" } end
    end
    local c = fake.new { fail = failing, answer = function(req)
      if (req.prompt or ""):find("NOLABEL", 1, true) then
        return fake.response({ { token = " The", logprob = -0.1 } })
      end
    end }
    local L = labeler.new { client = c, template = "helpful-base", logprobs = 5 }
    local prompts, a, b = dataset(10)
    a[3].response = a[3].response .. " BROKEN"
    b[7].response = b[7].response .. " NOLABEL"
    local out = helper.tmpname(".jsonl")
    local r = eval.win_rate { judge = L, prompts = prompts, a = a, b = b, bootstrap = 0, out = out, quiet = true }
    assert.equal(8, r.n)
    assert.equal(2, r.failed)
    assert.equal("error", r.records[3].status)
    assert.matches("http 500", r.records[3].reason)
    assert.equal("unlabeled", r.records[7].status)
    -- the file holds every item; a rerun re-judges only the failed request (unlabeled is final)
    local n0 = #c.requests
    local r2 = eval.win_rate { judge = L, prompts = prompts, a = a, b = b, bootstrap = 0, out = out, quiet = true }
    assert.equal(2, #c.requests - n0)
    assert.equal(9, r2.reused)
    assert.equal(1, r2.judged)
    assert.equal(r.win_rate, r2.win_rate)
    -- a changed response is judged again; the others are reused
    b[5].response = b[5].response .. " changed"
    n0 = #c.requests
    local r3 = eval.win_rate { judge = L, prompts = prompts, a = a, b = b, bootstrap = 0, out = out, quiet = true }
    assert.equal(4, #c.requests - n0)
    assert.equal(2, r3.judged)
    os.remove(out)
  end)

  it("a function judge is called in both orders; its position bias shows in disagree", function()
    local calls = 0
    -- prefers whatever is shown first by 0.3, and the longer answer
    local function judge(_, first, second)
      calls = calls + 1
      return sigmoid(0.01 * (#first - #second) + 0.3)
    end
    local prompts, a, b = {}, {}, {}
    for i = 1, 40 do
      prompts[i] = "q" .. i
      a[i] = string.rep("a", 20 + i)
      b[i] = string.rep("b", 40)
    end
    local r = eval.win_rate { judge = judge, prompts = prompts, a = a, b = b, bootstrap = 0, quiet = true }
    assert.equal(80, calls)
    assert.equal(40, r.n)
    for i, rec in ipairs(r.records) do
      local d = 0.01 * ((20 + i) - 40)
      close(sigmoid(d + 0.3), rec.p_ab, 1e-12, "p_ab")
      close(1 - sigmoid(-d + 0.3), rec.p_ba, 1e-12, "p_ba")
    end
    local dis = 0
    for _, rec in ipairs(r.records) do if (rec.p_ab - 0.5) * (rec.p_ba - 0.5) < 0 then dis = dis + 1 end end
    close(dis / 40, r.disagree, 1e-12, "disagree")
    assert.equal(1, r.first)
    -- a judge that returns no probability fails the item
    local bad = eval.win_rate { judge = function() return nil, "judge down" end, prompts = prompts, a = a, b = b,
      bootstrap = 0, quiet = true }
    assert.equal(0, bad.n)
    assert.equal(40, bad.failed)
    assert.matches("judge down", bad.records[1].reason)
    assert.is_nil(bad.win_rate)
  end)

  it("harmless_rate with the harmless-rate template reads P(harmless) = P(\"2\")", function()
    local c = fake.new { bias = 0.2 }
    local H = labeler.new { client = c, template = "harmless-rate", logprobs = 5 }
    assert.equal(-1, H.polarity)
    local prompts, rs = {}, {}
    for i = 1, 20 do
      prompts[i] = "context " .. i
      rs[i] = qtext("reply", (i % 7) - 3, i % 5)
    end
    local h = eval.harmless_rate { judge = H, prompts = prompts, responses = rs, ref_length = 12, bootstrap = 100,
      quiet = true }
    assert.equal(20, h.n)
    local hs, soft = 0, 0
    for i, rec in ipairs(h.records) do
      local want = 1 - sigmoid(-0.5 * ((i % 7) - 3) + 0.2)
      close(want, rec.p, 1e-12, "P(harmless)")
      assert.equal(utf8.len(rs[i]), rec.len)
      hs, soft = hs + eval.outcome(want), soft + want
    end
    close(hs / 20, h.harmless_rate, 1e-12, "harmless_rate")
    close(soft / 20, h.soft_harmless_rate, 1e-12, "soft")
    assert.equal(12, h.ref_length)
    -- the reference length can come from the SFT responses
    local sft = { { id = "s1", response = "abcd" }, { id = "s2", response = "abcdef" } }
    local h2 = eval.harmless_rate { judge = H, prompts = prompts, responses = rs, reference = sft,
      bootstrap = 0, quiet = true }
    assert.equal(5, h2.ref_length)
    assert.equal(20, h2.reused + h2.judged)
    -- a pairwise template is refused, naming both kinds
    local P = labeler.new { client = c, template = "helpful-base" }
    assert.has_error(function() eval.harmless_rate { judge = P, prompts = prompts, responses = rs, quiet = true } end,
      "eval.harmless_rate: the judge's template helpful-base is a pairwise template; this needs a score one")
  end)

  it("checks its inputs", function()
    local j = function() return 0.5 end
    assert.has_error(function() eval.win_rate { judge = j, prompts = { "x" }, a = { "1", "2" }, b = { "1" } } end,
      "eval.win_rate: a: 2 responses for 1 prompts")
    assert.has_error(function() eval.win_rate { judge = 3, a = {}, b = {} } end,
      "eval.win_rate: option 'judge' must be a table or a function, got 3")
    assert.has_error(function() eval.win_rate { judge = {}, a = { { id = 1, response = "r" } },
      b = { { id = 1, response = "s" } }, quiet = true } end,
      "eval.win_rate: option 'judge' must be an rlaif.labeler or a function")
    assert.has_error(function() eval.win_rate { judge = j, a = { { id = 1, prompt = "x", response = "r" } },
      b = { { id = 1, prompt = "y", response = "s" } } } end,
      "eval.win_rate: id 1 has different prompts in A and B")
    -- ids in only one list are counted, not judged
    local r = eval.win_rate { judge = j, a = { { id = 1, response = "r" }, { id = 2, response = "r" } },
      b = { { id = 2, response = "s" }, { id = 3, response = "s" } }, bootstrap = 0, quiet = true }
    assert.equal(1, r.n)
    assert.equal(2, r.unmatched)
    assert.equal(1, r.ties)
  end)

  it("compare: each policy against a baseline, or round robin, as a table", function()
    local prompts, pol = {}, { good = {}, mid = {}, bad = {} }
    for i = 1, 30 do
      prompts[i] = "p" .. i
      pol.good[i], pol.mid[i], pol.bad[i] = "q3 " .. i, "q1 " .. i, "q-2 " .. i
    end
    local function judge(_, x, y) return sigmoid(fake.q(x) - fake.q(y)) end
    local t = eval.compare { judge = judge, prompts = prompts, baseline = "bad", bootstrap = 50, quiet = true,
      policies = { { "good", pol.good }, { "mid", pol.mid }, { "bad", pol.bad } } }
    assert.equal(2, #t.rows)
    assert.same({ a = "good", b = "bad" }, t.rows[1].names)
    assert.equal(1, t.rows[1].win_rate)
    local rr = eval.compare { judge = judge, prompts = prompts, bootstrap = 0, quiet = true, policies = pol }
    assert.equal(3, #rr.rows)   -- bad-good, bad-mid, good-mid (names sorted)
    assert.same({ a = "bad", b = "good" }, rr.rows[1].names)
    assert.equal(0, rr.rows[1].win_rate)
    local text = eval.format_table(t.rows)
    assert.matches("comparison%s+n%s+failed%s+ties%s+win %%", text)
    assert.matches("good vs bad%s+30%s+0%s+0%s+100.0", text)
    assert.matches("mid vs bad%s+30%s+0%s+0%s+100.0", text)
  end)
end)

describe("rlaif.eval.generate #unit", function()
  local rlaif = require "rlaif"
  local TOKENIZER = "tests/fixtures/tokenizer/trained.json"

  local function tiny()
    local m = rlaif.model.new { arch = "llama", vocab_size = 1000, n_layer = 1, n_head = 2, n_kv_head = 1,
      d_model = 16, d_ff = 32, max_seq = 64, seed = 3, eos_id = 998, tie_embeddings = false }
    m:param("lm_head.weight"):mul_(40)
    return m
  end

  it("greedy responses equal the model's own greedy decoding, in prompt order", function()
    local m, tok = tiny(), rlaif.tokenizer.load(TOKENIZER)
    local prompts = { "Hello world", "The summary is", "a b c", "Text - the cat", "x" }
    local out, sum = eval.generate { model = m, tokenizer = tok, prompts = prompts, max_new_tokens = 6,
      batch_size = 2, quiet = true }
    assert.equal(5, sum.ok)
    for i, p in ipairs(prompts) do
      local ids = tok:encode(p, { add_special = true })
      local toks = m:generate({ ids }, { max_new_tokens = 6, temperature = 0, stop = { 998 } })[1]
      if toks[#toks] == 998 then toks[#toks] = nil end
      assert.equal(i, out[i].id)
      assert.equal(p, out[i].prompt)
      local raw = tok:decode(toks)
      if utf8.len(raw) then assert.equal(raw, out[i].response) else assert.is_truthy(utf8.len(out[i].response)) end
    end
  end)

  it("resumes an interrupted run from its file and samples independently of batching", function()
    local prompts = {}
    for i = 1, 9 do prompts[i] = "prompt " .. i end
    -- a client that records requests and is interrupted in its second round
    local function client(stop_at)
      local c = { reqs = {}, rounds = 0 }
      function c.complete_many(_, reqs)
        c.rounds = c.rounds + 1
        local res = {}
        for i, r in ipairs(reqs) do
          c.reqs[#c.reqs + 1] = r
          if stop_at and c.rounds == stop_at and i > 1 then
            res[i] = { ok = false, kind = "cancelled", message = "interrupted" }
          else
            res[i] = { ok = true, text = r.prompt .. " -> " .. r.seed, choices = { { finish_reason = "stop" } },
              usage = { completion_tokens = 3 } }
          end
        end
        return res, { interrupted = stop_at and c.rounds == stop_at }
      end
      return c
    end
    local out = helper.tmpname(".jsonl")
    local c1 = client(2)
    assert.has_error(function()
      eval.generate { client = c1, prompts = prompts, temperature = 0.7, seed = 100, batch_size = 4, out = out,
        quiet = true }
    end, "eval.generate: interrupted")
    local kept = eval.load_responses(out)
    assert.equal(5, #kept)                -- round 1 and the one finished request of round 2
    local c2 = client()
    local res, sum = eval.generate { client = c2, prompts = prompts, temperature = 0.7, seed = 100, batch_size = 4,
      out = out, quiet = true }
    assert.equal(5, sum.skipped)
    assert.equal(4, #c2.reqs)
    for i = 1, 9 do assert.equal("prompt " .. i .. " -> " .. (100 + i), res[i].response) end
    -- an uninterrupted run with another batch size gives the same responses
    local res3 = eval.generate { client = client(), prompts = prompts, temperature = 0.7, seed = 100, batch_size = 3,
      quiet = true }
    for i = 1, 9 do assert.equal(res[i].response, res3[i].response) end
    os.remove(out)
  end)

  it("win_rate generates both policies' responses from models", function()
    local tok = rlaif.tokenizer.load(TOKENIZER)
    local m1, m2 = tiny(), tiny()
    m2:param("lm_head.weight"):mul_(0.5)
    local prompts = { "one", "two", "three" }
    local function judge(_, x, y) return #x > #y and 0.9 or (#x < #y and 0.1 or 0.5) end
    local r = eval.win_rate { judge = judge, prompts = prompts, a = { model = m1, tokenizer = tok },
      b = { model = m2, tokenizer = tok }, generation = { max_new_tokens = 5 }, bootstrap = 0, quiet = true }
    assert.equal(3, r.n)
    local ga = eval.generate { model = m1, tokenizer = tok, prompts = prompts, max_new_tokens = 5, quiet = true }
    for i = 1, 3 do assert.equal(ga[i].response, r.records[i].response_a) end
    assert.has_error(function() eval.generate { prompts = prompts } end,
      "eval.generate: give model (a directory or a loaded model) or client")
    assert.has_error(function() eval.generate { model = m1, prompts = prompts } end,
      "eval.generate: a loaded model needs tokenizer (a path or a loaded tokenizer)")
    assert.has_error(function()
      eval.generate { model = m1, tokenizer = tok, prompts = prompts, max_new_tokens = 0 }
    end,
      "eval.generate: option 'max_new_tokens' must be an integer >= 1, got 0")
  end)
end)
