-- rlaif.llm: a client for OpenAI, vLLM, llama.cpp, Ollama, TGI, Gemini and Anthropic
-- servers, with next-token log-probabilities in one normalized shape.
--
--   local llm = require "rlaif.llm"
--   local c = llm.client{api = "openai-chat", model = "gpt-4o-mini", cache = "labels.sqlite"}
--   local r = c:complete{messages = {{role = "user", content = "1 or 2?"}}, max_tokens = 1, logprobs = 5}
--   print(r.text, r.choices[1].tokens[1].top[1].token)
--   local rs = c:complete_many(list_of_requests, {progress = true})
--
-- The C core (rlaif.core.llm) does the work: the curl-multi engine, retries, parsing,
-- the SQLite cache and the accounting. This file adds defaults (base URL and key from
-- the environment like the official SDKs) and the raising/non-raising entry points; the
-- progress bar (rlaif.progress), summaries and prices come from rlaif.llm_common.
-- Sets no globals.
--
-- Secrets: the API key goes straight to C and is not kept in any Lua table, so
-- printing a client (or its stats) can never show it.

local core = require "rlaif.core"
local common = require "rlaif.llm_common"
local optcheck = require "rlaif.opts"

local C = core.llm
local M = {}

-- Per-backend defaults: base URL, the environment variable holding the key, and
-- whether OPENAI_BASE_URL applies. Local servers get no key unless asked: an
-- OpenAI key must never be sent to some other server by default.
local DEFAULTS = {
  ["openai-chat"] = { base = "https://api.openai.com/v1", key_env = "OPENAI_API_KEY", base_env = "OPENAI_BASE_URL" },
  ["openai-completions"] = { base = "https://api.openai.com/v1", key_env = "OPENAI_API_KEY",
                             base_env = "OPENAI_BASE_URL" },
  vllm = { base = "http://127.0.0.1:8000/v1" },
  llamacpp = { base = "http://127.0.0.1:8080" },
  ollama = { base = "http://127.0.0.1:11434" },
  tgi = { base = "http://127.0.0.1:8080" },
  gemini = { base = "https://generativelanguage.googleapis.com/v1beta", key_env = "GEMINI_API_KEY" },
  anthropic = { base = "https://api.anthropic.com", key_env = "ANTHROPIC_API_KEY" },
}

local APIS = { "openai-chat", "openai-completions", "vllm", "llamacpp", "ollama", "tgi", "gemini", "anthropic",
  "local", "sim" }
local CLIENT = optcheck.schema("llm.client", {
  api = { "string", one_of = APIS }, base_url = "string", model = "string", api_key = "string",
  api_key_env = "string", concurrency = { "integer", min = 1, max = 65536 },
  max_retries = { "integer", min = 0, max = 100 }, timeout = { "number", min = 0 },
  connect_timeout = { "number", gt = 0 }, stall_timeout = { "number", min = 0 },
  backoff_base = { "number", min = 0 }, backoff_cap = { "number", min = 0 },
  retry_after_cap = { "number", min = 0 }, aimd = "boolean", cache = "string", prices = "table",
  headers = "table", ca_file = "string", stream = "boolean",
})

local Error = common.Error -- the raised form of a failed result

local MANY = optcheck.schema("llm.complete_many", {
  progress = "boolean|table", on_result = "function", summary = "boolean",
})

local Client = {}
Client.__index = Client
Client.__name = "rlaif.llm.client"
Client.__tostring = function(c)
  return string.format("rlaif.llm.client(api=%s, model=%s, base_url=%s)", c.api, tostring(c.model), c.base_url)
end

--- llm.client{api=, base_url=, model=, api_key_env=, api_key=, concurrency=, max_retries=,
---   timeout=, cache=, prices=, headers=, ca_file=, stream=, ...} -> client
function M.client(opts)
  -- in-process backends: a local model, the simulated judge of rlaif.sim
  if type(opts) == "table" and opts.api == "local" then return require("rlaif.llm_local").client(opts) end
  if type(opts) == "table" and opts.api == "sim" then return require("rlaif.sim").client(opts) end
  opts = CLIENT(opts)
  local api = opts.api or "openai-chat"
  local d = DEFAULTS[api]
  local base_url = opts.base_url or (d.base_env and os.getenv(d.base_env)) or d.base
  local key_env = opts.api_key_env or d.key_env
  local key = opts.api_key or (key_env and os.getenv(key_env)) or nil
  if key == "" then key = nil end
  local okc, c = pcall(C.client, {
    api = api, base_url = base_url, model = opts.model, api_key = key, headers = opts.headers,
    cache = opts.cache, ca_file = opts.ca_file, concurrency = opts.concurrency, max_retries = opts.max_retries,
    timeout = opts.timeout, connect_timeout = opts.connect_timeout, stall_timeout = opts.stall_timeout,
    backoff_base = opts.backoff_base, backoff_cap = opts.backoff_cap, retry_after_cap = opts.retry_after_cap,
    aimd = opts.aimd,
  })
  key = nil -- luacheck: ignore 311 (drop our reference to the key early)
  if not okc then error((tostring(c):gsub("^[^:\n]*:%d+: ", "")), 2) end   -- at the caller's line
  return setmetatable({
    _c = c, api = api, model = opts.model, base_url = base_url, prices = opts.prices, stream = opts.stream,
  }, Client)
