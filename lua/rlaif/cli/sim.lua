-- lua/rlaif/cli/sim.lua -- `rlaif sim`: the paper's RLAIF vs RLHF experiment in a
-- simulated world (rlaif.sim, rlaif.sim_pipeline): tokenizer, SFT, samples, AI and
-- human labels, two reward models and a best-of-n check, printed beside the
-- paper's numbers; DIR/results.json holds the numbers. Each stage is cached in
-- DIR, so a rerun (or a run after Ctrl-C or kill) continues where it stopped.
--
-- A subcommand module returns main(args) -> exit status: 0 done, 1 failed,
-- 2 bad usage, 130 interrupted (rerun the same command to continue).

local opts = require "rlaif.opts"

local usage = [[
usage: rlaif sim [options]

Runs the paper's experiment offline in a simulated world: synthetic posts with a
hidden true quality, SIMULATED human raters and a SIMULATED AI judge (an LLM
client backend, api = "sim", that answers the labeler's real prompts).

  --out DIR                   run directory (default runs/sim); a rerun continues there
  --seed N                    world and training seed (default 1)
  --size small|default        small runs in well under a minute (default: default)
  --stop-after STAGE          label | rm (default rm; rl and eval are not yet available)
  --judge-noise X             sd of the judge's noise on its judged quality (default 0.05)
  --judge-position-bias X     logit added to the first position (default 0.5)
  --judge-length-bias X       added to the judged quality per 10 words (default 0)
  --human-noise X             probability a human label is flipped (default 0.25)
  --no-swap                   label one order only (no position debiasing)
  --cot                       two-step chain-of-thought labeling
  --template NAME             labeling prompt template (default summarize-detailed)
  --algo A                    RL algorithm (not yet available: the RL stage is coming)
  --quiet                     no progress or stage lines (the tables still print)
]]

local FLAGS = {
  out = "string", seed = { "integer", min = 0, max = 2 ^ 53 }, size = { "string", one_of = { "small", "default" } },
  ["stop-after"] = { "string", one_of = { "label", "rm", "rl", "eval" } },
  ["judge-noise"] = { "number", min = 0, max = 100 },
  ["judge-position-bias"] = { "number", min = -100, max = 100 },
  ["judge-length-bias"] = { "number", min = -100, max = 100 },
  ["human-noise"] = { "number", min = 0, max = 1 },
  ["no-swap"] = "flag", cot = "flag", template = "string", algo = "string", quiet = "flag",
}

local function main(args)
  local ok, o = pcall(opts.cli, "sim", args, FLAGS)
  if not ok then
    io.stderr:write(tostring(o), "\n", usage)
    return 2
  end
  if o.help then io.write(usage) return 0 end
  if #o > 0 then
    io.stderr:write("rlaif sim: unexpected argument '", o[1], "'\n", usage)
    return 2
  end
  local stop = o["stop-after"] or "rm"
  if o.algo or stop == "rl" or stop == "eval" then
    io.stderr:write("rlaif sim: ", o.algo and "--algo" or ("--stop-after " .. stop), " is not yet available: ",
      "the RL and evaluation stages come with rlaif.rl and the evaluation module; use --stop-after label|rm\n")
    return 2
  end
  local sim = require "rlaif.sim"
  local results
  local run_ok, err = pcall(function()
    local p = sim.pipeline {
      out = o.out or "runs/sim", seed = o.seed, size = o.size, human_noise = o["human-noise"],
      judge_noise = o["judge-noise"], judge_position_bias = o["judge-position-bias"],
      judge_length_bias = o["judge-length-bias"], swap = not o["no-swap"], cot = o.cot or false,
      template = o.template, quiet = o.quiet or false,
    }
    results = p:run { stop_after = stop }
  end)
  if not run_ok then
    local msg = tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")
    if msg:find("interrupted", 1, true) then
      io.stderr:write("rlaif sim: interrupted; rerun the same command to continue\n")
      return 130
    end
    io.stderr:write("rlaif sim: ", msg, "\n")
    return 1
  end
  io.write(sim.format_results(results))
  io.write("results: ", (o.out or "runs/sim"), "/results.json\n")
  return 0
end

return main
