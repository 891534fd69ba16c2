-- examples/sim_labels.lua -- swapping the labeling stage of `rlaif sim`: the
-- paper's soft labels against hard labels and Constitutional AI's clamped labels,
-- each followed by the rest of the experiment (RLAIF reward model, RL, evaluation
-- by the hidden truth). Run: `./rlaif examples/sim_labels.lua [small|default|tiny] [DIR]`.
--
-- The world, the judge and the humans are simulated (rlaif.sim). The base run
-- computes the tokenizer, SFT model and samples once; each variant starts from a
-- copy of it, so only the labels and what follows are recomputed. A variant is a
-- custom `label` stage: a function that calls the default stage with other
-- labeler options (here a post-processing of p), under a key that names it, so a
-- rerun continues each variant and never mixes their caches.

local sim = require "rlaif.sim"
require("rlaif").set_threads(1)   -- a 2-layer model gains nothing from a second thread

local size, root = arg[1] or "small", arg[2] or "runs/sim_labels"
os.execute("mkdir -p '" .. root .. "'")

-- the variants: {name, labeler options for the default label stage, hard = round p}
local variants = {
  { "soft (paper)" },
  { "clamped 0.4-0.6", { clamp = { 0.4, 0.6 } } },   -- Constitutional AI's clamp
  { "hard 0/1", {}, hard = true },                    -- p rounded to 0 or 1 (ties stay 0.5)
}

local json = require("rlaif").core.json

-- rounds every AI label in place (temp file + rename): the reward model then trains on 0/1 targets
local function harden(path)
  local lines, sharp, n = {}, 0, 0
  for line in io.lines(path) do
    local r = json.decode(line)
    if r.p then
      r.p = r.p > 0.5 and 1 or (r.p < 0.5 and 0 or 0.5)
      sharp, n = sharp + math.abs(r.p - 0.5), n + 1
    end
    lines[#lines + 1] = json.encode(r)
  end
  local f = assert(io.open(path .. ".tmp", "wb"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  assert(os.rename(path .. ".tmp", path))
  return 0.5 + sharp / n
end

local function run(v)
  local name, labeler_opts = v[1], v[2]
  local dir = root .. "/" .. name:gsub("[^%w]+", "_")
  if labeler_opts and not io.open(dir .. "/manifest.json") then
    os.execute(string.format("cp -a '%s/soft_paper_' '%s'", root, dir))   -- reuse SFT and samples
  end
  local stages
  if labeler_opts then
    stages = { label = { key = name, run = function(p, default)
      local res = default(p, { labeler = labeler_opts })
      if v.hard then res.mean_confidence = harden(p:path("labels_ai.jsonl")) end
      return res
    end } }
  end
  -- only the RLAIF run: the RLHF policy does not depend on the AI labels
  return sim.pipeline { out = dir, size = size, stages = stages, runs = { "rlaif" } }:run {}
end

local rows = {}
for _, v in ipairs(variants) do
  local r = run(v)
  rows[#rows + 1] = string.format("%-18s %10.1f%% %12.1f%% %14.1f%% %10.1f%%", v[1], 100 * r.labels.mean_confidence,
    100 * r.rm_accuracy.rlaif, 100 * r.win_rate.rlaif_vs_sft, 100 * r.lc_win_rate.rlaif_vs_sft)
end
print(string.format("\n%-18s %11s %13s %15s %11s", "labels", "confidence", "RM accuracy", "RLAIF vs SFT",
  "LC"))
print(table.concat(rows, "\n"))
print("(RM accuracy on held-out simulated human labels; win rates by the hidden truth; simulated judge)")