end

local function prepare(self, req)
  if type(req) ~= "table" then error("llm: a request must be a table", 3) end
  if self.stream ~= nil and req.stream == nil then
    local r = {}
    for k, v in pairs(req) do r[k] = v end
    r.stream = self.stream
    return r
  end
  return req
end

--- c:try_complete(req) -> response | nil, err   (err is the failed result: ok=false, kind, status,
--- message, attempts)
function Client:try_complete(req)
  local res = self._c:run({ prepare(self, req) })[1]
  if res.ok then return res end
  return nil, setmetatable(res, Error)
end

--- c:complete(req) -> response; raises the failed result (a table with __tostring) on failure.
function Client:complete(req)
  local res = self._c:run({ prepare(self, req) })[1]
  if res.ok then return res end
  error(setmetatable(res, Error), 2)
end

--- c:complete_many(reqs [, {progress=, on_result=, summary=}]) -> results, info
--- results[i] answers reqs[i] (input order): a response (ok=true) or an error object (ok=false).
--- info = {interrupted=, stopped=, ok=, failed=, cached=, elapsed=, summary=}. A batch stopped
--- by Ctrl-C (interrupted) or by a failure no retry can heal (stopped = why: a rejected key,
--- an unreachable server) returns what finished; the requests never sent are
--- kind="cancelled". progress = true (or a table of rlaif.progress options) shows a bar.
function Client:complete_many(reqs, opts)
  opts = MANY(opts)
  if type(reqs) ~= "table" then error("llm.complete_many: requests must be a list", 2) end
  local list = {}
  for i = 1, #reqs do list[i] = prepare(self, reqs[i]) end
  local t0 = core.clock()
  local bar = common.bar(opts.progress, #list)
  local on_progress = (not bar.quiet) and function(done, _, errors) bar:update(done, { { "errors", errors } }) end
    or nil
  local results, interrupted, stopped = self._c:run(list, opts.on_result, on_progress, 0.1)
  return results, common.finish_batch(results, interrupted, t0, bar, opts, stopped)
end

--- c:stats() -> {requests, attempts, retries, cache_hits, ok, failed, errors = {kind = n},
---   models = {name = {requests, prompt_tokens, completion_tokens, cost}}, latency = {p50, ...}, cost}
--- cost is computed from the client's `prices` = {model = {prompt = $/1M tokens, completion = $/1M}}.
function Client:stats()
  local s = self._c:stats()
  local total = 0
  for name, m in pairs(s.models) do
    m.cost = common.cost(self.prices, name, m)
    total = total + (m.cost or 0)
  end
  s.cost = total
  return s
end

--- c:summary() -> one line describing the stats so far.
function Client:summary() return common.summary(self:stats(), self.prices) end

function Client:reset_stats() self._c:reset_stats() end

--- c:set_concurrency(n): change the maximum number of requests in flight.
function Client:set_concurrency(n) self._c:set_concurrency(n) end

--- c:close(): free the connections and the cache handle now (also on GC and <close>).
function Client:close() self._c:close() end
Client.__close = Client.close

-- ---- helpers exposed for tests and tools ----

--- llm.parse(format, body [, stream]) -> response | nil, message, kind
M.parse = C.parse
--- llm.build(api, base_url, model, req) -> url, body, format, stream
M.build = C.build
--- llm.error_info(status, body) -> {message, retryable, capability, quota, retry_after, status}
M.error_info = C.error_info
--- llm.decode_json(text) -> value | nil, message (integral numbers as integers)
M.decode_json = C.decode_json
--- llm.encode_json(value) -> text (sorted keys, integers exact, floats as %.17g)
M.encode_json = C.encode_json
--- llm.cancel_request() / llm.cancel_reset(): what Ctrl-C does in the REPL; a running
--- batch stops promptly and returns its partial results.
M.cancel_request = C.cancel_request
--- llm.cancel_reset(): clear the cancel flag so the next batch runs
M.cancel_reset = C.cancel_reset

--- llm.label_probs(response, labels [, position]) -> {label = p}, missing
--- Sum the probabilities of the top alternatives at `position` (default 1) whose
--- stripped token equals each label, renormalised over the labels. `missing` is true
--- when no label appeared in the top-K (the caller must not treat that as a label).
function M.label_probs(res, labels, position)
  local tok = res.choices and res.choices[1] and res.choices[1].tokens[position or 1]
  local acc, total = {}, 0
  for _, l in ipairs(labels) do acc[l] = 0 end
  if tok then
    for _, alt in ipairs(tok.top) do
      local t = alt.token:match("^%s*(.-)%s*$")
      if acc[t] ~= nil and alt.logprob > -math.huge then
        local p = math.exp(alt.logprob)
        acc[t] = acc[t] + p
        total = total + p
      end
    end
  end
  if total == 0 then return acc, true end
  for l, p in pairs(acc) do acc[l] = p / total end
  return acc, false
end

return M
