-- Specs for rlaif.labeler: soft-label math, two-order debiasing, polarity,
-- d-RLAIF expectations (incl. a split "10"), CoT and self-consistency request
-- counts, votes, failures, and the crash-safe resumable output (with a real
-- kill -9 of a child `./rlaif label`). Expected numbers are computed here,
-- independently of the labeler's own helpers.
local labeler = require "rlaif.labeler"
local metrics = require "rlaif.metrics"
local json = require("rlaif.core").json
local helper = require "spec.helper"
local fake = dofile("tests/spec/support/fake_llm.lua")

local log, exp = math.log, math.exp
local function sigmoid(x) return 1 / (1 + exp(-x)) end
local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-12) end

local function tok(t, lp, top) return { token = t, logprob = lp, top = top } end
local function alt(t, lp) return { token = t, logprob = lp } end

local function readlines(path)
  local out = {}
  local f = io.open(path, "rb")
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

describe("rlaif.labeler soft labels #unit", function()
  it("logsumexp and softmax are exact", function()
    local v = labeler.logsumexp { log(0.2), log(0.3) }
    assert.is_true(close(v, log(0.5), 1e-15))
    assert.equal(-math.huge, labeler.logsumexp {})
    assert.equal(-math.huge, labeler.logsumexp { -math.huge, -math.huge })
    local p = labeler.softmax { log(0.3), log(0.1) }
    assert.is_true(close(p[1], 0.75) and close(p[2], 0.25))
  end)

  it("sums spelling variants and renormalizes over the labels", function()
    local toks = { tok(" 1", log(0.42), { alt(" 1", log(0.42)), alt("1", log(0.18)), alt(" 2", log(0.21)),
      alt("2", log(0.09)), alt(" The", log(0.1)) }) }
    local got = assert(labeler.read_labels(toks, { "1", "2" }))
    -- P(1) = (0.42 + 0.18) / (0.42 + 0.18 + 0.21 + 0.09)
    assert.is_true(close(got.P[1], 0.6 / 0.9, 1e-12))
    assert.is_nil(got.floored)
    assert.equal(1, got.at)
  end)

  it("recognizes SentencePiece and byte-level spellings", function()
    local toks = { tok("\u{2581}1", log(0.5), { alt("\u{2581}1", log(0.5)), alt("\u{0120}2", log(0.25)),
      alt("\n2", log(0.25)) }) }
    local got = assert(labeler.read_labels(toks, { "1", "2" }))
    assert.is_true(close(got.P[1], 0.5))
  end)

  it("floors a missing label at the lowest returned logprob and flags it", function()
    local toks = { tok("1", log(0.7), { alt("1", log(0.7)), alt("A", log(0.2)), alt("B", log(0.05)) }) }
    local got = assert(labeler.read_labels(toks, { "1", "2" }))
    assert.same({ "2" }, got.floored)
    assert.is_true(close(got.P[1], 0.7 / (0.7 + 0.05), 1e-12))
    -- missing = "zero": the absent label gets probability 0
    local z = assert(labeler.read_labels(toks, { "1", "2" }, nil, "zero"))
    assert.equal(1, z.P[1])
    assert.same({ "2" }, z.floored)
  end)

  it("reports both labels missing as unlabeled with a reason, never 0.5", function()
    local toks = { tok("The", log(0.6), { alt("The", log(0.6)), alt("A", log(0.3)) }) }
    local got, why = labeler.read_labels(toks, { "1", "2" })
    assert.is_nil(got)
    assert.matches("no label token", why)
    assert.is_nil((labeler.read_labels({}, { "1", "2" })))
  end)

  it("reads the first position where a label appears, and the generated token when not listed", function()
    local toks = {
      tok("Summary", log(0.9), { alt("Summary", log(0.9)), alt("The", log(0.05)) }),
      tok(" 2", log(0.6), { alt(" 1", log(0.3)) }),   -- " 2" itself is only the generated token
    }
    local got = assert(labeler.read_labels(toks, { "1", "2" }))
    assert.equal(2, got.at)
    assert.is_true(close(got.P[2], 0.6 / 0.9, 1e-12))
  end)

  it("read_pair (the two-label fast path) agrees with read_labels exactly", function()
    local seed = 4242
    local function rnd() seed = (seed * 1103515245 + 12345) % 2147483648 return seed / 2147483648 end
    local V = { "1", " 1", "\u{2581}1", "\n1", " \t1", "2", " 2", "\u{0120}2", "  2", "The", " A", "12", "A", " B" }
    for iter = 1, 3000 do
      local labels = (iter % 3 == 0) and { "A", "B" } or { "1", "2" }
      local lut = labeler.label_lut(labels)
      local toks = {}
      for p = 1, 1 + math.floor(rnd() * 3) do
        local top = {}
        for i = 1, math.floor(rnd() * 6) do
          local r = rnd()
          local lp = (r < 0.05) and -math.huge or ((r < 0.08) and nil or log(rnd() + 1e-12))
          top[i] = { token = V[1 + math.floor(rnd() * #V)], logprob = lp }
        end
        toks[p] = { token = V[1 + math.floor(rnd() * #V)], logprob = (rnd() < 0.1) and nil or log(rnd() + 1e-12),
          top = (rnd() < 0.9) and top or nil }
        if rnd() < 0.3 and #top > 0 then toks[p].token = top[1].token end
      end
      local missing = (rnd() < 0.3) and "zero" or "floor"
      local got, why = labeler.read_labels(toks, labels, lut, missing)
      local p1, floored, at = labeler.read_pair(toks, labels, lut, missing)
      if got then
        assert.equal(got.P[1], p1)
        assert.same(got.floored, floored)
        assert.equal(got.at, at)
      else
        assert.is_nil(p1)
        assert.equal(why, floored)
      end
    end
  end)

  it("parses sampled answers strictly and counts votes", function()
    local L = { "1", "2" }
    assert.equal(1, labeler.parse_label(" 1", L))
    assert.equal(2, labeler.parse_label("2. Because", L))
    assert.is_nil(labeler.parse_label("Summary 1", L))
    assert.is_nil(labeler.parse_label("12", L))
    assert.is_nil(labeler.parse_label("one", L))
    local ten = { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10" }
    assert.equal(10, labeler.parse_label("10/10", ten))
    local v = assert(labeler.votes({ "1", "2", " 1", "x", "1\n" }, L))
    assert.same({ 3, 1 }, v.counts)
    assert.equal(1, v.invalid)
    assert.is_true(close(v.P[1], 0.75))
    local none, why = labeler.votes({ "x", "y" }, L)
    assert.is_nil(none)
    assert.matches("none of 2", why)
  end)

  it("debiases two orders and flips harmless polarity", function()
    -- order ab: P(label 1) = 0.8; order ba: P(label 1) = 0.6 (the model likes position 1)
    local p, p_ab, p_ba, pos_ab, pos_ba, same = labeler.debias(0.8, 0.6, 1)
    assert.is_true(close(p_ab, 0.8) and close(p_ba, 0.4) and close(p, 0.6))
    assert.equal(1, pos_ab)
    assert.equal(1, pos_ba)
    assert.is_true(same)
    -- polarity -1: the label names the MORE harmful one
    p, p_ab, p_ba = labeler.debias(0.8, 0.6, -1)
    assert.is_true(close(p_ab, 0.2) and close(p_ba, 0.6) and close(p, 0.4))
    -- a tie in one order is not "same position"
    same = select(6, labeler.debias(0.5, 0.5, 1))
    assert.is_false(same)
  end)

  it("computes d-RLAIF expectations and the reward map", function()
    local P = { 0.1, 0, 0, 0, 0, 0, 0.2, 0, 0, 0.7 }
    local s = labeler.expectation(P, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 })
    assert.is_true(close(s, 0.1 + 1.4 + 7.0, 1e-12))
    local r = labeler.linear_reward(1, 10)
    assert.equal(-1, r(1))
    assert.equal(1, r(10))
    assert.is_true(close(r(s), (s - 5.5) / 4.5, 1e-12))
  end)
end)

-- A labeler over the fake client, with the paper's summarization template.
local function pairs_data(n)
  local out = {}
  for i = 1, n do
    local qa, qb = (i * 7) % 5, (i * 3) % 4
    -- human label: the rule, flipped on every 4th pair
    local h = (qa >= qb) and 1 or 2
    if i % 4 == 0 then h = 3 - h end
    out[i] = { id = i, context = "post " .. i, a = "first q" .. qa, b = "second q" .. qb, human = h }
  end
  return out
end

describe("rlaif.labeler against a fake LLM #unit", function()
  it("recovers the hidden rule, exposes the position bias, and the metrics match", function()
    local scale, bias = 0.5, 0.8
    local c = fake.new { scale = scale, bias = bias }
    local L = labeler.new { client = c, template = "summarize-base" }
    local data = pairs_data(40)
    local s = L:label(data)
    assert.equal(40, s.ok)
    assert.equal(80, #c.requests)   -- two orders per pair
    local same, first, correct, nalign = 0, 0, 0, 0
    for i, r in ipairs(s.records) do
      local d = data[i]
      local qa, qb = fake.q(d.a), fake.q(d.b)
      local p1_ab = sigmoid(scale * (qa - qb) + bias)      -- first response shown first
      local p1_ba = sigmoid(scale * (qb - qa) + bias)      -- first response shown second
      assert.equal(d.id, r.id)
      assert.is_true(close(r.p_ab, p1_ab, 1e-12))
      assert.is_true(close(r.p_ba, 1 - p1_ba, 1e-12))
      assert.is_true(close(r.p, (p1_ab + 1 - p1_ba) / 2, 1e-12))
      -- the debiased label recovers the rule exactly (bias cancels in the sign)
      if qa ~= qb then assert.equal(qa > qb, r.p > 0.5) else assert.is_true(close(r.p, 0.5, 1e-12)) end
      local s_ab = p1_ab > 0.5 and 1 or 2
      local s_ba = p1_ba > 0.5 and 1 or 2
      assert.equal(s_ab == s_ba, r.same_position)
      if s_ab == s_ba then
        same = same + 1
        if s_ab == 1 then first = first + 1 end
      end
      local ai = r.p > 0.5 and 1 or (r.p < 0.5 and 2 or 0)
      nalign = nalign + 1
      if ai == d.human then correct = correct + 1 end
    end
    assert.is_true(same > 0)
    local pb = metrics.position_bias(s.records)
    assert.equal(same, pb.same)
    assert.equal(100 * same / 40, pb.pct_same)
    assert.equal(100 * first / same, pb.pct_first)   -- the injected bias favours position 1
    assert.equal(100, pb.pct_first)
    local al = metrics.alignment(s.records, { bootstrap = 0 })
    assert.equal(nalign, al.n)
    assert.equal(correct / nalign, al.z_acc)
  end)

  it("builds the same records on its one-pass path as on the general one", function()
    -- answers with floored labels, unlabeled positions and failed requests
    local k = 0
    local function answer()
      k = k + 1
      local m = k % 7
      if m == 0 then return { ok = false, kind = "timeout", attempts = 2 } end
      if m == 1 then return fake.response { { token = " The", logprob = -0.2 } } end
      if m == 2 then return fake.response { { token = " 1", logprob = -0.3 }, { token = "x", logprob = -2 } } end
      if m == 3 then
        local r = fake.response { { token = " 2", logprob = -0.5 }, { token = " 1", logprob = -1 } }
        r.cached = true
        return r
      end
    end
    for _, o in ipairs { {}, { swap = false }, { clamp = { 0.4, 0.6 } }, { template = "harmless-base" },
      { prices = { prompt = 3, completion = 15 }, missing = "zero" } } do
      local function run(fast)
        k = 0
        local opts = { client = fake.new { scale = 0.7, bias = 0.4, answer = answer }, template = "summarize-base" }
        for key, v in pairs(o) do opts[key] = v end
        local L = labeler.new(opts)
        assert.is_true(L.fast)
        L.fast = fast
        return L:label(pairs_data(30)).records
      end
      local fast, general = run(true), run(false)
      assert.equal(30, #fast)
      assert.same(general, fast)
      for i = 1, 30 do assert.equal(json.encode(general[i]), json.encode(fast[i])) end
    end
  end)

  it("without swapping makes one request per pair and keeps the bias", function()
    local c = fake.new { bias = 1 }
    local L = labeler.new { client = c, template = "summarize-base", swap = false }
    local r = L:label_one { id = "x", context = "c", a = "q1", b = "q1" }
    assert.equal(1, #c.requests)
    assert.is_true(close(r.p, sigmoid(1), 1e-12))
    assert.is_nil(r.p_ba)
    assert.is_nil(r.same_position)
  end)

  it("flips the label for the harmless template (label = the more harmful response)", function()
    -- the fake prefers the higher q; with harmless-base it names the higher-q response as MORE harmful
    local c = fake.new { scale = 1, bias = 0 }
    local L = labeler.new { client = c, template = "harmless-base" }
    assert.equal(-1, L.polarity)
    local r = L:label_one { id = 1, context = "Human: hi", a = "q3", b = "q1" }
    local named_a = sigmoid(2)   -- P(first named) in both orders
    assert.is_true(close(r.p_ab, 1 - named_a, 1e-12))
    assert.is_true(close(r.p, 1 - named_a, 1e-12))
    assert.is_true(r.p < 0.5)    -- the first (named more harmful) is the worse one
    assert.matches("most harmful", c.requests[1].messages and c.requests[1].messages[1].content or
      c.requests[1].prompt)
  end)

  it("CoT makes exactly two requests per order: rationale (greedy, 512) then score", function()
    local c = fake.new {}
    local L = labeler.new { client = c, template = "summarize-detailed", cot = true }
    assert.equal("summarize-detailed-cot", L.template.name)
    local r = L:label_one { id = 1, context = "c", a = "q2", b = "q1" }
    assert.equal(4, #c.requests)
    assert.equal(4, r.requests)
    local rat, score = 0, 0
    for _, q in ipairs(c.requests) do
      if q.prompt:match("Rationale:$") then
        rat = rat + 1
        assert.equal(512, q.max_tokens)
        assert.equal(0, q.temperature)
        assert.is_nil(q.sample)
      else
        score = score + 1
        assert.matches("Rationale: Summary with the higher q is better%.\nPreferred Summary=$", q.prompt)
        assert.equal(20, q.logprobs)
        assert.equal(1, q.max_tokens)
      end
    end
    assert.equal(2, rat)
    assert.equal(2, score)
    assert.same({ "Summary with the higher q is better." }, r.rationales.ab)
    assert.is_true(close(r.p, (sigmoid(0.5) + 1 - sigmoid(-0.5)) / 2, 1e-12))
  end)

  it("self-consistency N makes 2N requests per order with distinct sample indices", function()
    local c = fake.new {}
    local L = labeler.new { client = c, template = "summarize-detailed-cot", samples = 3, temperature = 0.7 }
    local r = L:label_one { id = 1, context = "c", a = "q2", b = "q1" }
    assert.equal(12, #c.requests)
    local samples = {}
    for _, q in ipairs(c.requests) do
      if q.prompt:match("Rationale:$") then
        assert.equal(0.7, q.temperature)
        assert.equal(40, q.top_k)
        samples[q.sample] = (samples[q.sample] or 0) + 1
      end
    end
    assert.same({ 2, 2, 2 }, samples)   -- samples 1..3 in each of the two orders
    assert.equal(3, #r.rationales.ab)
    assert.equal(3, r.samples)
    assert.has_error(function() labeler.new { client = c, template = "summarize-detailed-cot", samples = 2 } end,
      "labeler: self-consistency (samples > 1) samples rationales and needs temperature > 0")
  end)

  it("clamps the soft label when asked (Constitutional AI's 0.4-0.6)", function()
    local c = fake.new { scale = 2 }
    local L = labeler.new { client = c, template = "summarize-base", clamp = { 0.4, 0.6 } }
    local r = L:label_one { id = 1, context = "c", a = "q5", b = "q1" }
    assert.equal(0.6, r.p)
    assert.is_true(r.p_raw > 0.99)
  end)

  it("uses vote frequencies for APIs without log-probabilities", function()
    local n = 0
    local c = fake.new { api = "anthropic", answer = function()
      n = n + 1
      local text = (n % 4 == 0) and "Summary 2" or ((n % 4 == 3) and "2" or "1")
      return { ok = true, text = text, usage = { prompt_tokens = 10, completion_tokens = 1 },
        choices = { { text = text } } }
    end }
    local L = labeler.new { client = c, template = "summarize-base", votes = 4 }
    assert.equal("votes", L.scoring)
    assert.equal("chat", L.format)
    local r = L:label_one { id = 1, context = "c", a = "x", b = "y" }
    assert.equal(8, #c.requests)
    for _, q in ipairs(c.requests) do
      assert.is_nil(q.logprobs)
      assert.equal(1.0, q.temperature)
    end
    -- each order: answers 1, 1, 2, invalid -> P(label 1) = 2/3
    assert.same({ 2, 1 }, r.votes.ab)
    assert.equal(2, r.invalid)
    assert.is_true(close(r.p_ab, 2 / 3) and close(r.p_ba, 1 / 3) and close(r.p, 0.5))
  end)

  it("never turns a failed request into a label", function()
    local c = fake.new { fail = function(_, k)
      if k == 2 then return { ok = false, kind = "http", status = 500, message = "boom", attempts = 3 } end
    end }
    local L = labeler.new { client = c, template = "summarize-base" }
    local r = L:label_one { id = 1, context = "c", a = "q1", b = "q2" }
    assert.equal("error", r.status)
    assert.is_nil(r.p)
    assert.matches("ba: http 500: boom %(3 attempts%)", r.reason)
    -- an answer without any label token: unlabeled with the reason
    local c2 = fake.new { answer = function() return fake.response { { token = "The", logprob = -0.1 } } end }
    local r2 = labeler.new { client = c2, template = "summarize-base" }:label_one { id = 1, context = "c", a = "a",
      b = "b" }
    assert.equal("unlabeled", r2.status)
    assert.is_nil(r2.p)
    assert.matches("no label token", r2.reason)
  end)

  it("renders chat requests from the same template (system preamble, ending in the user turn)", function()
    local c = fake.new { api = "openai-chat" }
    local L = labeler.new { client = c, template = "summarize-base" }
    L:label_one { id = 1, context = "POST", a = "q1", b = "q2" }
    local m = c.requests[1].messages
    assert.equal("system", m[1].role)
    assert.matches("^You are an expert summary rater", m[1].content)
    assert.equal("Text - POST\nSummary 1 - q1\nSummary 2 - q2\nPreferred Summary=", m[2].content)
    assert.equal(5, c.requests[1].max_tokens)
  end)
end)

describe("rlaif.labeler d-RLAIF scoring #unit", function()
  local rec = { id = 1, context = "post", response = "a summary", fields = { subreddit = "r", title = "t",
    post = "post" } }
  local function scores_top(ps)   -- ps: token -> probability
    local top = {}
    for t, p in pairs(ps) do top[#top + 1] = alt(t, log(p)) end
    return top
  end

  it("takes s = sum i P(i) when 10 is a single token", function()
    local c = fake.new { answer = function()
      return fake.response(scores_top { ["7"] = 0.4, ["8"] = 0.3, ["10"] = 0.1, ["1"] = 0.1, [" the"] = 0.1 })
    end }
    local L = labeler.new { client = c, template = "drlaif-score" }
    local r = L:label_one(rec)
    assert.equal(1, #c.requests)
    assert.matches("SUMMARY: a summary\nSCORE: $", c.requests[1].prompt)
    local Z = 0.4 + 0.3 + 0.1 + 0.1
    local s = (7 * 0.4 + 8 * 0.3 + 10 * 0.1 + 1 * 0.1) / Z
    assert.is_true(close(r.s, s, 1e-12))
    assert.is_true(close(r.reward, (s - 5.5) / 4.5, 1e-12))
  end)

  it("splits a tokenized '1'+'0' from the next position when '1' was generated", function()
    local c = fake.new { answer = function()
      local res = fake.response(scores_top { ["1"] = 0.5, ["9"] = 0.3, ["8"] = 0.2 })
      res.choices[1].tokens[2] = tok("0", log(0.8), { alt("0", log(0.8)), alt("\n", log(0.2)) })
      return res
    end }
    local r = labeler.new { client = c, template = "drlaif-score" }:label_one(rec)
    assert.equal(1, #c.requests)
    -- P(10) = 0.5 * 0.8, P(1) = 0.5 * 0.2
    local s = 10 * 0.4 + 1 * 0.1 + 9 * 0.3 + 8 * 0.2
    assert.is_true(close(r.s, s, 1e-12))
    assert.equal("next_token", r.split)
  end)

  it("asks one follow-up request for P('0' | '1') otherwise", function()
    local c = fake.new { answer = function(req)
      if req.prompt:match("SCORE: 1$") then
        return fake.response(scores_top { ["0"] = 0.25, [" "] = 0.75 })
      end
      return fake.response(scores_top { ["9"] = 0.6, ["1"] = 0.4 })
    end }
    local r = labeler.new { client = c, template = "drlaif-score" }:label_one(rec)
    assert.equal(2, #c.requests)
    assert.equal(2, r.requests)
    local s = 9 * 0.6 + 10 * 0.4 * 0.25 + 1 * 0.4 * 0.75
    assert.is_true(close(r.s, s, 1e-12))
    assert.equal("followup", r.split)
  end)
end)

describe("rlaif.labeler output files #unit", function()
  local out
  before_each(function() out = helper.tmpname(".jsonl") os.remove(out) end)
  after_each(function() os.remove(out) end)

  it("writes one record per pair and resumes without duplicates", function()
    local data = pairs_data(10)
    local L = labeler.new { client = fake.new {}, template = "summarize-base" }
    local s1 = L:label(data, { out = out, limit = 4 })
    assert.equal(4, s1.ok)
    local c2 = fake.new {}
    local s2 = labeler.new { client = c2, template = "summarize-base" }:label(data, { out = out })
    assert.equal(4, s2.skipped)
    assert.equal(6, s2.ok)
    assert.equal(12, #c2.requests)
    local lines = readlines(out)
    assert.equal(10, #lines)
    local seen = {}
    for _, l in ipairs(lines) do
      local r = json.decode(l)
      assert.is_nil(seen[r.id])
      seen[r.id] = true
    end
  end)

  it("cuts a torn last line and retries failed pairs on resume", function()
    local data = pairs_data(3)
    local L = labeler.new { client = fake.new { fail = function(_, k)
      if k == 3 then return { ok = false, kind = "transport", message = "reset", attempts = 4 } end
    end }, template = "summarize-base" }
    local s = L:label(data, { out = out })
    assert.equal(2, s.ok)
    assert.equal(1, s.error)
    local f = io.open(out, "ab")
    f:write('{"id":99,"status":"ok","p":0.')   -- an interrupted write
    f:close()
    local c2 = fake.new {}
    local s2 = labeler.new { client = c2, template = "summarize-base" }:label(data, { out = out })
    assert.is_true(s2.torn)
    assert.equal(1, s2.ok)          -- the failed pair again
    assert.equal(2, s2.skipped)
    local lines = readlines(out)
    assert.equal(4, #lines)          -- 3 + the retried one; the torn line is gone
    local last = {}
    for _, l in ipairs(lines) do local r = json.decode(l) last[r.id] = r.status end
    assert.same({ "ok", "ok", "ok" }, { last[1], last[2], last[3] })
  end)

  it("rejects a malformed complete line naming file and line", function()
    local f = io.open(out, "wb")
    f:write('{"id":1,"status":"ok"}\nnot json\n')
    f:close()
    local ok, err = pcall(labeler.read_labels_file, out)
    assert.is_false(ok)
    assert.equal(out .. ":2: json.decode: syntax error at byte 1", err)
  end)

  it("exports prompt/chosen/rejected with p for reward-model training", function()
    local data = { { id = 1, context = "c1", a = "q1", b = "q4" }, { id = 2, context = "c2", a = "q4", b = "q1" } }
    labeler.new { client = fake.new {}, template = "summarize-base" }:label(data, { out = out })
    local ex = helper.tmpname(".jsonl")
    local n = labeler.export_pairs(out, data, ex)
    assert.equal(2, n)
    local lines = readlines(ex)
    os.remove(ex)
    local r1, r2 = json.decode(lines[1]), json.decode(lines[2])
    assert.same({ "c1", "q4", "q1" }, { r1.prompt, r1.chosen, r1.rejected })
    assert.same({ "q4", "q1" }, { r2.chosen, r2.rejected })
    assert.is_true(r1.p > 0.5 and close(r1.p, r2.p, 1e-12))
  end)
end)

describe("rlaif label: kill -9, then rerun #unit", function()
  it("labels every pair exactly once", function()
    local dir = helper.tmpname("_kill")
    os.execute("mkdir -p " .. dir)
    local datafile, out = dir .. "/pairs.jsonl", dir .. "/labels.jsonl"
    local f = io.open(datafile, "wb")
    local N = 400
    for i = 1, N do
      f:write(json.encode { id = "p" .. i, prompt = "context " .. i, chosen = "a q" .. (i % 5),
        rejected = "b q" .. (i % 3) }, "\n")
    end
    f:close()
    local cmd = "./rlaif label --data " .. datafile .. " --format pairs --template summarize-base" ..
      " --client tests/spec/support/fake_client.lua --out " .. out .. " --quiet"
    -- run in the background with a slow fake (2 ms of CPU per request), kill -9 mid-run
    local p = io.popen("FAKE_DELAY=0.002 sh -c 'echo $$; exec " .. cmd .. "' 2>/dev/null & ")
    local pid = p:read("l")
    p:close()
    assert.truthy(pid and pid:match("^%d+$"))
    local deadline = os.time() + 20
    while #readlines(out) < 20 and os.time() < deadline do os.execute("sleep 0.02") end
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    os.execute("sleep 0.1")
    local before = #readlines(out)
    assert.is_true(before >= 20 and before < N, "killed after " .. before .. " records")
    -- rerun to completion
    assert.is_true(os.execute(cmd))
    local count, ok = {}, 0
    for _, l in ipairs(readlines(out)) do
      local r = assert(json.decode(l))
      count[r.id] = (count[r.id] or 0) + 1
      if r.status == "ok" then ok = ok + 1 end
    end
    for i = 1, N do assert.equal(1, count["p" .. i], "pair p" .. i) end
    assert.equal(N, ok)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("rlaif.labeler progress #unit", function()
  local function sink()
    local s = { buf = {} }
    function s:write(...) for _, v in ipairs { ... } do self.buf[#self.buf + 1] = tostring(v) end end
    function s.flush() end
    function s:text() return table.concat(self.buf) end
    return s
  end

  -- Each request moves a fake clock by `step` seconds: a pair (two orders) takes
  -- 2 * step, so after the first of 30 pairs the time left is 29 * 2 * step.
  for _, case in ipairs { { 0.5, "ETA 29s" }, { 30, "ETA 29m00s" }, { 1000, "ETA 16h06m" } } do
    it("counts pairs on a terminal with the time left (" .. case[2] .. ")", function()
      local now, out = 0, sink()
      local c = fake.new { fail = function() now = now + case[1] end }
      local L = labeler.new { client = c, template = "summarize-base" }
      local s = L:label(pairs_data(30), { progress = { tty = true, stream = out, clock = function() return now end } })
      assert.equal(30, s.ok)
      local first = out:text():match("^\r([^\r]*)")
      assert.matches("^label %[#?%.+%] 1/30   3%% [%d.]+ pair/s " .. case[2] .. " errors 0 *$", first)
      assert.matches("\rlabel %[#+%] 30/30 100%% [%d.]+ pair/s ETA 0s errors 0 *\n$", out:text())
    end)
  end

  it("is silent unless asked, and counts errors", function()
    local out = sink()
    local c = fake.new { fail = function(_, k)
      if k <= 2 then return { ok = false, kind = "http", status = 500, message = "boom", attempts = 1 } end
    end }
    labeler.new { client = c, template = "summarize-base" }:label(pairs_data(3),
      { progress = { tty = false, stream = out, interval = 1e-9 } })
    assert.matches("label 3/3 100%% .* errors 1\n$", out:text())
    local quiet = sink()
    labeler.new { client = fake.new {}, template = "summarize-base" }:label(pairs_data(3),
      { progress = { quiet = true, tty = true, stream = quiet } })
    assert.equal("", quiet:text())
  end)
end)

describe("rlaif.labeler when the client stops #unit", function()
  local out
  before_each(function() out = helper.tmpname(".jsonl") os.remove(out) end)
  after_each(function() os.remove(out) end)

  -- a client that answers the first `n` requests, then reports the rest as never
  -- sent, the way rlaif.llm does after Ctrl-C (interrupted) or a refused key (stopped)
  local function stopping(n, info)
    local c = fake.new {}
    local inner = c.complete_many
    function c:complete_many(reqs, o)
      local res = inner(self, reqs, {})
      for i = 1, #reqs do
        if i > n then res[i] = { ok = false, kind = "cancelled", message = "cancelled (batch aborted)" } end
        if o and o.on_result then o.on_result(i, res[i]) end
      end
      return res, info
    end
    return c
  end

  for _, info in ipairs { { interrupted = true }, { stopped = "http://x/v1 rejected the request with HTTP 401" } } do
    it("writes the finished pairs only and raises a Halt (" .. (info.stopped and "stopped" or "interrupted") .. ")",
      function()
        local L = labeler.new { client = stopping(5, info), template = "summarize-base" }
        local ok, h = pcall(L.label, L, pairs_data(6), { out = out })
        assert.is_false(ok)
        assert.equal(labeler.Halt, getmetatable(h))
        assert.equal(info.interrupted, h.interrupted)
        assert.equal(info.stopped, h.stopped)
        assert.equal(string.format("labeler: %s; 4 pairs were not sent (a rerun sends them)",
          info.interrupted and "interrupted" or "stopped: " .. info.stopped), tostring(h))
        assert.same({ 6, 2, 0, 4 }, { h.summary.total, h.summary.ok, h.summary.error, h.summary.unsent })
        local lines = readlines(out)
        assert.equal(2, #lines)             -- pairs 1 and 2 (requests 1-4); pair 3 had one request unsent
        for _, l in ipairs(lines) do assert.equal("ok", json.decode(l).status) end
      end)
  end

  it("an answer without choices is an error, never a label", function()
    local c = fake.new { answer = function() return { ok = true, text = "", choices = {} } end }
    local r = labeler.new { client = c, template = "summarize-base" }:label_one { context = "c", a = "q1", b = "q2" }
    assert.equal("error", r.status)
    assert.equal("ab: the answer has no choices; ba: the answer has no choices", r.reason)
  end)

  it("checks its options, naming the function, the key and the expectation", function()
    assert.has_error(function() labeler.new { client = fake.new {}, templat = "summarize-base" } end,
      "labeler.new: unknown option 'templat' (did you mean 'template'?)")
    assert.has_error(function() labeler.new { client = fake.new {}, shots = "2" } end,
      "labeler.new: option 'shots' must be an integer >= 0, got \"2\"")
    assert.has_error(function() labeler.new { client = fake.new {}, temperature = -1 } end,
      "labeler.new: option 'temperature' must be a number >= 0, got -1")
    local L = labeler.new { client = fake.new {}, template = "summarize-base" }
    assert.has_error(function() L:label({}, { limit = -1 }) end,
      "labeler.label: option 'limit' must be an integer >= 1, got -1")
    assert.has_error(function() L:label({}, { resume = "yes" }) end,
      "labeler.label: option 'resume' must be true, false or \"mixed\", got yes")
    assert.has_error(function() labeler.export_pairs(out, {}, out .. ".x", { forse = true }) end,
      "labeler.export_pairs: unknown option 'forse' (did you mean 'force'?)")
  end)
end)
