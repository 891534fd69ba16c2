-- lua/rlaif/cli/rl.lua -- `rlaif rl`: optimise a policy against a reward model, a
-- Lua reward function or an LLM judge (rlaif.rl), with a progress line, a JSONL
-- step log, checkpoints and --resume.
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local usage = [[
usage: rlaif rl --policy DIR --data FILE --out DIR (--reward-model DIR | --reward-lua FILE | --judge-api NAME)
                [options]

  --policy DIR            the SFT policy (Hugging Face directory); --tokenizer FILE
                          defaults to DIR/tokenizer.json
  --value DIR             the value model's starting point (e.g. the reward model);
                          default: the policy with a fresh value head
  --reward-model DIR      a reward model (head "reward"); rewards are normalised with
                          DIR/reward_stats.json when present (--no-normalize to skip)
  --reward-lua FILE       a Lua file that returns fn(prompts, responses, rows) -> {numbers}
  --judge-api NAME        an LLM judge through the labeler (openai-completions, vllm, ...):
                          --judge-base-url URL, --judge-model NAME, --judge-api-key-env VAR,
                          --judge-mode direct|pairwise (default direct: d-RLAIF 1-10 scores),
                          --judge-template NAME (default drlaif-score / summarize-detailed),
                          --judge-concurrency N
  --data FILE             prompts: --format tldr | hh | prompts (JSONL with a "prompt" field)
  --limit N               use the first N prompts
  --algo A                reinforce | ppo | rloo | grpo (default reinforce)
  --steps N               optimisation steps (default 100); --batch-size N prompts per step (8)
  --kl-coef B             beta (default 0.05); --target-kl K, --horizon H: adaptive beta
  --temperature T         sampling temperature (default 0.9); --top-k K, --top-p P
  --max-new-tokens N      response length cap (default 64); --max-prompt-tokens N
  --lr X, --value-lr X    AdamW learning rates (default 1e-5); --max-grad-norm X
  --epochs N, --minibatch-size N, --group-size N, --seed N, --reward-scale X,
  --vf-coef X, --gamma X, --lam X, --cliprange X, --cliprange-value X, --kl-in reward|loss,
  --missing-eos-penalty X, --whiten / --no-whiten
  --out DIR               log.jsonl, samples.jsonl, checkpoints, final policy/ and value/
  --save-every N          checkpoint every N steps (default 10, and at the end)
  --resume                continue the run in --out from its last checkpoint
  --quiet                 no progress line or summary
]]

local FLAGS = {
  policy = "string", value = "string", tokenizer = "string", ["reward-model"] = "string",
  ["reward-lua"] = "string", ["judge-api"] = "string", ["judge-base-url"] = "string",
  ["judge-model"] = "string", ["judge-api-key-env"] = "string",
  ["judge-mode"] = { "string", one_of = { "direct", "pairwise" } }, ["judge-template"] = "string",
  ["judge-concurrency"] = { "integer", min = 1 },
  data = "string", format = { "string", one_of = { "tldr", "hh", "prompts" } }, limit = { "integer", min = 1 },
  algo = { "string", one_of = { "reinforce", "ppo", "rloo", "grpo" } },
  steps = { "integer", min = 1 }, ["batch-size"] = { "integer", min = 1 },
  ["kl-coef"] = { "number", min = 0 }, ["target-kl"] = { "number", gt = 0 }, horizon = { "number", gt = 0 },
  temperature = { "number", gt = 0 }, ["top-k"] = { "integer", min = 0 }, ["top-p"] = { "number", gt = 0, max = 1 },
  ["max-new-tokens"] = { "integer", min = 1 }, ["max-prompt-tokens"] = { "integer", min = 1 },
  lr = { "number", gt = 0 }, ["value-lr"] = { "number", gt = 0 }, ["max-grad-norm"] = { "number", min = 0 },
  epochs = { "integer", min = 1 }, ["minibatch-size"] = { "integer", min = 1 },
  ["group-size"] = { "integer", min = 1 }, seed = "integer", ["reward-scale"] = "number",
  ["vf-coef"] = { "number", min = 0 }, gamma = { "number", min = 0, max = 1 }, lam = { "number", min = 0, max = 1 },
  cliprange = { "number", gt = 0 }, ["cliprange-value"] = { "number", gt = 0 },
  ["kl-in"] = { "string", one_of = { "reward", "loss" } }, ["missing-eos-penalty"] = "number",
  whiten = "flag", ["no-whiten"] = "flag", ["no-normalize"] = "flag",
  out = "string", ["save-every"] = { "integer", min = 1 }, resume = "flag", quiet = "flag",
}

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

