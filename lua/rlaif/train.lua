-- rlaif.train: optimizers, learning-rate schedules and trainers over the C model
-- steps (rlaif.model). Everything numeric runs in C; this file only orchestrates.
--
--   local opt = rlaif.train.adamw{model = m, lr = 3e-4, weight_decay = 0.1,
--                                 schedule = rlaif.train.schedule.cosine{warmup = 10, total = 1000},
--                                 max_grad_norm = 1.0}
--   ... m:lm_loss(ids, targets) ...; opt:step()          -- clip, step, zero_grad
--
--   rlaif.train.sft{model = m, tokenizer = tok, data = {{prompt = "...", response = "..."}, ...}}
--   rlaif.train.reward{model = rm, tokenizer = tok, pairs = "pairs.jsonl", eval_pairs = ...}
--
-- Trainers call on_step(info) after every optimizer step; returning false stops
-- early. With log = path they append one JSON line per step (step, loss, lr, ...;
-- the step logs rlaif.report plots), and they show progress on stderr
-- (rlaif.progress; progress = false or quiet = true turns it off). Ctrl-C stops
-- between steps with "interrupted": the log keeps every finished step and the
-- state file its last save. A schedule is any function(step) -> multiplier of lr, so Lua code can
-- replace the built-in ones. With state = path, trainers save the weights, AdamW
-- moments, step and data position every save_every steps (atomically) and resume
-- from that file when it exists; the resumed run reproduces the same losses.
--
-- Data parallel: under mpirun (rlaif.dist) the trainers split every global batch
-- (batch_size stays the global batch) into contiguous shares, one per rank; every
-- rank starts from rank 0's weights and state (broadcast), the losses are scaled by
-- the global token or pair counts, the gradients are summed in one all-reduce per
-- optimizer step (adamw{dist = true}), and the logged numbers are global sums. So
-- the run computes what one process would, up to float summation order. Rank 0
-- alone writes the state file and the log and draws the progress bar; on_step runs
-- on every rank (with the same numbers) and a stop on any rank stops them all.
-- dist = false keeps each process to itself.

local core = require "rlaif.core"
local dist = require "rlaif.dist"
local progress = require "rlaif.progress"
local opts = require "rlaif.opts"

local M = {}

-- ---- option schemas (rlaif.opts): unknown keys, types and ranges raise ----

local WARM_TOTAL = { warmup = { "integer", min = 0 }, total = { "integer", min = 1, required = true },
  final = { "number", min = 0, max = 1 } }
local S_LINEAR = opts.schema("train.schedule.linear", WARM_TOTAL)
local S_COSINE = opts.schema("train.schedule.cosine", WARM_TOTAL)
local S_WARMUP = opts.schema("train.schedule.warmup", { steps = { "integer", min = 1, required = true } })

local OPTIM = {
  lr = { "number", min = 0 }, beta1 = { "number", min = 0, lt = 1 }, beta2 = { "number", min = 0, lt = 1 },
  eps = { "number", gt = 0 }, weight_decay = { "number", min = 0 }, schedule = "function",
  max_grad_norm = { "number|boolean", check = function(v)
    return v == false or (v ~= true and v >= 0), "must be a number >= 0 or false, got " .. tostring(v)
  end },
}
local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end
local ADAMW = opts.schema("train.adamw", with(OPTIM, { model = { "userdata", required = true },
  dist = "boolean" }))
local TRAINER = with(OPTIM, {
  dist = "boolean",
  model = { "userdata", required = true }, tokenizer = "userdata", batch_size = { "integer", min = 1 },
  epochs = { "integer", min = 1 }, max_steps = { "integer", min = 1 }, max_len = { "integer", min = 1 },
  add_eos = "boolean", seed = "integer", on_step = "function", state = "string",
  save_every = { "integer", min = 1 }, log = "string", progress = "boolean", quiet = "boolean",
})
local SFT = opts.schema("train.sft", with(TRAINER, { data = { "table", required = true },
  grad_accum = { "integer", min = 1 } }))
local REWARD = opts.schema("train.reward", with(TRAINER, { pairs = { "table|string", required = true },
  eval_pairs = "table|string", margin = "number", center = { "number", min = 0 }, out = "string" }))
local SCORES = opts.schema("train.reward_scores", { batch_size = { "integer", min = 1 },
  max_len = { "integer", min = 1 }, add_eos = "boolean" })

-- ---- schedules ----

M.schedule = {}

--- constant() -> function(step) = 1
function M.schedule.constant()
  return function() return 1.0 end
