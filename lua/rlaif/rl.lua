-- rlaif.rl: RL from AI feedback -- the paper's REINFORCE with a value baseline,
-- PPO, RLOO and GRPO over the C per-token steps (rlaif.core.rl, src/core/rl.c).
--
--   local tr = rlaif.rl.trainer{algo = "reinforce", policy = sft, reward = rm, tokenizer = tok,
--                               kl_coef = 0.05, temperature = 0.9, max_new_tokens = 32}
--   local stats = tr:step{"prompt 1", "prompt 2"}        -- rollout, reward, one optimisation phase
--   tr:train{prompts = list, steps = 100, batch_size = 16, out = "runs/rl", save_every = 10}
--   tr:backward{prompts = {{ids}}, responses = {{ids}}, scores = {...}}   -- gradients only
--
-- Conventions (README "RL from AI feedback" has them in full). Row b: prompt p_b,
-- response y_b of L_b tokens, sequence score s_b. logp = log_softmax(logits / tau)
-- at y_{b,t}; old = the sampling policy's (computed once before the first epoch
-- unless given), ref = the reference's; k1 = old - ref, k3 = exp(ref - logp) -
-- (ref - logp) - 1. With kl_in = "reward" (default for reinforce, ppo, rloo):
-- r_t = -beta k1_t, plus reward_scale * s_b on the last token. V_{b,t} is read at
-- the position that predicts y_{b,t}; "mean" is over the response tokens of the
-- (mini)batch.
--   reinforce  G_t = sum_k gamma^(k-t) r_k; A = G - V (V held fixed);
--              loss = mean(-A logp) + vf_coef 0.5 mean((V - G)^2)
--   ppo        GAE(gamma, lam) over old values; R = A + V_old; A whitened (mean,
--              unbiased variance, (A - mean) / sqrt(var + 1e-8)); rho = exp(logp - old);
--              loss = mean(max(-A rho, -A clip(rho, 1 +- eps)))
--                     + vf_coef 0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, +-eps_v) - R)^2))
--   rloo       s'_i = reward_scale s_i - beta sum_t k1; A_i = s'_i - mean of the group's others
--   grpo       A_i = (s_i - mean_g) / (std_g + 1e-4) (unbiased std); kl_in = "loss":
--              loss = mean(max(-A rho, -A clip(rho)) + beta k3)
--
-- Rewards: a reward model (head = "reward"; reward_norm = {mean=, std=} as saved
-- by rlaif.train.save_reward_stats), a Lua function fn(prompts, responses, rows,
-- trainer) -> {numbers}, or an LLM judge (M.judge_reward). Whole-batch statistics
-- (token-count means, whitening, group baselines) go through M.batch_stats and the
-- trainer's `reduce` hook only, so a data-parallel run can all-reduce them there.
-- Generation goes through tr:generate only; each row samples from its own stream,
-- seeded from (seed, step, the row's place in the global batch).
--
-- Data parallel (under mpirun, rlaif.dist; dist = false turns it off): the policy,
-- reference, value and reward models start from rank 0's weights; each rank takes a
-- contiguous share of every step's prompts (a prompt's group stays on one rank),
-- generates and scores its rollouts, and takes part in each minibatch with its rows
-- of it (possibly none); `reduce` defaults to the sum over the ranks and the
-- gradients are summed before every optimiser step. Rank 0 alone writes the log,
-- samples and checkpoints (and reads a checkpoint to resume, for every rank). What it is not: no sampling or
-- arithmetic of its own (C), no data parsing (rlaif.data), no label collection
-- (rlaif.labeler).

local core = require "rlaif.core"
local dist = require "rlaif.dist"
local opts = require "rlaif.opts"
local train = require "rlaif.train"
local progress = require "rlaif.progress"

local json, gz, crl = core.json, core.gz, core.rl
local M = {}

M.ALGOS = { "reinforce", "ppo", "rloo", "grpo" }
local HAS_VALUE = { reinforce = true, ppo = true }

-- ---- whole-batch statistics: the one place a data-parallel run reduces ----

M.batch_stats = {}
local S = M.batch_stats

--- batch_stats.reduce(tr, list) -> list of global sums: the trainer's `reduce`
--- hook (an all-reduce across processes) or the identity.
function S.reduce(tr, list)
  if tr.reduce then return tr.reduce(list) end
  return list
end

--- batch_stats.token_weight(tr, bt) -> 1 / (response tokens of the batch), the
--- normaliser of every token mean. bt = nil: this process has no rows of the batch.
function S.token_weight(tr, bt)
  local n = 0
  if bt then n = select(3, bt:size()) end
  n = S.reduce(tr, { n })[1]
  return 1 / n
end

--- batch_stats.whiten(tr, bt, field): (x - mean) / sqrt(var + 1e-8) over the
--- response tokens, with the unbiased variance.
function S.whiten(tr, bt, field)
  local s, n = 0, 0
  if bt then s, n = bt:sum(field) end
  local g = S.reduce(tr, { s, n })
  local mean = g[1] / g[2]
  local ss = S.reduce(tr, { bt and bt:sqdev(field, mean) or 0 })[1]
  local var = g[2] > 1 and ss / (g[2] - 1) or 0
  if bt then bt:affine(field, mean, 1 / math.sqrt(var + 1e-8)) end
