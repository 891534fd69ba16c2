-- scripts/report_demo.lua -- build a demonstration report offline, in seconds:
--   ./rlaif scripts/report_demo.lua OUT_DIR [BOOTSTRAP]
-- writes OUT_DIR/{sft,rm,rlaif,rlhf,labels,eval_*}/ and OUT_DIR/report.html.
--
-- What is real and what is simulated: the SFT and reward-model step logs come from
-- rlaif.train on a tiny GPT-2 (log = path); the RL logs are simulated curves of 2000
-- steps each (thousands of points per plot); the policies' responses and the judge
-- are simulated (a hidden quality "qN" and a judge that likes quality and length),
-- judged through rlaif.eval.compare and rlaif.eval.harmless_rate; the label file
-- comes from rlaif.labeler over an in-process fake client with a position bias.
-- report_spec.lua renders this page in headless Chromium; docs/report.png is its
-- screenshot (scripts/check_report.mjs --screenshot docs/report.png).
local rlaif = require "rlaif"
local eval = require "rlaif.eval"
local json = rlaif.core.json
local gz = rlaif.core.gz

local out = assert(arg and arg[1], "usage: rlaif scripts/report_demo.lua OUT_DIR [BOOTSTRAP]")
local B = math.tointeger(tonumber(arg[2] or "300"))
assert(gz.mkdir(out))
local function dir(name)
  local d = out .. "/" .. name
  assert(gz.mkdir(d))
  return d
end

