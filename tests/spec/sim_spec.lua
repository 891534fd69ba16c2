-- tests/spec/sim_spec.lua -- the simulated world (rlaif.sim): determinism, the
-- hidden quality, simulated humans, the AI judge's answers against its documented
-- formula (hand-computed values), the labeler's real code paths through
-- api = "sim" (two orders, CoT, d-RLAIF, votes, chat), and a small pipeline run
-- (rlaif.sim_pipeline) through the reward models with the knobs turned.
local helper = require "spec.helper"
local rlaif = require "rlaif"
local sim = require "rlaif.sim"
local json = rlaif.core.json

local ROOT = assert(io.popen("pwd")):read("l")

local POST = "My sister Anna owes me 50 dollars. Then they bought a new car. What should I do?"
local A = "sister Anna owes me 50, new car."    -- covers 4/4, 7 words: q = 1 - 0.21 = 0.79
local B = "sister Anna owes me 50, new bike."    -- 3/4, invents bike, 7 words: q = 0.75 - 0.25 - 0.21 = 0.29
local C = "Anna owes me 50."                            -- 2/4, 4 words: q = 0.5 - 0.12 = 0.38

local function close(expected, got, tol)
  assert(type(got) == "number", "expected a number, got " .. tostring(got))
  if math.abs(expected - got) > (tol or 1e-9) then
    error(string.format("expected %.15g, got %.15g", expected, got), 2)
  end
end

local function top_of(res)
  local t = {}
  for _, e in ipairs(res.choices[1].tokens[1].top) do t[e.token] = e.logprob end
  return t
end

