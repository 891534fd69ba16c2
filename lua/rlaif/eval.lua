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
M.sigmoid = sigmoid

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
function M.logistic_fit(x, y, o)
  o = o or {}
  local x0, l2 = o.x0 or 1, o.l2 or 1e-3
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
  for i = 1, n do tanh_d[i] = sd > 0 and math.tanh(delta[i] / sd) or 0 end
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
    if y == 1 then out.wins = out.wins + 1 elseif y == 0 then out.losses = out.losses + 1 else out.ties = out.ties + 1 end
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

return M