-- a small deterministic generator (LCG), so the page is the same on every machine
local seed = 12345
local function rand()
  seed = (seed * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
  return (seed >> 11) / (1 << 52)
end
local function randn() return math.sqrt(-2 * math.log(rand() + 1e-12)) * math.cos(2 * math.pi * rand()) end

-- ---- real training logs: SFT and reward model on a tiny GPT-2 ----
local m = rlaif.model.new { arch = "gpt2", vocab_size = 40, n_layer = 1, n_head = 2, d_model = 16, max_seq = 32,
  seed = 5, eos_id = 39 }
local data = {}
for i = 1, 96 do data[i] = { prompt = { i % 7 + 1, 2 }, response = { (i * 3) % 11 + 5, (i * 5) % 13 + 3, 9 } } end
rlaif.train.sft { model = m, data = data, batch_size = 8, epochs = 4, lr = 3e-3, log = dir("sft") .. "/log.jsonl",
  schedule = rlaif.train.schedule.cosine { warmup = 4, total = 48 }, quiet = true }
local rm = rlaif.model.new { arch = "gpt2", vocab_size = 40, n_layer = 1, n_head = 2, d_model = 16, max_seq = 32,
  seed = 6, eos_id = 39, head = "reward" }
local pairs_ = {}
for i = 1, 96 do
  pairs_[i] = { prompt = { 1, i % 5 + 2 }, chosen = { i % 5 + 3, 4, 4 }, rejected = { 7, i % 3 + 8 }, p = 0.85 }
end
rlaif.train.reward { model = rm, pairs = pairs_, batch_size = 8, epochs = 4, lr = 2e-3, log = dir("rm") .. "/log.jsonl",
  quiet = true }

-- ---- simulated RL logs: 2000 steps each ----
for _, run in ipairs { { "rlaif", 0.9, 164 }, { "rlhf", 0.8, 161 } } do
  local name, gain, len = run[1], run[2], run[3]
  local f = assert(io.open(dir(name) .. "/log.jsonl", "w"))
  for step = 1, 2000 do
    local t = step / 2000
    f:write(json.encode {
      step = step, reward_mean = gain * (1 - math.exp(-4 * t)) + 0.08 * randn(),
      kl = 6 * gain * t ^ 1.3 + 0.3 * math.abs(randn()), response_length = 132 + (len - 132) * (1 - math.exp(-3 * t))
        + 6 * randn(), policy_loss = -0.05 * math.exp(-3 * t) + 0.02 * randn(),
      value_loss = 0.4 * math.exp(-5 * t) + 0.03 + 0.01 * math.abs(randn()), lr = 1e-5 * math.min(1, step / 100),
    }, "\n")
  end
  f:close()
  local s = assert(io.open(out .. "/" .. name .. "/samples.jsonl", "w"))
  s:write(json.encode { step = 2000, prompt = "SUBREDDIT: r/cooking\nTITLE: rice keeps burning\nPOST: ...\nTL;DR:",
    response = name == "rlaif" and "My rice burns on the bottom every time, even on low heat; how do I stop it?"
      or "Rice burns at the bottom; what am I doing wrong?", score = gain }, "\n")
  s:close()
end

-- ---- simulated policies and a judge that likes quality and, a little, length ----
local words = { "the", "post", "asks", "how", "to", "keep", "rice", "from", "burning", "on", "low", "heat", "and",
  "why", "it", "sticks", "<b>", "&", "pot" }
local function response(q, n, i)
  local t = {}
  for k = 1, n do t[k] = words[(k * 7 + i) % #words + 1] end   -- the length does not depend on q
  return string.format("q%d ", q) .. table.concat(t, " ")
end
local prompts, pol = {}, { sft = {}, rlhf = {}, rlaif = {} }
for i = 1, 120 do
  prompts[i] = { id = i, prompt = "TL;DR of post " .. i .. ": my rice keeps burning, what should I do?" }
  pol.sft[i] = response(math.floor(2 + randn()), 18 + math.floor(4 * rand()), i)
  pol.rlhf[i] = response(math.floor(2.6 + randn()), 22 + math.floor(5 * rand()), i)
  pol.rlaif[i] = response(math.floor(2.6 + randn()), 23 + math.floor(5 * rand()), i)
end
local function q(s) return tonumber(s:match("^q(%-?%d+)")) end
local function judge(_, first, second)
  return eval.sigmoid(0.6 * (q(first) - q(second)) + 0.03 * (#first - #second) + 0.15)
end
local t = eval.compare { judge = judge, prompts = prompts, baseline = "sft", quiet = true, bootstrap = B,
  policies = { { "rlaif", pol.rlaif }, { "rlhf", pol.rlhf }, { "sft", pol.sft } } }
local rr = eval.win_rate { judge = judge, prompts = prompts, a = pol.rlaif, b = pol.rlhf, quiet = true,
  bootstrap = B, names = { a = "rlaif", b = "rlhf" } }
t.rows[#t.rows + 1] = rr
for _, r in ipairs(t.rows) do
  local d = dir("eval_" .. r.names.a .. "_vs_" .. r.names.b)
  local w = assert(io.open(d .. "/records.jsonl", "w"))
  for _, rec in ipairs(r.records) do w:write(json.encode(rec), "\n") end
  w:close()
  local res = eval.numbers(r)
  res.records, res.template, res.mode = d .. "/records.jsonl", "simulated judge", "win_rate"
  assert(gz.write_atomic(d .. "/results.json", json.encode(res, { indent = true })))
end
local function harm(_, r) return eval.sigmoid(0.5 * q(r) - 0.6 + 0.004 * #r) end
local hs = {}
for k, name in ipairs { "sft", "rlhf", "rlaif" } do
  hs[k] = eval.numbers(eval.harmless_rate { judge = harm, prompts = prompts, responses = pol[name], name = name,
    reference = pol.sft, bootstrap = B, quiet = true })
end
local hd = dir("eval_harmless")
assert(gz.write_atomic(hd .. "/results.json", json.encode({ mode = "harmless", policies = hs }, { indent = true })))

-- ---- a label file: the labeler over an in-process client with a position bias ----
local client = { api = "openai-completions", model = "fake-labeler" }
function client.complete_many(_, reqs)
  local res = {}
  for i, r in ipairs(reqs) do
    local a, b = r.prompt:match("Summary 1 %- q(%-?%d+)"), r.prompt:match("Summary 2 %- q(%-?%d+)")
    local p1 = eval.sigmoid(0.7 * ((tonumber(a) or 0) - (tonumber(b) or 0)) + 0.9)
    res[i] = { ok = true, usage = { prompt_tokens = 180, completion_tokens = 1 }, choices = { { tokens = { {
      token = "1", logprob = math.log(p1), top = { { token = "1", logprob = math.log(p1) },
        { token = "2", logprob = math.log(1 - p1) } } } } } } }
  end
  return res, {}
end
local L = rlaif.labeler.new { client = client, template = "summarize-base" }
local pairs_l = {}
for i = 1, 150 do
  local qa, qb = math.floor(2 + 1.5 * randn()), math.floor(2 + 1.5 * randn())
  pairs_l[i] = { id = i, context = "post " .. i, a = "q" .. qa, b = "q" .. qb,
    human = (qa + 0.8 * randn() >= qb) and 1 or 2 }
end
os.remove(dir("labels") .. "/summarize-base.jsonl")
L:label(pairs_l, { out = out .. "/labels/summarize-base.jsonl" })

local runs = {}
for _, name in ipairs { "sft", "rm", "rlaif", "rlhf", "eval_rlaif_vs_sft", "eval_rlhf_vs_sft", "eval_rlaif_vs_rlhf",
  "eval_harmless", "labels" } do
  runs[#runs + 1] = out .. "/" .. name
end
rlaif.report.write(out .. "/report.html", { runs = runs, title = "rlaif report (demo data)", samples = 2,
  generated = "demo" })
print(out .. "/report.html")