end

--- batch_stats.group_advantages(tr, algo, values, group) -> per-row advantages.
--- rloo: x_i - mean of the group's other members; grpo: (x_i - mean) / (std + 1e-4),
--- unbiased std. Groups never span processes (a prompt's samples stay together).
function S.group_advantages(tr, algo, x, group) -- luacheck: no unused args
  local members = {}
  for i, g in ipairs(group) do
    members[g] = members[g] or {}
    table.insert(members[g], i)
  end
  local a = {}
  for g, rows in pairs(members) do
    local k = #rows
    if k < 2 then
      error(string.format("rl.%s: group %s has %d sample; %s needs group_size >= 2", algo, tostring(g), k, algo), 0)
    end
    local sum = 0
    for _, i in ipairs(rows) do sum = sum + x[i] end
    local mean = sum / k
    if algo == "rloo" then
      for _, i in ipairs(rows) do a[i] = x[i] - (sum - x[i]) / (k - 1) end
    else
      local ss = 0
      for _, i in ipairs(rows) do ss = ss + (x[i] - mean) ^ 2 end
      local std = math.sqrt(ss / (k - 1))
      for _, i in ipairs(rows) do a[i] = (x[i] - mean) / (std + 1e-4) end
    end
  end
  return a
end

--- batch_stats.token_mean(tr, sum, count) -> global sum / global count (logging).
function S.token_mean(tr, sum, count)
  local g = S.reduce(tr, { sum, count })
  return g[2] > 0 and g[1] / g[2] or 0
end

--- batch_stats.mean(tr, list) -> global mean of per-row numbers (logging).
function S.mean(tr, xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  local g = S.reduce(tr, { s, #xs })
  return g[2] > 0 and g[1] / g[2] or 0
end

-- ---- the adaptive KL controller (Ziegler et al. 2019) ----

--- kl_controller{init =, target = nil, horizon = 10000} -> {value =, update(kl, n)}
--- Fixed when target is nil; otherwise value *= 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon.
function M.kl_controller(o)
  local c = { value = o.init, target = o.target, horizon = o.horizon or 10000 }
  function c:update(kl, n)
    if not self.target then return self.value end
    local e = math.max(-0.2, math.min(0.2, kl / self.target - 1))
    self.value = self.value * (1 + e * n / self.horizon)
    return self.value
  end
  return c
end

-- ---- options ----

local function is_model(v) return tostring(v):match("^rlaif%.Model") ~= nil end

local TRAINER = opts.schema("rl.trainer", {
  algo = { "string", one_of = M.ALGOS, required = true },
  policy = { "userdata", required = true, check = function(v) return is_model(v), "must be an rlaif model" end },
  ref = { "userdata", check = function(v) return is_model(v), "must be an rlaif model" end },
  ref_dtype = { "string", one_of = { "float32", "bf16" } },
  value = { "userdata", check = function(v) return is_model(v), "must be an rlaif model" end },
  reward = "userdata|function|table",
  reward_norm = "table",
  tokenizer = "userdata|table",
  kl_coef = { "number", min = 0, default = 0.05 },
  target_kl = { "number", gt = 0 },
  horizon = { "number", gt = 0, default = 10000 },
  kl_in = { "string", one_of = { "reward", "loss" } },
  temperature = { "number", gt = 0, default = 0.9 },
  top_k = { "integer", min = 0, default = 0 },
  top_p = { "number", gt = 0, max = 1, default = 1 },
  max_new_tokens = { "integer", min = 1, default = 32 },
  max_prompt_tokens = { "integer", min = 1 },
  stop = "table|integer",
  eos = { "boolean", default = true },
  missing_eos_penalty = "number",
  gamma = { "number", min = 0, max = 1, default = 1 },
  lam = { "number", min = 0, max = 1, default = 0.95 },
  cliprange = { "number", gt = 0, default = 0.2 },
  cliprange_value = { "number", gt = 0, default = 0.2 },
  vf_coef = { "number", min = 0, default = 0.1 },
  reward_scale = { "number", default = 1 },
  whiten = "boolean",
  lr = { "number", gt = 0, default = 1e-5 },
  value_lr = { "number", gt = 0 },
  weight_decay = { "number", min = 0, default = 0 },
  max_grad_norm = { "number", min = 0, default = 1.0 },
  schedule = "function",
  value_schedule = "function",
  epochs = { "integer", min = 1, default = 1 },
  minibatch_size = { "integer", min = 1 },
  group_size = { "integer", min = 1 },
  seed = { "integer", default = 0 },
  on_step = "function",
  on_rollout = "function",
  reduce = "function",
  dist = "boolean",
})

-- ---- construction ----

local Trainer = {}
Trainer.__index = Trainer

local function encode_text(tr, s, what)
  if type(s) == "table" then return s end
  if type(s) ~= "string" then error(string.format("rl: %s must be a string or an array of token ids, got %s", what,
    type(s)), 0) end
  if not tr.tokenizer then error("rl: " .. what .. " is text: give the trainer a tokenizer", 0) end
  return tr.tokenizer:encode(s)
end

local function tokenizer_vocab(tok)
  if type(tok) ~= "userdata" and type(tok) ~= "table" then return nil end
  local ok, n = pcall(function() return tok:vocab_size() end)
  return ok and n or nil
end

--- trainer{algo =, policy =, ref =, value =, reward =, tokenizer =, ...} -> trainer (see the header)
function M.trainer(o)
  o = TRAINER(o)
  local algo = o.algo
  local pcfg = o.policy:config()
  if pcfg.head ~= "lm" then error("rl.trainer: the policy needs an LM head (head = \"lm\")", 2) end
  local tv = o.tokenizer and tokenizer_vocab(o.tokenizer)
  if tv and tv > pcfg.vocab_size then
    error(string.format("rl.trainer: the tokenizer has %d tokens but the policy's vocabulary has %d", tv,
      pcfg.vocab_size), 2)
  end
  local gs = o.group_size or ((algo == "rloo" or algo == "grpo") and 4 or 1)
  if (algo == "rloo" or algo == "grpo") and gs < 2 then
    error(string.format("rl.trainer: %s needs group_size >= 2 (got %d)", algo, gs), 2)
  end
  local self = setmetatable({}, Trainer)
  for k, v in pairs(o) do
    if k ~= "kl_coef" then rawset(self, k, v) end
  end
  self.kl_coef0 = o.kl_coef
  self.group_size = gs
  -- every rank starts from rank 0's models, before the reference and value are cloned
  local dp = dist.group(o.dist)
  self.group = dp
  if dp.active then
    for _, mdl in ipairs { o.policy, o.ref or false, o.value or false, type(o.reward) == "userdata" and o.reward } do
      if mdl then dp:sync_model(mdl) end
    end
    if self.reduce == nil then self.reduce = function(list) return dp:sum(list) end end
  end
  self.kl_in = o.kl_in or (algo == "grpo" and "loss" or "reward")
  if self.whiten == nil then self.whiten = algo == "ppo" end
  -- the reference: a frozen copy of the policy as it is now; ref_dtype = "bf16"
  -- keeps that copy's weight matrices in bf16 (half the memory, faster passes).
  -- A given ref is used as it is (load it with dtype = "bf16" for the same).
  if o.ref and o.ref_dtype then
    error("rl.trainer: ref_dtype applies to the reference the trainer copies; with ref given, load it with " ..
      "rlaif.model.load(dir, {dtype = ...}) instead", 2)
  end
  self.ref = o.ref or o.policy:clone()
  if o.ref_dtype == "bf16" then self.ref:to_bf16() end
  if self.ref:config().vocab_size ~= pcfg.vocab_size then
    error("rl.trainer: ref and policy have different vocabularies", 2)
  end
  if HAS_VALUE[algo] then
    self.value = o.value or o.policy:clone { head = "reward" }
    if self.value:config().head ~= "reward" then
      error("rl.trainer: the value model needs head = \"reward\"", 2)
    end
  else
    self.value = nil
  end
  if o.reward ~= nil and type(o.reward) == "userdata" then
    local rc = o.reward:config()
    if rc.head ~= "reward" then error("rl.trainer: a reward model needs head = \"reward\"", 2) end
    if rc.vocab_size ~= pcfg.vocab_size then
      error(string.format("rl.trainer: the reward model's vocabulary (%d) differs from the policy's (%d)",
        rc.vocab_size, pcfg.vocab_size), 2)
    end
  end
  if o.reward_norm and not (type(o.reward_norm.mean) == "number" and type(o.reward_norm.std) == "number"
      and o.reward_norm.std > 0) then
    error("rl.trainer: option 'reward_norm' must be {mean = number, std = number > 0}", 2)
  end
  self.eos_id = pcfg.eos_id
  self.pad_id = pcfg.pad_id >= 0 and pcfg.pad_id or math.max(pcfg.eos_id, 0)
  local stops = {}
  if type(o.stop) == "number" then stops[1] = math.tointeger(o.stop) elseif o.stop then
    for _, s in ipairs(o.stop) do stops[#stops + 1] = s end
  end
  if o.eos and pcfg.eos_id >= 0 then stops[#stops + 1] = pcfg.eos_id end
  self.stops = stops
  self.kl = M.kl_controller { init = o.kl_coef, target = o.target_kl, horizon = o.horizon }
  self.opt = train.adamw { model = o.policy, lr = o.lr, weight_decay = o.weight_decay,
    max_grad_norm = o.max_grad_norm, schedule = o.schedule, dist = dp.active }
  if self.value then
    self.value_opt = train.adamw { model = self.value, lr = o.value_lr or o.lr, weight_decay = o.weight_decay,
      max_grad_norm = o.max_grad_norm, schedule = o.value_schedule or o.schedule, dist = dp.active }
  end
  self.step_count = 0
  -- the settings a resumed run must share with the one that wrote the checkpoint,
  -- as given (callbacks may change some later; those are saved in the checkpoint)
  local fp = {}
  for _, k in ipairs(M.FINGERPRINT) do fp[k] = rawget(self, k) end
  fp.kl_coef0, fp.policy = o.kl_coef, tostring(o.policy):gsub("^rlaif%.Model", "")
  self.fp0 = fp
  return self
end

--- tr.kl_coef: the current beta (read and write; the controller adapts it when target_kl is set)
function Trainer:__index(k)
  if k == "kl_coef" then return rawget(self, "kl").value end
  return Trainer[k]
end
function Trainer:__newindex(k, v)
  if k == "kl_coef" then rawget(self, "kl").value = v return end
  rawset(self, k, v)
end

-- ---- rollout ----

--- tr:generate(prompt_ids [, model [, index]]) -> responses (arrays of ids): the one call
--- into generation (the policy by default), with the trainer's sampling options. Row i
--- samples from its own stream, seeded from (seed, step, index[i] = its row number in the
--- global batch, default i), so a resumed run samples the same tokens and a row samples
--- the same tokens on any rank, in any batch.
function Trainer:generate(prompt_ids, model, index)
  local m = model or self.policy
  local base, seeds = (self.seed * 1000003 + self.step_count + 1) * 1000003, {}
  for i = 1, #prompt_ids do seeds[i] = base + (index and index[i] or i) end
  local toks = m:generate(prompt_ids, {
    max_new_tokens = self.max_new_tokens, temperature = self.temperature, top_k = self.top_k, top_p = self.top_p,
    stop = self.stops, seeds = seeds,   -- stop {} = no stop token
  })
  return toks
end

local function decode(tr, ids)
  if not tr.tokenizer then return ids end
  local body = ids
  if tr.eos_id >= 0 and ids[#ids] == tr.eos_id then body = { table.unpack(ids, 1, #ids - 1) } end
  return tr.tokenizer:decode(body)
end

local function check_scores(what, got, n)
  if type(got) ~= "table" then error(string.format("rl: %s returned a %s, expected a table of %d numbers", what,
    type(got), n), 0) end
  if #got ~= n then error(string.format("rl: %s returned %d scores for %d responses", what, #got, n), 0) end
  local out = {}
  for i = 1, n do
    local v = got[i]
    if type(v) ~= "number" then
      error(string.format("rl: %s returned a %s at %d, expected a number", what, type(v), i), 0)
    end
    if v ~= v or v == math.huge or v == -math.huge then
      error(string.format("rl: %s returned %s at %d, expected a finite number", what, tostring(v), i), 0)
    end
    out[i] = v
  end
  return out
end

--- tr:score(rollout) -> raw scores (one per row) from the trainer's reward.
--- rollout: {prompts = texts or ids, prompt_ids =, responses = ids, group =, references =}
function Trainer:score(ro)
  local rw = self.reward
  if rw == nil then error("rl: the trainer has no reward", 0) end
  local n = #ro.responses
  if type(rw) == "userdata" then
    local rows = {}
    local eos = rw:config().eos_id
    for i = 1, n do
      local r = {}
      for _, t in ipairs(ro.prompt_ids[i]) do r[#r + 1] = t end
      for _, t in ipairs(ro.responses[i]) do r[#r + 1] = t end
      if eos >= 0 and r[#r] ~= eos then r[#r + 1] = eos end   -- as rlaif.train.reward trains
      rows[i] = r
    end
    return rw:reward(rows):totable()
  end
  local fn = type(rw) == "table" and rw.score or rw
  if type(fn) ~= "function" then error("rl: reward must be a reward model, a function or a judge_reward", 0) end
  local prompts, responses, rows = {}, {}, {}
  for i = 1, n do
    prompts[i] = ro.prompts[i]
    responses[i] = decode(self, ro.responses[i])
    rows[i] = { prompt_ids = ro.prompt_ids[i], response_ids = ro.responses[i], group = ro.group[i],
      reference = ro.references and ro.references[i] or nil, fields = ro.fields and ro.fields[i] or nil,
      index = ro.index and ro.index[i] or i }
  end
  local got = fn(prompts, responses, rows, self)
  return check_scores("the reward function", got, n)
end

-- ---- one optimisation batch ----

local FIELDS = { "old_logprobs", "ref_logprobs", "old_values" }

-- Fill ref/old log-probabilities and old values (unless given), then rewards and
-- advantages for the whole batch. Returns per-row KL sums.
function Trainer:_prepare(bt, given, group, scores)
  given = given or {}
  for _, f in ipairs(FIELDS) do
    if given[f] then bt:set(f, given[f]) end
  end
  bt:set("scores", scores)
  local tau = self.temperature
  -- frozen passes release their activations at once: policy, reference and value
  -- activations never coexist (peak memory)
  if not given.ref_logprobs then
    bt:logprobs(self.ref, tau, "ref_logprobs")
    self.ref:free_activations()
  end
  if not given.old_logprobs then bt:logprobs(self.policy, tau, "old_logprobs", "entropy") end
  local algo = self.algo
  if algo == "ppo" and not given.old_values then
    bt:values(self.value, "old_values")
    self.value:free_activations()
  end
  local kl_seq = bt:kl()
  local beta = self.kl.value
  local shaped = self.kl_in == "reward" and beta or 0
  if algo == "reinforce" then
    bt:shaped_rewards(shaped, self.reward_scale)
    bt:returns(self.gamma)
  elseif algo == "ppo" then
    bt:shaped_rewards(shaped, self.reward_scale)
    bt:gae(self.gamma, self.lam)
    if self.whiten then S.whiten(self, bt, "advantages") end
  else
    local x = {}
    for i, s in ipairs(scores) do
      x[i] = algo == "rloo" and (self.reward_scale * s - shaped * kl_seq[i])
        or (self.kl_in == "reward" and (s - shaped * kl_seq[i]) or s)
    end
    bt:row_advantages(S.group_advantages(self, algo, x, group))
    if self.whiten then S.whiten(self, bt, "advantages") end
  end
  return kl_seq
end

-- Loss and gradients of one (mini)batch; returns stats. bt = nil: this process has
-- no rows of the minibatch (data parallel); it still takes part in the reductions.
function Trainer:_loss(bt)
  local w = S.token_weight(self, bt)
  local algo = self.algo
  local vst
  if algo == "reinforce" then
    if bt then
      vst = bt:value_loss(self.value, { coef = self.vf_coef, weight = w })
      self.value:free_activations()
      bt:baseline_advantages()
    end
    if self.whiten then S.whiten(self, bt, "advantages") end
  elseif algo == "ppo" and bt then
    vst = bt:value_loss(self.value, { coef = self.vf_coef, weight = w, cliprange_value = self.cliprange_value })
    self.value:free_activations()
  end
  local pst = bt and bt:policy_loss(self.policy, {
    clipped = algo ~= "reinforce", tau = self.temperature, cliprange = self.cliprange, weight = w,
    k3_coef = self.kl_in == "loss" and self.kl.value or 0,
  }) or { loss = 0, clipped = 0, tokens = 0, k3 = 0 }
  return {
    policy_loss = pst.loss, value_loss = vst and vst.loss, loss = pst.loss + (vst and self.vf_coef * vst.loss or 0),
    clipped = pst.clipped, vf_clipped = vst and vst.clipped, k3 = pst.k3, tokens = pst.tokens,
  }
end

local function mean_of(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return #xs > 0 and s / #xs or 0
end

--- tr:backward{prompts = {{ids}}, responses = {{ids}}, scores = {...}, old_logprobs =,
---   old_values =, ref_logprobs =, group =} -> stats: the loss of this one batch, its
--- gradients accumulated into the policy (and value) models; no optimiser step.
function Trainer:backward(batch)
  if type(batch) ~= "table" then error("rl.backward: batch must be a table", 2) end
  local n = #(batch.prompts or {})
  if n == 0 then error("rl.backward: batch.prompts is empty", 2) end
  local scores = check_scores("rl.backward: batch.scores", batch.scores, n)
  local group = batch.group
  if not group then group = {} for i = 1, n do group[i] = i end end
  local bt <close> = crl.batch(batch.prompts, batch.responses, self.pad_id)
  local kl_seq = self:_prepare(bt, batch, group, scores)
  local st = self:_loss(bt)
  st.kl = mean_of(kl_seq)
  return st
end

-- ---- one step ----

local function now() return core.clock() end

local function prompt_record(p)
  if type(p) == "table" and (p.prompt ~= nil) then return p.prompt, p.reference, p.fields end
  return p, nil, nil
end

--- tr:step(prompts) -> stats: rollout (group_size samples per prompt), reward, then
--- `epochs` passes over minibatches with an optimiser step each. prompts: strings,
--- arrays of token ids, or {prompt =, reference =, fields =} records (fields: slots
--- for a judge's template, e.g. TL;DR subreddit/title/post). Data parallel: prompts is
--- the global batch; this rank rolls out its contiguous share.
function Trainer:step(prompts)
  if type(prompts) ~= "table" or #prompts == 0 then error("rl.step: prompts must be a non-empty array", 2) end
  local dp = self.group
  if #prompts < dp.size then
    error(string.format("rl.step: %d prompts for %d processes: each needs at least one", #prompts, dp.size), 2)
  end
  local t0 = now()
  local lo, hi = dp:block(#prompts)
  local ro = { prompts = {}, prompt_ids = {}, group = {}, references = {}, fields = {}, index = {} }
  for i = lo, hi do
    local p = prompts[i]
    local text, ref, fields = prompt_record(p)
    local ids = encode_text(self, text, "prompt " .. i)
    if #ids == 0 then error("rl.step: prompt " .. i .. " is empty", 2) end
    if self.max_prompt_tokens and #ids > self.max_prompt_tokens then
      ids = { table.unpack(ids, #ids - self.max_prompt_tokens + 1) }
    end
    for j = 1, self.group_size do
      local k = #ro.prompt_ids + 1
      ro.prompts[k], ro.prompt_ids[k], ro.group[k], ro.references[k], ro.fields[k] = text, ids, i, ref, fields
      ro.index[k] = (i - 1) * self.group_size + j   -- the row's place in the global batch
    end
  end
  ro.responses = self:generate(ro.prompt_ids, nil, ro.index)
  local t1 = now()
  if self.on_rollout then self.on_rollout(self, ro) end
  local raw = self:score(ro)
  local n = #raw
  local scores, missing = {}, 0
  local norm = self.reward_norm
  for i = 1, n do
    local s = raw[i]
    if norm then s = (s - norm.mean) / norm.std end
    local r = ro.responses[i]
    if self.eos_id >= 0 and r[#r] ~= self.eos_id then
      missing = missing + 1
      if self.missing_eos_penalty then s = s - self.missing_eos_penalty end
    end
    scores[i] = s
  end
  -- scoring ends with the reference, old-policy and old-value passes
  local bt <close> = crl.batch(ro.prompt_ids, ro.responses, self.pad_id)
  local kl_seq = self:_prepare(bt, nil, ro.group, scores)
  local t2 = now()
  local ent_sum = bt:sum("entropy")
  local B, _, ntok = bt:size()
  -- epochs over shuffled minibatches of the global batch (Bg rows, this rank's are
  -- r0 + 1 .. r0 + B); one optimiser step per minibatch
  local Bg, r0 = #prompts * self.group_size, (lo - 1) * self.group_size
  local mbs = self.minibatch_size or Bg
  local acc = { policy_loss = 0, value_loss = 0, clipped = 0, vf_clipped = 0, tokens = 0, n = 0 }
  local info, vinfo
  for epoch = 1, self.epochs do
    local perm = mbs < Bg and train.permutation(Bg, self.seed, self.step_count * 1009 + epoch) or nil
    for i0 = 1, Bg, mbs do
      local rows = {}
      for k = i0, math.min(i0 + mbs - 1, Bg) do
        local g = perm and perm[k] or k
        if g > r0 and g <= r0 + B then rows[#rows + 1] = g - r0 end
      end
      local mb <close> = (#rows > 0 and (#rows < B or perm)) and bt:select(rows) or nil
      local st = self:_loss(#rows > 0 and (mb or bt) or nil)
      acc.policy_loss = acc.policy_loss + st.policy_loss
      acc.value_loss = acc.value_loss + (st.value_loss or 0)
      acc.clipped, acc.tokens = acc.clipped + st.clipped, acc.tokens + st.tokens
      acc.vf_clipped = acc.vf_clipped + (st.vf_clipped or 0)
      acc.n = acc.n + 1
      info = self.opt:step()
      if self.value_opt then vinfo = self.value_opt:step() end
    end
  end
  local t3 = now()
  self.step_count = self.step_count + 1
  -- counts and loss sums over every rank's rows
  local g = S.reduce(self, { missing, n, ntok, acc.policy_loss, acc.value_loss })
  local function count(x) return math.tointeger(x) or x end
  local n_all, ntok_all = count(g[2]), count(g[3])
  local kl = S.mean(self, kl_seq)
  local beta = self.kl.value
  self.kl:update(kl, n_all)
  local lens, obj = {}, {}
  for i = 1, n do
    lens[i] = #ro.responses[i]
    obj[i] = self.reward_scale * scores[i] - beta * kl_seq[i]
  end
  local rmean = S.mean(self, scores)
  local sq = {}
  for i = 1, n do sq[i] = (scores[i] - rmean) ^ 2 end
  local algo_has_clip = self.algo ~= "reinforce"
  local stats = {
    step = self.step_count, algo = self.algo,
    reward_mean = rmean, reward_std = math.sqrt(S.mean(self, sq)), score_mean = S.mean(self, raw),
    objective = S.mean(self, obj), kl = kl, kl_coef = beta, next_kl_coef = self.kl.value,
    entropy = S.token_mean(self, ent_sum, ntok), response_length = S.mean(self, lens), missing_eos = count(g[1]),
    policy_loss = g[4] / acc.n,
    value_loss = self.value and g[5] / acc.n or nil,
    clip_frac = algo_has_clip and S.token_mean(self, acc.clipped, acc.tokens) or nil,
    value_clip_frac = self.algo == "ppo" and S.token_mean(self, acc.vf_clipped, acc.tokens) or nil,
    lr = info.lr, value_lr = vinfo and vinfo.lr or nil, grad_norm = info.grad_norm,
    temperature = self.temperature, rows = n_all, tokens = ntok_all,
    time_rollout = t1 - t0, time_score = t2 - t1, time_update = t3 - t2,
    rollout_tokens_per_s = ntok_all / math.max(t1 - t0, 1e-9),
    update_tokens_per_s = ntok_all * self.epochs / math.max(t3 - t2, 1e-9),
  }
  self.last_rollout = ro
  self.last_scores = raw
  if dp:any(self.on_step ~= nil and self.on_step(self, stats) == false) then stats.stop = true end
  return stats
end

-- ---- checkpoints, logs, resume ----

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

M.FINGERPRINT = { "algo", "temperature", "top_k", "top_p", "max_new_tokens", "gamma", "lam", "cliprange",
  "cliprange_value", "vf_coef", "reward_scale", "whiten", "lr", "value_lr", "epochs", "minibatch_size",
  "group_size", "seed", "kl_in", "target_kl", "horizon" }

function Trainer:fingerprint(extra)
  local t = {}
  for k, v in pairs(self.fp0) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return json.encode(t)
end

--- tr:save_checkpoint(dir, extra, logpos) -- policy/value states then DIR/checkpoint.json
--- (atomic: a kill at any point leaves the previous checkpoint intact).
function Trainer:save_checkpoint(dir, extra, logpos)
  local step = self.step_count
  local blob = json.encode { step = step, kl_coef = self.kl.value }
  assert(self.policy:save_state(string.format("%s/policy-%d.state", dir, step), blob))
  if self.value then assert(self.value:save_state(string.format("%s/value-%d.state", dir, step), blob)) end
  local prev = self.last_ckpt
  local meta = { step = step, kl_coef = self.kl.value, fingerprint = self:fingerprint(extra),
    temperature = self.temperature, lr = self.opt.lr, value_lr = self.value_opt and self.value_opt.lr,
    log_bytes = logpos and logpos.log_bytes, samples_bytes = logpos and logpos.samples_bytes }
  assert(gz.write_atomic(dir .. "/checkpoint.json", json.encode(meta) .. "\n"))
  if prev and prev ~= step then
    os.remove(string.format("%s/policy-%d.state", dir, prev))
    os.remove(string.format("%s/value-%d.state", dir, prev))
  end
  self.last_ckpt = step
end

--- tr:load_checkpoint(dir, extra) -> meta | nil when DIR has none; raises on a
--- checkpoint written with a different configuration.
function Trainer:load_checkpoint(dir, extra)
  local p = dir .. "/checkpoint.json"
  if not file_exists(p) then return nil end
  local f = assert(io.open(p, "rb"))
  local meta = json.decode(f:read("a"))
  f:close()
  if type(meta) ~= "table" or not math.tointeger(meta.step) then error("rl: " .. p .. " is malformed", 0) end
  if meta.fingerprint ~= self:fingerprint(extra) then
    error("rl: " .. p .. " was written by a run with a different configuration; use another --out or remove it", 0)
  end
  assert(self.policy:load_state(string.format("%s/policy-%d.state", dir, meta.step)))
  if self.value then assert(self.value:load_state(string.format("%s/value-%d.state", dir, meta.step))) end
  return self:_resume_from(meta)
end

-- The trainer's counters and the settings callbacks changed, from a checkpoint's meta.
function Trainer:_resume_from(meta)
  self.step_count = meta.step
  self.kl.value = meta.kl_coef
  self.temperature = meta.temperature or self.temperature
  self.opt.lr = meta.lr or self.opt.lr
  if self.value_opt then self.value_opt.lr = meta.value_lr or self.value_opt.lr end
  self.last_ckpt = meta.step
  return meta
end

-- Data parallel: rank 0 read the checkpoint (meta, or nil); every rank gets its
-- weights, optimiser state and counters.
function Trainer:_share_checkpoint(meta)
  local dp = self.group
  meta = dp:broadcast_value(meta or false) or nil
  if meta then
    dp:sync_model(self.policy)
    if self.value then dp:sync_model(self.value) end
    if not dp.root then self:_resume_from(meta) end
  end
  return meta
end

-- Append-only JSONL with a byte position remembered at each checkpoint.
local function open_log(path, keep_bytes)
  if keep_bytes then
    local f = io.open(path, "rb")
    if f then
      local size = f:seek("end")
      f:close()
      if size > keep_bytes then assert(gz.truncate(path, keep_bytes)) end
    end
  else
    local f = io.open(path, "rb")
    if f then f:close() assert(gz.truncate(path, 0)) end
  end
  return assert(io.open(path, "ab"))
end

-- keys every log line carries; null where the algorithm has none (value_loss
-- without a value model, clip_frac for REINFORCE)
local LOG_KEYS = { "value_loss", "clip_frac", "value_lr", "value_clip_frac" }

local function jsonable(stats)
  local t = {}
  for _, k in ipairs(LOG_KEYS) do t[k] = json.null end
  for k, v in pairs(stats) do
    if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then t[k] = json.null
    elseif type(v) ~= "function" and type(v) ~= "table" then t[k] = v end
  end
  return t
end

local TRAIN = opts.schema("rl.train", {
  prompts = { "table", required = true },
  steps = { "integer", min = 1, required = true },
  batch_size = { "integer", min = 1, default = 8 },
  out = "string",
  save_every = { "integer", min = 1 },
  resume = { "boolean", default = true },
  sample_every = { "integer", min = 1, default = 10 },
  sample_count = { "integer", min = 0, default = 2 },
  progress = "boolean",
  quiet = "boolean",
  on_step = "function",
})

--- tr:train{prompts =, steps =, batch_size = 8, out = DIR, save_every =, resume = true,
---   sample_every = 10, sample_count = 2, quiet =, on_step =} -> last stats, all stats
--- Prompts are taken in a seeded shuffled order, batch_size per step. With out,
--- DIR/log.jsonl gets one object per step, DIR/samples.jsonl sampled responses,
--- DIR/checkpoint.json + states every save_every steps and at the end, and
--- DIR/policy (and DIR/value) the final weights. A rerun with the same settings
--- resumes from the checkpoint and logs what the uninterrupted run would have.
function Trainer:train(o)
  o = TRAIN(o)
  local P = #o.prompts
  if P == 0 then error("rl.train: no prompts", 2) end
  local dir = o.out
  local extra = { batch_size = o.batch_size, prompts = P }
  local log, samples
  local dp = self.group
  if dir then   -- rank 0 alone reads and writes DIR
    local meta
    if dp.root then
      assert(gz.mkdir(dir))
      meta = o.resume and self:load_checkpoint(dir, extra) or nil
    end
    if dp.active then meta = self:_share_checkpoint(meta) end
    if dp.root then
      log = open_log(dir .. "/log.jsonl", meta and meta.log_bytes or nil)
      samples = open_log(dir .. "/samples.jsonl", meta and meta.samples_bytes or nil)
    end
  end
  local bar = progress.new { label = "rl " .. self.algo, total = o.steps, unit = "step",
    quiet = o.quiet or o.progress == false or not dp.root }
  local last, all = nil, {}
  local ok, err = pcall(function()
    while self.step_count < o.steps do
      local k = self.step_count
      local batch = {}
      for j = 1, o.batch_size do
        local idx = k * o.batch_size + j - 1
        local epoch, pos = idx // P, idx % P
        local perm = self._perm_epoch == epoch and self._perm or train.permutation(P, self.seed, epoch + 1)
        self._perm, self._perm_epoch = perm, epoch
        batch[j] = o.prompts[perm[pos + 1]]
      end
      local st = self:step(batch)
      last = st
      all[#all + 1] = st
      if log then
        log:write(json.encode(jsonable(st)), "\n")
        log:flush()
        if o.sample_count > 0 and (st.step % o.sample_every == 0 or st.step == 1) then
          local ro = self.last_rollout
          for i = 1, math.min(o.sample_count, #ro.responses) do
            local p = ro.prompts[i]
            samples:write(json.encode {
              step = st.step, prompt = type(p) == "string" and p or json.array(p),
              response = self.tokenizer and decode(self, ro.responses[i]) or json.array(ro.responses[i]),
              score = self.last_scores[i],
            }, "\n")
          end
          samples:flush()
        end
        if (o.save_every and st.step % o.save_every == 0) or st.step == o.steps then
          gz.fsync(log)
          gz.fsync(samples)
          self:save_checkpoint(dir, extra, { log_bytes = log:seek("end"), samples_bytes = samples:seek("end") })
        end
      end
      bar:update(st.step, { { "reward", st.reward_mean }, { "kl", st.kl }, { "tok/s", st.rollout_tokens_per_s } })
      if dp:any(o.on_step ~= nil and o.on_step(self, st) == false) then break end
      if st.stop then break end
    end
  end)
  if not ok then
    bar:abort()
    if log then log:close() samples:close() end
    error(err, 0)
  end
  bar:finish(false)
  if log then
    log:close()
    samples:close()
    assert(self.policy:save(dir .. "/policy"))
    if self.value then assert(self.value:save(dir .. "/value")) end
  end
  return last, all
end

-- ---- LLM-judge rewards (d-RLAIF) ----

local JUDGE = opts.schema("rl.judge_reward", {
  labeler = { "table", required = true },
  mode = { "string", one_of = { "direct", "pairwise" }, default = "direct" },
  baseline = { "string", one_of = { "sft", "reference" }, default = "sft" },
})

--- judge_reward{labeler =, mode = "direct" | "pairwise", baseline = "sft" | "reference"} -> reward function
--- direct: the labeler (a d-RLAIF score template) rates each response 1-10; the
--- reward is its expected score mapped to [-1, 1] (labeler.linear_reward: (s - 5.5) / 4.5).
--- pairwise: the labeler compares the response (shown as response 1, both orders
--- when the labeler swaps) with a baseline -- the SFT (reference) model's sample
--- for the same prompt, or the dataset's reference response -- and the reward is
--- 2 p - 1, p = P(the policy's response is better). A failed judgement raises:
--- a missing reward is never counted as a score.
function M.judge_reward(o)
  o = JUDGE(o)
  local L = o.labeler
  return function(prompts, responses, rows, tr)
    local text = function(x)
      if type(x) == "string" then return x end
      if tr and tr.tokenizer then return tr.tokenizer:decode(x) end
      error("rl.judge_reward: the judge needs text: give the trainer a tokenizer", 0)
    end
    local recs = {}
    local base
    if o.mode == "pairwise" and o.baseline == "sft" then
      local ids, index = {}, {}
      for i, r in ipairs(rows) do ids[i], index[i] = r.prompt_ids, r.index end
      base = tr:generate(ids, tr.ref, index)
    end
    for i = 1, #responses do
      local ctx = text(prompts[i])
      -- template slots: the record's fields (TL;DR subreddit, title, post), else the prompt as the post
      local fields = rows[i].fields or { subreddit = "", title = "", post = ctx }
      if o.mode == "direct" then
        recs[i] = { id = i, context = ctx, response = text(responses[i]), fields = fields }
      else
        local b = o.baseline == "sft" and decode(tr, base[i]) or rows[i].reference
        if b == nil then error("rl.judge_reward: row " .. i .. " has no reference response", 0) end
        recs[i] = { id = i, context = ctx, a = text(responses[i]), b = text(b), fields = fields }
      end
    end
    local out = L:run_batch(recs)
    local scores = {}
    for i = 1, #recs do
      local r = out[i]
      if not r or r.status ~= "ok" then
        error(string.format("rl.judge_reward: the judge gave no %s for row %d (%s)",
          o.mode == "direct" and "score" or "preference", i, r and (r.reason or r.status) or "no record"), 0)
      end
      scores[i] = o.mode == "direct" and r.reward or (2 * r.p - 1)
    end
    return scores
  end
end

M.Trainer = Trainer
return M
