-- lua/rlaif/cli/label.lua -- `rlaif label`: label a preference dataset with an
-- LLM (rlaif.labeler), appending one JSONL record per pair to --out; a rerun
-- continues where the last one stopped.
--
-- A subcommand module returns main(args) -> exit status (see cli/info.lua).

local usage = [[
usage: rlaif label --data FILE --out FILE [options]

  --data FILE           .jsonl, .jsonl.gz or .json dataset
  --format F            hh | comparisons | tldr | pairs | auto (default auto)
  --fields K=V,...      user-named fields for pairs (prompt=, chosen=, rejected=, id=, label=)
  --template NAME       prompt template in prompts/ or a path (default summarize-detailed)
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
  --api NAME            openai-chat | openai-completions | vllm | llamacpp | ollama | tgi | gemini | anthropic
  --base-url URL        server base URL (default $OPENAI_BASE_URL)
  --model NAME          model name
  --api-key-env VAR     environment variable holding the key (default OPENAI_API_KEY)
  --concurrency N       requests in flight (default 16)
  --max-retries N, --timeout S, --cache FILE   passed to the client
  --prices P,C          USD per 1M prompt and completion tokens, for the cost field
  --client FILE.lua     a Lua file returning a client object (custom backends, tests)
  --out FILE            output JSONL (appended; resumed)
  --no-resume           start --out from scratch
  --limit N             label at most N pairs in this run
  --batch N             pairs per batch of requests
  --skip-bad            skip malformed data lines (reported) instead of stopping
  --export-pairs FILE   afterwards write prompt/chosen/rejected/p for reward-model training
  --quiet               no progress bar or summary
]]

local FLAGS = { cot = true, ["no-swap"] = true, ["no-resume"] = true, ["skip-bad"] = true, quiet = true,
  help = true }

local function parse(args)
  local o, i = {}, 1
  while i <= #args do
    local a = args[i]
    if a == "-h" then a = "--help" end
    local k, v = a:match("^%-%-([%w%-]+)=(.*)$")
    if not k then k = a:match("^%-%-([%w%-]+)$") end
    if not k then return nil, "unexpected argument '" .. a .. "'" end
    if FLAGS[k] then
      o[k] = true
    else
      if v == nil then
        i = i + 1
        v = args[i]
        if v == nil then return nil, "option --" .. k .. " needs a value" end
      end
      o[k] = v
    end
    i = i + 1
  end
  return o
end

local KNOWN = {}
for k in ([[data format fields template shots exemplars cot samples temperature no-swap clamp polarity scoring
  votes logprobs format-requests chat api base-url model api-key-env concurrency max-retries timeout cache prices
  client out no-resume limit batch skip-bad export-pairs quiet help]]):gmatch("%S+") do KNOWN[k] = true end

local function num(o, k, int)
  if o[k] == nil then return nil end
  local v = tonumber(o[k])
  if v == nil or (int and math.type(v) ~= "integer") then
    error(string.format("--%s expects %s, got '%s'", k, int and "an integer" or "a number", o[k]), 0)
  end
  return v
end

local function pair_nums(o, k)
  if o[k] == nil then return nil end
  local a, b = o[k]:match("^%s*([^,]+)%s*,%s*([^,]+)%s*$")
  a, b = tonumber(a), tonumber(b)
  if not a or not b then error(string.format("--%s expects two numbers 'A,B', got '%s'", k, o[k]), 0) end
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
    concurrency = num(o, "concurrency", true) or 16, max_retries = num(o, "max-retries", true),
    timeout = num(o, "timeout"), cache = o.cache }
  return llm.client(cfg)
end

local function main(args)
  local o, perr = parse(args)
  if not o then
    io.stderr:write("rlaif label: ", perr, "\n", usage)
    return 2
  end
  if o.help then io.write(usage) return 0 end
  for k in pairs(o) do
    if not KNOWN[k] then
      io.stderr:write("rlaif label: unknown option --", k, "\n", usage)
      return 2
    end
  end
  if not o.data or not o.out then
    io.stderr:write("rlaif label: --data and --out are required\n", usage)
    return 2
  end
  local data = require "rlaif.data"
  local labeler = require "rlaif.labeler"
  local ok, err = pcall(function()
    local fields
    if o.fields then
      fields = {}
      for kv in o.fields:gmatch("[^,]+") do
        local k, v = kv:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
        if not k then error("--fields expects k=v,k=v; got '" .. kv .. "'", 0) end
        fields[k] = v
      end
    end
    local client = make_client(o)
    local cmin, cmax = pair_nums(o, "clamp")
    local pp, pc = pair_nums(o, "prices")
    local L = labeler.new {
      client = client, template = o.template or "summarize-detailed", shots = num(o, "shots", true),
      exemplars = o.exemplars, cot = o.cot or nil, samples = num(o, "samples", true),
      temperature = num(o, "temperature"), swap = not o["no-swap"], clamp = cmin and { cmin, cmax },
      polarity = num(o, "polarity", true), scoring = o.scoring, votes = num(o, "votes", true),
      logprobs = num(o, "logprobs", true), format = o["format-requests"], chat = o.chat, api = o.api,
      model = o.model, prices = pp and { prompt = pp, completion = pc },
    }
    local bad = 0
    local reader = data.open(o.data, { format = o.format or "auto", skip_bad = o["skip-bad"], fields = fields,
      on_bad = function(msg)
        bad = bad + 1
        if bad <= 10 then io.stderr:write("rlaif label: skipped ", msg, "\n") end
      end })
    local progress = not o.quiet
    local s = L:label(reader, { out = o.out, resume = not o["no-resume"], progress = progress,
      total = progress and reader:count() or nil,
      limit = num(o, "limit", true),
      batch = num(o, "batch", true) or math.max(256, 32 * (num(o, "concurrency", true) or 16)) })
    reader:close()
    if s.torn and not o.quiet then
      io.stderr:write("rlaif label: cut a torn last line off ", o.out, " (an interrupted write)\n")
    end
    if bad > 0 then
      io.stderr:write(string.format("rlaif label: %d malformed line(s) skipped in %s\n", bad, o.data))
    end
    if not o.quiet then io.stderr:write("rlaif label: ", labeler.summary_line(s), " -> ", o.out, "\n") end
    if o["export-pairs"] then
      local r2 = data.open(o.data, { format = reader.format, skip_bad = true, fields = fields })
      local n, skipped = labeler.export_pairs(o.out, r2, o["export-pairs"])
      r2:close()
      if not o.quiet then
        io.stderr:write(string.format("rlaif label: exported %d pairs (%d not labeled) -> %s\n", n, skipped,
          o["export-pairs"]))
      end
    end
    return s
  end)
  if not ok then
    io.stderr:write("rlaif label: ", (tostring(err):gsub("^[^\n]-/rlaif/cli/[%w_]+%.lua:%d+: ", "")), "\n")
    return 1
  end
  return 0
end

return main
