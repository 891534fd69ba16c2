-- lua/rlaif/sim_pipeline.lua -- the stages of `rlaif sim`: the paper's RLAIF vs
-- RLHF experiment in the simulated world of rlaif.sim, each stage cached in one
-- directory so a rerun (or a killed run) continues where it stopped.
--
--   local sim = require "rlaif.sim"
--   local p = sim.pipeline{out = "runs/sim", seed = 1, size = "default", judge_position_bias = 2}
--   local results = p:run{stop_after = "eval"}    -- every stage; DIR/results.json, DIR/report.html
--   print(sim.format_results(results))             -- the tables `rlaif sim` prints
--   p:stage("label")                               -- one stage (and what it needs), cached
--   -- swap one stage: replace it, keeping the default reachable; the key names the variant
--   local p2 = sim.pipeline{out = "runs/clamped", stages = {label = {key = "clamp-0.4-0.6",
--     run = function(p, default) return default(p, {labeler = {clamp = {0.4, 0.6}}}) end}}}
--   -- the RL stage takes reward shaping, a beta schedule (the trainer's on_step) and trainer options
--   local p3 = sim.pipeline{out = "runs/anneal", stages = {rl = {key = "beta-anneal",
--     run = function(p, default) return default(p, {on_step = function(tr, st, kind)
--       tr.kl_coef = 0.05 * (1 - st.step / 60) end}) end}}}
--
-- Stages, in order (DIR = `out`):
--   tokenizer  a byte-level BPE trained on the train split      DIR/tokenizer.json
--   sft        a small GPT-2 fine-tuned on the references       DIR/sft/ (HF dir + tokenizer.json, log.jsonl)
--   samples    SFT samples: two per pref/test prompt (pairs),   DIR/samples.jsonl
--              best_of per eval prompt
--   label      AI labels (rlaif.labeler through the judge,      DIR/labels_ai.jsonl, DIR/labels_human.jsonl
--              both orders, soft) and simulated human labels
--   rm         RLAIF RM (AI soft labels) and RLHF RM (human     DIR/rm_rlaif/, DIR/rm_rlhf/ (+ reward_stats.json)
--              labels), both from the SFT model
--   bestofn    best-of-n reranking of eval samples by each RM and by the judge's d-RLAIF score, scored by the
--              hidden truth: the check that the reward models carry the signal RL needs
--   rl         RL from the SFT policy (rlaif.rl; REINFORCE with  DIR/rl_rlaif/, rl_rlhf/, rl_drlaif/ (log.jsonl,
--              a value baseline by default) against the RLAIF   samples.jsonl, checkpoints, policy/)
--              RM, the RLHF RM and the judge's 1-10 score (d-RLAIF)
--   eval       every policy's samples on the held-out prompts,  DIR/eval/ (responses_*.jsonl, truth_* and
--              compared by the hidden truth (the "human          judge_* records and results)
--              evaluation": higher q wins, ties half) and by the
--              AI judge (rlaif.eval.win_rate), raw and length-controlled (App. J)
-- After every run DIR/report.html (rlaif.report) shows the printed tables, every
-- training curve (SFT, reward models, each RL run), the win-rate bars, the
-- alignment table and sample responses.
--
-- Caching. DIR/manifest.json records, per stage, a key: a hash of the previous
-- stage's key and this stage's configuration, so a stage's cache is valid only
-- for the same configuration of it and of everything before it. A changed
-- configuration recomputes from the first stage it touches (a new judge knob
-- reuses the tokenizer, SFT model and samples). Each RL run has a key of its own
-- (the SFT and reward-model weights by content, or the judge's configuration,
-- and the RL settings), so a judge knob that leaves the human labels alone
-- reuses the RLHF policy. A stage that was interrupted continues: SFT,
-- reward-model and RL training from their state files and checkpoints
-- (bit-exact), labeling and judging from their JSONL files; the short stages
-- start over. DIR/results.json (the numbers so far) is rewritten atomically
-- after every stage. DIR must be new, empty or an earlier run's directory:
-- nothing else is overwritten.
--
-- What it is not: no world or judge (rlaif.sim), no training math (rlaif.train,
-- rlaif.rl), no labeling logic (rlaif.labeler), no statistics (rlaif.eval,
-- rlaif.metrics), no HTML (rlaif.report). Sets no globals.

local core = require "rlaif.core"
local opts = require "rlaif.opts"
local progress = require "rlaif.progress"
local sim = require "rlaif.sim"

local json = core.json
local M = {}

M.STAGES = { "tokenizer", "sft", "samples", "label", "rm", "bestofn", "rl", "eval" }
M.STOP_AFTER = { label = "label", rm = "bestofn", rl = "rl", eval = "eval" }   -- --stop-after X runs through this stage
M.RUNS = { "rlaif", "rlhf", "drlaif" }   -- the RL runs: against each reward model and the judge's score
--- The comparisons of Table 1: {key, A, B}.
M.COMPARISONS = { { "rlaif_vs_sft", "rlaif", "sft" }, { "rlhf_vs_sft", "rlhf", "sft" },
  { "rlaif_vs_rlhf", "rlaif", "rlhf" }, { "drlaif_vs_sft", "drlaif", "sft" } }

--- The paper's numbers the tables print beside ours (Lee et al. 2023, summarization).
M.PAPER = {
  alignment_ai_vs_human = 0.780,   -- Table 2, Detailed + CoT 0-shot (PaLM 2 L)
  same_position = 0.18,            -- Table 4, PaLM 2 L
  rm_accuracy_rlhf = 0.793,        -- Table 5
  rm_accuracy_rlaif = 0.742,       -- Table 5
  human_agreement = 0.75,          -- inter-annotator agreement 73-77%
  -- Table 1 (human evaluation) and App. J (length-corrected), summarization
  win_rate = { rlaif_vs_sft = 0.71, rlhf_vs_sft = 0.73, rlaif_vs_rlhf = 0.50, drlaif_vs_sft = 0.74 },
  lc_win_rate = { rlaif_vs_sft = 0.59, rlhf_vs_sft = 0.61, rlaif_vs_rlhf = 0.47, drlaif_vs_sft = 0.65 },
  mean_chars = { sft = 132, rlaif = 164, rlhf = 161 },   -- App. J, characters
}

-- ---- presets ----

--- Hyperparameters by size. `hyper` in the options overrides any leaf.
--- RL follows the paper where the small world allows: REINFORCE with a value
--- baseline, beta = 0.05 in (1 - beta) r - beta KL, sampling temperature 0.9;
--- the learning rate is far above the paper's 1e-5 (a 2-layer model trained for
--- a minute, not PaLM 2 for 8 epochs). Rewards from a reward model are in units
--- of its standard deviation on the training pairs (reward_stats.json).
local function preset(world, o)
  local t = {
    world = world,
    vocab_size = 1024,
    model = { arch = "gpt2", n_layer = 2, n_head = 2, d_model = 64, max_seq = 128 },
    sft = { steps = 1200, batch_size = 16, lr = 3e-3, warmup = 20, decay = 0.3, final = 0.1 },
    samples = { temperature = 0.9, max_new_tokens = 40, best_of = 8, batch = 128 },
    rm = { epochs = 2, batch_size = 16, lr = 1e-3, center = 0.01 },
    rl = { algo = "reinforce", steps = 60, batch_size = 32, lr = 3e-4, value_lr = 1e-3, kl_coef = 0.05,
      temperature = 0.9, max_new_tokens = 40, vf_coef = 0.5, save_every = 10 },
    eval = { samples = 4, temperature = 0.9, max_new_tokens = 40, batch = 128, bootstrap = 200 },
  }
  for k, v in pairs(o or {}) do
    for kk, vv in pairs(v) do t[k][kk] = vv end
  end
  return t
end

M.PRESETS = {
  default = preset(sim.SIZES.default),
  -- a smaller world and a quarter of the RL: the test suite's run of the findings
  small = preset(sim.SIZES.small, { rl = { steps = 30, batch_size = 16 }, eval = { samples = 2 } }),
  -- the mechanics in seconds (tests, trying a flag): the numbers mean nothing
  tiny = preset(sim.SIZES.tiny, { model = { d_model = 32, max_seq = 96 }, sft = { steps = 12, batch_size = 8 },
    samples = { best_of = 3, max_new_tokens = 12 }, rm = { epochs = 1, batch_size = 8 },
    rl = { steps = 3, batch_size = 4, max_new_tokens = 12, save_every = 1 },
    eval = { samples = 2, max_new_tokens = 12, bootstrap = 50 } }),
}

local function deep_copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deep_copy(v) end
  return c
end

local function deep_merge(dst, src, path)
  for k, v in pairs(src) do
    if dst[k] == nil then error(string.format("sim.pipeline: option 'hyper' has an unknown key '%s%s'", path, k), 4) end
    if type(v) == "table" and type(dst[k]) == "table" then
      deep_merge(dst[k], v, path .. k .. ".")
    elseif type(v) ~= type(dst[k]) then
      error(string.format("sim.pipeline: option 'hyper' key '%s%s' must be a %s, got %s", path, k, type(dst[k]),
        type(v)), 4)
    else
      dst[k] = v
    end
  end
end

--- wsd_schedule{steps =, warmup =, decay =, final =} -> function(step): linear warm-up
--- over `warmup` steps, constant, then a linear decay to `final` over the last
--- `decay` fraction of the steps. (A tiny model learns to copy facts from the
--- post only while the learning rate is high; a cosine decays it too soon.)
function M.wsd_schedule(s)
  local d0 = math.floor((1 - s.decay) * s.steps)
  return function(step)
    if s.warmup > 0 and step <= s.warmup then return step / s.warmup end
    if step <= d0 then return 1 end
    return 1 - (1 - s.final) * math.min(1, (step - d0) / math.max(1, s.steps - d0))
  end
end

-- ---- files ----

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local function read_file(p)
  local f, err = io.open(p, "rb")
  if not f then error("sim: cannot read " .. tostring(err), 0) end
  local s = f:read("a")
  f:close()
  return s
end

--- write_atomic(path, s): replace path with s atomically (rlaif.fileio.write).
local function write_atomic(path, s)
  require("rlaif.fileio").write(path, s, { who = "sim" })
end
M.write_atomic = write_atomic

local function mkdir_p(dir)
  if exists(dir .. "/.") then return end
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  if not os.execute("mkdir -p -- " .. q) or not exists(dir .. "/.") then
    error("sim: cannot create directory " .. dir, 0)
  end
end

local function rm_rf(dir)
  os.execute("rm -rf -- '" .. dir:gsub("'", "'\\''") .. "'")
end

local function is_dir_empty(dir)
  local pipe = io.popen("ls -A -- '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  if not pipe then return true end
  local first = pipe:read("l")
  pipe:close()
  return first == nil
end

local function write_jsonl(path, records)
  local parts = {}
  for i, r in ipairs(records) do parts[i] = json.encode(r) end
  parts[#parts + 1] = ""
  write_atomic(path, table.concat(parts, "\n"))
end

local function read_jsonl(path)
  local out = {}
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if line:match("%S") then
      local r, err = json.decode(line)
      if type(r) ~= "table" then error(string.format("sim: %s:%d: %s", path, n, err or "not a JSON object"), 0) end
      out[#out + 1] = r
    end
  end
  return out
end

local function copy_file(src, dst) write_atomic(dst, read_file(src)) end

-- ---- options ----

local PIPELINE = opts.schema("sim.pipeline", {
  out = { "string", required = true, check = function(s) return s ~= "", "must not be empty" end },
  seed = { "integer", min = 0, max = 2 ^ 53, default = 1 },
  size = { "string", one_of = { "default", "small", "tiny" }, default = "default" },
  human_noise = { "number", min = 0, max = 1, default = 0.25 },
  judge_noise = { "number", min = 0, max = 100, default = sim.JUDGE_DEFAULTS.judge_noise },
  judge_position_bias = { "number", min = -100, max = 100, default = sim.JUDGE_DEFAULTS.judge_position_bias },
  judge_length_bias = { "number", min = -100, max = 100, default = sim.JUDGE_DEFAULTS.judge_length_bias },
  judge_scale = { "number", gt = 0, max = 1e4, default = sim.JUDGE_DEFAULTS.judge_scale },
  swap = { "boolean", default = true },
  cot = { "boolean", default = false },
  template = { "string", default = "summarize-detailed" },
  score_template = { "string", default = "drlaif-score" },
  labeler = "table",   -- extra rlaif.labeler.new options (JSON values: clamp, shots, ...)
  judge = "table",     -- client options of another judge (a real LLM: {api =, base_url =, model =, ...})
  hyper = "table",     -- overrides of the size preset, e.g. {sft = {steps = 500}, rl = {algo = "ppo"}}
  algo = { "string", one_of = require("rlaif.rl").ALGOS },   -- = hyper.rl.algo
  runs = "table",      -- the RL runs, a subset of {"rlaif", "rlhf", "drlaif"} (default all three)
  stages = "table",    -- {name = function(p, default) | {run = function(p, default), key = "variant"}}
  quiet = { "boolean", default = false },
  progress = "boolean|table",   -- rlaif.progress options for the bars (tests: {tty = false, stream = ...})
})

local Pipeline = {}
Pipeline.__index = Pipeline

local RUN = opts.schema("sim.pipeline:run", {
  stop_after = { "string", one_of = { "label", "rm", "rl", "eval" }, default = "eval" },
})

--- pipeline{out =, seed = 1, size = "default" | "small" | "tiny", human_noise = 0.25, judge_noise =,
---   judge_position_bias =, judge_length_bias =, judge_scale =, swap = true, cot = false,
---   template = "summarize-detailed", labeler = {}, judge = nil, hyper = {}, algo =,
---   runs = {"rlaif", "rlhf", "drlaif"}, stages = {}, quiet = false, progress =}
---   -> a pipeline over directory `out` (see the header)
function M.new(o)
  o = PIPELINE(o)
  local hyper = deep_copy(M.PRESETS[o.size])
  if o.hyper then deep_merge(hyper, o.hyper, "") end
  if o.algo then hyper.rl.algo = o.algo end
  local ok_algo = false
  for _, a in ipairs(require("rlaif.rl").ALGOS) do if a == hyper.rl.algo then ok_algo = true end end
  if not ok_algo then
    error("sim.pipeline: option 'hyper' key 'rl.algo' must be one of " ..
      table.concat(require("rlaif.rl").ALGOS, ", ") .. ", got " .. tostring(hyper.rl.algo), 2)
  end
  local runs = {}
  for i, k in ipairs(o.runs or M.RUNS) do
    local known = false
    for _, r in ipairs(M.RUNS) do if r == k then known = true end end
    if not known then
      error(string.format("sim.pipeline: option 'runs' has an unknown run '%s' (expected rlaif, rlhf, drlaif)",
        tostring(k)), 2)
    end
    runs[i] = k
  end
  local stages = {}
  for name, v in pairs(o.stages or {}) do
    local known = false
    for _, s in ipairs(M.STAGES) do if s == name then known = true end end
    if not known then error(string.format("sim.pipeline: option 'stages' has an unknown stage '%s'", name), 2) end
    if type(v) == "function" then v = { run = v } end
    if type(v) ~= "table" or type(v.run) ~= "function" or (v.key ~= nil and type(v.key) ~= "string") then
      error(string.format("sim.pipeline: option 'stages.%s' must be a function or {run = function, key = string}",
        name), 2)
    end
    stages[name] = v
  end
  if o.labeler then
    local ok, err = pcall(json.encode, o.labeler)
    if not ok then error("sim.pipeline: option 'labeler' must hold JSON values only: " .. tostring(err), 2) end
  end
  if o.judge and o.judge.api == nil then error("sim.pipeline: option 'judge' needs api", 2) end
  local self = setmetatable({ cfg = o, hyper = hyper, dir = o.out, custom = stages, results = {}, runs = runs,
    _bars = {} },
    Pipeline)
  return self
end

-- ---- paths, manifest, keys ----

function Pipeline:path(rel) return self.dir .. "/" .. rel end

function Pipeline:_note(msg)
  if self.cfg.quiet then return end
  local pr = self.cfg.progress
  local out = type(pr) == "table" and pr.stream or io.stderr
  out:write(msg, "\n")
  out:flush()
end

function Pipeline:_bar(label, total, unit)
  local o = { label = label, total = total, unit = unit or "it", quiet = self.cfg.quiet }
  if type(self.cfg.progress) == "table" then for k, v in pairs(self.cfg.progress) do o[k] = v end end
  if self.cfg.progress == false then o.quiet = true end
  local bar = progress.new(o)
  self._bars[#self._bars + 1] = bar  -- ended by Pipeline:stage if the stage fails
  return bar
end

-- The part of the configuration each stage depends on (upstream parts enter through the chained key).
function Pipeline:_stage_config(name)
  local c, h = self.cfg, self.hyper
  if name == "tokenizer" then
    -- the tokenizer and SFT see the train split only; the other splits' sizes enter at samples
    return { world = sim.VERSION, seed = c.seed, train = h.world.train, vocab_size = h.vocab_size,
      writers = { careful = sim.CAREFUL, inventive = sim.INVENTIVE } }
  elseif name == "sft" then
    return { model = h.model, sft = h.sft }
  elseif name == "samples" then
    return { samples = h.samples, sizes = h.world }
  elseif name == "label" then
    return { judge = c.judge or { api = "sim", judge_noise = c.judge_noise, judge_position_bias = c.judge_position_bias,
      judge_length_bias = c.judge_length_bias, judge_scale = c.judge_scale }, human_noise = c.human_noise,
      swap = c.swap, cot = c.cot, template = c.template, labeler = c.labeler or {}, truth = sim.Q }
  elseif name == "rm" then
    return { rm = h.rm }
  elseif name == "bestofn" then
    return { score_template = c.score_template }
  elseif name == "rl" then
    return { rl = h.rl, runs = self.runs, score_template = c.score_template }
  elseif name == "eval" then
    return { eval = h.eval, template = c.template, truth = sim.Q }
  end
end

function Pipeline:_keys()
  local keys, prev = {}, "rlaif-sim"
  for _, name in ipairs(M.STAGES) do
    local custom = self.custom[name]
    local cfg = self:_stage_config(name)
    if custom then cfg = { default = cfg, custom = custom.key or "function" } end
    prev = string.format("%016x", sim.hash(prev, name, json.encode(cfg)))
    keys[name] = prev
  end
  return keys
end

function Pipeline:_load_manifest()
  local p = self:path("manifest.json")
  if not exists(p) then return { format = "rlaif-sim", version = sim.VERSION, stages = {} } end
  local m = json.decode(read_file(p))
  if type(m) ~= "table" or m.format ~= "rlaif-sim" or type(m.stages) ~= "table" then
    error("sim: " .. p .. " is not an rlaif sim manifest; choose another --out", 0)
  end
  return m
end

function Pipeline:_save_manifest()
  write_atomic(self:path("manifest.json"), json.encode(self.manifest, { indent = true }) .. "\n")
end

-- Files a stage resumes from: removed when the stage's key changes.
local PARTIAL = {
  sft = { "sft.state" }, label = { "labels_ai.jsonl" }, rm = { "rm_rlaif.state", "rm_rlhf.state" },
}

--- p:open(): create or check DIR and read its manifest (run and stage do it).
function Pipeline:open()
  if self.manifest then return end
  if exists(self.dir) and not exists(self.dir .. "/.") then error("sim: " .. self.dir .. " is a file", 0) end
  if exists(self.dir .. "/.") and not exists(self:path("manifest.json")) and not is_dir_empty(self.dir) then
    error("sim: " .. self.dir .. " exists and is not an rlaif sim directory (no manifest.json); " ..
      "choose a new or empty --out", 0)
  end
  mkdir_p(self.dir)
  self.manifest = self:_load_manifest()
  self.keys = self:_keys()
  self.manifest.config = { seed = self.cfg.seed, size = self.cfg.size, human_noise = self.cfg.human_noise,
    judge_noise = self.cfg.judge_noise, judge_position_bias = self.cfg.judge_position_bias,
    judge_length_bias = self.cfg.judge_length_bias, judge_scale = self.cfg.judge_scale, swap = self.cfg.swap,
    cot = self.cfg.cot, template = self.cfg.template, hyper = self.hyper }
end

-- ---- artifacts shared by the stages ----

--- p:world() -> the world (rlaif.sim.world) of this seed and size.
function Pipeline:world()
  if not self._world then self._world = sim.world { seed = self.cfg.seed, sizes = self.hyper.world } end
  return self._world
end

--- p:tokenizer() -> the trained tokenizer (needs the tokenizer stage).
function Pipeline:tokenizer()
  if not self._tok then
    self._tok = assert(require("rlaif.tokenizer").load(self:path("tokenizer.json")))
  end
  return self._tok
end

--- p:policy() -> the SFT model (a new load each call: callers may train it).
function Pipeline:policy(head)
  return require("rlaif.model").load(self:path("sft"), head and { head = head } or nil)
end

--- p:samples() -> {pairs = {{id, split, prompt_id, a, b}}, best = {{prompt_id, responses}}}
function Pipeline:samples()
  if not self._samples then
    local pairs, best = {}, {}
    for _, r in ipairs(read_jsonl(self:path("samples.jsonl"))) do
      if r.responses then best[#best + 1] = r else pairs[#pairs + 1] = r end
    end
    self._samples = { pairs = pairs, best = best }
  end
  return self._samples
end

--- p:prompt_by_id(id) -> the world's prompt record
function Pipeline:prompt_by_id(id)
  if not self._by_id then
    self._by_id = {}
    for _, split in ipairs(sim.SPLITS) do
      for _, r in ipairs(self:world().splits[split]) do self._by_id[r.id] = r end
    end
  end
  return self._by_id[id]
end

--- p:judge_client() -> the AI judge's client: api = "sim" with this run's knobs, or `judge`.
function Pipeline:judge_client()
  local c = self.cfg
  if c.judge then return require("rlaif.llm").client(deep_copy(c.judge)) end
  return sim.client { api = "sim", seed = c.seed, judge_noise = c.judge_noise,
    judge_position_bias = c.judge_position_bias, judge_length_bias = c.judge_length_bias,
    judge_scale = c.judge_scale }
end

-- The response text as the models see it: a leading space after "TL;DR:".
local function as_response(s) return " " .. s end

-- Generated ids -> the response text: up to the end token, one line, trimmed
-- (the judge reads responses line by line).
local function clean(tok, ids, eos)
  local n = #ids
  for i, id in ipairs(ids) do
    if id == eos then
      n = i - 1
      break
    end
  end
  local text = tok:decode(table.move(ids, 1, n, 1, {}))
  return (text:gsub("[\r\n]+", " "):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- ---- the stages ----

local S = {}

function S.tokenizer(p)
  local w = p:world()
  local texts = {}
  for i, r in ipairs(w.splits.train) do texts[i] = r.prompt .. as_response(r.reference) end
  local bar = p:_bar("tokenizer", 1, "file")
  local ok, err = require("rlaif.tokenizer").train { texts = texts, vocab_size = p.hyper.vocab_size,
    pattern = "gpt2", special = { "<|endoftext|>" }, output = p:path("tokenizer.json") }
  if not ok then error("sim: tokenizer: " .. tostring(err), 0) end
  bar:update(1)
  bar:finish(false)
  p._tok = nil
  return { vocab_size = p:tokenizer():vocab_size(), texts = #texts }
end

function S.sft(p)
  local rlaif_model, train = require "rlaif.model", require "rlaif.train"
  local tok, h = p:tokenizer(), p.hyper
  local eos = tok:id("<|endoftext|>")
  local cfg = deep_copy(h.model)
  cfg.vocab_size, cfg.eos_id, cfg.seed = tok:vocab_size(), eos, p.cfg.seed
  local m = rlaif_model.new(cfg)
  local data = {}
  for i, r in ipairs(p:world().splits.train) do data[i] = { prompt = r.prompt, response = as_response(r.reference) } end
  local s = h.sft
  local bar = p:_bar("sft", s.steps, "step")
  local last
  local state = p:path("sft.state")
  local epochs = math.ceil(s.steps * s.batch_size / #data)
  mkdir_p(p:path("logs"))
  last = train.sft { model = m, tokenizer = tok, data = data, batch_size = s.batch_size, epochs = epochs,
    max_steps = s.steps, lr = s.lr, seed = p.cfg.seed, state = state, save_every = 100, quiet = true,
    log = p:path("logs/sft.jsonl"),
    schedule = M.wsd_schedule(s), on_step = function(info) bar:update(info.step, { { "loss", info.loss } }) end }
  bar:finish(false)
  m:save(p:path("sft"))
  copy_file(p:path("tokenizer.json"), p:path("sft/tokenizer.json"))
  os.remove(state)
  return { steps = last and last.step or s.steps, loss = last and last.loss, params = m:num_params() }
end

-- Sample responses from model m for jobs {r = prompt record, n = copies}: fills
-- j.got with n cleaned texts. Batches of h.batch rows; each batch's seed comes
-- from (seed, tag, batch number), so the same jobs give the same samples.
local function sample_jobs(p, m, jobs, h, bar_label, tag)
  local tok = p:tokenizer()
  local eos = tok:id("<|endoftext|>")
  local total = 0
  for _, j in ipairs(jobs) do total = total + j.n end
  local bar = p:_bar(bar_label, total, "sample")
  local done = 0
  local rows, owners = {}, {}
  local batch_no = 0
  local function flush()
    if #rows == 0 then return end
    batch_no = batch_no + 1
    local gen = m:generate(rows, { max_new_tokens = h.max_new_tokens, temperature = h.temperature,
      stop = { eos }, seed = sim.hash(p.cfg.seed, tag, batch_no) & ((1 << 53) - 1) })
    for k, ids in ipairs(gen) do
      local j = owners[k]
      j.got = j.got or {}
      j.got[#j.got + 1] = clean(tok, ids, eos)
    end
    done = done + #rows
    bar:update(done)
    rows, owners = {}, {}
  end
  for _, j in ipairs(jobs) do
    local ids = tok:encode(j.r.prompt)
    for _ = 1, j.n do
      rows[#rows + 1], owners[#owners + 1] = ids, j
    end
    if #rows >= h.batch then flush() end
  end
  flush()
  bar:finish(false)
end

function S.samples(p)
  local h = p.hyper.samples
  local m = p:policy()
  local w = p:world()
  -- jobs: (prompt, copies); pref/test prompts get 2 samples (a pair), eval prompts best_of
  local jobs = {}
  for _, split in ipairs { "pref", "test" } do
    for _, r in ipairs(w.splits[split]) do jobs[#jobs + 1] = { r = r, n = 2, split = split } end
  end
  for _, r in ipairs(w.splits.eval) do jobs[#jobs + 1] = { r = r, n = h.best_of, split = "eval" } end
  sample_jobs(p, m, jobs, h, "samples", "samples")
  local out, identical = {}, 0
  for _, j in ipairs(jobs) do
    if j.split == "eval" then
      out[#out + 1] = { split = "eval", prompt_id = j.r.id, responses = j.got }
    elseif j.got[1] == j.got[2] then
      identical = identical + 1
    else
      out[#out + 1] = { id = j.r.id, split = j.split, prompt_id = j.r.id, a = j.got[1], b = j.got[2] }
    end
  end
  write_jsonl(p:path("samples.jsonl"), out)
  p._samples = nil
  local np = 0
  for _, r in ipairs(out) do if r.a then np = np + 1 end end
  return { pairs = np, identical_dropped = identical, best_of = h.best_of, eval_prompts = #w.splits.eval }
end

-- The labeler records of the pairs: context = the post, fields for d-RLAIF-style templates.
local function label_records(p, pairs)
  local recs = {}
  for i, pr in ipairs(pairs) do
    local r = p:prompt_by_id(pr.prompt_id)
    recs[i] = { id = pr.id, context = r.post, a = pr.a, b = pr.b,
      fields = { subreddit = r.subreddit, title = r.title, post = r.post } }
  end
  return recs
end

--- The default label stage. extra.labeler: more rlaif.labeler.new options.
function S.label(p, extra)
  local labeler, metrics = require "rlaif.labeler", require "rlaif.metrics"
  local c = p.cfg
  local client = p:judge_client()
  local lo = { client = client, template = c.template, swap = c.swap, cot = c.cot }
  for k, v in pairs(c.labeler or {}) do lo[k] = v end
  for k, v in pairs(extra and extra.labeler or {}) do lo[k] = v end
  local L = labeler.new(lo)
  local pairs = p:samples().pairs
  local recs = label_records(p, pairs)
  local bar
  if not c.quiet and c.progress ~= false then
    bar = { label = "judge" }
    if type(c.progress) == "table" then for k, v in next, c.progress do bar[k] = v end end
  end
  local sum = L:label(recs, { out = p:path("labels_ai.jsonl"), resume = true, progress = bar })
  if sum.error > 0 then
    error(string.format("sim: label: %d pairs failed (see %s); rerun to retry them", sum.error,
      p:path("labels_ai.jsonl")), 0)
  end
  -- simulated humans, and the truth
  local humans = sim.humans { seed = c.seed, noise = c.human_noise }
  local hl, human, truth = {}, {}, {}
  local agree, nt = 0, 0
  for i, pr in ipairs(pairs) do
    local post = recs[i].context
    local hp, qa, qb = humans:prefers(post, pr.a, pr.b)
    local t = qa > qb and 1 or (qb > qa and 2 or 0)
    hl[i] = { id = pr.id, split = pr.split, human = hp, truth = t, q_a = qa, q_b = qb }
    human[pr.id], truth[pr.id] = hp, t
    if t ~= 0 then
      nt = nt + 1
      if hp == t then agree = agree + 1 end
    end
  end
  write_jsonl(p:path("labels_human.jsonl"), hl)
  return M.label_metrics(metrics.load(p:path("labels_ai.jsonl")), human, truth, {
    human_vs_truth = nt > 0 and agree / nt or nil, requests = sum.requests, ok = sum.ok,
    unlabeled = sum.unlabeled, stats = client.stats and client:stats() or nil,
  })
end

--- label_metrics(ai_records, human = {id -> 1|2}, truth = {id -> 1|2|0}, extra) ->
--- {alignment = {ai_vs_human, ai_vs_truth, human_vs_truth}, position_bias = {same_position, first}, ...}
function M.label_metrics(records, human, truth, extra)
  local metrics = require "rlaif.metrics"
  local vs_h = metrics.alignment(records, { human = human, bootstrap = 0 })
  local t2 = {}
  for id, t in pairs(truth) do if t ~= 0 then t2[id] = t end end
  local vs_t = metrics.alignment(records, { human = t2, bootstrap = 0 })
  local pb = metrics.position_bias(records)
  local sharp, n = 0, 0
  for _, r in ipairs(records) do
    if r.status == "ok" and r.p then
      sharp, n = sharp + math.abs(r.p - 0.5), n + 1
    end
  end
  local st = extra.stats
  return {
    pairs = n, requests = extra.requests, unlabeled = extra.unlabeled,
    alignment = { ai_vs_human = vs_h.z_acc, ai_vs_truth = vs_t.z_acc, human_vs_truth = extra.human_vs_truth,
      n_human = vs_h.n, n_truth = vs_t.n },
    position_bias = { same_position = pb.pct_same and pb.pct_same / 100, first = pb.pct_first and pb.pct_first / 100,
      n = pb.n },
    mean_confidence = n > 0 and 0.5 + sharp / n or nil,
    judge = st and st.sim or nil,
  }
end

-- Pairs for reward-model training from labels: {prompt, chosen, rejected, p}.
local function rm_pairs(p, pairs, p_of)
  local out = {}
  for _, pr in ipairs(pairs) do
    local pv = p_of(pr)
    if pv then
      out[#out + 1] = { id = pr.id, prompt = p:prompt_by_id(pr.prompt_id).prompt, chosen = as_response(pr.a),
        rejected = as_response(pr.b), p = pv }
    end
  end
  return out
end

function S.rm(p)
  local train, metrics = require "rlaif.train", require "rlaif.metrics"
  local tok, h = p:tokenizer(), p.hyper.rm
  local pairs = p:samples().pairs
  local ai = {}
  for _, r in ipairs(metrics.load(p:path("labels_ai.jsonl"))) do
    if r.status == "ok" and r.p then ai[r.id] = r.p end
  end
  local hum = {}
  for _, r in ipairs(read_jsonl(p:path("labels_human.jsonl"))) do hum[r.id] = r end
  local pref, test = {}, {}
  for _, pr in ipairs(pairs) do
    if pr.split == "pref" then pref[#pref + 1] = pr else test[#test + 1] = pr end
  end
  local test_h = rm_pairs(p, test, function(pr) return hum[pr.id].human == 1 and 1.0 or 0.0 end)
  local test_t = rm_pairs(p, test, function(pr)
    local t = hum[pr.id].truth
    return t ~= 0 and (t == 1 and 1.0 or 0.0) or nil
  end)
  local out = {}
  for _, kind in ipairs { "rlaif", "rlhf" } do
    local data
    if kind == "rlaif" then
      data = rm_pairs(p, pref, function(pr) return ai[pr.id] end)           -- soft AI labels
    else
      data = rm_pairs(p, pref, function(pr) return hum[pr.id].human == 1 and 1.0 or 0.0 end)
    end
    local m = p:policy("reward")
    local steps = math.ceil(#data / h.batch_size) * h.epochs
    local bar = p:_bar("rm " .. kind, steps, "step")
    mkdir_p(p:path("logs"))
    local state = p:path("rm_" .. kind .. ".state")
    local res = train.reward { model = m, tokenizer = tok, pairs = data, eval_pairs = test_h,
      batch_size = h.batch_size, epochs = h.epochs, lr = h.lr, center = h.center, seed = p.cfg.seed,
      state = state, save_every = 50, quiet = true, log = p:path("logs/rm_" .. kind .. ".jsonl"),
      schedule = train.schedule.cosine { warmup = 10, total = steps, final = 0.1 },
      on_step = function(info) bar:update(info.step, { { "loss", info.loss } }) end }
    bar:finish(false)
    local rc, rr = train.reward_scores(m, tok, test_t, { batch_size = 32 })
    local dir = p:path("rm_" .. kind)
    m:save(dir)
    copy_file(p:path("tokenizer.json"), dir .. "/tokenizer.json")
    write_atomic(dir .. "/reward_stats.json",
      string.format('{"mean": %.17g, "std": %.17g}\n', res.reward_mean, res.reward_std))
    os.remove(state)
    out[kind] = { accuracy = res.accuracy, accuracy_truth = train.pairwise_accuracy(rc, rr, test_t),
      train_pairs = #data, test_pairs = #test_h, loss = res.loss, reward_mean = res.reward_mean,
      reward_std = res.reward_std }
  end
  return out
end

function S.bestofn(p)
  local train = require "rlaif.train"
  local labeler = require "rlaif.labeler"
  local tok = p:tokenizer()
  local best = p:samples().best
  -- rows: every eval sample as a pair (chosen = the sample) for reward_scores
  local rows, owner = {}, {}
  for bi, b in ipairs(best) do
    local r = p:prompt_by_id(b.prompt_id)
    for k, y in ipairs(b.responses) do
      rows[#rows + 1] = { prompt = r.prompt, chosen = as_response(y), rejected = as_response(y), p = 1 }
      owner[#owner + 1] = { bi, k }
    end
  end
  local scores = {}
  local bar = p:_bar("best-of-n", 3 * #rows, "score")
  for step, kind in ipairs { "rlaif", "rlhf" } do
    local m = require("rlaif.model").load(p:path("rm_" .. kind), { head = "reward" })
    local rc = train.reward_scores(m, tok, rows, { batch_size = 64 })
    scores[kind] = rc
    bar:update(step * #rows)
  end
  -- the judge's d-RLAIF score (1-10 expectation) of each sample
  local L = labeler.new { client = p:judge_client(), template = p.cfg.score_template }
  local recs = {}
  for i, o in ipairs(owner) do
    local r = p:prompt_by_id(best[o[1]].prompt_id)
    recs[i] = { id = i, context = r.post, response = best[o[1]].responses[o[2]],
      fields = { subreddit = r.subreddit, title = r.title, post = r.post } }
  end
  local judged = L:label(recs, {}).records
  scores.judge = {}
  for i, rec in ipairs(judged) do
    if rec.status ~= "ok" then error("sim: best-of-n: the judge did not score sample " .. i .. ": " ..
      tostring(rec.reason), 0) end
    scores.judge[i] = rec.s
  end
  bar:update(3 * #rows)
  bar:finish(false)
  -- per prompt: the first sample (a random one), the best by each scorer, the best by the truth
  local pickers = { "random", "rlaif", "rlhf", "judge", "oracle" }
  local acc = {}
  for _, k in ipairs(pickers) do acc[k] = { q = 0, words = 0, win = 0 } end
  local i0 = 0
  for _, b in ipairs(best) do
    local post = p:prompt_by_id(b.prompt_id).post
    local n = #b.responses
    local qs = {}
    for k = 1, n do qs[k] = sim.quality(post, b.responses[k]) end
    local function argmax(f)
      local bk, bv = 1, -math.huge
      for k = 1, n do
        local v = f(k)
        if v > bv then bk, bv = k, v end
      end
      return bk
    end
    local pick = {
      random = 1,
      rlaif = argmax(function(k) return scores.rlaif[i0 + k] end),
      rlhf = argmax(function(k) return scores.rlhf[i0 + k] end),
      judge = argmax(function(k) return scores.judge[i0 + k] end),
      oracle = argmax(function(k) return qs[k] end),
    }
    for _, name in ipairs(pickers) do
      local k = pick[name]
      local a = acc[name]
      a.q = a.q + qs[k]
      a.words = a.words + sim.word_count(b.responses[k])
      -- win rate against the random sample by the hidden truth (ties count half)
      a.win = a.win + ((qs[k] > qs[1]) and 1 or (qs[k] == qs[1] and 0.5 or 0))
    end
    i0 = i0 + n
  end
  local out = { n = best[1] and #best[1].responses or 0, prompts = #best }
  for _, name in ipairs(pickers) do
    local a = acc[name]
    out[name] = { q = a.q / #best, words = a.words / #best, win_vs_random = a.win / #best }
  end
  return out
end

-- ---- RL ----

-- sha256 of a file's bytes
local function file_digest(path) return core.llm.sha256(read_file(path)) end

--- p:rl_key(kind) -> the key of one RL run: the SFT weights and the reward (a
--- reward model's weights and statistics, or the judge's configuration) by
--- content, the prompts and the RL settings. A run directory with another key
--- is started over.
function Pipeline:rl_key(kind)
  local c, h = self.cfg, self.hyper
  local custom = self.custom.rl
  local parts = { "rl", tostring(sim.VERSION), json.encode(h.world), tostring(c.seed), json.encode(h.rl),
    file_digest(self:path("sft/model.safetensors")), kind, custom and (custom.key or "function") or "" }
  if kind == "drlaif" then
    parts[#parts + 1] = json.encode(self:_stage_config("label").judge)
    parts[#parts + 1] = c.score_template
  else
    parts[#parts + 1] = file_digest(self:path("rm_" .. kind .. "/model.safetensors"))
    parts[#parts + 1] = read_file(self:path("rm_" .. kind .. "/reward_stats.json"))
  end
  return core.llm.sha256(table.concat(parts, "\0")):sub(1, 16)
end

-- A reward model as a reward function (for shaping): the trainer's own scoring
-- of a reward model (prompt + response + EOS, as rlaif.train.reward trains).
local function rm_scorer(rm)
  local eos = rm:config().eos_id
  return function(_, _, rows)
    local ids = {}
    for i, r in ipairs(rows) do
      local x = table.move(r.prompt_ids, 1, #r.prompt_ids, 1, {})
      table.move(r.response_ids, 1, #r.response_ids, #x + 1, x)
      if eos >= 0 and x[#x] ~= eos then x[#x + 1] = eos end
      ids[i] = x
    end
    return rm:reward(ids):totable()
  end
end

-- mean of field k over rows i0..i1 of a step log
local function log_mean(rows, k, i0, i1)
  local s, n = 0, 0
  for i = math.max(1, i0), math.min(#rows, i1) do
    if type(rows[i][k]) == "number" then s, n = s + rows[i][k], n + 1 end
  end
  return n > 0 and s / n or nil
end

--- The default RL stage: one run per kind of p.runs, from the SFT policy.
--- extra (from a custom stage): on_step = function(tr, stats, kind) (a beta or
--- temperature schedule: set tr.kl_coef, tr.temperature, tr.opt.lr; return false
--- to stop), shape = function(kind, scores, ctx) -> scores (reward shaping; ctx =
--- {prompts, responses, rows, trainer}), trainer = {more rlaif.rl.trainer options}.
function S.rl(p, extra)
  extra = extra or {}
  local rl, train, rlaif_model = require "rlaif.rl", require "rlaif.train", require "rlaif.model"
  local labeler = require "rlaif.labeler"
  local h, c = p.hyper.rl, p.cfg
  local tok = p:tokenizer()
  local prompts = {}
  for i, r in ipairs(p:world().splits.train) do
    prompts[i] = { prompt = r.prompt, fields = { subreddit = r.subreddit, title = r.title, post = r.post } }
  end
  local out = {}
  for _, kind in ipairs(p.runs) do
    local dir = p:path("rl_" .. kind)
    local key = p:rl_key(kind)
    local run_file = dir .. "/run.json"
    local prev = exists(run_file) and json.decode(read_file(run_file)) or nil
    if type(prev) == "table" and prev.key == key and prev.done then
      p:_note(string.format("      rl %s: cached (%.1f s when computed)", kind, prev.result.seconds or 0))
      out[kind] = prev.result
    else
      if exists(dir .. "/.") and not (type(prev) == "table" and prev.key == key) then rm_rf(dir) end
      mkdir_p(dir)
      write_atomic(run_file, json.encode { key = key, done = false } .. "\n")
      local reward, norm
      if kind == "drlaif" then
        local L = labeler.new { client = p:judge_client(), template = c.score_template }
        reward = rl.judge_reward { labeler = L, mode = "direct" }
      else
        local rdir = p:path("rm_" .. kind)
        reward = rlaif_model.load(rdir, { head = "reward" })
        norm = train.load_reward_stats(rdir)
      end
      if extra.shape then
        local base = type(reward) == "userdata" and rm_scorer(reward) or reward
        reward = function(ps, rs, rows, tr)
          local scores = base(ps, rs, rows, tr)
          return extra.shape(kind, scores, { prompts = ps, responses = rs, rows = rows, trainer = tr })
        end
      end
      local to = { algo = h.algo, policy = p:policy(), reward = reward, reward_norm = norm, tokenizer = tok,
        kl_coef = h.kl_coef, reward_scale = 1 - h.kl_coef, temperature = h.temperature,
        max_new_tokens = h.max_new_tokens, lr = h.lr, value_lr = h.value_lr, vf_coef = h.vf_coef,
        seed = c.seed }
      for k, v in pairs(extra.trainer or {}) do to[k] = v end
      local tr = rl.trainer(to)
      local bar = p:_bar("rl " .. kind, h.steps, "step")
      local t0 = core.clock()
      tr:train { prompts = prompts, steps = h.steps, batch_size = h.batch_size, out = dir,
        save_every = h.save_every, quiet = true,
        on_step = function(t, st)
          bar:update(st.step, { { "reward", st.reward_mean }, { "kl", st.kl } })
          if extra.on_step then return extra.on_step(t, st, kind) end
        end }
      bar:finish(false)
      local rows = read_jsonl(dir .. "/log.jsonl")
      local n = #rows
      local res = { algo = h.algo, steps = n, seconds = core.clock() - t0,
        first = { reward_mean = log_mean(rows, "reward_mean", 1, 5), kl = log_mean(rows, "kl", 1, 5),
          response_length = log_mean(rows, "response_length", 1, 5) },
        last = { reward_mean = log_mean(rows, "reward_mean", n - 4, n), kl = log_mean(rows, "kl", n - 4, n),
          response_length = log_mean(rows, "response_length", n - 4, n),
          kl_coef = log_mean(rows, "kl_coef", n, n) } }
      write_atomic(run_file, json.encode { key = key, done = true, result = res } .. "\n")
      out[kind] = res
    end
  end
  return out
end

-- ---- evaluation ----

--- truth_judge(prompt, first, second) -> P(first is better) by the hidden truth:
--- 1 or 0 by q, 0.5 for a tie (the simulated "human evaluation"; prompt = the post).
function M.truth_judge(post, first, second)
  local q1, q2 = sim.quality(post, first), sim.quality(post, second)
  if q1 > q2 then return 1 elseif q2 > q1 then return 0 end
  return 0.5
end

local function strip_records(r)
  local t = {}
  for k, v in pairs(r) do if k ~= "records" then t[k] = v end end
  return t
end

--- The default eval stage: h.samples responses per held-out prompt from every
--- policy (the same sampling seeds for each), then Table 1's comparisons by the
--- hidden truth and by the AI judge (the label stage's judge and template, both
--- orders), each raw and length-controlled (rlaif.eval, App. J on characters).
function S.eval(p)
  local ev, labeler = require "rlaif.eval", require "rlaif.labeler"
  local h, c = p.hyper.eval, p.cfg
  mkdir_p(p:path("eval"))
  local policies = { "sft" }
  for _, k in ipairs(p.runs) do policies[#policies + 1] = k end
  local resp, per = {}, {}
  for _, name in ipairs(policies) do
    local m = require("rlaif.model").load(name == "sft" and p:path("sft") or p:path("rl_" .. name .. "/policy"))
    local jobs = {}
    for _, r in ipairs(p:world().splits.eval) do jobs[#jobs + 1] = { r = r, n = h.samples } end
    sample_jobs(p, m, jobs, h, "eval " .. name, "eval")
    local recs, words, chars, q = {}, 0, 0, 0
    for _, j in ipairs(jobs) do
      for k, y in ipairs(j.got) do
        recs[#recs + 1] = { id = j.r.id .. "#" .. k, prompt = j.r.post, response = y, status = "ok" }
        words, chars, q = words + sim.word_count(y), chars + ev.char_len(y), q + sim.quality(j.r.post, y)
      end
    end
    write_jsonl(p:path("eval/responses_" .. name .. ".jsonl"), recs)
    resp[name] = recs
    per[name] = { words = words / #recs, chars = chars / #recs, q = q / #recs, n = #recs }
  end
  local judge = labeler.new { client = p:judge_client(), template = c.template, swap = true, cot = c.cot }
  local out = { policies = per, truth = {}, judge = {}, samples = h.samples, prompts = #p:world().splits.eval }
  local todo = {}
  for _, cmp in ipairs(M.COMPARISONS) do
    if resp[cmp[2]] and resp[cmp[3]] then todo[#todo + 1] = cmp end
  end
  local bar = p:_bar("eval judge", 2 * #todo, "cmp")
  for i, cmp in ipairs(todo) do
    local key, a, b = cmp[1], cmp[2], cmp[3]
    for j, by in ipairs { "truth", "judge" } do
      local r = ev.win_rate { judge = by == "truth" and M.truth_judge or judge, judge_name = by,
        a = resp[a], b = resp[b], names = { a = a, b = b .. (by == "truth" and ", by the hidden truth" or
        ", by the AI judge") }, bootstrap = h.bootstrap, seed = c.seed, out = p:path("eval/" .. by .. "_" .. key ..
        ".jsonl"), progress = false, quiet = true }
      if r.failed > 0 then
        error(string.format("sim: eval: the %s failed on %d of %d %s items (see %s); rerun to retry them", by,
          r.failed, r.failed + r.n, key, p:path("eval/" .. by .. "_" .. key .. ".jsonl")), 0)
      end
      local s = strip_records(r)
      s.records = "eval/" .. by .. "_" .. key .. ".jsonl"
      out[by][key] = { win_rate = s.win_rate, lc_win_rate = s.lc_win_rate, ci95 = s.ci95, lc_ci95 = s.lc_ci95,
        soft_win_rate = s.soft_win_rate, ties = s.ties, n = s.n, mean_len_a = s.mean_len_a,
        mean_len_b = s.mean_len_b, disagree = s.disagree }
      write_atomic(p:path("eval/" .. by .. "_" .. key .. ".json"), json.encode(s, { indent = true }) .. "\n")
      bar:update(2 * (i - 1) + j)
    end
  end
  bar:finish(false)
  return out
end

M.DEFAULT_STAGES = S

-- ---- running ----

--- p:stage(name) -> the stage's result: from the cache when its key matches,
--- else computed (after the stages before it).
function Pipeline:stage(name)
  self:open()
  local idx
  for i, s in ipairs(M.STAGES) do if s == name then idx = i end end
  if not idx then error("sim: unknown stage '" .. tostring(name) .. "'", 0) end
  if idx > 1 then self:stage(M.STAGES[idx - 1]) end
  local key = self.keys[name]
  local st = self.manifest.stages[name]
  if st and st.key == key and st.done then
    if not self.results[name] then
      self:_note(string.format("[%d/%d] %s: cached (%.1f s when computed)", idx, #M.STAGES, name, st.seconds or 0))
      self.results[name] = st.result
    end
    return st.result
  end
  if st and st.key ~= key then
    for _, f in ipairs(PARTIAL[name] or {}) do os.remove(self:path(f)) end
    if st.done then
      self:_note(string.format("[%d/%d] %s: configuration changed, recomputing", idx, #M.STAGES, name))
    end
  elseif st and not st.done then
    self:_note(string.format("[%d/%d] %s: continuing an interrupted run", idx, #M.STAGES, name))
  end
  self.manifest.stages[name] = { key = key, done = false }
  self:_save_manifest()
  self:_note(string.format("[%d/%d] %s", idx, #M.STAGES, name))
  local t0 = core.clock()
  local custom = self.custom[name]
  self._bars = {}
  local ok, result = pcall(custom and custom.run or S[name], self, custom and S[name] or nil)
  if not ok then
    for _, bar in ipairs(self._bars) do bar:abort() end  -- a bar on a terminal ends its line
    error(result, 0)
  end
  if type(result) ~= "table" then error("sim: stage " .. name .. " returned no result table", 0) end
  local dt = core.clock() - t0
  self.manifest.stages[name] = { key = key, done = true, seconds = dt, result = result }
  self:_save_manifest()
  self.results[name] = result
  self:_note(string.format("[%d/%d] %s: done in %.1f s", idx, #M.STAGES, name, dt))
  self:write_results()
  return result
end

--- p:results() -> the results so far, in the shape of DIR/results.json.
function Pipeline:collect()
  local r = self.results
  local out = { config = self.manifest and self.manifest.config, paper = M.PAPER, seconds = {} }
  for _, name in ipairs(M.STAGES) do
    local st = self.manifest and self.manifest.stages[name]
    if st and st.done and st.key == self.keys[name] then out.seconds[name] = st.seconds end
  end
  local lab = r.label
  if lab then
    out.alignment = { ai_vs_human = lab.alignment.ai_vs_human, ai_vs_truth = lab.alignment.ai_vs_truth,
      human_vs_truth = lab.alignment.human_vs_truth }
    out.position_bias = { same_position = lab.position_bias.same_position, first = lab.position_bias.first }
    out.labels = { pairs = lab.pairs, mean_confidence = lab.mean_confidence, judge = lab.judge,
      n_human = lab.alignment.n_human, n_truth = lab.alignment.n_truth, n_two_order = lab.position_bias.n }
  end
  if r.rm then
    out.rm_accuracy = { rlaif = r.rm.rlaif.accuracy, rlhf = r.rm.rlhf.accuracy }
    out.rm_accuracy_truth = { rlaif = r.rm.rlaif.accuracy_truth, rlhf = r.rm.rlhf.accuracy_truth }
  end
  if r.bestofn then
    out.best_of_n = r.bestofn
    out.mean_length = { sft = r.bestofn.random.words }
  end
  if r.rl then out.rl = r.rl end
  local e = r.eval
  if e then
    out.win_rate, out.lc_win_rate, out.win_rate_ci95, out.lc_win_rate_ci95 = {}, {}, {}, {}
    out.ai_judge = { win_rate = {}, lc_win_rate = {}, win_rate_ci95 = {}, lc_win_rate_ci95 = {} }
    for key, t in pairs(e.truth) do
      out.win_rate[key], out.lc_win_rate[key] = t.win_rate, t.lc_win_rate
      out.win_rate_ci95[key], out.lc_win_rate_ci95[key] = t.ci95, t.lc_ci95
    end
    for key, t in pairs(e.judge) do
      local a = out.ai_judge
      a.win_rate[key], a.lc_win_rate[key], a.win_rate_ci95[key], a.lc_win_rate_ci95[key] =
        t.win_rate, t.lc_win_rate, t.ci95, t.lc_ci95
    end
    out.mean_length, out.mean_chars, out.hidden_q = {}, {}, {}
    for name, s in pairs(e.policies) do
      out.mean_length[name], out.mean_chars[name], out.hidden_q[name] = s.words, s.chars, s.q
    end
    out.eval = { prompts = e.prompts, samples = e.samples, items = e.policies.sft and e.policies.sft.n }
  end
  if r.sft then out.sft = r.sft end
  if r.samples then out.samples = r.samples end
  return out
end

--- p:write_results(): DIR/results.json (atomic) with the numbers so far.
function Pipeline:write_results()
  write_atomic(self:path("results.json"), json.encode(self:collect(), { indent = true }) .. "\n")
end

--- p:run{stop_after = "label" | "rm" | "rl" | "eval" (default)} -> results (DIR/results.json's
--- content); DIR/report.html shows what has been computed.
function Pipeline:run(o)
  o = RUN(o)
  self:open()
  self:stage(M.STOP_AFTER[o.stop_after])
  self:write_results()
  local results = self:collect()
  self:write_report(results)
  return results
end

-- ---- the report ----

-- rows of a step log with the chosen fields, renamed "prefix field" (curves of
-- different trainings never share an axis)
local function log_rows(path, fields, prefix)
  if not exists(path) then return nil end
  local out = {}
  for _, r in ipairs(read_jsonl(path)) do
    local t = { step = r.step }
    for _, k in ipairs(fields) do
      if type(r[k]) == "number" then t[prefix and (prefix .. " " .. k) or k] = r[k] end
    end
    out[#out + 1] = t
  end
  return out
end

M.RL_CURVES = { "reward_mean", "kl", "response_length", "entropy", "policy_loss", "value_loss" }

--- p:write_report([results]) -> path: DIR/report.html (rlaif.report) with the
--- printed tables, every training curve (SFT, both reward models, each RL run),
--- Table 1's win-rate bars (by the truth and by the AI judge), the alignment
--- table (AI labels vs the simulated humans and vs the truth) and samples.
function Pipeline:write_report(results)
  local report = require "rlaif.report"
  results = results or self:collect()
  -- only what belongs to this configuration (files of an earlier one may still be there)
  local have = self.results
  local runs = {}
  local sft = have.sft and log_rows(self:path("logs/sft.jsonl"), { "loss" }, "sft")
  if sft then runs[#runs + 1] = { name = "sft", logs = { sft = sft } } end
  for _, kind in ipairs { "rlaif", "rlhf" } do
    local rows = have.rm and log_rows(self:path("logs/rm_" .. kind .. ".jsonl"), { "loss", "train_accuracy" }, "rm")
    if rows then runs[#runs + 1] = { name = "rm " .. kind, logs = { rm = rows } } end
  end
  for _, kind in ipairs(self.runs) do
    local dir = self:path("rl_" .. kind)
    local rows = have.rl and have.rl[kind] and log_rows(dir .. "/log.jsonl", M.RL_CURVES)
    if rows and #rows > 0 then
      local samples = exists(dir .. "/samples.jsonl") and read_jsonl(dir .. "/samples.jsonl") or {}
      runs[#runs + 1] = { name = kind, logs = { rl = rows }, samples = samples }
    end
  end
  local e = self.results.eval
  if e then
    local evals = {}
    for _, by in ipairs { "truth", "judge" } do
      for _, cmp in ipairs(M.COMPARISONS) do
        local f = self:path("eval/" .. by .. "_" .. cmp[1] .. ".json")
        if exists(f) then
          local r = json.decode(read_file(f))
          if by == "truth" then r.sample_records = read_jsonl(self:path(r.records)) end
          evals[#evals + 1] = r
        end
      end
    end
    runs[#runs + 1] = { name = "evaluation", evals = evals }
  end
  if have.label and exists(self:path("labels_ai.jsonl")) and exists(self:path("labels_human.jsonl")) then
    local metrics = require "rlaif.metrics"
    local hum = {}
    for _, r in ipairs(read_jsonl(self:path("labels_human.jsonl"))) do hum[r.id] = r end
    local vs_h, vs_t = {}, {}
    for _, r in ipairs(metrics.load(self:path("labels_ai.jsonl"))) do
      local h = hum[r.id]
      if h then
        local a, b = {}, {}
        for k, v in pairs(r) do a[k], b[k] = v, v end
        a.human, b.human = h.human, h.truth ~= 0 and h.truth or nil
        vs_h[#vs_h + 1], vs_t[#vs_t + 1] = a, b
      end
    end
    runs[#runs + 1] = { name = "labels", labels = { ["AI vs simulated humans"] = vs_h,
      ["AI vs hidden truth"] = vs_t }, label_order = { "AI vs simulated humans", "AI vs hidden truth" } }
  end
  local path = self:path("report.html")
  report.write(path, { runs = runs, title = "rlaif sim: RLAIF vs RLHF in a simulated world", samples = 2,
    preface = M.format_results(results) })
  return path
end

-- ---- the printed tables ----

local function pct(x) return x and string.format("%.1f%%", 100 * x) or "-" end

--- format_results(results) -> the text `rlaif sim` prints: each of the paper's
--- measures beside the paper's number.
function M.format_results(r)
  local metrics = require "rlaif.metrics"
  local out = {}
  local cfg = r.config or {}
  out[#out + 1] = string.format("rlaif sim: seed %s, size %s; the AI judge and the human raters are SIMULATED " ..
    "(judge noise %s, position bias %s, length bias %s; human noise %s)%s%s", tostring(cfg.seed), tostring(cfg.size),
    tostring(cfg.judge_noise), tostring(cfg.judge_position_bias), tostring(cfg.judge_length_bias),
    tostring(cfg.human_noise), cfg.swap == false and "; one order only (--no-swap)" or "", cfg.cot and "; CoT" or "")
  if r.alignment then
    local hn = cfg.human_noise or 0.25
    out[#out + 1] = ""
    out[#out + 1] = metrics.format_table(
      { "AI labels vs human labels", "AI labels vs hidden truth", "human labels vs hidden truth",
        "% same position preferred" },
      { "this run", "paper" },
      function(row, col)
        if row == "AI labels vs human labels" then
          return col == "this run" and pct(r.alignment.ai_vs_human) or pct(M.PAPER.alignment_ai_vs_human)
        elseif row == "AI labels vs hidden truth" then
          return col == "this run" and pct(r.alignment.ai_vs_truth) or nil
        elseif row == "human labels vs hidden truth" then
          return col == "this run" and pct(r.alignment.human_vs_truth) or pct(M.PAPER.human_agreement)
        else
          return col == "this run" and pct(r.position_bias.same_position) or pct(M.PAPER.same_position)
        end
      end, "Labeler alignment") ..
      string.format("(simulated humans agree with the truth %.0f%% of the time, so AI vs human tops out near " ..
        "%.0f%%; the paper's 73-77%% is human inter-annotator agreement)", 100 * (1 - hn), 100 * (1 - hn))
  end
  if r.rm_accuracy then
    out[#out + 1] = ""
    out[#out + 1] = metrics.format_table({ "RLHF RM (human labels)", "RLAIF RM (AI soft labels)" },
      { "held-out human labels", "hidden truth", "paper" },
      function(row, col)
        local k = row:match("^RLHF") and "rlhf" or "rlaif"
        if col == "held-out human labels" then return pct(r.rm_accuracy[k]) end
        if col == "hidden truth" then return pct(r.rm_accuracy_truth and r.rm_accuracy_truth[k]) end
        return pct(M.PAPER["rm_accuracy_" .. k])
      end, "Reward-model pairwise accuracy")
  end
  local b = r.best_of_n
  if b then
    out[#out + 1] = ""
    local rows = { "random SFT sample", "best by RLAIF RM", "best by RLHF RM", "best by judge score (d-RLAIF)",
      "best by hidden truth (oracle)" }
    local keys = { "random", "rlaif", "rlhf", "judge", "oracle" }
    out[#out + 1] = metrics.format_table(rows, { "hidden q", "win vs random", "words" },
      function(row, col)
        local k
        for i, name in ipairs(rows) do if name == row then k = keys[i] end end
        local x = b[k]
        if col == "hidden q" then return string.format("%.3f", x.q) end
        if col == "win vs random" then return k == "random" and "50.0%" or pct(x.win_vs_random) end
        return string.format("%.1f", x.words)
      end, string.format("Best-of-%d on %d eval prompts", b.n, b.prompts)) ..
      "(the check that the reward models carry the signal RL needs; ties count half)"
  end
  if r.rl then
    out[#out + 1] = ""
    local rows, keys = {}, {}
    for _, k in ipairs(M.RUNS) do
      if r.rl[k] then
        rows[#rows + 1] = ({ rlaif = "RLAIF (RLAIF RM)", rlhf = "RLHF (RLHF RM)", drlaif = "d-RLAIF (judge score)" })[k]
        keys[rows[#rows]] = k
      end
    end
    local function f(x, fmt) return x and string.format(fmt, x) or "-" end
    out[#out + 1] = metrics.format_table(rows, { "algo", "steps", "reward first→last", "KL last",
      "tokens first→last", "seconds" }, function(row, col)
      local x = r.rl[keys[row]]
      if col == "algo" then return x.algo end
      if col == "steps" then return tostring(x.steps) end
      if col == "reward first→last" then
        return f(x.first.reward_mean, "%.3f") .. " → " .. f(x.last.reward_mean, "%.3f")
      end
      if col == "KL last" then return f(x.last.kl, "%.3f") end
      if col == "tokens first→last" then
        return f(x.first.response_length, "%.1f") .. " → " .. f(x.last.response_length, "%.1f")
      end
      return f(x.seconds, "%.1f")
    end, "RL from the SFT policy")
  end
  if r.win_rate then
    out[#out + 1] = ""
    local labels = { rlaif_vs_sft = "RLAIF vs SFT", rlhf_vs_sft = "RLHF vs SFT", rlaif_vs_rlhf = "RLAIF vs RLHF",
      drlaif_vs_sft = "d-RLAIF vs SFT" }
    local rows, keys = {}, {}
    for _, cmp in ipairs(M.COMPARISONS) do
      if r.win_rate[cmp[1]] then
        rows[#rows + 1] = labels[cmp[1]]
        keys[rows[#rows]] = cmp[1]
      end
    end
    local aj = r.ai_judge or {}
    local function ci(c) return c and string.format("%.0f-%.0f", 100 * c[1], 100 * c[2]) or "-" end
    local ev = r.eval or {}
    out[#out + 1] = metrics.format_table(rows, { "truth win", "95% CI", "truth LC", "judge win", "judge LC",
      "paper", "paper LC" }, function(row, col)
      local k = keys[row]
      if col == "truth win" then return pct(r.win_rate[k]) end
      if col == "95% CI" then return ci(r.win_rate_ci95 and r.win_rate_ci95[k]) end
      if col == "truth LC" then return pct(r.lc_win_rate[k]) end
      if col == "judge win" then return pct(aj.win_rate and aj.win_rate[k]) end
      if col == "judge LC" then return pct(aj.lc_win_rate and aj.lc_win_rate[k]) end
      if col == "paper" then return pct(M.PAPER.win_rate[k]) end
      return pct(M.PAPER.lc_win_rate[k])
    end, "Table 1 (win rates)") ..
      string.format("(%s held-out prompts x %s samples per policy; ", tostring(ev.prompts), tostring(ev.samples)) ..
      "truth: the simulated \"human evaluation\", the higher hidden q wins, ties count half;\n" ..
      " judge: the AI judge, both orders; LC: length-controlled, App. J (logistic regression on the length ratio\n" ..
      " in characters, predicted at 1.0); paper: Lee et al. Table 1 and App. J, summarization)"
  end
  if r.hidden_q then
    out[#out + 1] = ""
    local rows, keys = {}, {}
    for _, k in ipairs { "sft", "rlaif", "rlhf", "drlaif" } do
      if r.hidden_q[k] then
        rows[#rows + 1] = ({ sft = "SFT", rlaif = "RLAIF", rlhf = "RLHF", drlaif = "d-RLAIF" })[k]
        keys[rows[#rows]] = k
      end
    end
    out[#out + 1] = metrics.format_table(rows, { "hidden q", "words", "chars", "paper chars" }, function(row, col)
      local k = keys[row]
      if col == "hidden q" then return string.format("%.3f", r.hidden_q[k]) end
      if col == "words" then return string.format("%.1f", r.mean_length[k]) end
      if col == "chars" then return string.format("%.0f", r.mean_chars[k]) end
      return M.PAPER.mean_chars[k] and tostring(M.PAPER.mean_chars[k]) or "-"
    end, "Policies on the held-out prompts")
  end
  if r.seconds then
    local parts = {}
    for _, name in ipairs(M.STAGES) do
      if r.seconds[name] then parts[#parts + 1] = string.format("%s %.1f s", name, r.seconds[name]) end
    end
    if #parts > 0 then
      out[#out + 1] = ""
      out[#out + 1] = "stage times (when computed): " .. table.concat(parts, ", ")
    end
  end
  return table.concat(out, "\n") .. "\n"
end

--- pipeline(opts) -> a pipeline (see M.new).
M.pipeline = M.new
return M
