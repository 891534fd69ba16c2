-- examples/sim_rl_shaping.lua -- swapping the RL stage of `rlaif sim`: a judge
-- with a length bias teaches the RLAIF reward model to like long summaries; RL
-- then lengthens them. Two remedies from Lee et al. App. J and common practice,
-- each a custom `rl` stage over the default one: reward shaping (a penalty per
-- word) and a beta schedule (a KL coefficient that starts high and decays).
-- Run: `./rlaif examples/sim_rl_shaping.lua [small|default|tiny] [DIR]`.
--
-- The world, the judge and the humans are simulated (rlaif.sim). The base run
-- computes everything up to the reward models once; each variant starts from a
-- copy of it and recomputes only RL and the evaluation. The custom stage calls
-- the default with `shape` (scores -> scores, per batch), `on_step` (called
-- after every RL step: set tr.kl_coef, tr.temperature or tr.opt.lr) or
-- `trainer` (more rlaif.rl.trainer options); its `key` names it in the cache.

local sim = require "rlaif.sim"
require("rlaif").set_threads(1)   -- a 2-layer model gains nothing from a second thread

local size, root = arg[1] or "small", arg[2] or "runs/sim_rl_shaping"
local BIAS = 0.5                   -- the judge adds 0.5 to its judged quality per 10 words
os.execute("mkdir -p '" .. root .. "'")

local steps = require("rlaif.sim_pipeline").PRESETS[size].rl.steps
local variants = {
  { "plain RL" },
  { "length penalty", function(p, default)
    -- the RLAIF RM's rewards are in standard deviations; at --size small, 0.05 per word takes back about
    -- half of the lengthening (22.1 -> 20.3 words, SFT 18.7) and wins 38% vs SFT instead of 26%
    return default(p, { shape = function(_, scores, ctx)
      local out = {}
      for i, s in ipairs(scores) do out[i] = s - 0.05 * sim.word_count(ctx.responses[i]) end
      return out
    end })
  end },
  { "beta 0.2 -> 0.05", function(p, default)
    return default(p, { on_step = function(tr, st)
      tr.kl_coef = 0.05 + 0.15 * math.max(0, 1 - st.step / steps)
    end })
  end },
}

local rows = {}
for _, v in ipairs(variants) do
  local name, fn = v[1], v[2]
  local dir = root .. "/" .. name:gsub("[^%w]+", "_")
  if fn and not io.open(dir .. "/manifest.json") then
    os.execute(string.format("cp -a '%s/plain_RL' '%s'", root, dir))   -- reuse everything up to the RMs
  end
  local p = sim.pipeline { out = dir, size = size, judge_length_bias = BIAS, runs = { "rlaif" },
    stages = fn and { rl = { key = name, run = fn } } or nil }
  local r = p:run {}
  rows[#rows + 1] = string.format("%-18s %8.1f %8.1f %14.1f%% %9.1f%% %10.3f", name, r.mean_length.sft,
    r.mean_length.rlaif, 100 * r.win_rate.rlaif_vs_sft, 100 * r.lc_win_rate.rlaif_vs_sft, r.hidden_q.rlaif)
end
print(string.format("\n%-18s %8s %8s %15s %10s %10s", "RLAIF with", "SFT w", "RLAIF w", "RLAIF vs SFT", "LC",
  "hidden q"))
print(table.concat(rows, "\n"))
print(string.format("(judge length bias %g; mean words per response; win rates by the hidden truth, which " ..
  "charges 0.03 per word; simulated judge)", BIAS))
