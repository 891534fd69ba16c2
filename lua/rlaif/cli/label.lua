-- lua/rlaif/cli/label.lua -- `rlaif label`: label a preference dataset with an
-- LLM (rlaif.labeler), appending one JSONL record per pair to --out; a rerun
-- continues where the last one stopped, if it uses the same configuration.
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua):
-- 0 when every pair got a label (or an "unlabeled" verdict), 1 when pairs failed,
-- were not sent or the run stopped on an error, 2 for a usage error, 130 after
-- Ctrl-C. Flags are checked by rlaif.opts.cli. No output may be an input, and
-- --export-pairs is written atomically, replacing a file only with --force.
--
-- Shards: --shard I/N labels only the pairs of shard I (rlaif.dist.shard_of, a hash
-- of the pair's id), resumable like any run; `rlaif merge` joins the N files. Under
-- mpirun a run shards itself: rank r labels shard r+1 of the job's size into
-- OUT.shard-I-of-N.jsonl, then rank 0 merges them into --out (and exports pairs);
-- every rank exits with the job's worst status.

local usage = [[
usage: rlaif label --data FILE --out FILE [options]

  --data FILE           .jsonl, .jsonl.gz or .json dataset
  --format F            hh | comparisons | tldr | pairs | auto (default auto)
  --fields K=V,...      user-named fields for pairs (prompt=, chosen=, rejected=, id=, label=)
  --template NAME       prompt template in prompts/ or a path (default: helpful-base for HH data,
                        harmless-base when the data path says "harmless", else summarize-detailed)
  --shots N             few-shot exemplars (default 0); --exemplars NAME picks the file
  --cot                 two-step chain-of-thought (uses the template's CoT variant)
  --samples N           self-consistency: N rationales per order (with --cot and --temperature T)
  --temperature T       rationale sampling temperature (default 0)
  --no-swap             score only the order of the data (no position debiasing)
  --clamp LO,HI         clamp the soft label (e.g. 0.4,0.6)
  --polarity 1|-1       override the template's label polarity
  --scoring M           logprobs | votes (default: votes for APIs without log-probabilities)
  --votes K             answers sampled per order in vote mode (default 5)
  --logprobs K          top-K alternatives to request (default 20)
  --format-requests F   prompt | chat (default by --api); --chat user|prefill
  --api NAME            openai-chat | openai-completions | vllm | llamacpp | ollama | tgi | gemini |
                        anthropic | local (an in-process model: --model is its directory)
  --base-url URL        server base URL (default $OPENAI_BASE_URL)
  --model NAME          model name (a checkpoint directory with --api local)
  --api-key-env VAR     environment variable holding the key (default OPENAI_API_KEY)
  --concurrency N       requests in flight (default 16)
  --max-retries N, --timeout S, --cache FILE   passed to the client
  --prices P,C          USD per 1M prompt and completion tokens, for the cost field
  --client FILE.lua     a Lua file returning a client object (custom backends, tests)
  --out FILE            output JSONL (appended; resumed when made with the same configuration)
  --no-resume           start --out afresh (the old file stays until the new one has a record)
  --resume-mixed        resume into --out even if it was made with another configuration
  --shard I/N           label only shard I of N (1 <= I <= N; by a hash of each pair's id);
                        join the shards' files with `rlaif merge`. Under mpirun each process
                        takes one shard by itself and rank 0 merges them into --out.
  --limit N             label at most N pairs in this run (per process under mpirun)
  --batch N             pairs per batch of requests
  --skip-bad            skip malformed data lines (reported) instead of stopping
  --export-pairs FILE   afterwards write prompt/chosen/rejected/p for reward-model training
  --force               let --export-pairs replace an existing file
  --quiet               no progress bar or summary

Exit status: 0 all pairs done, 1 pairs failed or not sent, 2 usage error, 130 interrupted.
]]

local APIS = { "openai-chat", "openai-completions", "vllm", "llamacpp", "ollama", "tgi", "gemini", "anthropic",
  "local" }

local FLAGS = {
  data = "string", format = { "string", one_of = { "hh", "comparisons", "tldr", "pairs", "auto" } },
  fields = "string", template = "string", shots = { "integer", min = 0 }, exemplars = "string", cot = "flag",
  samples = { "integer", min = 1 }, temperature = { "number", min = 0 }, ["no-swap"] = "flag", clamp = "string",
  polarity = { "integer", one_of = { 1, -1 } }, scoring = { "string", one_of = { "logprobs", "votes" } },
  votes = { "integer", min = 1 }, logprobs = { "integer", min = 1 },
  ["format-requests"] = { "string", one_of = { "prompt", "chat" } },
  chat = { "string", one_of = { "user", "prefill" } }, api = { "string", one_of = APIS }, ["base-url"] = "string",
  model = "string", ["api-key-env"] = "string", concurrency = { "integer", min = 1, max = 65536 },
  ["max-retries"] = { "integer", min = 0, max = 100 }, timeout = { "number", gt = 0 }, cache = "string",
  prices = "string", client = "string", out = "string", ["no-resume"] = "flag", ["resume-mixed"] = "flag",
  limit = { "integer", min = 1 }, batch = { "integer", min = 1 }, ["skip-bad"] = "flag",
  ["export-pairs"] = "string", force = "flag", quiet = "flag", shard = "string",
}

local function pair_nums(o, k)
  if o[k] == nil then return nil end
  local a, b = o[k]:match("^%s*([^,]+)%s*,%s*([^,]+)%s*$")
  a, b = tonumber(a), tonumber(b)
  if not a or not b then
    error(string.format("rlaif label: option --%s must be two numbers 'A,B', got %q", k, o[k]), 0)
  end
  return a, b
end

--- Build the client from the options (shared with other commands).
local function make_client(o)
  if o.client then
    local chunk, err = loadfile(o.client)
    if not chunk then error("--client: " .. err, 0) end
    local c = chunk(o)
    if type(c) ~= "table" or type(c.complete_many) ~= "function" then
      error("--client: " .. o.client .. " must return an object with complete_many", 0)
    end
    return c
  end
  if not o.api then error("--api is required (or --client FILE.lua)", 0) end
  local ok, llm = pcall(require, "rlaif.llm")
  if not ok then error("the LLM client (rlaif.llm) is not available: " .. tostring(llm), 0) end
  local cfg = { api = o.api, base_url = o["base-url"], model = o.model, api_key_env = o["api-key-env"],
    concurrency = o.concurrency or 16, max_retries = o["max-retries"], timeout = o.timeout, cache = o.cache }
  return llm.client(cfg)
end

-- The template when --template is not given: the dataset's own kind.
local function default_template(o, data)
  local fmt = o.format or "auto"
  if fmt == "auto" then
    local r = data.open(o.data, { format = "auto", skip_bad = true })
    local ok = pcall(r.next, r)
    fmt = ok and r.format or "auto"
    r:close()
  end
  if fmt == "hh" then return o.data:find("harmless", 1, true) and "harmless-base" or "helpful-base" end
  return "summarize-detailed"
end

-- "interrupted!" (the executable's Ctrl-C hook) or a labeler.Halt after Ctrl-C
local function interrupted(err)
  if type(err) == "table" then return err.interrupted == true end
  return tostring(err):find("interrupted", 1, true) ~= nil
end

local function parse_fields(o)
  if not o.fields then return nil end
  local fields = {}
  for kv in o.fields:gmatch("[^,]+") do
    local k, v = kv:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not k then error("rlaif label: option --fields must be k=v,k=v, got '" .. kv .. "'", 0) end
    fields[k] = v
  end
  return fields
end

-- the file of shard i of n beside --out: labels.jsonl -> labels.shard-1-of-4.jsonl
local function shard_path(out, i, n)
  local tag = string.format(".shard-%d-of-%d", i, n)
  local base, ext = out:match("^(.*)(%.jsonl)$")
  if base and base ~= "" then return base .. tag .. ext end
  return out .. tag
end

-- Label o.data (shard = {i, n} or nil) into o.out; returns the exit status.
local function label_run(o, shard)
  local data = require "rlaif.data"
  local labeler = require "rlaif.labeler"
  local fileio = require "rlaif.fileio"
  local failed = false
  local ok, err = pcall(function()
    -- no output may be an input, nor two outputs one file; an export is not replaced without --force
    fileio.check_outputs("rlaif label", { ["--data"] = o.data, ["--client"] = o.client },
      { ["--out"] = o.out, ["--export-pairs"] = o["export-pairs"], ["--cache"] = o.cache })
    if o["export-pairs"] and not o.force and require("rlaif.core").gz.file_id(o["export-pairs"]) then
      error("rlaif label: --export-pairs " .. o["export-pairs"] .. " exists; pass --force to replace it", 0)
    end
    local fields = parse_fields(o)
    local client = make_client(o)
    local cmin, cmax = pair_nums(o, "clamp")
    local pp, pc = pair_nums(o, "prices")
    local L = labeler.new {
      client = client, template = o.template or default_template(o, data), shots = o.shots,
      exemplars = o.exemplars, cot = o.cot or nil, samples = o.samples,
      temperature = o.temperature, swap = not o["no-swap"], clamp = cmin and { cmin, cmax },
      polarity = o.polarity, scoring = o.scoring, votes = o.votes,
      logprobs = o.logprobs, format = o["format-requests"], chat = o.chat, api = o.api,
      model = o.model, prices = pp and { prompt = pp, completion = pc },
    }
    local bad = 0
    local reader = data.open(o.data, { format = o.format or "auto", skip_bad = o["skip-bad"], fields = fields,
      on_bad = function(msg)
        bad = bad + 1
        if bad <= 10 then io.stderr:write("rlaif label: skipped ", msg, "\n") end
      end })
    local progress = not o.quiet
    local resume = true
    if o["no-resume"] then resume = false elseif o["resume-mixed"] then resume = "mixed" end
    local total
    if progress and shard then   -- the shard's own count: one pass over the ids
      total = 0
      local dist = require "rlaif.dist"
      local r = data.open(o.data, { format = reader.format, skip_bad = true, fields = fields })
      for rec in r:iter() do
        if rec.id ~= nil and dist.shard_of(rec.id, shard[2]) == shard[1] then total = total + 1 end
      end
      r:close()
    elseif progress then
      total = reader:count()
    end
    local s = L:label(reader, { out = o.out, resume = resume, shard = shard,
      progress = shard and { label = string.format("label %d/%d", shard[1], shard[2]) } or progress,
      total = total, limit = o.limit, batch = o.batch or math.max(256, 32 * (o.concurrency or 16)) })
    reader:close()
    if s.torn and not o.quiet then
      io.stderr:write("rlaif label: cut a torn last line off ", o.out, " (an interrupted write)\n")
    end
    if bad > 0 then
      io.stderr:write(string.format("rlaif label: %d malformed line(s) skipped in %s\n", bad, o.data))
    end
    if not o.quiet then io.stderr:write("rlaif label: ", labeler.summary_line(s), " -> ", o.out, "\n") end
    if s.error > 0 or s.unsent > 0 then
      failed = true
      io.stderr:write(string.format("rlaif label: %d pair%s failed%s; their records say why, and a rerun " ..
        "retries them\n", s.error, s.error == 1 and "" or "s",
        s.unsent > 0 and string.format(" and %d were not sent", s.unsent) or ""))
    end
    if o["export-pairs"] and not o.merged_later then
      local r2 = data.open(o.data, { format = reader.format, skip_bad = true, fields = fields })
      local n, skipped = labeler.export_pairs(o.out, r2, o["export-pairs"], { force = o.force })
      r2:close()
      if not o.quiet then
        io.stderr:write(string.format("rlaif label: exported %d pairs (%d not labeled) -> %s\n", n, skipped,
          o["export-pairs"]))
      end
    end
    return s
  end)
  if not ok then
    if type(err) == "table" and err.summary and not o.quiet then
      io.stderr:write("rlaif label: ", labeler.summary_line(err.summary), " -> ", o.out, "\n")
    end
    local msg = tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", "")
    if not msg:find("^rlaif label: ") then msg = "rlaif label: " .. msg end
    io.stderr:write(msg, "\n")
    return interrupted(err) and 130 or 1
  end
  return failed and 1 or 0
end

-- Under mpirun: each rank labels its shard into a file beside --out, then rank 0
-- merges the shards into --out and writes --export-pairs; the job's worst status.
local function label_job(o, dist)
  local rank, n = dist.rank(), dist.size()
  local out, i = o.out, dist.rank() + 1
  local shards = {}
  for k = 1, n do shards[k] = shard_path(out, k, n) end
  local gz = require("rlaif.core").gz
  -- an --out that no sharded run of this size wrote (a single-process file) is not replaced
  local problem = dist.broadcast_value(rank == 0 and gz.file_id(out) and not gz.file_id(shards[1]) and
    string.format("rlaif label: %s exists and was not made by a run of %d processes (no %s): resume it " ..
      "without mpirun, or choose another --out", out, n, shards[1]) or nil)
  local status
  if problem then
    if rank == 0 then io.stderr:write(problem, "\n") end
    status = 1
  else
    local mine = {}
    for k, v in pairs(o) do mine[k] = v end
    mine.out, mine.merged_later = shards[i], true
    status = dist.allreduce_numbers({ label_run(mine, { i, n }) }, "max")[1]
    if rank == 0 and status ~= 130 then
      local ok, err = pcall(function()
        local data, labeler = require "rlaif.data", require "rlaif.labeler"
        local fields = parse_fields(o)
        local reader = data.open(o.data, { format = o.format or "auto", skip_bad = true, fields = fields })
        local rep = labeler.merge(shards, reader, out, { force = true })
        reader:close()
        if not rep.written then
          status = 1
          io.stderr:write(string.format("rlaif label: not merged into %s: %d pair(s) missing, %d in two shards, " ..
            "%d not in the data; rerun to resume the shards\n", out, #rep.missing, #rep.duplicates, #rep.extra))
          return
        end
        if not o.quiet then
          io.stderr:write(string.format("rlaif label: merged %d shards: %d pairs -> %s\n", n, rep.written, out))
        end
        if o["export-pairs"] then
          local r2 = data.open(o.data, { format = reader.format, skip_bad = true, fields = fields })
          local m, skipped = labeler.export_pairs(out, r2, o["export-pairs"], { force = o.force })
          r2:close()
          if not o.quiet then
            io.stderr:write(string.format("rlaif label: exported %d pairs (%d not labeled) -> %s\n", m, skipped,
              o["export-pairs"]))
          end
        end
      end)
      if not ok then
        io.stderr:write("rlaif label: ", tostring(err):gsub("^[^\n]-/rlaif/[%w_/]+%.lua:%d+: ", ""), "\n")
        status = 1
      end
    end
  end
  -- every rank ends with rank 0's verdict
  status = math.tointeger(dist.broadcast_value(status)) or 1
  dist.finalize()
  return status
end

local function run(args, dist)
  local o, status = require("rlaif.opts").main_args("label", args, FLAGS, usage)
  if not o then return status end
  if not o.data or not o.out then
    io.stderr:write("rlaif label: --data and --out are required\n", usage)
    return 2
  end
  local shard, shard_err = dist.cli_shard(o.shard, "rlaif label")
  if shard == false then
    io.stderr:write(shard_err, "\n", usage)
    return 2
  end
  if dist.size() > 1 then return label_job(o, dist), true end
  return label_run(o, shard)
end

local function main(args)
  local dist = require "rlaif.dist"
  local status, ended = run(args, dist)
  if dist.size() > 1 and not ended then status = dist.finish(status) end   -- usage errors under mpirun
  return status
end

return main