end

local function warm(w, step)
  if w and w > 0 and step <= w then return step / w end
  return nil
end

-- Warm-up, then decay(f, final) where f goes from 0 to 1 over the remaining steps.
local function warm_then_decay(schema, o, decay)
  o = schema(o, 3)
  local total, w, final = o.total, o.warmup or 0, o.final or 0
  return function(step)
    local x = warm(w, step)
    if x then return x end
    return decay(math.min(1, (step - w) / math.max(1, total - w)), final)
  end
end

--- linear{warmup = 0, total = n, final = 0}: warm-up, then linear decay to `final`
function M.schedule.linear(o)
  return warm_then_decay(S_LINEAR, o, function(f, final) return 1 - (1 - final) * f end)
end

--- cosine{warmup = 0, total = n, final = 0}: warm-up, then cosine decay to `final`
function M.schedule.cosine(o)
  return warm_then_decay(S_COSINE, o, function(f, final)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * f))
  end)
end

--- warmup{steps = n}: linear warm-up, then constant
function M.schedule.warmup(o)
  local w = S_WARMUP(o).steps
  return function(step) return warm(w, step) or 1.0 end
end

-- ---- AdamW ----

local Adamw = {}
Adamw.__index = Adamw

--- adamw{model=, lr=, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0,
---       schedule=fn, max_grad_norm=nil, dist=false} -> optimizer
-- Weight decay is decoupled and applies to matrices and embeddings only. With
-- dist = true, step() first sums the gradients over the ranks of an mpirun job
-- (one all-reduce of the flat gradient buffer; nothing in a single process).
function M.adamw(o)
  o = ADAMW(o)
  local self = setmetatable({
    model = o.model, lr = o.lr or 1e-4, beta1 = o.beta1 or 0.9, beta2 = o.beta2 or 0.999,
    eps = o.eps or 1e-8, weight_decay = o.weight_decay or 0, max_grad_norm = o.max_grad_norm,
    schedule = o.schedule or M.schedule.constant(), group = dist.group(o.dist == true),
  }, Adamw)
  return self
end

--- opt:step() -> {step=, lr=, grad_norm=}: clip, AdamW update, zero the gradients
function Adamw:step()
  local m = self.model
  self.group:allreduce_grads(m)
  local n = m:clip_grad_norm(self.max_grad_norm)
  local t = m:steps() + 1
  local lr = self.lr * self.schedule(t)
  m:adamw_step { lr = lr, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps, weight_decay = self.weight_decay }
  m:zero_grad()
  return { step = t, lr = lr, grad_norm = n }
end

-- ---- data helpers ----

-- Deterministic permutation of 1..n for (seed, epoch): resumable without state.
local function permutation(n, seed, epoch)
  local p = {}
  for i = 1, n do p[i] = i end
  local x = (seed * 6364136223846793005 + epoch * 1442695040888963407 + 1) | 1
  for i = n, 2, -1 do
    x = x * 6364136223846793005 + 1442695040888963407
    local j = ((x >> 33) % i) + 1
    p[i], p[j] = p[j], p[i]
  end
  return p
end
--- permutation(n, seed, epoch) -> a deterministic shuffle of 1..n (resumable without state)
M.permutation = permutation

local function encode(tok, s)
  if type(s) == "table" then return s end
  assert(tok, "train: a tokenizer is required for text data")
  return tok:encode(s)
end

local function concat(a, b, max_len)
  local r = {}
  for i = 1, #a do r[#r + 1] = a[i] end
  for i = 1, #b do r[#r + 1] = b[i] end
  if max_len and #r > max_len then
    local cut = {}
    for i = #r - max_len + 1, #r do cut[#cut + 1] = r[i] end   -- keep the end (the response)
    return cut, #r - max_len
  end
  return r, 0
end

local function read_state(m, path)
  if not path then return nil end
  local f = io.open(path, "rb")
  if not f then return nil end
  f:close()
  local blob = assert(m:load_state(path))
  local st = {}
  for k, v in blob:gmatch("(%w+)=(%-?%d+)") do st[k] = math.tointeger(tonumber(v)) end
  return st
end

