-- lua/rlaif/eval.lua -- evaluation with an AI judge (Lee et al. 2023 §2.3, App. J):
-- win rates of policy A over policy B, the paper's length-controlled win rate,
-- the harmless rate, comparisons of several policies as a table, and model
-- generation for the responses.
--
--   local eval = require "rlaif.eval"
--   local L = rlaif.labeler.new{client = c, template = "summarize-detailed"}       -- the judge
--   local r = eval.win_rate{judge = L, prompts = prompts, a = responses_a, b = responses_b}
--   print(r.win_rate, r.ci95[1], r.ci95[2], r.lc_win_rate, r.n, r.ties, r.failed)
--   local r = eval.win_rate{judge = L, prompts = prompts, a = {model = rlaif_dir, max_new_tokens = 64},
--                           b = {model = sft_dir}}                                 -- generated here
--   local h = eval.harmless_rate{judge = H, prompts = prompts, responses = rl, ref_length = 132}
--   local t = eval.compare{judge = L, prompts = prompts, policies = {{"rlaif", ra}, {"sft", rs}},
--                          baseline = "sft"}                                       -- or round robin
--   print(eval.format_table(t.rows))
--   eval.summarize(records) / eval.lc_win_rate(records)     -- statistics of judged records only
--   eval.win_rate{..., shard = {1, 4}, out = "r.shard-1-of-4.jsonl"}   -- only shard 1's items
--   eval.win_rate{..., shards = {f1, f2, f3, f4}, out = "records.jsonl"}     -- combine, judge nothing
--
-- Judge: an rlaif.labeler (any backend, template, CoT, soft labels; both orders
-- when it swaps) or a function judge(prompt, first, second, item) -> P(first is
-- better) | nil, reason, which is called in both orders (a simulated judge).
-- A record holds p = the debiased probability that A is better (labeler p),
-- p_ab (A shown first), p_ba (A shown second), len_a, len_b (characters).
--
-- Numbers (fractions in [0, 1]; `ok` records only, the others are `failed`,
-- never ties):
--   win_rate      mean of the outcomes: 1 when p > 0.5 + tie_margin, 0 when
--                 p < 0.5 - tie_margin, 0.5 (a tie) otherwise
--   soft_win_rate mean p
--   lc_win_rate   App. J: logistic regression of the outcome ("A preferred",
--                 ties 0.5) on x = len_a / len_b, logit = b0 + b1 (x - 1) with a
--                 ridge l2 / 2 * b1^2 on the mean log-loss, predicted at x = 1
--                 (= sigmoid(b0))
--   lc_ae2        AlpacaEval 2's length term: p (soft) regressed on
--                 tanh((len_a - len_b) / sd), predicted at 0; without AlpacaEval's
--                 instruction-difficulty term, which needs a leaderboard of models
--   ci95, soft_ci95, lc_ci95, lc_ae2_ci95: percentile bootstrap over items (the
--                 same resamples for every number; rlaif.metrics' splitmix64 rng)
--   disagree      share of items whose two orders prefer different responses
--                 (= the judge preferred the same position); first = share of those
--                 where it was the first position
--
-- What it is not: no prompt templates or label parsing (rlaif.labeler,
-- rlaif.prompts), no HTTP (rlaif.llm), no plots (rlaif.report).

local core = require "rlaif.core"
local opts = require "rlaif.opts"
local progress = require "rlaif.progress"
local metrics = require "rlaif.metrics"

local json = core.json
local exp, log, huge = math.exp, math.log, math.huge

local M = {}

-- ---- small helpers ----

--- Length of a text in characters (UTF-8 code points; bytes when the text is not UTF-8).
function M.char_len(s)
  if type(s) ~= "string" then return 0 end
  return utf8.len(s) or #s
end

--- The outcome of a probability p that A is better: 1, 0 or 0.5 (a tie: |p - 0.5| <= margin).
function M.outcome(p, margin)
  margin = margin or 0
  if p > 0.5 + margin then return 1 end
  if p < 0.5 - margin then return 0 end
  return 0.5
end

local function sigmoid(z)
  if z >= 0 then return 1 / (1 + exp(-z)) end
  local e = exp(z)
  return e / (1 + e)
end
--- sigmoid(z) -> 1 / (1 + exp(-z)), computed without overflow
M.sigmoid = sigmoid

local function tanh(x)
  if x > 20 then return 1 end
  if x < -20 then return -1 end
  local e = exp(2 * x)
  return (e - 1) / (e + 1)
end
--- tanh(x) -> the hyperbolic tangent, saturating beyond |x| > 20
M.tanh = tanh

-- log(1 + exp(z)) without overflow
local function softplus(z)
  if z > 0 then return z + log(1 + exp(-z)) end
  return log(1 + exp(z))
end

-- ---- logistic regression (the length controls) ----

--- logistic_fit(x, y [, {x0 = 1, l2 = 1e-3}]) -> b0, b1, info
--- Minimises mean_i [softplus(eta_i) - y_i eta_i] + l2/2 * b1^2 with eta_i = b0 + b1 (x_i - x0)
--- (y_i in [0, 1]: soft targets are allowed) by Newton's method with a backtracking line
--- search; sigmoid(b0) is the prediction at x = x0. When every y_i is 0 (or every one is
--- 1) b0 is -inf (+inf): the prediction is that value exactly. info = {iterations, loss}.
local FIT = opts.schema("eval.logistic_fit", { x0 = { "number", default = 1 }, l2 = { "number", min = 0,
  default = 1e-3 } })

--- logistic_fit(x, y [, {x0 =, l2 =}]) -> b0, b1, info (see the comment above)
function M.logistic_fit(x, y, o)
  o = FIT(o)
  if type(x) ~= "table" or type(y) ~= "table" or #x ~= #y then
    error("eval.logistic_fit: x and y must be lists of the same length", 2)
  end
  local x0, l2 = o.x0, o.l2
  local n = #y
  if n == 0 then return nil, nil, { iterations = 0 } end
  local ybar = 0
  for i = 1, n do ybar = ybar + y[i] end
  ybar = ybar / n
  if ybar <= 0 then return -huge, 0, { iterations = 0, loss = 0 } end
  if ybar >= 1 then return huge, 0, { iterations = 0, loss = 0 } end
  local u = {}
  for i = 1, n do u[i] = x[i] - x0 end
  local function loss(b0, b1)
    local s = 0
    for i = 1, n do
      local eta = b0 + b1 * u[i]
      s = s + softplus(eta) - y[i] * eta
    end
    return s / n + 0.5 * l2 * b1 * b1
  end
  local b0, b1 = log(ybar / (1 - ybar)), 0
  local f = loss(b0, b1)
  local it = 0
  for k = 1, 200 do
    it = k
    local g0, g1, h00, h01, h11 = 0, 0, 0, 0, 0
    for i = 1, n do
      local s = sigmoid(b0 + b1 * u[i])
      local r, w = s - y[i], s * (1 - s)
      g0, g1 = g0 + r, g1 + r * u[i]
      h00, h01, h11 = h00 + w, h01 + w * u[i], h11 + w * u[i] * u[i]
    end
    g0, g1 = g0 / n, g1 / n + l2 * b1
    h00, h01, h11 = h00 / n, h01 / n, h11 / n + l2
    local det = h00 * h11 - h01 * h01
    local d0, d1
    if det > 1e-300 and h00 > 0 then
      d0, d1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
    else
      d0, d1 = g0, g1     -- a gradient step when the Hessian is singular
    end
    if math.abs(g0) + math.abs(g1) < 1e-14 then break end
    local t, nb0, nb1, nf = 1, b0, b1, f
    for _ = 1, 60 do
      nb0, nb1 = b0 - t * d0, b1 - t * d1
      nf = loss(nb0, nb1)
      if nf <= f - 1e-4 * t * (g0 * d0 + g1 * d1) then break end
      t = t / 2
    end
    local moved = math.abs(nb0 - b0) + math.abs(nb1 - b1)
    b0, b1, f = nb0, nb1, nf
    if moved < 1e-13 then break end
  end
  return b0, b1, { iterations = it, loss = f }
end

local function predict(b0)
  if b0 == huge then return 1 end
  if b0 == -huge then return 0 end
  return sigmoid(b0)
end

-- ---- statistics of judged records ----

local function ok_records(records)
  local out = {}
  for _, r in ipairs(records) do
    if r.status == "ok" and type(r.p) == "number" then out[#out + 1] = r end
  end
  return out
end

-- the regressors of both length controls for a list of ok records
local function length_terms(recs)
  local ratio, delta = {}, {}
  for i, r in ipairs(recs) do
    local la, lb = r.len_a or 0, r.len_b or 0
    ratio[i] = la / math.max(lb, 1)
    delta[i] = la - lb
  end
  -- AlpacaEval standardises the length difference by its (sample) standard deviation
  local n, s, ss = #delta, 0, 0
  for i = 1, n do s = s + delta[i] end
  local mean = n > 0 and s / n or 0
  for i = 1, n do ss = ss + (delta[i] - mean) ^ 2 end
  local sd = n > 1 and math.sqrt(ss / (n - 1)) or 0
  local tanh_d = {}
  for i = 1, n do tanh_d[i] = sd > 0 and tanh(delta[i] / sd) or 0 end
  return ratio, tanh_d
end

local function stats_of(recs, idx, margin, ratio, tanh_d, l2, want_lc)
  local n = #idx
  local wsum, psum = 0, 0
  local ys, ps, xr, xt = {}, {}, {}, {}
  for k = 1, n do
    local i = idx[k]
    local r = recs[i]
    local y = M.outcome(r.p, margin)
    wsum, psum = wsum + y, psum + r.p
    if want_lc then ys[k], ps[k], xr[k], xt[k] = y, r.p, ratio[i], tanh_d[i] end
  end
  local lc, ae2
  if want_lc then
    lc = predict((M.logistic_fit(xr, ys, { x0 = 1, l2 = l2 })))
    ae2 = predict((M.logistic_fit(xt, ps, { x0 = 0, l2 = l2 })))
  end
  return wsum / n, psum / n, lc, ae2
end

local function percentile_ci(vals, alpha)
  table.sort(vals)
  local B = #vals
  return { vals[math.max(1, math.floor(alpha / 2 * B + 0.5))], vals[math.min(B, math.ceil((1 - alpha / 2) * B))] }
end

local SUMMARIZE = opts.schema("eval.summarize", {
  tie_margin = { "number", min = 0, lt = 0.5, default = 0 },
  bootstrap = { "integer", min = 0, default = 1000 },
  alpha = { "number", gt = 0, lt = 1, default = 0.05 },
  seed = { "integer", default = 1 },
  l2 = { "number", min = 0, default = 1e-3 },
  lc = { "boolean", default = true },
})

--- summarize(records [, {tie_margin = 0, bootstrap = 1000, alpha = 0.05, seed = 1, l2 = 1e-3,
---   lc = true}]) -> the numbers of a win-rate evaluation (see the header): {n, failed,
---   wins, losses, ties, win_rate, soft_win_rate, lc_win_rate, lc_ae2, ci95, soft_ci95,
---   lc_ci95, lc_ae2_ci95, se, disagree, first, mean_len_a, mean_len_b}. Records with a
---   status other than "ok" count as failed. Rates are nil when no record is ok.
function M.summarize(records, o)
  o = SUMMARIZE(o)
  local recs = ok_records(records)
  local n = #recs
  local out = { n = n, failed = #records - n, wins = 0, losses = 0, ties = 0, tie_margin = o.tie_margin }
  if n == 0 then return out end
  local idx = {}
  local la, lb, dis, first = 0, 0, 0, 0
  for i, r in ipairs(recs) do
    idx[i] = i
    local y = M.outcome(r.p, o.tie_margin)
    if y == 1 then out.wins = out.wins + 1
    elseif y == 0 then out.losses = out.losses + 1
    else out.ties = out.ties + 1 end
    la, lb = la + (r.len_a or 0), lb + (r.len_b or 0)
    if r.p_ab and r.p_ba and (r.p_ab - 0.5) * (r.p_ba - 0.5) < 0 then
      dis = dis + 1
      if r.p_ab > 0.5 then first = first + 1 end   -- A when first, B when first: position 1
    end
  end
  local ratio, tanh_d = length_terms(recs)
  out.win_rate, out.soft_win_rate, out.lc_win_rate, out.lc_ae2 =
    stats_of(recs, idx, o.tie_margin, ratio, tanh_d, o.l2, o.lc)
  out.mean_len_a, out.mean_len_b = la / n, lb / n
  out.disagree = dis / n
  out.first = dis > 0 and first / dis or nil
  -- standard error of the win rate (as AlpacaEval reports it)
  local ss = 0
  for _, r in ipairs(recs) do ss = ss + (M.outcome(r.p, o.tie_margin) - out.win_rate) ^ 2 end
  out.se = n > 1 and math.sqrt(ss / (n - 1) / n) or nil
  if o.bootstrap > 0 then
    local rnd = metrics.rng(o.seed)
    local W, S, LC, AE = {}, {}, {}, {}
    local sample = {}
    for b = 1, o.bootstrap do
      for i = 1, n do sample[i] = rnd(n) end
      W[b], S[b], LC[b], AE[b] = stats_of(recs, sample, o.tie_margin, ratio, tanh_d, o.l2, o.lc)
    end
    out.ci95, out.soft_ci95 = percentile_ci(W, o.alpha), percentile_ci(S, o.alpha)
    if o.lc then out.lc_ci95, out.lc_ae2_ci95 = percentile_ci(LC, o.alpha), percentile_ci(AE, o.alpha) end
  end
  return out
end

--- lc_win_rate(records [, opts]) -> the paper's length-controlled win rate (App. J), its
--- bootstrap interval, and AlpacaEval 2's length-controlled rate (see the header).
function M.lc_win_rate(records, o)
  local s = M.summarize(records, o)
  return s.lc_win_rate, s.lc_ci95, s.lc_ae2
end

--- win_stats(records [, opts]): summarize() without the length controls.
function M.win_stats(records, o)
  local c = {}
  for k, v in pairs(o or {}) do c[k] = v end
  c.lc = false
  return M.summarize(records, c)
end

local HSUM = opts.schema("eval.summarize_harmless", {
  ref_length = { "number", gt = 0 },
  tie_margin = { "number", min = 0, lt = 0.5, default = 0 },
  bootstrap = { "integer", min = 0, default = 1000 },
  alpha = { "number", gt = 0, lt = 1, default = 0.05 },
  seed = { "integer", default = 1 },
  l2 = { "number", min = 0, default = 1e-3 },
})

--- summarize_harmless(records [, {ref_length =, tie_margin =, bootstrap =, ...}]) ->
--- {n, failed, harmless, harmful, ties, harmless_rate, soft_harmless_rate, lc_harmless_rate,
--- ci95, soft_ci95, lc_ci95, mean_len, ref_length}. records: {status, p = P(harmless),
--- len}. The length control (App. J) regresses the outcome on len / ref_length and
--- predicts at 1.0; ref_length defaults to the records' own mean length (then it is close
--- to the raw rate) -- the paper uses the SFT policy's mean length.
function M.summarize_harmless(records, o)
  o = HSUM(o)
  local recs = ok_records(records)
  local n = #recs
  local out = { n = n, failed = #records - n, harmless = 0, harmful = 0, ties = 0 }
  if n == 0 then return out end
  local lsum = 0
  for _, r in ipairs(recs) do lsum = lsum + (r.len or 0) end
  out.mean_len = lsum / n
  local ref = o.ref_length or math.max(out.mean_len, 1)
  out.ref_length = ref
  local x = {}
  for i, r in ipairs(recs) do
    x[i] = (r.len or 0) / ref
    local y = M.outcome(r.p, o.tie_margin)
    if y == 1 then out.harmless = out.harmless + 1 elseif y == 0 then out.harmful = out.harmful + 1
    else out.ties = out.ties + 1 end
  end
  local function stat(idx)
    local ys, xs, ws, ps = {}, {}, 0, 0
    for k = 1, #idx do
      local r = recs[idx[k]]
      local y = M.outcome(r.p, o.tie_margin)
      ys[k], xs[k] = y, x[idx[k]]
      ws, ps = ws + y, ps + r.p
    end
    return ws / #idx, ps / #idx, predict((M.logistic_fit(xs, ys, { x0 = 1, l2 = o.l2 })))
  end
  local all = {}
  for i = 1, n do all[i] = i end
  out.harmless_rate, out.soft_harmless_rate, out.lc_harmless_rate = stat(all)
  if o.bootstrap > 0 then
    local rnd = metrics.rng(o.seed)
    local H, S, LC, sample = {}, {}, {}, {}
    for b = 1, o.bootstrap do
      for i = 1, n do sample[i] = rnd(n) end
      H[b], S[b], LC[b] = stat(sample)
    end
    out.ci95, out.soft_ci95, out.lc_ci95 = percentile_ci(H, o.alpha), percentile_ci(S, o.alpha),
      percentile_ci(LC, o.alpha)
  end
  return out
end

-- ---- JSONL files of responses and records ----

local function read_jsonl(path, what)
  local f, err = io.open(path, "rb")
  if not f then error(string.format("%s: cannot read %s", what, tostring(err)), 0) end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local r, jerr = json.decode(line)
      if type(r) ~= "table" then
        f:close()
        error(string.format("%s: %s:%d: %s", what, path, n, jerr or "not a JSON object"), 0)
      end
      out[#out + 1] = r
    end
  end
  f:close()
  return out
end

--- load_responses(path) -> list of {id, prompt, response} from a JSONL file (also the
--- file eval.generate writes; lines whose status is not "ok" are failed generations and
--- are kept as such). A line without `response` raises naming the file and line.
function M.load_responses(path)
  local out = {}
  for i, r in ipairs(read_jsonl(path, "eval.load_responses")) do
    if r.id == nil then r.id = i end
    if r.response == nil and (r.status == nil or r.status == "ok") then
      error(string.format("eval.load_responses: %s: record %d (id %s) has no 'response'", path, i, tostring(r.id)), 0)
    end
    out[#out + 1] = r
  end
  return out
end

-- prompts as {id, prompt} records: strings get ids 1..n
local function norm_prompts(prompts, who)
  local out = {}
  if prompts == nil then return nil end
  if type(prompts) == "string" then prompts = read_jsonl(prompts, who) end
  for i, p in ipairs(prompts) do
    if type(p) == "string" then
      out[i] = { id = i, prompt = p }
    elseif type(p) == "table" then
      local text = p.prompt or p.context
      if type(text) ~= "string" then error(string.format("%s: prompt %d has no text ('prompt')", who, i), 0) end
      out[i] = { id = p.id == nil and i or p.id, prompt = text }
    else
      error(string.format("%s: prompt %d must be a string or a record, got %s", who, i, type(p)), 0)
    end
  end
  return out
end
--- norm_prompts(prompts, who) -> list of {id, prompt} from strings or records
M.norm_prompts = norm_prompts

local function is_model(v) return type(v) == "userdata" and type(v.generate) == "function" end

-- ---- generation ----

local GEN = opts.schema("eval.generate", {
  model = "string|userdata",          -- a Hugging Face directory or a loaded LM-head model
  tokenizer = "string|userdata",      -- default: the model directory
  client = "table",                   -- any rlaif.llm client instead of a model
  prompts = { "table|string", required = true },
  max_new_tokens = { "integer", min = 1, default = 64 },
  temperature = { "number", min = 0, default = 0 },
  top_p = { "number", gt = 0, max = 1 },
  top_k = { "integer", min = 0 },
  seed = { "integer", default = 0 },
  stop = "table|string",
  batch_size = { "integer", min = 1, default = 16 },
  out = "string",
  resume = { "boolean", default = true },
  progress = { "boolean", default = true },
  quiet = "boolean",
  label = "string",
  name = "string",
})

local function gen_client(o)
  if o.client then
    if type(o.client.complete_many) ~= "function" then
      error("eval.generate: option 'client' must be an rlaif.llm client (complete_many)", 3)
    end
    return o.client
  end
  if o.model == nil then error("eval.generate: give model (a directory or a loaded model) or client", 3) end
  if is_model(o.model) and o.tokenizer == nil then
    error("eval.generate: a loaded model needs tokenizer (a path or a loaded tokenizer)", 3)
  end
  local llm = require "rlaif.llm"
  return llm.client { api = "local", model = o.model, tokenizer = o.tokenizer, concurrency = o.batch_size,
    seed = o.seed, name = o.name }
end

--- generate{model = DIR | m, tokenizer =, client =, prompts =, max_new_tokens = 64, temperature = 0,
---   top_p =, top_k =, seed = 0, stop =, batch_size = 16, out = FILE, resume = true,
---   progress = true, quiet =} -> list of {id, prompt, response, status = "ok" | "error",
---   reason, finish_reason, tokens}, summary {ok, failed, skipped}
--- Responses of a model (through the in-process `local` client: its EOS, stop-string and
--- context rules) or of any LLM client (a policy behind vLLM, ...), batch_size prompts per
--- round. A sampled request (temperature > 0) gets seed + its position in the prompt list,
--- so the responses do not depend on batching or resuming. With out, every round is
--- appended to the JSONL file as it finishes; a rerun keeps the ok ones and generates the
--- rest, so Ctrl-C (which stops the model and raises "interrupted") loses only the round
--- in flight. Progress goes to stderr (rlaif.progress).
function M.generate(o)
  o = GEN(o)
  local prompts = norm_prompts(o.prompts, "eval.generate")
  local client = gen_client(o)
  local labeler = require "rlaif.labeler"
  local done = {}
  if o.out and o.resume then
    local by = labeler.read_labels_file(o.out)
    for id, r in pairs(by) do
      if (r.status == nil or r.status == "ok") and r.response ~= nil then done[id] = r end
    end
  end
  local w = o.out and labeler.writer(o.out, { replace = not o.resume }) or nil
  local bar = progress.new { label = o.label or "generate", total = #prompts, unit = "response",
    quiet = o.quiet or not o.progress }
  local out = {}
  local sum = { ok = 0, failed = 0, skipped = 0 }
  local stop = type(o.stop) == "string" and { o.stop } or o.stop
  local ok, err = pcall(function()
    for a = 1, #prompts, o.batch_size do
      local reqs, idx = {}, {}
      for i = a, math.min(a + o.batch_size - 1, #prompts) do
        local p = prompts[i]
        local prev = done[p.id]
        if prev and prev.prompt == p.prompt then
          out[i] = prev
          sum.skipped = sum.skipped + 1
        else
          idx[#idx + 1] = i
          reqs[#reqs + 1] = { prompt = p.prompt, max_tokens = o.max_new_tokens, temperature = o.temperature,
            top_p = o.top_p, top_k = o.top_k, stop = stop, seed = o.temperature > 0 and (o.seed + i) or nil }
        end
      end
      if #reqs > 0 then
        local res, info = client:complete_many(reqs, { progress = false })
        for k, i in ipairs(idx) do
          local r, p = res[k], prompts[i]
          local rec
          if type(r) == "table" and r.ok then
            rec = { id = p.id, prompt = p.prompt, response = r.text, status = "ok",
              finish_reason = r.choices and r.choices[1] and r.choices[1].finish_reason,
              tokens = r.usage and r.usage.completion_tokens }
            sum.ok = sum.ok + 1
          else
            rec = { id = p.id, prompt = p.prompt, status = "error",
              reason = type(r) == "table" and (tostring(r.kind) .. ": " .. tostring(r.message)) or "no result" }
            sum.failed = sum.failed + 1
          end
          out[i] = rec
          if w and not (info and info.interrupted and rec.status ~= "ok") then w:write(rec) end
        end
        if w then w:sync() end
        if info and info.interrupted then error("eval.generate: interrupted", 0) end
      end
      bar:update(math.min(a + o.batch_size - 1, #prompts), sum.failed > 0 and { { "failed", sum.failed } } or nil)
    end
  end)
  if w then w:close() end
  if not ok then
    bar:abort(o.out and string.format("generate: stopped; %d responses kept in %s", sum.ok + sum.skipped, o.out))
    error(err, 0)
  end
  bar:finish()
  return out, sum
end

-- Resolve a response source to a list of records {id, prompt, response, status}
-- for the prompts: a list of strings (aligned with prompts), a list of records
-- (joined by id), a JSONL path, a model, or generation options {model = | client =, ...}.
local function responses_of(spec, prompts, who, gen_defaults, quiet)
  if type(spec) == "string" then spec = M.load_responses(spec) end
  if is_model(spec) then error(who .. ": a loaded model needs {model = m, tokenizer = tok}", 0) end
  if type(spec) ~= "table" then error(who .. ": responses must be a list, a JSONL path or {model = ...}", 0) end
  if spec.model ~= nil or spec.client ~= nil then
    if not prompts then error(who .. ": generating responses needs prompts", 0) end
    local g = {}
    for k, v in pairs(gen_defaults or {}) do g[k] = v end
    for k, v in pairs(spec) do g[k] = v end
    g.prompts = prompts
    if g.quiet == nil then g.quiet = quiet end
    return (M.generate(g))
  end
  local out = {}
  local prompt_of = {}
  for _, p in ipairs(prompts or {}) do prompt_of[p.id] = p.prompt end
  if type(spec[1]) == "string" or #spec == 0 then
    if not prompts then error(who .. ": responses given as strings need prompts", 0) end
    if #spec ~= #prompts then
      error(string.format("%s: %d responses for %d prompts", who, #spec, #prompts), 0)
    end
    for i, p in ipairs(prompts) do
      if type(spec[i]) ~= "string" then error(string.format("%s: response %d is not a string", who, i), 0) end
      out[i] = { id = p.id, prompt = p.prompt, response = spec[i], status = "ok" }
    end
    return out
  end
  for i, r in ipairs(spec) do
    if type(r) ~= "table" then error(string.format("%s: response %d must be a record or a string", who, i), 0) end
    local id = r.id == nil and i or r.id
    out[i] = { id = id, prompt = r.prompt or r.context or prompt_of[id], response = r.response,
      status = r.status or "ok", reason = r.reason }
    if out[i].status == "ok" and type(out[i].response) ~= "string" then
      error(string.format("%s: record %d (id %s) has no response text", who, i, tostring(id)), 0)
    end
  end
  return out
end
--- responses_of(list, prompts, who) -> list of {id, prompt, response, status}
M.responses_of = responses_of

-- ---- judging ----

local function judge_kind(judge)
  if type(judge) == "function" then return "function" end
  if type(judge) == "table" and type(judge.run_batch) == "function" and type(judge.label) == "function" then
    return "labeler"
  end
  return nil
end

-- A stable identity of the judge, part of every record's key: a resumed run reuses
-- only records judged by the same judge on the same texts.
local function judge_id(judge, name)
  if type(judge) == "function" then return "function:" .. (name or "judge") end
  local t = judge.template
  return table.concat({ "labeler", t and t.name or "?", judge.renderer and judge.renderer.hash or "?",
    tostring(judge.model), tostring(judge.api), tostring(judge.shots), tostring(judge.cot),
    tostring(judge.swap), tostring(judge.samples), tostring(judge.scoring), tostring(judge.polarity),
    tostring(judge.format) }, "|")
end
--- judge_id(judge [, name]) -> a stable identity of a judge, part of each record's key
M.judge_id = judge_id

local function key_of(jid, ...)
  return core.llm.sha256(table.concat({ jid, ... }, "\0"))
end

-- Read the records already in `out` (resume): id -> record.
local function previous(out, resume)
  if not out then return {} end
  local labeler = require "rlaif.labeler"
  if resume then return (labeler.read_labels_file(out)) end
  return {}   -- the writer replaces `out` once it has a record (labeler.writer{replace})
end

local combine, json_id
local DONE = { ok = true, unlabeled = true }

local function item_key(jid, it, mode)
  return mode == "pair" and key_of(jid, it.prompt, it.a, it.b) or key_of(jid, it.prompt, it.response)
end

-- Combine the record files of shards 1..n (o.shards) into `out` without judging:
-- every item must have a finished record of this judge in the file of its shard
-- (dist.shard_of), a record in another shard's file is refused, and a missing item
-- is an error naming the ids; nothing is written then. `out` is replaced atomically
-- by the records in item order. Returns the records and counts {judged = 0, reused}.
combine = function(jid, items, mode, o)
  local dist, labeler = require "rlaif.dist", require "rlaif.labeler"
  local n = #o.shards
  local prev, missing, foreign = {}, {}, {}
  for k, path in ipairs(o.shards) do
    local f = io.open(path, "rb")
    if f then
      f:close()
      for id, r in pairs((labeler.read_labels_file(path))) do
        if dist.shard_of(id, n) ~= k then foreign[#foreign + 1] = json_id(id) else prev[id] = r end
      end
    end
  end
  if #foreign > 0 then
    table.sort(foreign)
    error(string.format("%s: %d record(s) in the file of another shard (not shards of %d): %s", o.who, #foreign, n,
      table.concat(foreign, ", ", 1, math.min(#foreign, 10))), 0)
  end
  local records, by_shard = {}, {}
  for i, it in ipairs(items) do
    local r = prev[it.id]
    if r and r.key == item_key(jid, it, mode) and DONE[r.status] then
      records[i] = r
    else
      local k = dist.shard_of(it.id, n)
      missing[#missing + 1] = json_id(it.id)
      by_shard[k] = (by_shard[k] or 0) + 1
    end
  end
  if #missing > 0 then
    local per = {}
    for k = 1, n do if by_shard[k] then per[#per + 1] = string.format("shard %d/%d: %d", k, n, by_shard[k]) end end
    error(string.format("%s: %d item(s) not judged in the shards (%s; rerun those shards): %s%s", o.who, #missing,
      table.concat(per, ", "), table.concat(missing, ", ", 1, math.min(#missing, 20)),
      #missing > 20 and ", ..." or ""), 0)
  end
  if o.out then
    local w = labeler.writer(o.out, { replace = true })
    for _, r in ipairs(records) do w:write(r) end
    w:close()
  end
  return records, { judged = 0, reused = #records }
end

-- the id as a user writes it in a message
json_id = function(id) return core.json.encode(id) end

-- Judge items {id, prompt, a, b} (pairwise) or {id, prompt, response} (single) with
-- `judge`; reuses records of `out` with the same key; appends new records to `out`
-- as each completes. Returns records in item order and counts {judged, reused}.
local function judge_items(judge, items, mode, o)
  local kind = judge_kind(judge)
  if not kind then
    error(o.who .. ": option 'judge' must be an rlaif.labeler or a function", 0)
  end
  if kind == "labeler" then
    local want = mode == "pair" and "pairwise" or "score"
    if judge.kind ~= want then
      error(string.format("%s: the judge's template %s is a %s template; this needs a %s one", o.who,
        judge.template and judge.template.name or "?", tostring(judge.kind), want), 0)
    end
    if mode == "single" and #judge.labels ~= 2 then
      error(string.format("%s: the judge's template %s has %d labels; a harmlessness template has 2", o.who,
        judge.template.name, #judge.labels), 0)
    end
  end
  local jid = judge_id(judge, o.judge_name)
  if o.shards then return combine(jid, items, mode, o) end
  local prev = previous(o.out, o.resume)
  local labeler = require "rlaif.labeler"
  local w = o.out and labeler.writer(o.out, { replace = not o.resume }) or nil
  local records, todo, by_id = {}, {}, {}
  local counts = { judged = 0, reused = 0 }
  for i, it in ipairs(items) do
    if by_id[it.id] then error(string.format("%s: duplicate id %s", o.who, tostring(it.id)), 0) end
    by_id[it.id] = i
    it.key = item_key(jid, it, mode)
    local r = prev[it.id]
    if r and r.key == it.key and DONE[r.status] then
      records[i] = r
      counts.reused = counts.reused + 1
    else
      todo[#todo + 1] = it
    end
  end
  local interrupted = false
  local function finish(rec, it)
    rec.id, rec.key = it.id, it.key
    if mode == "pair" then
      rec.len_a, rec.len_b = M.char_len(it.a), M.char_len(it.b)
      if o.texts then rec.prompt, rec.response_a, rec.response_b = it.prompt, it.a, it.b end
    else
      rec.len = M.char_len(it.response)
      if o.texts then rec.prompt, rec.response = it.prompt, it.response end
    end
    -- a request cancelled by Ctrl-C is no judgement: the item is judged again on resume
    if interrupted and rec.status == "error" then return end
    records[by_id[it.id]] = rec
    counts.judged = counts.judged + 1
    if w then w:write(rec) end
  end
  local ok, err = pcall(function()
    if #todo == 0 then return end
    if kind == "labeler" then
      local pairs_ = {}
      for k, it in ipairs(todo) do
        pairs_[k] = mode == "pair" and { id = it.id, context = it.prompt, a = it.a, b = it.b }
          or { id = it.id, context = it.prompt, response = it.response }
      end
      local by = {}
      for _, it in ipairs(todo) do by[it.id] = it end
      -- The client stops a batch on Ctrl-C and returns the rest as "cancelled" (info.interrupted);
      -- watch for it through a proxy, answer every later batch "cancelled" at once, then raise.
      local real = judge.client
      judge.client = setmetatable({ complete_many = function(_, reqs, o2)
        if interrupted then
          local res = {}
          for k = 1, #reqs do res[k] = { ok = false, kind = "cancelled", message = "interrupted" } end
          return res, { interrupted = true }
        end
        local res, info = real:complete_many(reqs, o2)
        if type(info) == "table" and info.interrupted then interrupted = true end
        return res, info
      end }, { __index = real })
      local ok2, err2 = pcall(judge.label, judge, pairs_, {
        progress = o.progress and not o.quiet,
        on_label = function(rec, pair)
          local it = by[pair.id]
          if mode == "single" and rec.status == "ok" then
            -- P(harmless): label 1 names the harmful case when the template's polarity is -1
            local P = rec.P
            rec.p = judge.polarity == -1 and P[2] or P[1]
          end
          finish(rec, it)
        end,
      })
      judge.client = real
      if not ok2 then error(err2, 0) end
      if interrupted then error(o.who .. ": interrupted", 0) end
    else
      local bar = progress.new { label = o.label or "judge", total = #todo, unit = "item",
        quiet = o.quiet or not o.progress }
      local failed = 0
      local function call(...)
        local p, why = judge(...)
        if type(p) ~= "number" or p ~= p or p < 0 or p > 1 then
          return nil, why or ("the judge returned " .. tostring(p) .. ", not a probability")
        end
        return p
      end
      local ok2, err2 = pcall(function()
        for k, it in ipairs(todo) do
          local rec
          if mode == "pair" then
            local p1, e1 = call(it.prompt, it.a, it.b, it)
            local p2, e2 = call(it.prompt, it.b, it.a, it)
            if p1 and p2 then
              local p, p_ab, p_ba, pos_ab, _, same = labeler.debias(p1, p2, 1)
              rec = { status = "ok", p = p, p_ab = p_ab, p_ba = p_ba, same_position = same,
                position = same and pos_ab or nil }
            else
              rec = { status = "error", reason = (e1 and ("ab: " .. tostring(e1)) or "") ..
                ((e1 and e2) and "; " or "") .. (e2 and ("ba: " .. tostring(e2)) or "") }
            end
          else
            local p, e = call(it.prompt, it.response, nil, it)
            rec = p and { status = "ok", p = p } or { status = "error", reason = tostring(e) }
          end
          if rec.status ~= "ok" then failed = failed + 1 end
          finish(rec, it)
          bar:update(k, failed > 0 and { { "failed", failed } } or nil)
        end
      end)
      if not ok2 then
        bar:abort()
        error(err2, 0)
      end
      bar:finish(false)
    end
  end)
  if w then w:close() end
  if not ok then error(err, 0) end
  return records, counts
end

-- only the items (and failed generations) of shard {i, n}: the hash of rlaif label
local function shard_filter(shard, who, ...)
  if not shard then return ... end
  local i, n = math.tointeger(shard[1]), math.tointeger(shard[2])
  if not i or not n or n < 1 or i < 1 or i > n then
    error(string.format("%s: option 'shard' must be {i, n} with 1 <= i <= n, got {%s, %s}", who,
      tostring(shard[1]), tostring(shard[2])), 0)
  end
  local dist = require "rlaif.dist"
  local lists = table.pack(...)
  for l = 1, lists.n do
    local kept = {}
    for _, it in ipairs(lists[l]) do
      if dist.shard_of(it.id, n) == i then kept[#kept + 1] = it end
    end
    lists[l] = kept
  end
  return table.unpack(lists, 1, lists.n)
end

-- items for a pairwise evaluation: the ids of A present in B, in A's order
local function pair_items(ra, rb, who)
  local by = {}
  for _, r in ipairs(rb) do by[r.id] = r end
  local items, gen_failed, unmatched = {}, {}, 0
  for _, x in ipairs(ra) do
    local y = by[x.id]
    if not y then
      unmatched = unmatched + 1
    else
      by[x.id] = nil
      if x.prompt and y.prompt and x.prompt ~= y.prompt then
        error(string.format("%s: id %s has different prompts in A and B", who, tostring(x.id)), 0)
      end
      if x.status ~= "ok" or y.status ~= "ok" then
        gen_failed[#gen_failed + 1] = { id = x.id, status = "error",
          reason = "generation failed: " .. tostring(x.status ~= "ok" and ("A: " .. tostring(x.reason))
            or ("B: " .. tostring(y.reason))) }
      else
        items[#items + 1] = { id = x.id, prompt = x.prompt or y.prompt or "", a = x.response, b = y.response }
      end
    end
  end
  for _ in pairs(by) do unmatched = unmatched + 1 end
  return items, gen_failed, unmatched
end

local WIN = opts.schema("eval.win_rate", {
  judge = { "table|function", required = true },
  prompts = "table|string",
  a = { "table|string", required = true },
  b = { "table|string", required = true },
  generation = "table",                -- defaults for generated responses (max_new_tokens, ...)
  names = "table",                     -- {a = "rlaif", b = "sft"} for tables and reports
  tie_margin = { "number", min = 0, lt = 0.5, default = 0 },
  bootstrap = { "integer", min = 0, default = 1000 },
  alpha = { "number", gt = 0, lt = 1, default = 0.05 },
  seed = { "integer", default = 1 },
  l2 = { "number", min = 0, default = 1e-3 },
  out = "string",                      -- records JSONL (appended, resumed)
  resume = { "boolean", default = true },
  texts = { "boolean", default = true },  -- keep prompt and responses in the records
  limit = { "integer", min = 1 },
  progress = { "boolean", default = true },
  quiet = "boolean",
  judge_name = "string",
  shard = "table",                     -- {i, n}: judge only the items of shard i (rlaif.dist.shard_of)
  shards = "table",                    -- record files of shards 1..n: combine them into out, judge nothing
})

--- win_rate{judge =, prompts =, a =, b =, generation =, names =, tie_margin = 0, bootstrap = 1000,
---   alpha = 0.05, seed = 1, l2 = 1e-3, out = FILE, resume = true, texts = true, limit =,
---   progress = true, quiet =} -> result
--- a and b: response lists (strings aligned with prompts, or {id, prompt, response} records
--- joined by id), a JSONL path, or {model = DIR | m, tokenizer =, client =, max_new_tokens =,
--- temperature =, ...} to generate them (eval.generate; `generation` holds shared defaults).
--- Every item is judged in both orders (a labeler with swap, or a function judge called
--- twice). result = summarize()'s numbers plus records (item order), unmatched (ids in only
--- one of a, b), reused (records taken from `out`), names.
function M.win_rate(o)
  o = WIN(o)
  local prompts = norm_prompts(o.prompts, "eval.win_rate")
  local ra = responses_of(o.a, prompts, "eval.win_rate: a", o.generation, o.quiet)
  local rb = responses_of(o.b, prompts, "eval.win_rate: b", o.generation, o.quiet)
  local items, gen_failed, unmatched = pair_items(ra, rb, "eval.win_rate")
  if o.limit and #items > o.limit then
    for i = #items, o.limit + 1, -1 do items[i] = nil end
  end
  items, gen_failed = shard_filter(o.shard, "eval.win_rate", items, gen_failed)
  local records, counts = judge_items(o.judge, items, "pair", { who = "eval.win_rate", out = o.out,
    resume = o.resume, texts = o.texts, progress = o.progress, quiet = o.quiet, judge_name = o.judge_name,
    shards = o.shards })
  for _, r in ipairs(gen_failed) do records[#records + 1] = r end
  local s = M.summarize(records, { tie_margin = o.tie_margin, bootstrap = o.bootstrap, alpha = o.alpha,
    seed = o.seed, l2 = o.l2 })
  s.records, s.unmatched, s.reused, s.judged = records, unmatched, counts.reused, counts.judged
  s.names = { a = o.names and o.names.a or "a", b = o.names and o.names.b or "b" }
  return s
end

local HARM = opts.schema("eval.harmless_rate", {
  judge = { "table|function", required = true },
  prompts = "table|string",
  responses = { "table|string", required = true },
  generation = "table",
  ref_length = { "number", gt = 0 },
  reference = "table|string",          -- responses whose mean length is the reference (the SFT policy's)
  name = "string",
  tie_margin = { "number", min = 0, lt = 0.5, default = 0 },
  bootstrap = { "integer", min = 0, default = 1000 },
  alpha = { "number", gt = 0, lt = 1, default = 0.05 },
  seed = { "integer", default = 1 },
  l2 = { "number", min = 0, default = 1e-3 },
  out = "string",
  resume = { "boolean", default = true },
  texts = { "boolean", default = true },
  limit = { "integer", min = 1 },
  progress = { "boolean", default = true },
  quiet = "boolean",
  judge_name = "string",
  shard = "table",                     -- {i, n}: judge only the items of shard i (rlaif.dist.shard_of)
  shards = "table",                    -- record files of shards 1..n: combine them into out, judge nothing
})

--- harmless_rate{judge =, prompts =, responses =, ref_length = | reference =, ...} -> result
--- Each response is judged on its own: judge is a labeler with a two-label score template
--- (prompts/harmless-rate.txt: label 1 = harmful, polarity -1) or a function
--- judge(prompt, response, nil, item) -> P(harmless). The length control regresses
--- "harmless" on len / ref_length and predicts at 1.0 (App. J: the reference is the SFT
--- policy's mean length: give ref_length, or reference = its responses).
--- result = summarize_harmless()'s numbers plus records, reused, name.
function M.harmless_rate(o)
  o = HARM(o)
  local prompts = norm_prompts(o.prompts, "eval.harmless_rate")
  local rs = responses_of(o.responses, prompts, "eval.harmless_rate: responses", o.generation, o.quiet)
  local ref = o.ref_length
  if not ref and o.reference then
    local rr = responses_of(o.reference, prompts, "eval.harmless_rate: reference", o.generation, o.quiet)
    local s, n = 0, 0
    for _, r in ipairs(rr) do
      if r.status == "ok" then s, n = s + M.char_len(r.response), n + 1 end
    end
    if n == 0 then error("eval.harmless_rate: the reference has no responses", 0) end
    ref = math.max(s / n, 1)
  end
  local items, failed = {}, {}
  for _, r in ipairs(rs) do
    if r.status == "ok" then
      items[#items + 1] = { id = r.id, prompt = r.prompt or "", response = r.response }
    else
      failed[#failed + 1] = { id = r.id, status = "error", reason = "generation failed: " .. tostring(r.reason) }
    end
  end
  if o.limit and #items > o.limit then
    for i = #items, o.limit + 1, -1 do items[i] = nil end
  end
  items, failed = shard_filter(o.shard, "eval.harmless_rate", items, failed)
  local records, counts = judge_items(o.judge, items, "single", { who = "eval.harmless_rate", out = o.out,
    resume = o.resume, texts = o.texts, progress = o.progress, quiet = o.quiet, judge_name = o.judge_name,
    shards = o.shards })
  for _, r in ipairs(failed) do records[#records + 1] = r end
  local s = M.summarize_harmless(records, { ref_length = ref, tie_margin = o.tie_margin, bootstrap = o.bootstrap,
    alpha = o.alpha, seed = o.seed, l2 = o.l2 })
  s.records, s.reused, s.judged, s.name = records, counts.reused, counts.judged, o.name
  return s
end

-- ---- several policies ----

local CMP = opts.schema("eval.compare", {
  judge = { "table|function", required = true },
  prompts = "table|string",
  policies = { "table", required = true },   -- {{name, responses}, ...} or {name = responses}
  baseline = "string",                        -- each policy against it; nil = round robin
  generation = "table",
  out = "string",                             -- a directory: NAME_vs_NAME.jsonl records
  tie_margin = { "number", min = 0, lt = 0.5, default = 0 },
  bootstrap = { "integer", min = 0, default = 1000 },
  seed = { "integer", default = 1 },
  l2 = { "number", min = 0, default = 1e-3 },
  resume = { "boolean", default = true },
  limit = { "integer", min = 1 },
  progress = { "boolean", default = true },
  quiet = "boolean",
})

--- compare{judge =, prompts =, policies = {{"rlaif", responses}, {"sft", {model = DIR}}, ...},
---   baseline = "sft" | nil, out = DIR, ...} -> {rows = {result, ...}, responses = {name -> list}}
--- Each policy's responses are resolved (or generated) once; then every policy is judged
--- against the baseline, or every pair against each other (round robin). Each row is a
--- win_rate() result with names = {a =, b =}. eval.format_table(t.rows) prints them.
function M.compare(o)
  o = CMP(o)
  local prompts = norm_prompts(o.prompts, "eval.compare")
  local list = {}
  if o.policies[1] then
    for i, p in ipairs(o.policies) do
      if type(p) ~= "table" or type(p[1]) ~= "string" or p[2] == nil then
        error(string.format("eval.compare: policy %d must be {name, responses}", i), 2)
      end
      list[i] = { name = p[1], spec = p[2] }
    end
  else
    local names = {}
    for k in pairs(o.policies) do names[#names + 1] = k end
    table.sort(names)
    for i, k in ipairs(names) do list[i] = { name = k, spec = o.policies[k] } end
  end
  if #list < 2 then error("eval.compare: needs at least two policies", 2) end
  local resolved = {}
  for _, p in ipairs(list) do
    if resolved[p.name] then error("eval.compare: policy name '" .. p.name .. "' appears twice", 2) end
    local spec = p.spec
    if type(spec) == "table" and (spec.model ~= nil or spec.client ~= nil) and spec.label == nil then
      local copy = {}
      for k, v in pairs(p.spec) do copy[k] = v end
      copy.label = "generate " .. p.name
      spec = copy
    end
    resolved[p.name] = responses_of(spec, prompts, "eval.compare: " .. p.name, o.generation, o.quiet)
  end
  local pairs_ = {}
  if o.baseline then
    if not resolved[o.baseline] then error("eval.compare: baseline '" .. o.baseline .. "' is not a policy", 2) end
    for _, p in ipairs(list) do
      if p.name ~= o.baseline then pairs_[#pairs_ + 1] = { p.name, o.baseline } end
    end
  else
    for i = 1, #list do
      for j = i + 1, #list do pairs_[#pairs_ + 1] = { list[i].name, list[j].name } end
    end
  end
  if o.out then
    local ok, err = core.gz.mkdir(o.out)
    if not ok then error("eval.compare: " .. tostring(err), 2) end
  end
  local rows = {}
  for k, pr in ipairs(pairs_) do
    rows[k] = M.win_rate { judge = o.judge, a = resolved[pr[1]], b = resolved[pr[2]], names = { a = pr[1], b = pr[2] },
      tie_margin = o.tie_margin, bootstrap = o.bootstrap, seed = o.seed, l2 = o.l2, resume = o.resume,
      out = o.out and string.format("%s/%s_vs_%s.jsonl", o.out, pr[1], pr[2]), limit = o.limit,
      progress = o.progress, quiet = o.quiet }
  end
  return { rows = rows, responses = resolved }
end

-- ---- tables ----

local function pct(x) return x and string.format("%.1f", 100 * x) or nil end
local function pct_ci(c) return c and string.format("%.1f-%.1f", 100 * c[1], 100 * c[2]) or nil end

--- format_table(results) -> text: one row per win_rate() result (or harmless_rate() result):
--- n, failed, ties, win % with its 95% CI, soft %, the paper's LC % with its CI, AlpacaEval 2
--- LC %, % of items whose orders disagree, mean lengths.
function M.format_table(results)
  local rows, cells = {}, {}
  local harmless = results[1] and results[1].harmless_rate ~= nil
  local cols = harmless and { "n", "failed", "harmless %", "95% CI", "soft %", "LC %", "LC 95% CI", "len", "ref len" }
    or { "n", "failed", "ties", "win %", "95% CI", "soft %", "LC %", "LC 95% CI", "AE2 LC %", "disagree %",
      "len a", "len b" }
  for k, r in ipairs(results) do
    local name
    if harmless then name = r.name or ("policy " .. k) else
      name = string.format("%s vs %s", r.names and r.names.a or "a", r.names and r.names.b or "b")
    end
    if cells[name] then name = name .. " #" .. k end
    rows[#rows + 1] = name
    if harmless then
      cells[name] = { n = tostring(r.n), failed = tostring(r.failed), ["harmless %"] = pct(r.harmless_rate),
        ["95% CI"] = pct_ci(r.ci95), ["soft %"] = pct(r.soft_harmless_rate), ["LC %"] = pct(r.lc_harmless_rate),
        ["LC 95% CI"] = pct_ci(r.lc_ci95), len = r.mean_len and string.format("%.0f", r.mean_len),
        ["ref len"] = r.ref_length and string.format("%.0f", r.ref_length) }
    else
      cells[name] = { n = tostring(r.n), failed = tostring(r.failed), ties = tostring(r.ties),
        ["win %"] = pct(r.win_rate), ["95% CI"] = pct_ci(r.ci95), ["soft %"] = pct(r.soft_win_rate),
        ["LC %"] = pct(r.lc_win_rate), ["LC 95% CI"] = pct_ci(r.lc_ci95), ["AE2 LC %"] = pct(r.lc_ae2),
        ["disagree %"] = pct(r.disagree), ["len a"] = r.mean_len_a and string.format("%.0f", r.mean_len_a),
        ["len b"] = r.mean_len_b and string.format("%.0f", r.mean_len_b) }
    end
  end
  return metrics.format_table(rows, cols, function(r, c) return cells[r][c] end, harmless and "policy" or
    "comparison")
end

--- results_json(result) -> the numbers of a result without its records (for results.json).
function M.numbers(result)
  local out = {}
  for k, v in pairs(result) do
    if k ~= "records" then out[k] = v end
  end
  return out
end

return M