describe("rlaif.sim world #unit", function()
  it("is the same for a seed and differs between seeds", function()
    local a = sim.world { seed = 3, size = "small" }
    local b = sim.world { seed = 3, size = "small" }
    local c = sim.world { seed = 4, size = "small" }
    assert.equal(json.encode(a.splits), json.encode(b.splits))
    assert.are_not.equal(json.encode(a.splits.train), json.encode(c.splits.train))
    assert.equal(sim.SIZES.small.train, #a.splits.train)
    assert.equal("eval-1", a.splits.eval[1].id)
    assert.equal(a.splits.train[1].post .. "\nTL;DR:", a.splits.train[1].prompt)
  end)

  it("is the same in another process (no hash-order dependence) and on every machine", function()
    local digest = sim.hash(json.encode(sim.world { seed = 1, size = "small" }.splits))
    local code = "local sim = require 'rlaif.sim'; local json = require('rlaif.core').json; " ..
      "print(sim.hash(json.encode(sim.world{seed = 1, size = 'small'}.splits)))"
    local f = assert(io.popen(ROOT .. "/rlaif -e \"" .. code .. "\""))
    local other = f:read("l")
    f:close()
    assert.equal(tostring(digest), other)
    assert.equal(-2963181597653641904, digest)   -- pinned: a change to the world must bump sim.VERSION
    local kinds = {}
    for _, k in ipairs(sim.KINDS) do kinds[k] = true end
    for k in pairs(sim.LEXICON) do assert(kinds[k], k) end
  end)

  it("draws each split from its own stream: resizing one leaves the others", function()
    local a = sim.world { seed = 3, size = "small" }
    local b = sim.world { seed = 3, size = "small", sizes = { train = 10 } }
    assert.equal(10, #b.splits.train)
    assert.equal(json.encode(a.splits.pref), json.encode(b.splits.pref))
    assert.equal(json.encode(a.splits.train[7]), json.encode(b.splits.train[7]))
  end)

  it("puts lexicon words only in fact slots, so a post's key facts are its slot values", function()
    local function no_lexicon(text, where)
      local plain = text:gsub("{%w+}", "")
      for w in plain:gmatch("[%w']+") do
        assert(not sim.LEX[w:lower()], where .. ": '" .. w .. "' is a lexicon word outside a slot")
      end
    end
    for _, list in ipairs { sim.OPENERS, sim.FACTS } do
      for _, t in ipairs(list) do no_lexicon(t[1], t[1]) no_lexicon(t[2], t[2]) end
    end
    for _, list in ipairs { sim.ASIDES, sim.QUESTIONS, sim.FILLER, sim.TITLES } do
      for _, s in ipairs(list) do no_lexicon(s, s) end
    end
    -- every post has 6 or 7 key facts and a reference that mentions some of them
    for _, p in ipairs(sim.world { seed = 5, size = "small" }.splits.test) do
      local _, k = sim.facts(p.post)
      assert(k == 6 or k == 7, p.post)
      local _, d = sim.quality(p.post, p.reference)
      assert(d.covered + d.invented >= 1, p.reference)
    end
  end)

  it("references vary in quality", function()
    local w = sim.world { seed = 2, size = "small" }
    local lo, hi, inv = math.huge, -math.huge, 0
    for _, p in ipairs(w.splits.train) do
      local q, d = sim.quality(p.post, p.reference)
      lo, hi = math.min(lo, q), math.max(hi, q)
      if d.invented > 0 then inv = inv + 1 end
    end
    assert.is_true(hi - lo > 1)
    assert.is_true(inv > 0.02 * #w.splits.train and inv < 0.1 * #w.splits.train)
  end)

  it("checks its options", function()
    assert.has_error(function() sim.world { size = "huge" } end,
      "sim.world: option 'size' must be one of \"default\", \"small\", \"tiny\", got \"huge\"")
    assert.has_error(function() sim.world { sizes = { train = 0 } } end)
    assert.has_error(function() sim.world { seeds = 1 } end, "sim.world: unknown option 'seeds' (did you mean 'seed'?)")
  end)
end)

describe("rlaif.sim truth and humans #unit", function()
  it("computes q = c/k - 0.25 v - 0.03 n", function()
    local q, d = sim.quality(POST, A)
    close(0.79, q)
    assert.same({ covered = 4, key = 4, invented = 0, words = 7 }, d)
    close(0.29, (sim.quality(POST, B)))
    close(0.38, (sim.quality(POST, C)))
    close(-0.25 - 0.03 * 2, (sim.quality(POST, "Ben Ben")))      -- an invented name counts once
    close(0, (sim.quality("no facts here", "")))
  end)

  it("humans follow the truth, flipped with probability noise, reproducibly", function()
    local w = sim.world { seed = 9, size = "small" }
    local exact, flipped = sim.humans { seed = 1, noise = 0 }, sim.humans { seed = 1, noise = 1 }
    local h = sim.humans { seed = 1 }
    assert.equal(0.25, h.noise)
    local agree, n = 0, 0
    for i, p in ipairs(w.splits.train) do
      local other = w.splits.train[i % #w.splits.train + 1].reference
      local t = sim.truth(p.post, p.reference, other)
      if t ~= 0 then
        assert.equal(t, (exact:prefers(p.post, p.reference, other)))
        assert.equal(3 - t, (flipped:prefers(p.post, p.reference, other)))
        local got = h:prefers(p.post, p.reference, other)
        assert.equal(got, (h:prefers(p.post, p.reference, other)))
        n = n + 1
        if got == t then agree = agree + 1 end
      end
    end
    assert.is_true(n > 3000)
    assert.is_true(math.abs(agree / n - 0.75) < 0.03, "agreement " .. agree / n)
  end)
end)

describe("rlaif.sim judge #unit", function()
  local function client(o)
    o = o or {}
    o.api = "sim"
    return rlaif.llm.client(o)
  end
  local function labeler(c, o)
    o = o or {}
    o.client = c
    o.template = o.template or "summarize-detailed"
    return rlaif.labeler.new(o)
  end

  it("answers a pairwise prompt with the documented log-probabilities", function()
    local c = client { judge_noise = 0 }   -- position bias 0.5, length bias 0, scale 10
    local r = labeler(c):label_one { context = POST, a = A, b = B }
    -- order (A, B): z = 10 (0.79 - 0.29) + 0.5 = 5.5; order (B, A): z = -5 + 0.5 = -4.5
    close(1 / (1 + math.exp(-5.5)), r.p_ab, 1e-12)
    close(1 / (1 + math.exp(-4.5)), r.p_ba, 1e-12)
    close(0.9924714598267554, r.p, 1e-12)
    assert.is_false(r.same_position)
    assert.equal(2, r.requests)
    -- the raw answer: both labels with log sigma(+-z)
    local res = c:complete { prompt = "Text - " .. POST .. "\nSummary 1 - " .. A .. "\nSummary 2 - " .. B ..
      "\nPreferred Summary=", max_tokens = 1, temperature = 0, logprobs = 5 }
    local t = top_of(res)
    close(-0.0040784432705707205, t["1"], 1e-12)
    close(-5.504078443270571, t["2"], 1e-12)
    assert.equal("1", res.text)
    assert.equal("1", res.choices[1].tokens[1].token)
    assert.equal(1, res.usage.completion_tokens)
  end)

  it("adds the position bias to the first position and the length bias per 10 words", function()
    local c = client { judge_noise = 0, judge_position_bias = 0, judge_length_bias = 0.2 }
    -- A: 0.79 + 0.2 * 0.7 = 0.93; C: 0.38 + 0.2 * 0.4 = 0.46; z = 10 * 0.47 = 4.7
    local r = labeler(c):label_one { context = POST, a = A, b = C }
    close(1 / (1 + math.exp(-4.7)), r.p_ab, 1e-12)
    close(1 / (1 + math.exp(-4.7)), r.p_ba, 1e-12)
    -- a pure position bias: two equally good responses, the first one always wins
    local pb = client { judge_noise = 0, judge_position_bias = 3 }
    local same = labeler(pb):label_one { context = POST, a = A, b = "sister Anna owes me 50; new car." }
    close(1 / (1 + math.exp(-3)), same.p_ab, 1e-12)
    close(1 - 1 / (1 + math.exp(-3)), same.p_ba, 1e-12)
    close(0.5, same.p, 1e-12)
    assert.is_true(same.same_position)
    assert.equal(1, same.position)
    -- the hand-computed length-bias case with a first-position bias of 0.5
    local lb = client { judge_noise = 0, judge_length_bias = 0.2 }
    local res = lb:complete { prompt = "Text - " .. POST .. "\nSummary 1 - " .. A .. "\nSummary 2 - " .. C ..
      "\nPreferred Summary=", max_tokens = 1, temperature = 0, logprobs = 2 }
    local t = top_of(res)
    close(-0.005501403909657373, t["1"], 1e-12)   -- log sigma(5.2)
    close(-5.205501403909658, t["2"], 1e-12)
  end)

  it("draws its noise from a hash of (seed, context, response): the same in both orders and on reruns", function()
    local j = sim.judge { seed = 7, judge_noise = 0.1, judge_position_bias = 0.25 }
    local ea = sim.normal(sim.hash(7, "judge", POST, A))
    local eb = sim.normal(sim.hash(7, "judge", POST, B))
    local l1, l2, z = j:pairwise(POST, A, B)
    close(10 * ((0.79 + 0.1 * ea) - (0.29 + 0.1 * eb)) + 0.25, z, 1e-9)
    local _, _, z2 = j:pairwise(POST, B, A)
    close(-z + 0.5, z2, 1e-9)
    local l1b, l2b = sim.judge { seed = 7, judge_noise = 0.1, judge_position_bias = 0.25 }:pairwise(POST, A, B)
    assert.equal(l1, l1b)
    assert.equal(l2, l2b)
    local _, _, z8 = sim.judge { seed = 8, judge_noise = 0.1, judge_position_bias = 0.25 }:pairwise(POST, A, B)
    assert.are_not.equal(z, z8)
    -- the noise is standard normal
    local s, s2, n = 0, 0, 20000
    for i = 1, n do
      local e = sim.normal(sim.hash(1, "judge", "x", tostring(i)))
      s, s2 = s + e, s2 + e * e
    end
    assert.is_true(math.abs(s / n) < 0.03)
    assert.is_true(math.abs(math.sqrt(s2 / n) - 1) < 0.03)
  end)

  it("scores one response for d-RLAIF from mu = 1 + 9 sigma(4 (q - 0.25))", function()
    local c = client { judge_noise = 0 }
    local r = labeler(c, { template = "drlaif-score" }):label_one { context = POST, response = A,
      fields = { subreddit = "Advice", title = "Is this normal?", post = POST } }
    assert.equal("ok", r.status)
    close(8.923417104232762, r.s, 1e-9)
    close((8.923417104232762 - 5.5) / 4.5, r.reward, 1e-9)
    local ls = sim.judge { judge_noise = 0 }:score(POST, A)
    close(-0.8514570828301906, ls[9], 1e-12)
    close(-1.2820611459544367, ls[10], 1e-12)
    close(-33.406624577836226, ls[1], 1e-9)
    -- "10" is one token among the alternatives
    local res = c:complete { prompt = "TEXT: SUBREDDIT: r/Advice\nTITLE: t\nPOST: " .. POST .. "\nSUMMARY: " .. A ..
      "\nSCORE: ", max_tokens = 1, temperature = 0, logprobs = 3 }
    assert.same({ "9", "10", "8" }, { res.choices[1].tokens[1].top[1].token, res.choices[1].tokens[1].top[2].token,
      res.choices[1].tokens[1].top[3].token })
  end)

  it("answers CoT rationale requests, counts them, and keeps its verdict", function()
    local c = client { judge_noise = 0 }
    local r = labeler(c, { cot = true }):label_one { context = POST, a = A, b = B }
    assert.equal("ok", r.status)
    assert.equal(4, r.requests)      -- a rationale and a label, in each order
    local st = c:stats()
    assert.same({ pairwise = 2, score = 0, rationale = 2 }, st.sim)
    assert.matches("Summary one mentions 4 of the 4 key facts (50, anna, car, sister)", r.rationales.ab[1], nil,
      true)
    assert.matches("invents bike", r.rationales.ab[1], nil, true)
    assert.matches("Overall Summary 1 is better", r.rationales.ab[1], nil, true)
    assert.matches("Overall Summary 2 is better", r.rationales.ba[1], nil, true)
    close(0.9924714598267554, r.p, 1e-12)        -- the rationale does not change the answer
    assert.matches("rationale", c:summary(), nil, true)
  end)

  it("finds the sample after few-shot exemplars, in chat messages and in votes mode", function()
    local c = client { judge_noise = 0 }
    local plain = labeler(c):label_one { context = POST, a = A, b = C }
    local shots = labeler(c, { shots = 2 }):label_one { context = POST, a = A, b = C }
    local chat = labeler(c, { format = "chat" }):label_one { context = POST, a = A, b = C }
    local helpful = labeler(c, { template = "helpful-base" }):label_one { context = POST, a = A, b = C }
    for _, r in ipairs { shots, chat, helpful } do
      assert.equal("ok", r.status)
      close(plain.p, r.p, 1e-12)
    end
    -- votes: labels sampled from the distribution, reproducibly per request
    local v1 = labeler(client { judge_noise = 0, judge_position_bias = 0 }, { scoring = "votes", votes = 40 })
      :label_one { context = POST, a = A, b = "sister Anna owes me 50; new car." }
    local v2 = labeler(client { judge_noise = 0, judge_position_bias = 0 }, { scoring = "votes", votes = 40 })
      :label_one { context = POST, a = A, b = "sister Anna owes me 50; new car." }
    assert.equal("ok", v1.status)
    assert.equal(v1.p, v2.p)
    assert.is_true(v1.p > 0.3 and v1.p < 0.7)      -- a coin between equals
  end)

  it("returns an error result for prompts it cannot read, and checks its options", function()
    local c = client {}
    local res = c:try_complete { prompt = "Which is better?", max_tokens = 1 }
    assert.is_nil(res)
    local _, err = c:try_complete { prompt = "Which is better?", max_tokens = 1 }
    assert.equal("invalid", err.kind)
    assert.matches("found neither two responses", err.message, nil, true)
    local _, err2 = c:try_complete { prompt = "Summary 1 - a\nSummary 2 - b\nPreferred Summary=", max_tokens = 1 }
    assert.matches("no context line", err2.message, nil, true)
    local _, err3 = c:try_complete { prompt = { 1, 2, 3 } }
    assert.matches("reads text prompts", err3.message, nil, true)
    assert.same({ invalid = 4 }, c:stats().errors)
    assert.has_error(function() client { judge_noise = -1 } end,
      "llm.client{api = \"sim\"}: option 'judge_noise' must be a number >= 0 and <= 100, got -1")
    assert.has_error(function() client { judge_nosie = 1 } end,
      "llm.client{api = \"sim\"}: unknown option 'judge_nosie' (did you mean 'judge_noise'?)")
    -- transport options of the HTTP backends are accepted (one configuration for every api)
    assert.equal("sim", client { base_url = "http://x", timeout = 5, concurrency = 4 }.api)
  end)
end)

-- ---- the pipeline ----

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

local function rmrf(d)
  os.execute("rm -rf -- '" .. d:gsub("'", "'\\''") .. "'")
end

local function sim_write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read_json(path)
  return json.decode(assert(helper.read_file(path), "missing " .. path))
end

-- run `rlaif sim ARGS`; returns stdout, stderr, exit status
local function rlaif_sim(args)
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(string.format("%s/rlaif sim %s >%s 2>%s </dev/null", ROOT, args, out, err))
  local o, e = helper.read_file(out), helper.read_file(err)
  os.remove(out)
  os.remove(err)
  return o, e, code
end

describe("rlaif.sim pipeline #unit", function()
  -- a tiny world and model: the mechanics (stages, cache keys, resume, custom stages), not the findings
  local HYPER = { world = { train = 300, pref = 40, test = 20, eval = 6 },
    model = { d_model = 32, n_head = 2, max_seq = 96 }, sft = { steps = 12, batch_size = 8 },
    samples = { best_of = 3, max_new_tokens = 12 }, rm = { epochs = 1, batch_size = 8 },
    rl = { steps = 3, batch_size = 4, max_new_tokens = 12, save_every = 1 },
    eval = { samples = 2, max_new_tokens = 12, bootstrap = 50 } }
  local dir, threads
  -- one thread: these models are far too small to gain from two, and the machine is shared
  setup(function() threads = rlaif.get_threads() rlaif.set_threads(1) end)
  teardown(function() rlaif.set_threads(threads) end)
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it("runs the stages, caches each one by its configuration and writes results.json", function()
    local p = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true }
    local r = p:run { stop_after = "rm" }
    for _, k in ipairs { "tokenizer.json", "sft/config.json", "sft/tokenizer.json", "samples.jsonl",
      "labels_ai.jsonl", "labels_human.jsonl", "rm_rlaif/model.safetensors", "rm_rlhf/reward_stats.json",
      "manifest.json", "results.json" } do
      assert(helper.read_file(dir .. "/" .. k), "missing " .. k)
    end
    local disk = read_json(dir .. "/results.json")
    assert.same(json.decode(json.encode(r)), disk)
    for _, k in ipairs { "ai_vs_human", "ai_vs_truth" } do assert.is_number(disk.alignment[k]) end
    assert.is_number(disk.position_bias.same_position)
    assert.is_number(disk.rm_accuracy.rlaif)
    assert.is_number(disk.rm_accuracy.rlhf)
    assert.is_number(disk.mean_length.sft)
    assert.equal(3, disk.best_of_n.n)
    assert.is_nil(helper.read_file(dir .. "/samples.jsonl"):find("endoftext", 1, true))
    assert.matches("SIMULATED", sim.format_results(r), nil, true)
    -- the same seed in another directory gives the same numbers (one thread: the same sums)
    local dir2 = tmpdir()
    local r2 = sim.pipeline { out = dir2, size = "small", hyper = HYPER, quiet = true }:run { stop_after = "rm" }
    rmrf(dir2)
    r2.seconds, disk.seconds = nil, nil
    assert.same(json.decode(json.encode(r2)), disk)
    -- a rerun with the same configuration computes nothing
    local m1 = helper.read_file(dir .. "/manifest.json")
    local again = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true }:run { stop_after = "rm" }
    assert.same(json.decode(json.encode(r)), json.decode(json.encode(again)))
    assert.equal(m1, helper.read_file(dir .. "/manifest.json"))
    -- a new judge knob keeps tokenizer, SFT and samples, and recomputes from the labels on
    local man = read_json(dir .. "/manifest.json")
    local p3 = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true, judge_position_bias = 5,
      swap = false }
    p3:run { stop_after = "label" }
    local man3 = read_json(dir .. "/manifest.json")
    for _, s in ipairs { "tokenizer", "sft", "samples" } do
      assert.equal(man.stages[s].key, man3.stages[s].key)
      assert.equal(man.stages[s].seconds, man3.stages[s].seconds)   -- not recomputed
    end
    assert.are_not.equal(man.stages.label.key, man3.stages.label.key)
    local r3 = read_json(dir .. "/results.json")
    assert.is_nil(r3.rm_accuracy)          -- the old reward models belong to another configuration
    assert.is_nil(r3.position_bias.same_position)   -- one order: no two-order statistic
  end)

  it("ends a stage's bar line on a terminal when the stage fails (Ctrl-C included)", function()
    local drawn = {}
    local stream = { write = function(_, ...) for _, x in ipairs { ... } do drawn[#drawn + 1] = x end end,
      flush = function() end }
    local p = sim.pipeline { out = dir, size = "tiny", hyper = HYPER,
      progress = { tty = true, stream = stream, redraw = 0 },
      stages = { tokenizer = function(pp)
        local bar = pp:_bar("work", 10)
        bar:update(3)
        error("interrupted", 0)
      end } }
    local ok, err = pcall(p.run, p, { stop_after = "label" })
    assert.is_false(ok)
    assert.equal("interrupted", err)
    local text = table.concat(drawn)
    assert.truthy(text:find("\rwork [", 1, true), text)
    assert.equal("\n", text:sub(-1))   -- the next message starts on its own line
  end)

  it("draws a progress bar for every stage, and takes another judge client", function()
    local drawn = {}
    local stream = { write = function(_, ...) for _, x in ipairs { ... } do drawn[#drawn + 1] = x end end,
      flush = function() end }
    local p = sim.pipeline { out = dir, size = "small", hyper = HYPER, swap = false,
      progress = { tty = true, stream = stream, redraw = 0 },
      judge = { api = "sim", judge_noise = 0, judge_position_bias = 50 } }
    local r = p:run { stop_after = "rm" }
    local text = table.concat(drawn)
    for _, label in ipairs { "tokenizer [", "sft [", "samples [", "judge [", "rm rlaif [", "rm rlhf [",
      "best-of-n [" } do
      assert(text:find("\r" .. label, 1, true), "no bar for " .. label)
    end
    -- the judge given as client options answers every pair with "1" (a position bias of 50)
    for line in io.lines(dir .. "/labels_ai.jsonl") do assert.is_true(json.decode(line).p > 0.99) end
    assert.is_true(r.alignment.ai_vs_truth < 0.8)
  end)

  it("continues an interrupted stage and refuses a directory it did not make", function()
    local p = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true }
    local full = p:run { stop_after = "label" }
    local pairs = full.labels.pairs
    assert.equal(2 * pairs, full.labels.judge.pairwise)
    -- as if killed while labeling: the stage is not done and only 10 labels reached the file
    local man = read_json(dir .. "/manifest.json")
    man.stages.label.done = false
    sim_write(dir .. "/manifest.json", json.encode(man))
    local lines = {}
    for l in io.lines(dir .. "/labels_ai.jsonl") do lines[#lines + 1] = l end
    sim_write(dir .. "/labels_ai.jsonl", table.concat(lines, "\n", 1, 10) .. "\n" .. lines[11]:sub(1, 20))  -- torn
    local r = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true }:run { stop_after = "label" }
    assert.equal(2 * (pairs - 10), r.labels.judge.pairwise)    -- only the rest were asked
    assert.equal(json.encode(full.alignment), json.encode(r.alignment))
    -- a custom stage has its own key: the default label stage's file is not resumed into
    local custom = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true, stages = {
      label = { key = "clamped", run = function(pp, default)
        return default(pp, { labeler = { clamp = { 0.4, 0.6 } } })
      end } } }
    local rc = custom:run { stop_after = "label" }
    assert.equal(2 * pairs, rc.labels.judge.pairwise)
    assert.is_true(rc.labels.mean_confidence <= 0.6 + 1e-12)
    -- a directory with foreign files is refused, naming it
    local other = tmpdir()
    os.execute("mkdir -p '" .. other .. "' && touch '" .. other .. "/notes.txt'")
    local ok2, err2 = pcall(function() sim.pipeline { out = other, quiet = true }:run {} end)
    rmrf(other)
    assert.is_false(ok2)
    assert.matches("exists and is not an rlaif sim directory", tostring(err2), nil, true)
    assert.has_error(function() sim.pipeline { out = dir, hyper = { sft = { stepz = 1 } } } end,
      "sim.pipeline: option 'hyper' has an unknown key 'sft.stepz'")
    assert.has_error(function() sim.pipeline { out = dir, stages = { rlhf = function() end } } end,
      "sim.pipeline: option 'stages' has an unknown stage 'rlhf'")
    assert.has_error(function() sim.pipeline { out = dir, runs = { "rlaif", "dpo" } } end,
      "sim.pipeline: option 'runs' has an unknown run 'dpo' (expected rlaif, rlhf, drlaif)")
    assert.has_error(function() sim.pipeline { out = dir, algo = "dpo" } end)
    assert.has_error(function() sim.pipeline { out = dir, hyper = { rl = { algo = "dpo" } } } end,
      "sim.pipeline: option 'hyper' key 'rl.algo' must be one of reinforce, ppo, rloo, grpo, got dpo")
    assert.has_error(function() sim.pipeline { out = dir, judge_noise = "high" } end,
      "sim.pipeline: option 'judge_noise' must be a number >= 0 and <= 100, got \"high\"")
  end)
end)

describe("rlaif.sim pipeline RL and evaluation #unit", function()
  local HYPER = { world = { train = 300, pref = 40, test = 20, eval = 6 },
    model = { d_model = 32, n_head = 2, max_seq = 96 }, sft = { steps = 12, batch_size = 8 },
    samples = { best_of = 3, max_new_tokens = 12 }, rm = { epochs = 1, batch_size = 8 },
    rl = { steps = 3, batch_size = 4, max_new_tokens = 12, save_every = 1 },
    eval = { samples = 2, max_new_tokens = 12, bootstrap = 50 } }
  local dir, threads
  setup(function() threads = rlaif.get_threads() rlaif.set_threads(1) end)
  teardown(function() rlaif.set_threads(threads) end)
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  local function jsonl(path)
    local t = {}
    for line in io.lines(path) do t[#t + 1] = json.decode(line) end
    return t
  end

  it("runs RL against each reward model and the judge's score, evaluates by truth and judge, reports", function()
    local r = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true }:run {}
    for _, kind in ipairs { "rlaif", "rlhf", "drlaif" } do
      assert(helper.read_file(dir .. "/rl_" .. kind .. "/policy/model.safetensors"), "no policy " .. kind)
      local log = jsonl(dir .. "/rl_" .. kind .. "/log.jsonl")
      assert.equal(3, #log)
      assert.equal("reinforce", log[3].algo)
      assert.equal(3, r.rl[kind].steps)
      assert.is_number(r.mean_length[kind])
    end
    -- every comparison of Table 1, by the truth and by the judge, with its length-controlled twin
    for _, k in ipairs { "rlaif_vs_sft", "rlhf_vs_sft", "rlaif_vs_rlhf", "drlaif_vs_sft" } do
      for _, t in ipairs { r.win_rate, r.lc_win_rate, r.ai_judge.win_rate, r.ai_judge.lc_win_rate } do
        assert(t[k] >= 0 and t[k] <= 1, k)
      end
    end
    -- the truth's win rate is the hidden q compared item by item (ties half), from the saved responses
    local a, b = {}, {}
    for _, x in ipairs(jsonl(dir .. "/eval/responses_rlaif.jsonl")) do a[x.id] = x end
    for _, x in ipairs(jsonl(dir .. "/eval/responses_sft.jsonl")) do b[x.id] = x end
    local wins, n = 0, 0
    for id, x in pairs(a) do
      local qa, qb = sim.quality(x.prompt, x.response), sim.quality(x.prompt, b[id].response)
      wins, n = wins + (qa > qb and 1 or qa == qb and 0.5 or 0), n + 1
    end
    assert.equal(12, n)   -- 6 prompts x 2 samples
    close(wins / n, r.win_rate.rlaif_vs_sft, 1e-12)
    local words = 0
    for _, x in pairs(a) do words = words + sim.word_count(x.response) end
    close(words / n, r.mean_length.rlaif, 1e-12)
    assert.same(json.decode(json.encode(r)), read_json(dir .. "/results.json"))
    -- the report: the printed tables, every run's curves, the win-rate bars
    local html = assert(helper.read_file(dir .. "/report.html"))
    for _, s in ipairs { "Table 1 (win rates)", "SIMULATED", "rlaif sim: RLAIF vs RLHF", "<svg",
      "reward_mean", "sft loss", "rm train_accuracy", "drlaif" } do
      assert(html:find(s, 1, true), "the report lacks " .. s)
    end
    local text = sim.format_results(r)
    for _, s in ipairs { "RLAIF vs SFT", "RLHF vs SFT", "RLAIF vs RLHF", "d-RLAIF vs SFT", "RL from the SFT policy",
      "71.0%", "59.0%" } do
      assert(text:find(s, 1, true), "the tables lack " .. s)
    end
    -- a rerun computes nothing; a judge knob reuses the RLHF run (its key holds the RLHF RM's weights only)
    local again = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true }:run {}
    assert.same(json.decode(json.encode(r)), json.decode(json.encode(again)))
    local seen = {}
    local notes = { write = function(_, ...) for _, x in ipairs { ... } do seen[#seen + 1] = x end end,
      flush = function() end }
    local knob = sim.pipeline { out = dir, size = "small", hyper = HYPER, judge_length_bias = 1,
      progress = { tty = false, stream = notes } }:run { stop_after = "rl" }
    local said = table.concat(seen)
    assert.matches("rl rlhf: cached", said, nil, true)
    assert.is_nil(said:find("rl rlaif: cached", 1, true))
    assert.equal(r.rl.rlhf.last.reward_mean, knob.rl.rlhf.last.reward_mean)
    assert.is_nil(knob.win_rate)          -- stopped after rl: no evaluation of this configuration
    assert.is_nil(read_json(dir .. "/results.json").win_rate)
  end)

  it("takes a custom RL stage and another algorithm, and continues an interrupted RL run", function()
    local calls = 0
    local p = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true, runs = { "rlaif" },
      algo = "rloo", stages = { rl = { key = "beta-0.5", run = function(pp, default)
        return default(pp, { on_step = function(tr, st)
          calls = calls + 1
          assert.equal(calls, st.step)
          tr.kl_coef = 0.5
        end, shape = function(kind, scores, ctx)
          assert.equal("rlaif", kind)
          assert.equal(#scores, #ctx.responses)
          local out = {}
          for i, x in ipairs(scores) do out[i] = x - 0.1 * sim.word_count(ctx.responses[i]) end
          return out
        end })
      end } } }
    local r = p:run { stop_after = "rl" }
    assert.equal(3, calls)
    assert.is_nil(r.rl.rlhf)
    local log = jsonl(dir .. "/rl_rlaif/log.jsonl")
    assert.equal("rloo", log[1].algo)
    close(0.5, log[3].kl_coef)   -- the schedule set from step 1's callback on
    -- as if killed in the middle: the run is not done and its log holds one step
    local policy = helper.read_file(dir .. "/rl_rlaif/policy/model.safetensors")
    local man = read_json(dir .. "/manifest.json")
    man.stages.rl.done = false
    sim_write(dir .. "/manifest.json", json.encode(man))
    local run = read_json(dir .. "/rl_rlaif/run.json")
    run.done = false
    sim_write(dir .. "/rl_rlaif/run.json", json.encode(run))
    calls = 0
    local r2 = p:run { stop_after = "rl" }
    assert.is_true(calls < 3, "the interrupted run started over")
    assert.equal(3, #jsonl(dir .. "/rl_rlaif/log.jsonl"))
    assert.equal(policy, helper.read_file(dir .. "/rl_rlaif/policy/model.safetensors"))   -- bit-exact
    assert.equal(r.rl.rlaif.last.reward_mean, r2.rl.rlaif.last.reward_mean)
  end)

  it("labels through `rlaif sim --serve` over HTTP exactly as through api = \"sim\"", function()
    local tmp = helper.tmpname("_simserve")
    os.execute(string.format("( env -u LD_PRELOAD %s/rlaif sim --serve 0 --port-file %s.port --seed 1 " ..
      "--judge-position-bias 1 --judge-length-bias 0.3 --quiet >%s.log 2>&1; echo $? > %s.rc ) >/dev/null 2>&1 " ..
      "& echo $! > %s.pid", ROOT, tmp, tmp, tmp, tmp))
    local port = helper.wait_port(tmp .. ".port")
    local pid = tonumber(helper.read_file(tmp .. ".pid") or "")
    local ok, err = pcall(function()
      assert.truthy(port, "the judge did not start: " .. tostring(helper.read_file(tmp .. ".log")))
      local http = sim.pipeline { out = dir, size = "small", hyper = HYPER, quiet = true,
        judge = { api = "openai-completions", base_url = "http://127.0.0.1:" .. port .. "/v1", model = "sim-judge",
          concurrency = 4 } }:run { stop_after = "label" }
      local dir2 = tmpdir()
      local direct = sim.pipeline { out = dir2, size = "small", hyper = HYPER, quiet = true,
        judge_position_bias = 1, judge_length_bias = 0.3 }:run { stop_after = "label" }
      local la, lb = {}, {}
      for _, x in ipairs(jsonl(dir .. "/labels_ai.jsonl")) do la[x.id] = x end
      for _, x in ipairs(jsonl(dir2 .. "/labels_ai.jsonl")) do lb[x.id] = x end
      rmrf(dir2)
      local n = 0
      for id, x in pairs(lb) do
        n = n + 1
        assert.equal("openai-completions", la[id].api)
        for _, f in ipairs { "p", "p_ab", "p_ba", "pos_ab", "pos_ba", "same_position", "status" } do
          assert.equal(x[f], la[id][f], id .. " " .. f)
        end
      end
      assert.equal(60, n)
      assert.equal(json.encode(direct.alignment), json.encode(http.alignment))
    end)
    if pid then os.execute(string.format("pkill -TERM -P %d 2>/dev/null", pid)) end
    local rc
    for _ = 1, 200 do
      rc = tonumber(helper.read_file(tmp .. ".rc") or "")
      if rc then break end
      os.execute("sleep 0.05")
    end
    local log = helper.read_file(tmp .. ".log") or ""
    for _, e in ipairs { ".port", ".pid", ".rc", ".log", "" } do os.remove(tmp .. e) end
    assert(ok, err)
    assert.equal(0, rc, log)    -- SIGTERM stops the server cleanly
  end)
end)

-- The findings, through the CLI at --size small. It runs the (uninstrumented)
-- ./rlaif binary, so the ASan pass would only repeat it: #noasan.
describe("rlaif sim CLI #unit #noasan", function()
  local dir = tmpdir()
  teardown(function() rmrf(dir) end)
  local ENV = "RLAIF_NUM_THREADS=1 "   -- the models are too small to gain from a second thread

  local function run(args)
    local out, err = os.tmpname(), os.tmpname()
    local _, _, code = os.execute(string.format("%s%s/rlaif sim --size small --out '%s' %s >%s 2>%s </dev/null", ENV,
      ROOT, dir, args, out, err))
    local o, e = helper.read_file(out), helper.read_file(err)
    os.remove(out)
    os.remove(err)
    return o, e, code
  end

  -- share of two-order AI labels that prefer the longer response (pairs of different lengths)
  local function prefers_longer()
    local samples = {}
    for line in io.lines(dir .. "/samples.jsonl") do
      local r = json.decode(line)
      if r.a then samples[r.id] = r end
    end
    local longer, n = 0, 0
    for line in io.lines(dir .. "/labels_ai.jsonl") do
      local r = json.decode(line)
      local s = samples[r.id]
      local la, lb = sim.word_count(s.a), sim.word_count(s.b)
      if la ~= lb and r.p ~= 0.5 then
        n = n + 1
        if (r.p > 0.5) == (la > lb) then longer = longer + 1 end
      end
    end
    return longer / n
  end

  it("reproduces the direction of the paper's findings, and the knobs move the numbers", function()
    local out, err, code = run("--quiet")
    assert.equal(0, code, err)
    assert.matches("SIMULATED", out, nil, true)
    assert.matches("Labeler alignment", out, nil, true)
    assert.matches("Reward-model pairwise accuracy", out, nil, true)
    assert.matches("Best-of-8", out, nil, true)
    assert.matches("Table 1 (win rates)", out, nil, true)
    local base = read_json(dir .. "/results.json")
    -- the paper's findings by the hidden truth: RLAIF and RLHF beat SFT, and tie with each other
    assert.is_true(base.win_rate.rlaif_vs_sft > 0.55, "rlaif vs sft " .. base.win_rate.rlaif_vs_sft)
    assert.is_true(base.win_rate.rlhf_vs_sft > 0.55, "rlhf vs sft " .. base.win_rate.rlhf_vs_sft)
    assert.is_true(base.win_rate.drlaif_vs_sft > 0.55, "d-rlaif vs sft " .. base.win_rate.drlaif_vs_sft)
    assert.is_true(math.abs(base.win_rate.rlaif_vs_rlhf - 0.5) < 0.1, "rlaif vs rlhf " .. base.win_rate.rlaif_vs_rlhf)
    assert.is_true(base.hidden_q.rlaif > base.hidden_q.sft and base.hidden_q.rlhf > base.hidden_q.sft)
    assert(helper.read_file(dir .. "/report.html"), "no report")
    -- the reward models beat chance on held-out human labels and by the truth
    assert.is_true(base.rm_accuracy.rlaif > 0.55, "rlaif rm " .. base.rm_accuracy.rlaif)
    assert.is_true(base.rm_accuracy.rlhf > 0.55, "rlhf rm " .. base.rm_accuracy.rlhf)
    assert.is_true(base.rm_accuracy_truth.rlaif > 0.7)
    assert.is_true(base.rm_accuracy_truth.rlhf > 0.7)
    -- and reranking SFT samples by them beats a random sample by the hidden truth
    for _, k in ipairs { "rlaif", "rlhf", "judge" } do
      assert.is_true(base.best_of_n[k].win_vs_random > 0.52, k .. " " .. base.best_of_n[k].win_vs_random)
      assert.is_true(base.best_of_n[k].q > base.best_of_n.random.q, k)
    end
    assert.is_true(base.best_of_n.judge.win_vs_random > 0.6)
    assert.is_true(base.alignment.ai_vs_truth > 0.75)
    assert.is_true(base.alignment.ai_vs_human > 0.55 and base.alignment.ai_vs_human < 0.8)
    local longer0 = prefers_longer()

    -- a rerun computes nothing and prints the same tables
    local out2, err2, code2 = run("")
    assert.equal(0, code2, err2)
    assert.equal(out, out2)
    assert.equal(8, select(2, err2:gsub(": cached", "")))

    -- position bias: without swapping it lowers alignment; swapping both orders recovers most of it
    local _, e3, c3 = run("--quiet --judge-position-bias 3 --no-swap --stop-after label")
    assert.equal(0, c3, e3)
    local noswap = read_json(dir .. "/results.json")
    assert.is_nil(noswap.rm_accuracy)
    assert.is_true(noswap.alignment.ai_vs_human < base.alignment.ai_vs_human - 0.05)
    assert.is_true(noswap.alignment.ai_vs_truth < base.alignment.ai_vs_truth - 0.1)
    local _, e4, c4 = run("--quiet --judge-position-bias 3 --stop-after label")
    assert.equal(0, c4, e4)
    local swapped = read_json(dir .. "/results.json")
    assert.is_true(swapped.position_bias.same_position > base.position_bias.same_position + 0.1)
    assert.is_true(swapped.alignment.ai_vs_truth > noswap.alignment.ai_vs_truth)

    -- length bias: the judge and the RLAIF reward model prefer longer responses, RL against it lengthens them,
    -- and the judge's raw win rate runs ahead of its length-controlled one; RLHF is untouched
    local _, e5, c5 = run("--quiet --judge-length-bias 1.5")
    assert.equal(0, c5, e5)
    local long = read_json(dir .. "/results.json")
    assert.is_true(prefers_longer() > longer0 + 0.1)
    assert.is_true(long.best_of_n.rlaif.words > base.best_of_n.rlaif.words + 1)
    assert.equal(base.rm_accuracy.rlhf, long.rm_accuracy.rlhf)
    assert.equal(base.best_of_n.rlhf.words, long.best_of_n.rlhf.words)
    assert.is_true(long.mean_length.rlaif > base.mean_length.rlaif + 1,
      string.format("rlaif words %.1f -> %.1f", base.mean_length.rlaif, long.mean_length.rlaif))
    assert.equal(base.mean_length.rlhf, long.mean_length.rlhf)     -- the same RLHF policy (cached)
    local function gap(r) return r.ai_judge.win_rate.rlaif_vs_sft - r.ai_judge.lc_win_rate.rlaif_vs_sft end
    assert.is_true(gap(long) > gap(base) + 0.03, string.format("raw - LC: %.3f -> %.3f", gap(base), gap(long)))
  end)

  it("draws a bar for every stage on a terminal (script), RL and evaluation included", function()
    local tdir = tmpdir()
    local log = os.tmpname()
    local cmd = string.format("%s%s/rlaif sim --size tiny --out '%s'", ENV, ROOT, tdir)
    local _, _, code = os.execute(string.format("script -qec %q /dev/null >%s 2>&1 </dev/null", cmd, log))
    local text = helper.read_file(log) or ""
    os.remove(log)
    rmrf(tdir)
    assert.equal(0, code, text)
    for _, label in ipairs { "sft [", "samples [", "judge [", "rm rlaif [", "best-of-n [", "rl rlaif [",
      "rl rlhf [", "rl drlaif [", "eval sft [", "eval drlaif [", "eval judge [" } do
      assert(text:find("\r" .. label, 1, true), "no bar for " .. label)
    end
    assert.matches("[8/8] eval: done", text, nil, true)
    assert.matches("Table 1 (win rates)", text, nil, true)
  end)

  it("refuses bad flags and flags that do not go together, naming them", function()
    local _, err, code = rlaif_sim("--algo dpo")
    assert.equal(2, code)
    assert.matches("--algo", err, nil, true)
    assert.matches("dpo", err, nil, true)
    _, err, code = rlaif_sim("--runs rlaif,sft")
    assert.equal(2, code)
    assert.matches("option --runs has an unknown run 'sft'", err, nil, true)
    _, err, code = rlaif_sim("--port-file /tmp/x")
    assert.equal(2, code)
    assert.matches("--port-file goes with --serve", err, nil, true)
    _, err, code = rlaif_sim("--base-url http://127.0.0.1:1/v1")
    assert.equal(2, code)
    assert.matches("--base-url needs --judge-api", err, nil, true)
    _, err, code = rlaif_sim("--serve 0 --out x")
    assert.equal(2, code)
    assert.matches("--out does not go with --serve", err, nil, true)
    _, err, code = rlaif_sim("--serve 70000")
    assert.equal(2, code)
    assert.matches("--serve", err, nil, true)
    -- a dead judge server stops the run with a non-zero status and names what failed
    local dead = tmpdir()
    _, err, code = rlaif_sim("--size tiny --quiet --out '" .. dead .. "' --judge-api openai-completions " ..
      "--base-url http://127.0.0.1:9/v1 --model x")
    rmrf(dead)
    assert.equal(1, code)
    assert.matches("rlaif sim: labeler: stopped: cannot connect to http://127.0.0.1:9/v1", err, nil, true)
    _, err, code = rlaif_sim("--judge-noise -1")
    assert.equal(2, code)
    assert.matches("option --judge-noise must be a number >= 0 and <= 100, got \"-1\"", err, nil, true)
    _, err, code = rlaif_sim("--size huge")
    assert.equal(2, code)
    assert.matches("--size", err, nil, true)
    _, err, code = rlaif_sim("--out /dev/null/x --stop-after label --quiet")
    assert.equal(1, code)
    assert.matches("rlaif sim: ", err, nil, true)
    local out = rlaif_sim("--help")
    assert.matches("SIMULATED", out, nil, true)
  end)
end)