local function write_state(m, path, st)
  local parts = {}
  for _, k in ipairs { "step", "epoch", "pos" } do parts[#parts + 1] = k .. "=" .. string.format("%d", st[k]) end
  assert(m:save_state(path, table.concat(parts, ";")))
end

--- read_pairs(path) -> array of {prompt=, chosen=, rejected=, p=}
-- Reads the labeler's --export-pairs JSONL ({id, prompt, chosen, rejected, p})
-- and the generic {prompt, chosen, rejected} JSONL (p = 1).
function M.read_pairs(path)
  local json = core.json or require("rlaif.core").json
  local f = assert(io.open(path, "rb"))
  local out = {}
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ok, r = pcall(json.decode, line)
      if not ok or type(r) ~= "table" then
        f:close()
        error(string.format("train.read_pairs: %s:%d: not a JSON object", path, n), 2)
      end
      if not (r.chosen and r.rejected) then
        f:close()
        error(string.format("train.read_pairs: %s:%d: needs chosen and rejected", path, n), 2)
      end
      out[#out + 1] = { id = r.id, prompt = r.prompt or "", chosen = r.chosen, rejected = r.rejected, p = r.p or 1.0 }
    end
  end
  f:close()
  return out
end

-- ---- step logs and progress ----

-- Open the JSONL step log: a fresh run truncates it; a run resumed from `step`
-- keeps the lines up to that step (a killed run may have logged steps past its
-- last save) and appends. Returns an object with :write(info) and :close().
local function open_log(path, resumed_step)
  if not path then return nil end
  local json = core.json
  if resumed_step and resumed_step > 0 then
    local keep = {}
    local f = io.open(path, "rb")
    if f then
      for line in f:lines() do
        local r = json.decode(line)
        if type(r) == "table" and type(r.step) == "number" and r.step <= resumed_step then keep[#keep + 1] = line end
      end
      f:close()
    end
    local ok, err = core.gz.write_atomic(path, #keep > 0 and (table.concat(keep, "\n") .. "\n") or "")
    if not ok then error("train: log: " .. tostring(err), 0) end
  end
  local f, err = io.open(path, (resumed_step and resumed_step > 0) and "ab" or "wb")
  if not f then error("train: cannot open log " .. tostring(err), 0) end
  local log = { f = f }
  function log.write(_, info)
    local row = {}
    for k, v in pairs(info) do
      if type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge then row[k] = v end
    end
    f:write(json.encode(row), "\n")
    f:flush()
  end
  function log.close() if log.f then f:close() log.f = nil end end
  return log
end
--- open_log(path, resumed_step) -> a JSONL step log with :write(info) and :close()
M.open_log = open_log

local function bar_for(o, label, total, dp)
  return progress.new { label = label, total = total, unit = "step",
    quiet = o.quiet == true or o.progress == false or not dp.root }
end

-- Run body() with the log and bar closed on every way out (Ctrl-C included).
local function guarded(log, bar, body)
  local ok, res = pcall(body)
  if log then log:close() end
  if not ok then
    bar:abort()
    error(res, 0)
  end
  bar:finish()
  return res
end

-- ---- trainers ----

local function common(o)
  local opt = M.adamw {
    model = o.model, lr = o.lr or 1e-4, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps,
    weight_decay = o.weight_decay or 0, max_grad_norm = o.max_grad_norm == nil and 1.0 or o.max_grad_norm,
    schedule = o.schedule, dist = o.dist ~= false,
  }
  return opt, opt.group
end

-- The state a run starts from, the same on every rank: rank 0 reads the state
-- file (if any) and sends its weights, AdamW moments and position to the others.
local function start_state(m, path, dp)
  local st = dp.root and read_state(m, path) or nil
  st = dp:broadcast_value(st) or { step = 0, epoch = 1, pos = 0 }
  dp:sync_model(m)
  return st
end

-- A stop asked for on any rank (on_step returning false) stops every rank.
local function stop_here(o, info, dp)
  return dp:any(o.on_step ~= nil and o.on_step(info) == false)
end

--- sft{model=, tokenizer=, data=, batch_size=8, grad_accum=1, epochs=1, max_steps=,
---     lr=1e-4, weight_decay=0, schedule=, max_grad_norm=1, max_len=, add_eos=true,
---     seed=0, on_step=, state=, save_every=, log=, progress=true, quiet=} -> {step=, loss=}
-- data: {prompt=, response=} (strings or id arrays). The loss covers response tokens only.
function M.sft(o)
  o = SFT(o)
  local m = o.model
  local opt, dp = common(o)
  local cfg = m:config()
  local bs, accum, epochs = o.batch_size or 8, o.grad_accum or 1, o.epochs or 1
  local eos = (o.add_eos ~= false and cfg.eos_id >= 0) and cfg.eos_id or nil
  local examples = {}
  for i, d in ipairs(o.data) do
    local p, r = encode(o.tokenizer, d.prompt or {}), encode(o.tokenizer, d.response)
    if eos then
      local r2 = { table.unpack(r) }
      r2[#r2 + 1] = eos
      r = r2
    end
    local ids, cut = concat(p, r, o.max_len)
    local plen = math.max(0, #p - cut)
    local n, _, tg = 0, m:causal_lm_batch({ ids }, { plen })   -- n: the tokens the loss covers
    for _, t in ipairs(tg[1]) do if t >= 0 then n = n + 1 end end
    examples[i] = { ids = ids, plen = plen, n = n }
  end
  assert(#examples > 0, "train.sft: no data")
  local st = start_state(m, o.state, dp)
  local per_epoch = -(-#examples // (bs * accum))
  local total = math.min(epochs * per_epoch, o.max_steps or math.huge)
  local log = dp.root and open_log(o.log, st.step) or nil
  local bar = bar_for(o, "sft", total, dp)
  bar:update(st.step)
  return guarded(log, bar, function()
    local last
    while st.epoch <= epochs do
      local perm = permutation(#examples, o.seed or 0, st.epoch)
      while st.pos < #examples do
        local loss_sum, tokens = 0, 0
        for _ = 1, accum do
          if st.pos >= #examples then break end
          -- the global micro-batch: its token count is known to every rank; this rank
          -- takes its contiguous share and weighs it by its part of that count
          local k0, k1 = st.pos + 1, math.min(st.pos + bs, #examples)
          local all = 0
          for k = k0, k1 do all = all + examples[perm[k]].n end
          local lo, hi = dp:block(k1 - k0 + 1)
          local seqs, plens, mine = {}, {}, 0
          for k = k0 + lo - 1, k0 + hi - 1 do
            local e = examples[perm[k]]
            seqs[#seqs + 1], plens[#plens + 1], mine = e.ids, e.plen, mine + e.n
          end
          st.pos = k1
          if mine > 0 then
            local ids, targets = m:causal_lm_batch(seqs, plens)
            local loss, n = m:lm_loss(ids, targets, nil, { scale = mine / (all * accum) })
            loss_sum = loss_sum + loss * n
          end
          tokens = tokens + all
        end
        loss_sum = dp:sum({ loss_sum })[1]
        local info = opt:step()
        st.step = info.step
        info.loss, info.tokens, info.epoch = tokens > 0 and loss_sum / tokens or 0 / 0, tokens, st.epoch
        last = info
        if dp.root and o.state and o.save_every and st.step % o.save_every == 0 then write_state(m, o.state, st) end
        if log then log:write(info) end
        bar:update(st.step, { { "loss", info.loss }, { "lr", info.lr } })
        if stop_here(o, info, dp) then return last end
        if o.max_steps and st.step >= o.max_steps then return last end
      end
      st.epoch, st.pos = st.epoch + 1, 0
    end
    return last
  end)
end

local function pair_rows(o, pairs, i0, i1, max_len)
  local rows, ps = {}, {}
  for k = i0, i1 do
    local pr = pairs[k]
    local prompt = encode(o.tokenizer, pr.prompt or "")
    rows[#rows + 1] = (concat(prompt, encode(o.tokenizer, pr.chosen), max_len))
    rows[#rows + 1] = (concat(prompt, encode(o.tokenizer, pr.rejected), max_len))
    ps[#ps + 1] = pr.p or 1.0
  end
  return rows, ps
end

local function append_eos(rows, eos)
  if not eos then return rows end
  for _, r in ipairs(rows) do r[#r + 1] = eos end
  return rows
end

--- reward_scores(model, tokenizer, pairs, {batch_size=, max_len=, add_eos=}) -> chosen, rejected (arrays)
function M.reward_scores(m, tok, pairs, o)
  o = SCORES(o)
  local eos = (o.add_eos ~= false and m:config().eos_id >= 0) and m:config().eos_id or nil
  local bs = o.batch_size or 8
  local rc, rr = {}, {}
  for i0 = 1, #pairs, bs do
    local rows = pair_rows({ tokenizer = tok }, pairs, i0, math.min(i0 + bs - 1, #pairs), o.max_len)
    append_eos(rows, eos)
    local r = m:reward(rows):totable()
    for k = 1, #r, 2 do rc[#rc + 1], rr[#rr + 1] = r[k], r[k + 1] end
  end
  return rc, rr
end

--- pairwise_accuracy(chosen, rejected, pairs) -> fraction with r(preferred) > r(other)
-- (pairs with p = 0.5 carry no preference and are skipped)
function M.pairwise_accuracy(rc, rr, pairs)
  local right, n = 0, 0
  for i = 1, #rc do
    local p = pairs and pairs[i].p or 1.0
    if p ~= 0.5 then
      n = n + 1
      if (p > 0.5) == (rc[i] > rr[i]) then right = right + 1 end
    end
  end
  return n > 0 and right / n or 0 / 0
end

-- reward_scores over all pairs, spread over the group's ranks
local function scores_all(m, tok, pairs, sopts, dp)
  if not dp.active then return M.reward_scores(m, tok, pairs, sopts) end
  local lo, hi = dp:block(#pairs)
  local mine = {}
  for k = lo, hi do mine[#mine + 1] = pairs[k] end
  local c, r = {}, {}
  if #mine > 0 then c, r = M.reward_scores(m, tok, mine, sopts) end
  local rc, rr = {}, {}
  for _, part in ipairs(dp:allgather({ c, r })) do
    for k = 1, #part[1] do rc[#rc + 1], rr[#rr + 1] = part[1][k], part[2][k] end
  end
  return rc, rr
end

--- reward{model=, tokenizer=, pairs=, eval_pairs=, batch_size=8 (pairs), epochs=1,
---        max_steps=, lr=1e-5, margin=0, center=0, max_len=, add_eos=true, seed=0,
---        on_step=, state=, save_every=, log=, progress=true, quiet=, out=}
---        -> {step=, loss=, accuracy=, reward_mean=, reward_std=}
-- pairs: array or a JSONL path (read_pairs). Loss: the soft-label pairwise loss
-- with p = preference for `chosen` (1 or 0 gives Bradley-Terry). reward_mean and
-- reward_std: the trained model's scores over every training response. With
-- out = DIR the trained model (and the tokenizer) and reward_stats.json go to DIR,
-- the directory `rlaif rl --reward-model DIR` reads and normalises with.
function M.reward(o)
  o = REWARD(o)
  local m = o.model
  local opt, dp = common(o)
  assert(m:config().head == "reward", "train.reward: the model needs head = \"reward\"")
  if o.out then   -- before any training: a clash found after hours is too late
    local files = {}
    for _, f in ipairs { "config.json", "model.safetensors", "reward_stats.json", "tokenizer.json" } do
      files["out " .. f] = o.out .. "/" .. f
    end
    require("rlaif.fileio").check_outputs("train.reward", { pairs = type(o.pairs) == "string" and o.pairs or nil,
      eval_pairs = type(o.eval_pairs) == "string" and o.eval_pairs or nil, state = o.state, log = o.log }, files)
  end
  local pairs = type(o.pairs) == "string" and M.read_pairs(o.pairs) or o.pairs
  local evalp = type(o.eval_pairs) == "string" and M.read_pairs(o.eval_pairs) or o.eval_pairs
  assert(pairs and #pairs > 0, "train.reward: no pairs")
  local eos = (o.add_eos ~= false and m:config().eos_id >= 0) and m:config().eos_id or nil
  local bs, epochs = o.batch_size or 8, o.epochs or 1
  local st = start_state(m, o.state, dp)
  local total = math.min(epochs * -(-#pairs // bs), o.max_steps or math.huge)
  local log = dp.root and open_log(o.log, st.step) or nil
  local bar = bar_for(o, "reward", total, dp)
  bar:update(st.step)
  local last = {}
  guarded(log, bar, function()
    while st.epoch <= epochs do
      local perm = permutation(#pairs, o.seed or 0, st.epoch)
      while st.pos < #pairs do
        -- the global batch of pairs; this rank's contiguous share, its mean loss
        -- weighted by its share of the pairs
        local k0, k1 = st.pos + 1, math.min(st.pos + bs, #pairs)
        local lo, hi = dp:block(k1 - k0 + 1)
        local batch = {}
        for k = k0 + lo - 1, k0 + hi - 1 do batch[#batch + 1] = pairs[perm[k]] end
        st.pos = k1
        local loss, right, share = 0, 0, #batch / (k1 - k0 + 1)
        if #batch > 0 then
          local rows, ps = pair_rows(o, batch, 1, #batch, o.max_len)
          append_eos(rows, eos)
          local r = m:reward(rows):totable()
          local r1, r2 = {}, {}
          for k = 1, #r, 2 do r1[#r1 + 1], r2[#r2 + 1] = r[k], r[k + 1] end
          local d1, d2
          loss, d1, d2 = M.reward_pair_loss(r1, r2, ps, o.margin or 0, o.center or 0)
          local g1, g2, dr = d1:totable(), d2:totable(), {}
          for k = 1, #g1 do dr[2 * k - 1], dr[2 * k] = g1[k] * share, g2[k] * share end
          m:backward_reward(dr)
          for k = 1, #r1 do if r1[k] > r2[k] then right = right + 1 end end
        end
        local g = dp:sum({ loss * share, right })
        local info = opt:step()
        st.step = info.step
        info.loss, info.train_accuracy, info.epoch = g[1], g[2] / (k1 - k0 + 1), st.epoch
        last = info
        if dp.root and o.state and o.save_every and st.step % o.save_every == 0 then write_state(m, o.state, st) end
        if log then log:write(info) end
        bar:update(st.step, { { "loss", info.loss }, { "acc", info.train_accuracy } })
        if stop_here(o, info, dp) then st.epoch = epochs + 1 break end
        if o.max_steps and st.step >= o.max_steps then st.epoch = epochs + 1 break end
      end
      st.epoch, st.pos = st.epoch + 1, 0
    end
  end)
  -- statistics for normalising rewards later, and held-out accuracy (each rank
  -- scores its share of the pairs; every rank gets all the scores)
  local sopts = { batch_size = bs, max_len = o.max_len, add_eos = o.add_eos }
  local rc, rr = scores_all(m, o.tokenizer, pairs, sopts, dp)
  local s, s2, n = 0, 0, 0
  for i = 1, #rc do
    s, s2, n = s + rc[i] + rr[i], s2 + rc[i] ^ 2 + rr[i] ^ 2, n + 2
  end
  last.reward_mean = s / n
  last.reward_std = math.sqrt(math.max(0, s2 / n - (s / n) ^ 2))
  last.train_pair_accuracy = M.pairwise_accuracy(rc, rr, pairs)
  if evalp and #evalp > 0 then
    local ec, er = scores_all(m, o.tokenizer, evalp, sopts, dp)
    last.accuracy = M.pairwise_accuracy(ec, er, evalp)
  end
  if o.out then
    local ok, err = m:save(o.out, { tokenizer = o.tokenizer })
    if ok then ok, err = M.save_reward_stats(o.out, last) end
    if not ok then error("train.reward: " .. tostring(err), 2) end
  end
  return last
end

--- save_reward_stats(dir, res) -> true | nil, message: write dir/reward_stats.json
--- {"mean": res.reward_mean, "std": res.reward_std} atomically (res is what
--- rlaif.train.reward returns), so rlaif.rl can normalise this model's rewards.
--- Statistics load_reward_stats would refuse (std not > 0, not finite) are not written.
function M.save_reward_stats(dir, res)
  if type(res) ~= "table" or type(res.reward_mean) ~= "number" or type(res.reward_std) ~= "number" then
    error("train.save_reward_stats: expected the result of train.reward (reward_mean, reward_std)", 2)
  end
  local mean, std = res.reward_mean, res.reward_std
  if not (std > 0 and std < math.huge and mean > -math.huge and mean < math.huge) then
    return nil, string.format("train.save_reward_stats: cannot normalise by reward mean %s, std %s (std must be " ..
      "finite and > 0: the model scores every response alike); %s/reward_stats.json not written", mean, std, dir)
  end
  return core.gz.write_atomic(dir .. "/reward_stats.json",
    string.format('{"mean": %.17g, "std": %.17g}\n', res.reward_mean, res.reward_std))
end

--- load_reward_stats(dir) -> {mean =, std =}; raises naming the file when it is
--- missing or malformed (std must be > 0).
function M.load_reward_stats(dir)
  local p = dir .. "/reward_stats.json"
  local f, err = io.open(p, "rb")
  if not f then error("train.load_reward_stats: " .. tostring(err), 2) end
  local v = core.json.decode(f:read("a"))
  f:close()
  if type(v) ~= "table" or type(v.mean) ~= "number" or type(v.std) ~= "number" or v.std ~= v.std or v.std <= 0 then
    error("train.load_reward_stats: " .. p .. " needs numbers mean and std > 0", 2)
  end
  return { mean = v.mean, std = v.std }
end

--- reward_pair_loss(r1, r2, p [, margin [, center]]) -> mean loss, dr1, dr2 (as rlaif.model's)
M.reward_pair_loss = function(r1, r2, p, margin, center)
  return core.model.reward_pair_loss(r1, r2, p, margin, center)
end

return M
