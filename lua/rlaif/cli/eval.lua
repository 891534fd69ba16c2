-- lua/rlaif/cli/eval.lua -- `rlaif eval`: the win rate of policy A over policy B
-- (or the harmless rate of A and B) judged by an LLM through rlaif.labeler, with
-- the paper's length control (rlaif.eval). Writes DIR/records.jsonl (one line per
-- item, appended as judged, resumed), DIR/results.json (atomically) and
-- DIR/config.json (the judge; a rerun into DIR must use the same one), and prints
-- the table. Responses come from JSONL files or are generated from model
-- directories into DIR/responses_a.jsonl / responses_b.jsonl (resumed too).
--
-- Shards: --shard I/N judges only the items of shard I (rlaif.dist.shard_of, the
-- hash of `rlaif label --shard`) into DIR/records.shard-I-of-N.jsonl and
-- DIR/results.shard-I-of-N.json; config.json then names N. A later run into DIR
-- without --shard combines the N shard files: it judges nothing, refuses (naming
-- the ids) when an item has no finished record in its shard's file, and otherwise
-- writes records.jsonl and results.json, the same as one process would. Under
-- mpirun rank r judges shard r+1 of the job's size and rank 0 combines.
--
-- Exit status: 0 when every item was judged, 1 when some judgement or generation
-- failed (they are reported, never counted; a rerun retries the failed requests),
-- 2 for bad usage, 130 on Ctrl-C (what was judged stays in DIR).
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local usage = [[
usage: rlaif eval --a FILE|DIR --b FILE|DIR --out DIR [options]
       rlaif eval --harmless --a FILE|DIR [--b FILE|DIR] --out DIR [--ref-length N | --ref FILE] [options]

  --a, --b FILE|DIR     responses: JSONL with id, prompt, response; or a model directory
                        (Hugging Face layout) that generates them for --prompts
  --prompts FILE        JSONL with id and prompt (for model directories)
  --name-a, --name-b S  names in the table and report (default: the file or directory names)
  --out DIR             records.jsonl, results.json, config.json (created; resumed)
  --harmless            the harmless rate of each policy (single responses, --template harmless-rate)
  --ref-length N        harmless rate: reference length in characters for the length control
  --ref FILE|DIR        harmless rate: responses whose mean length is the reference (the SFT policy's)
judge:
  --judge-api NAME      openai-chat | openai-completions | vllm | llamacpp | ollama | tgi | gemini |
                        anthropic | local  (--api is a synonym)
  --base-url URL, --model NAME, --api-key-env VAR, --concurrency N (16), --max-retries N,
  --timeout S, --cache FILE           as for `rlaif label`
  --client FILE.lua     a Lua file returning a client object (custom backends, tests)
  --template NAME       prompt template (default helpful-base; harmless-rate with --harmless)
  --shots N, --cot, --no-swap, --logprobs K, --format-requests prompt|chat, --chat user|prefill
generation (model directories):
  --tokenizer PATH      default: the model directory
  --max-new-tokens N (64), --temperature T (0), --top-p P, --gen-seed N (0), --batch-size N (16)
statistics:
  --tie-margin M        |p - 0.5| <= M counts as a tie (default 0)
  --bootstrap N         bootstrap resamples for the 95% intervals (default 1000; 0 = none)
  --seed N              bootstrap seed (default 1)
  --limit N             judge at most N items
  --no-resume           start DIR's records from scratch
  --shard I/N           judge only shard I of N (by a hash of each item's id) into
                        DIR/records.shard-I-of-N.jsonl; rerun without --shard into the same
                        DIR to combine the shards (nothing is judged; missing ids are named).
                        Under mpirun each process takes one shard by itself and rank 0 combines.
  --quiet               no progress or summary lines (the table is still printed)
]]

local FLAGS = {
  a = "string", b = "string", prompts = "string", ["name-a"] = "string", ["name-b"] = "string", out = "string",
  harmless = "flag", ["ref-length"] = { "number", gt = 0 }, ref = "string",
  ["judge-api"] = "string", api = "string", ["base-url"] = "string", model = "string", ["api-key-env"] = "string",
  concurrency = { "integer", min = 1 }, ["max-retries"] = { "integer", min = 0 }, timeout = { "number", gt = 0 },
  cache = "string", client = "string", template = "string", shots = { "integer", min = 0 }, cot = "flag",
  ["no-swap"] = "flag", logprobs = { "integer", min = 1 }, ["format-requests"] = { "string", one_of = { "prompt",
    "chat" } }, chat = { "string", one_of = { "user", "prefill" } },
  tokenizer = "string", ["max-new-tokens"] = { "integer", min = 1 }, temperature = { "number", min = 0 },
  ["top-p"] = { "number", gt = 0, max = 1 }, ["gen-seed"] = { "integer" }, ["batch-size"] = { "integer", min = 1 },
  ["tie-margin"] = { "number", min = 0, lt = 0.5 }, bootstrap = { "integer", min = 0 }, seed = "integer",
  limit = { "integer", min = 1 }, ["no-resume"] = "flag", quiet = "flag", shard = "string",
}

local function is_dir(path)
  local f = io.open(path .. "/config.json", "rb")
  if f then f:close() return true end
  return false
end

local function basename(p) return (p:gsub("/+$", ""):match("([^/]+)$") or p):gsub("%.jsonl$", "") end

local function make_client(o)
  local api = o["judge-api"] or o.api
  if o.client then
    local chunk, err = loadfile(o.client)
    if not chunk then error("--client: " .. err, 0) end
    local c = chunk(o)
    if type(c) ~= "table" or type(c.complete_many) ~= "function" then
      error("--client: " .. o.client .. " must return an object with complete_many", 0)
    end
    return c, api
  end
  if not api then error("--judge-api is required (or --client FILE.lua)", 0) end
  local llm = require "rlaif.llm"
  return llm.client { api = api, base_url = o["base-url"], model = o.model, api_key_env = o["api-key-env"],
    concurrency = o.concurrency or 16, max_retries = o["max-retries"], timeout = o.timeout, cache = o.cache }, api
end

local function source(o, which, out)
  local path = o[which]
  if not path then return nil end
  if is_dir(path) then
    if not o.prompts then error("--" .. which .. " " .. path .. " is a model directory: give --prompts FILE", 0) end
    return { model = path, tokenizer = o.tokenizer, out = out .. "/responses_" .. which .. ".jsonl",
      label = "generate " .. which, resume = not o["no-resume"] }, "model " .. path
  end
  return path, "file " .. path
end

-- Evaluate into o.out: the items of shard = {i, n} only, or all of them; job.combine = N
-- combines the files of N shards (judging nothing), job.no_table prints no table.
local function eval_run(o, shard, job)
  job = job or {}
  local core = require "rlaif.core"
  local json = core.json
  local eval = require "rlaif.eval"
  local labeler = require "rlaif.labeler"
  local fileio = require "rlaif.fileio"
  local status = 0
  -- DIR/records.jsonl, or a shard's DIR/records.shard-I-of-N.jsonl
  local function rpath(base, i, n)
    return string.format("%s/%s%s.json%s", o.out, base:match("^[^.]+"), i and
      string.format(".shard-%d-of-%d", i, n) or "", base:match("%.jsonl$") and "l" or "")
  end
  local records_path = rpath("records.jsonl", shard and shard[1], shard and shard[2])
  local ok, err = pcall(function()
    assert(core.gz.mkdir(o.out))
    local client, api = make_client(o)
    local L = labeler.new {
      client = client, template = o.template or (o.harmless and "harmless-rate" or "helpful-base"),
      shots = o.shots, cot = o.cot or nil, swap = not o["no-swap"], logprobs = o.logprobs,
      format = o["format-requests"], chat = o.chat, api = api, model = o.model,
    }
    -- the judge of this directory: a rerun must use the same one
    local cfg = { judge = eval.judge_id(L), template = L.template.name, model = L.model, api = api,
      mode = o.harmless and "harmless" or "win_rate" }
    local cfg_path = o.out .. "/config.json"
    local f = io.open(cfg_path, "rb")
    local combine_n   -- the number of shards to combine (a run without --shard into a sharded DIR)
    if f and not o["no-resume"] then
      local old = json.decode(f:read("a"))
      f:close()
      if type(old) == "table" and (old.judge ~= cfg.judge or old.mode ~= cfg.mode) then
        error(string.format("%s holds an evaluation by another judge or mode (%s, %s; now %s, %s): use another " ..
          "--out or --no-resume", o.out, tostring(old.template), tostring(old.mode), cfg.template, cfg.mode), 0)
      end
      local old_n = type(old) == "table" and math.tointeger(old.shards) or nil
      if shard and old_n and old_n ~= shard[2] then
        error(string.format("%s holds shards of %d, not of %d: use --shard I/%d, another --out or --no-resume",
          o.out, old_n, shard[2], old_n), 0)
      end
      if not shard and old_n then combine_n = old_n end
    elseif f then
      f:close()
    end
    combine_n = job.combine or combine_n
    cfg.shards = shard and shard[2] or combine_n
    fileio.write(cfg_path, json.encode(cfg, { indent = true }) .. "\n", { who = "rlaif eval" })
    local gen = { max_new_tokens = o["max-new-tokens"], temperature = o.temperature, top_p = o["top-p"],
      seed = o["gen-seed"], batch_size = o["batch-size"] }
    local prompts = o.prompts and eval.norm_prompts(o.prompts, "rlaif eval: --prompts") or nil
    local sa, da = source(o, "a", o.out)
    local sb, db = source(o, "b", o.out)
    local na, nb = o["name-a"] or basename(o.a), o.b and (o["name-b"] or basename(o.b)) or nil
    local common = { judge = L, prompts = prompts, generation = gen, tie_margin = o["tie-margin"],
      bootstrap = o.bootstrap, seed = o.seed, resume = not o["no-resume"], limit = o.limit, quiet = o.quiet,
      shard = shard }
    -- the shard files that a combining run reads for records file `base`
    local function shard_files(base)
      if not combine_n then return nil end
      local t = {}
      for k = 1, combine_n do t[k] = rpath(base, k, combine_n) end
      return t
    end
    local function run(fn, extra)
      local t = {}
      for k, v in pairs(common) do t[k] = v end
      for k, v in pairs(extra) do t[k] = v end
      return fn(t)
    end
    local results, rows
    if o.harmless then
      local ref = o["ref-length"]
      local reference
      if not ref and o.ref then reference = source(o, "ref", o.out) end
      rows = {}
      rows[1] = run(eval.harmless_rate, { responses = sa, name = na, ref_length = ref, reference = reference,
        out = records_path, shards = shard_files("records.jsonl") })
      if sb then
        rows[2] = run(eval.harmless_rate, { responses = sb, name = nb, ref_length = ref or rows[1].ref_length,
          out = rpath("records_b.jsonl", shard and shard[1], shard and shard[2]),
          shards = shard_files("records_b.jsonl") })
      end
      results = { mode = "harmless", template = L.template.name, model = L.model, policies = {} }
      for k, r in ipairs(rows) do
        results.policies[k] = eval.numbers(r)
        results.policies[k].source = k == 1 and da or db
      end
      for k, v in pairs(results.policies[1]) do if results[k] == nil then results[k] = v end end
    else
      local r = run(eval.win_rate, { a = sa, b = sb, names = { a = na, b = nb }, out = records_path,
        shards = shard_files("records.jsonl") })
      rows = { r }
      results = eval.numbers(r)
      results.mode, results.template, results.model = "win_rate", L.template.name, L.model
      results.sources = { a = da, b = db }
    end
    results.records = records_path
    if shard then results.shard = { shard[1], shard[2] } end
    if combine_n then results.shards = combine_n end
    fileio.write(rpath("results.json", shard and shard[1], shard and shard[2]),
      json.encode(results, { indent = true }) .. "\n", { who = "rlaif eval" })
    if not job.no_table then io.write(eval.format_table(rows)) end
    local failed, unmatched = 0, 0
    for _, r in ipairs(rows) do failed, unmatched = failed + r.failed, unmatched + (r.unmatched or 0) end
    if not o.quiet then
      io.stderr:write(string.format("rlaif eval: %s%s -> %s, %s\n",
        rows[1].judged and string.format("%d judged, %d reused", rows[1].judged, rows[1].reused) or "",
        combine_n and string.format(" (%d shards combined)", combine_n) or "",
        rpath("results.json", shard and shard[1], shard and shard[2]), records_path))
      if unmatched > 0 then
        io.stderr:write(string.format("rlaif eval: %d ids are in only one of --a and --b (not judged)\n", unmatched))
      end
    end
    if failed > 0 then
      io.stderr:write(string.format("rlaif eval: %d item(s) failed (status error or unlabeled in %s); they are " ..
        "not counted; rerun to retry the errors\n", failed, records_path))
      status = 1
    end
  end)
  if not ok then
    local msg = tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")
    if msg:find("interrupted", 1, true) then
      io.stderr:write("rlaif eval: interrupted; what was judged is kept in ", o.out, " (rerun to continue)\n")
      return 130
    end
    io.stderr:write("rlaif eval: ", msg, "\n")
    return 1
  end
  return status
end

-- Under mpirun: rank r judges shard r+1 of the job's size into DIR, then rank 0
-- combines the shards into records.jsonl and results.json; the job's worst status.
local function eval_job(o, dist)
  local rank, n = dist.rank(), dist.size()
  local status = dist.allreduce_numbers({ eval_run(o, { rank + 1, n }, { no_table = true }) }, "max")[1]
  if rank == 0 and status ~= 130 then status = math.max(status, eval_run(o, nil, { combine = n })) end
  status = math.tointeger(dist.broadcast_value(status)) or 1   -- every rank ends with rank 0's verdict
  dist.finalize()
  return status
end

local function run(args, dist)
  local o, bad = require("rlaif.opts").main_args("eval", args, FLAGS, usage)
  if not o then return bad end
  if not o.a or not o.out or (not o.b and not o.harmless) then
    io.stderr:write("rlaif eval: --a, --b and --out are required (--b is optional with --harmless)\n", usage)
    return 2
  end
  local shard, shard_err = dist.cli_shard(o.shard, "rlaif eval")
  if shard == false then
    io.stderr:write(shard_err, "\n", usage)
    return 2
  end
  if shard or dist.size() > 1 then
    for _, w in ipairs { "a", "b", "ref" } do
      if o[w] and is_dir(o[w]) then
        io.stderr:write("rlaif eval: sharding needs response files; --", w, " ", o[w], " is a model directory " ..
          "(generate its responses in one process first)\n")
        return 2
      end
    end
  end
  if dist.size() > 1 then return eval_job(o, dist), true end
  return eval_run(o, shard)
end

local function main(args)
  local dist = require "rlaif.dist"
  local status, ended = run(args, dist)
  if dist.size() > 1 and not ended then status = dist.finish(status) end   -- usage errors under mpirun
  return status
end

return main
