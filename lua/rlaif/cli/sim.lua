-- lua/rlaif/cli/sim.lua -- `rlaif sim`: the paper's RLAIF vs RLHF experiment in a
-- simulated world (rlaif.sim, rlaif.sim_pipeline): tokenizer, SFT, samples, AI and
-- human labels, two reward models, a best-of-n check, RL against each reward
-- model and against the judge's score (d-RLAIF), and the evaluation, printed
-- beside the paper's numbers; DIR/results.json holds the numbers and
-- DIR/report.html the report. Each stage is cached in DIR, so a rerun (or a run
-- after Ctrl-C or kill) continues where it stopped. `--serve PORT` serves the
-- simulated judge over HTTP instead (rlaif.serve, OpenAI completions with
-- logprobs), and `--judge-api` puts any LLM in the judge's seat.
--
-- A subcommand module returns main(args) -> exit status: 0 done, 1 failed,
-- 2 bad usage, 130 interrupted (rerun the same command to continue).

local opts = require "rlaif.opts"

local usage = [[
usage: rlaif sim [options]
       rlaif sim --serve PORT [--port-file FILE] [judge options]

Runs the paper's experiment offline in a simulated world: synthetic posts with a
hidden true quality, SIMULATED human raters and a SIMULATED AI judge (an LLM
client backend, api = "sim", that answers the labeler's real prompts).

  --out DIR                   run directory (default runs/sim); a rerun continues there
  --seed N                    world, training and judge seed (default 1)
  --size default|small|tiny   default: about 3 minutes on 2 cores; small: a smaller world and
                              a quarter of the RL;
                              tiny: the mechanics in seconds (the numbers mean nothing)
  --stop-after STAGE          label | rm | rl | eval (default eval); the results so far are written
  --algo A                    RL algorithm: reinforce (the paper's, default) | ppo | rloo | grpo
  --runs LIST                 RL runs, comma-separated (default rlaif,rlhf,drlaif)
  --judge-noise X             sd of the judge's noise on its judged quality (default 0.05)
  --judge-position-bias X     logit added to the first position (default 0.5)
  --judge-length-bias X       added to the judged quality per 10 words (default 0)
  --human-noise X             probability a human label is flipped (default 0.25)
  --no-swap                   label one order only (no position debiasing)
  --cot                       two-step chain-of-thought labeling
  --template NAME             labeling prompt template (default summarize-detailed)
  --threads N                 compute threads (default 1 unless RLAIF_NUM_THREADS is set:
                              these models are too small to gain from a second thread)
  --quiet                     no progress or stage lines (the tables still print)

A real LLM in the judge's seat (labels, d-RLAIF rewards and the AI-judge evaluation):
  --judge-api NAME            an rlaif.llm backend: openai-completions, openai-chat, vllm,
                              llamacpp, ollama, tgi, ... (it must return log-probabilities)
  --base-url URL --model NAME [--api-key-env VAR] [--judge-concurrency N]

Serving the simulated judge (then label against it with --judge-api openai-completions
--base-url http://127.0.0.1:PORT/v1 --model sim-judge):
  --serve PORT                OpenAI-compatible completions with logprobs on 127.0.0.1:PORT
                              (0: any free port); the judge flags and --seed set the judge
  --port-file FILE            write the port there once listening
]]

local FLAGS = {
  out = "string", seed = { "integer", min = 0, max = 2 ^ 53 },
  size = { "string", one_of = { "default", "small", "tiny" } },
  ["stop-after"] = { "string", one_of = { "label", "rm", "rl", "eval" } },
  algo = { "string", one_of = { "reinforce", "ppo", "rloo", "grpo" } },
  runs = "string",
  ["judge-noise"] = { "number", min = 0, max = 100 },
  ["judge-position-bias"] = { "number", min = -100, max = 100 },
  ["judge-length-bias"] = { "number", min = -100, max = 100 },
  ["human-noise"] = { "number", min = 0, max = 1 },
  ["no-swap"] = "flag", cot = "flag", template = "string", quiet = "flag",
  threads = { "integer", min = 1, max = 1024 },
  ["judge-api"] = "string", ["base-url"] = "string", model = "string", ["api-key-env"] = "string",
  ["judge-concurrency"] = { "integer", min = 1, max = 4096 },
  serve = { "integer", min = 0, max = 65535 }, ["port-file"] = "string",
}

local function fail(msg, code)
  io.stderr:write("rlaif sim: ", msg, "\n")
  return code or 2
end

local function serve(o)
  local sim, rlaif = require "rlaif.sim", require "rlaif"
  for _, k in ipairs { "judge-api", "base-url", "model", "out", "stop-after", "algo", "runs", "size" } do
    if o[k] ~= nil then return fail("--" .. k .. " does not go with --serve (it serves the simulated judge)") end
  end
  local client = sim.client { api = "sim", seed = o.seed, judge_noise = o["judge-noise"],
    judge_position_bias = o["judge-position-bias"], judge_length_bias = o["judge-length-bias"] }
  if not o.quiet then
    io.stderr:write(string.format("rlaif sim: serving the simulated judge (seed %d, noise %g, position bias %g, " ..
      "length bias %g) as model 'sim-judge'; Ctrl-C stops\n", o.seed or 1,
      client.judge.noise, client.judge.position_bias, client.judge.length_bias))
  end
  local ok, err = pcall(rlaif.serve, { client = client, name = "sim-judge", port = o.serve, port_file = o["port-file"],
    quiet = o.quiet or false })
  if not ok then
    if tostring(err):find("interrupted", 1, true) then return 130 end
    return fail(tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", ""), 1)
  end
  return 0
end

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
  local rlaif = require "rlaif"
  if o.threads then rlaif.set_threads(o.threads)
  elseif not os.getenv("RLAIF_NUM_THREADS") then rlaif.set_threads(1) end
  if o["port-file"] and not o.serve then return fail("--port-file goes with --serve") end
  if o.serve then return serve(o) end
  local judge
  if o["judge-api"] then
    if o["judge-api"] == "sim" then return fail("--judge-api sim is the default judge; leave the flag out") end
    judge = { api = o["judge-api"], base_url = o["base-url"], model = o.model, api_key_env = o["api-key-env"],
      concurrency = o["judge-concurrency"] or 16 }
  else
    for _, k in ipairs { "base-url", "model", "api-key-env", "judge-concurrency" } do
      if o[k] ~= nil then return fail("--" .. k .. " needs --judge-api") end
    end
  end
  local runs
  if o.runs then
    runs = {}
    for r in o.runs:gmatch("[^,]+") do
      if r ~= "rlaif" and r ~= "rlhf" and r ~= "drlaif" then
        return fail("option --runs has an unknown run '" .. r .. "' (expected rlaif, rlhf, drlaif)")
      end
      runs[#runs + 1] = r
    end
    if #runs == 0 then return fail("option --runs needs at least one of rlaif, rlhf, drlaif") end
  end
  local sim = require "rlaif.sim"
  local results, dir = nil, o.out or "runs/sim"
  local run_ok, err = pcall(function()
    local p = sim.pipeline {
      out = dir, seed = o.seed, size = o.size, human_noise = o["human-noise"],
      judge_noise = o["judge-noise"], judge_position_bias = o["judge-position-bias"],
      judge_length_bias = o["judge-length-bias"], swap = not o["no-swap"], cot = o.cot or false,
      template = o.template, quiet = o.quiet or false, judge = judge, algo = o.algo, runs = runs,
    }
    results = p:run { stop_after = o["stop-after"] or "eval" }
  end)
  if not run_ok then
    local msg = tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")
    if msg:find("interrupted", 1, true) then
      io.stderr:write("rlaif sim: interrupted; rerun the same command to continue\n")
      return 130
    end
    return fail(msg, 1)
  end
  io.write(sim.format_results(results))
  io.write("results: ", dir, "/results.json\nreport:  ", dir, "/report.html\n")
  return 0
end

return main