-- prompts (and reference responses) from the dataset
local function read_prompts(o)
  local data = require "rlaif.data"
  local fmt = o.format or "prompts"
  local out = {}
  if fmt == "prompts" then
    local json = require("rlaif.core").json
    local f, err = io.open(o.data, "rb")
    if not f then error("cannot open " .. o.data .. ": " .. tostring(err), 0) end
    local n = 0
    for line in f:lines() do
      n = n + 1
      if line:match("%S") then
        local r = json.decode(line)
        if type(r) ~= "table" or type(r.prompt) ~= "string" then
          f:close()
          error(string.format("%s:%d: expected a JSON object with a string \"prompt\"", o.data, n), 0)
        end
        out[#out + 1] = { prompt = r.prompt, reference = type(r.reference) == "string" and r.reference or nil }
        if o.limit and #out >= o.limit then break end
      end
    end
    f:close()
    return out
  end
  local recs = data.read(o.data, { format = fmt, limit = o.limit })
  for _, r in ipairs(recs) do
    if fmt == "tldr" then
      local fl = r.fields or {}
      local p = string.format("SUBREDDIT: r/%s\nTITLE: %s\nPOST: %s\nTL;DR:", fl.subreddit or "", fl.title or "",
        fl.post or r.context)
      out[#out + 1] = { prompt = p, reference = r.response,
        fields = { subreddit = fl.subreddit or "", title = fl.title or "", post = fl.post or r.context } }
    else   -- hh: the dialogue up to the last assistant turn; chosen is the reference
      out[#out + 1] = { prompt = r.context .. "\n\nAssistant:", reference = r.a }
    end
  end
  return out
end

local function make_reward(o, rlaif)
  local n = (o["reward-model"] and 1 or 0) + (o["reward-lua"] and 1 or 0) + (o["judge-api"] and 1 or 0)
  if n ~= 1 then error("give exactly one of --reward-model, --reward-lua, --judge-api", 0) end
  if o["reward-model"] then
    local rm, err = rlaif.model.try_load(o["reward-model"], { head = "reward" })
    if not rm then error(err, 0) end
    local norm
    local sp = o["reward-model"] .. "/reward_stats.json"
    if not o["no-normalize"] and file_exists(sp) then norm = rlaif.train.load_reward_stats(o["reward-model"]) end
    return rm, norm
  end
  if o["reward-lua"] then
    local chunk, err = loadfile(o["reward-lua"])
    if not chunk then error(err, 0) end
    local fn = chunk()
    if type(fn) ~= "function" then
      error(o["reward-lua"] .. " must return a function(prompts, responses, rows) -> {numbers}, got " .. type(fn), 0)
    end
    return fn
  end
  local client = rlaif.llm.client {
    api = o["judge-api"], base_url = o["judge-base-url"], model = o["judge-model"],
    api_key_env = o["judge-api-key-env"], concurrency = o["judge-concurrency"] or 16,
  }
  local mode = o["judge-mode"] or "direct"
  local L = rlaif.labeler.new { client = client,
    template = o["judge-template"] or (mode == "direct" and "drlaif-score" or "summarize-detailed") }
  return rlaif.rl.judge_reward { labeler = L, mode = mode, baseline = "sft" }
end

local function main(args)
  local o, status = require("rlaif.opts").main_args("rl", args, FLAGS, usage)
  if not o then return status end
  for _, k in ipairs { "policy", "data", "out" } do
    if not o[k] then
      io.stderr:write("rlaif rl: --", k, " is required\n", usage)
      return 2
    end
  end
  local rlaif = require "rlaif"
  local ok, err = pcall(function()
    if not o.resume and file_exists(o.out .. "/checkpoint.json") then
      error(o.out .. " holds a run (checkpoint.json): pass --resume to continue it, or choose another --out", 0)
    end
    local policy, perr = rlaif.model.try_load(o.policy)
    if not policy then error(perr, 0) end
    local tpath = o.tokenizer or (o.policy .. "/tokenizer.json")
    local tok, terr = rlaif.tokenizer.load(tpath)
    if not tok then error("tokenizer: " .. tostring(terr), 0) end
    local value
    if o.value then
      local verr
      value, verr = rlaif.model.try_load(o.value, { head = "reward" })
      if not value then error(verr, 0) end
    end
    local reward, norm = make_reward(o, rlaif)
    local prompts = read_prompts(o)
    if #prompts == 0 then error(o.data .. ": no prompts", 0) end
    local whiten
    if o.whiten then whiten = true elseif o["no-whiten"] then whiten = false end
    local tr = rlaif.rl.trainer {
      algo = o.algo or "reinforce", policy = policy, value = value, reward = reward, reward_norm = norm,
      tokenizer = tok, kl_coef = o["kl-coef"], target_kl = o["target-kl"], horizon = o.horizon,
      temperature = o.temperature, top_k = o["top-k"], top_p = o["top-p"],
      max_new_tokens = o["max-new-tokens"] or 64, max_prompt_tokens = o["max-prompt-tokens"],
      lr = o.lr, value_lr = o["value-lr"], max_grad_norm = o["max-grad-norm"], epochs = o.epochs,
      minibatch_size = o["minibatch-size"], group_size = o["group-size"], seed = o.seed,
      reward_scale = o["reward-scale"], vf_coef = o["vf-coef"], gamma = o.gamma, lam = o.lam,
      cliprange = o.cliprange, cliprange_value = o["cliprange-value"], kl_in = o["kl-in"],
      missing_eos_penalty = o["missing-eos-penalty"], whiten = whiten,
    }
    local last = tr:train { prompts = prompts, steps = o.steps or 100, batch_size = o["batch-size"] or 8,
      out = o.out, save_every = o["save-every"] or 10, resume = o.resume or false, quiet = o.quiet or false }
    if not o.quiet and last then
      io.stderr:write(string.format("rlaif rl: %d steps (%s): reward %.4g, KL %.4g -> %s\n", last.step, last.algo,
        last.reward_mean, last.kl, o.out))
    elseif not o.quiet then
      io.stderr:write("rlaif rl: nothing to do: ", o.out, " already holds ", tostring(o.steps or 100), " steps\n")
    end
  end)
  if not ok then
    local msg = tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")
    io.stderr:write("rlaif rl: ", msg, "\n")
    if rlaif.core.cancelled and rlaif.core.cancelled() or msg:match("interrupted") then return 130 end
    return 1
  end
  return 0
end

return main
