-- tests/spec/support/dist_train.lua -- the trainers on tiny models, run by
-- tests/spec/dist_spec.lua once as one process and once under `mpirun -np 2`;
-- the two result files must agree to 1e-4 (relative). Usage:
--   rlaif tests/spec/support/dist_train.lua OUT.json WORKDIR
-- Rank 0 writes OUT.json: per-step SFT losses (a straight run, and a run
-- stopped at step 6 then resumed from its state file by models whose own
-- weights differ on every rank), reward-model losses and accuracies, and the
-- per-step statistics of PPO (minibatches: some ranks hold no row of one) and
-- GRPO (groups). Everything is seeded; data are token ids, no tokenizer.
local rlaif = require "rlaif"
local json = rlaif.core.json
local dist = rlaif.dist

local out, work = arg[1], arg[2]
assert(out and work, "usage: dist_train.lua OUT.json WORKDIR")
local rank = dist.rank()

local x = 12345
local function rnd(n)   -- a small LCG: the same data on every rank
  x = (x * 1103515245 + 12345) % 2147483648
  return x % n
end
local function ids(len, lo)
  local t = {}
  for i = 1, len do t[i] = (lo or 3) + rnd(40) end
  return t
end

local CFG = { arch = "gpt2", vocab_size = 48, n_layer = 2, n_head = 2, d_model = 16, max_seq = 32, eos_id = 1 }
local function model(seed, head)
  local c = {}
  for k, v in pairs(CFG) do c[k] = v end
  c.seed, c.head = seed, head
  return rlaif.model.new(c)
end

local res = {}

-- ---- SFT: 20 examples, micro-batches of 3, 2 accumulated, 3 epochs (12 steps) ----
local data = {}
for i = 1, 20 do data[i] = { prompt = ids(2 + i % 4), response = ids(3 + i % 3) } end
local function sft(m, extra)
  local losses = {}
  local o = { model = m, data = data, batch_size = 3, grad_accum = 2, epochs = 3, lr = 3e-3, seed = 1,
    quiet = true, on_step = function(info) losses[#losses + 1] = { step = info.step, loss = info.loss,
      grad_norm = info.grad_norm, tokens = info.tokens } end }
  for k, v in pairs(extra or {}) do o[k] = v end
  rlaif.train.sft(o)
  return losses
end
res.sft = sft(model(7), { log = work .. "/sft.jsonl" })
local state = work .. "/sft.state"
os.remove(state)
sft(model(7), { state = state, save_every = 3, max_steps = 6 })
-- resumed by a model whose weights differ on each rank: rank 0's state must reach all
res.sft_resumed = sft(model(100 + rank), { state = state, save_every = 3 })

-- ---- reward model: 16 soft-label pairs, batches of 5 (the last holds 1 pair) ----
local rm_pairs, evalp = {}, {}
for i = 1, 16 do
  rm_pairs[i] = { prompt = ids(3), chosen = ids(2 + i % 3), rejected = ids(3), p = 0.5 + (i % 5) / 10 }
end
for i = 1, 6 do evalp[i] = { prompt = ids(3), chosen = ids(3), rejected = ids(2), p = 1 } end
local rm_steps = {}
local rm_res = rlaif.train.reward { model = model(9, "reward"), pairs = rm_pairs, eval_pairs = evalp, batch_size = 5,
  epochs = 2, lr = 1e-2, center = 0.01, seed = 2, quiet = true,
  on_step = function(info) rm_steps[#rm_steps + 1] = { step = info.step, loss = info.loss,
    train_accuracy = info.train_accuracy, grad_norm = info.grad_norm } end }
res.rm = { steps = rm_steps, reward_mean = rm_res.reward_mean, reward_std = rm_res.reward_std,
  accuracy = rm_res.accuracy, train_pair_accuracy = rm_res.train_pair_accuracy }

-- ---- RL: a reward for token 5, against length ----
local function reward(_, responses)
  local s = {}
  for i, r in ipairs(responses) do
    local c = 0
    for _, t in ipairs(r) do if t == 5 then c = c + 1 end end
    s[i] = c - 0.05 * #r
  end
  return s
end
local prompts = {}
for i = 1, 10 do prompts[i] = ids(2 + i % 3) end
local KEYS = { "reward_mean", "reward_std", "kl", "entropy", "response_length", "policy_loss", "value_loss",
  "clip_frac", "value_clip_frac", "grad_norm", "objective", "rows", "tokens", "missing_eos" }
local function rl(algo, extra)
  local o = { algo = algo, policy = model(11), reward = reward, max_new_tokens = 6, temperature = 1.0, seed = 3,
    lr = 3e-3 }
  for k, v in pairs(extra) do o[k] = v end
  local tr = rlaif.rl.trainer(o)
  local steps = {}
  tr:train { prompts = prompts, steps = 4, batch_size = 4, quiet = true, out = work .. "/rl_" .. algo,
    on_step = function(_, st)
      local row = { step = st.step }
      for _, k in ipairs(KEYS) do row[k] = st[k] end
      steps[#steps + 1] = row
    end }
  return steps
end
res.ppo = rl("ppo", { minibatch_size = 3, epochs = 2 })
res.grpo = rl("grpo", { group_size = 2 })

res.size = dist.size()
if rank == 0 then
  local f = assert(io.open(out, "wb"))
  f:write(json.encode(res), "\n")
  f:close()
end
