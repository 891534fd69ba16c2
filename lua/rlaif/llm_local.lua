-- rlaif.llm_local: the `local` backend of rlaif.llm -- the same requests and the
-- same normalized responses as the HTTP backends, answered by an in-process
-- model (rlaif.model) and tokenizer (rlaif.tokenizer). No server, no network.
--
--   local c = rlaif.llm.client{api = "local", model = "ckpt/qwen2.5-0.5b"}   -- HF directory
--   local c = rlaif.llm.client{api = "local", model = m, tokenizer = tok}    -- objects in memory
--   local r = c:complete{prompt = "Preferred Summary=", max_tokens = 1, temperature = 0, logprobs = 5}
--   print(r.text, r.choices[1].tokens[1].top[1].token, r.choices[1].tokens[1].top[1].logprob)
--
-- Client options: `model` (a Hugging Face directory or a loaded LM-head model),
-- `tokenizer` (a path or a loaded tokenizer; default: the model directory),
-- `name` (the model name in results and stats; default: the directory),
-- `batch_size` (rows per model batch; default `concurrency` or 8), `seed` (base
-- seed of sampled requests; 0), `chat_template` ("auto" | "plain" | "chatml" |
-- "llama3" | function(messages) -> string), `max_batch_logits` (floats of logits
-- one forward may produce; 2^25), `dtype` ("float32" | "bf16": load the model
-- directory with its weight matrices in bf16, see rlaif.model.load; a loaded
-- model is used as it is), `prices`. The transport options of the HTTP
-- backends (base_url, api_key*, timeouts, retries, cache, headers, ...) are
-- accepted and ignored, so one configuration (and `rlaif label --api local
-- --model DIR`) works for both.
--
-- Semantics, as close to an OpenAI-style server as an in-process model allows:
--  * `prompt` is text (encoded with the tokenizer's BOS rule) or a list of token
--    ids; `messages` are rendered by the chat template (below).
--  * Defaults: max_tokens 16, temperature 1, top_p 1, top_k 0 (off), n 1.
--    temperature 0 is greedy (argmax; the lowest id on ties). A prompt that
--    fills the model's context (max_seq) is an error of kind "invalid";
--    otherwise max_tokens is cut to what the context holds (finish_reason
--    "length").
--  * Log-probabilities are the model's own (log-softmax of the logits at
--    temperature 1, before top-k/top-p), like vLLM and OpenAI: `logprobs = K`
--    gives every generated position {token, bytes, id, logprob, top = K
--    alternatives {token, bytes, id, logprob} sorted by logprob (ties: lower id
--    first)}. Without `logprobs`, `tokens` is empty, as from a server.
--  * finish_reason "stop" when an end-of-sequence token (config.json,
--    generation_config.json, the chat template's end token) or a `stop` string
--    ends the answer, else "length". The text excludes the end token and the
--    stop string; an end token stays in `tokens` (its alternatives are what a
--    labeler reads); tokens after a stop string are dropped. `text` and
--    `token` are valid UTF-8 (invalid bytes become U+FFFD); `bytes` is raw.
--  * Sampling: a request's `seed` makes it reproducible; without one, `sample =
--    k` (the labeler's self-consistency index) or a per-client counter is mixed
--    into the client seed, so identical sampled requests differ. Sampled
--    requests run one per model call (their n choices form the batch), so their
--    result never depends on the other requests; greedy requests are grouped
--    into batches (rows sorted by length). max_tokens = 1 greedy requests (the
--    labeler's scoring) need a single forward pass and no generation.
--  * `logprobs_tokens = {"1", "2"}` (with `logprobs`) adds to each position's `top`
--    every vocabulary token whose text, leading whitespace stripped, is one of
--    these strings, wherever it ranks: the labeler asks for its label tokens'
--    log-probabilities directly instead of hoping they are in the top K.
--  * `echo = true` (completions): each choice's text starts with the prompt
--    and, with `logprobs = K`, its tokens start with the prompt's tokens
--    (the first without logprob or alternatives, as OpenAI returns them).
--    max_tokens = 0 generates nothing (with echo: scores the prompt).
--  * Not supported: `logit_bias` (kind "capability"). `extra`, `stream` and
--    `model` in a request are ignored.
--
-- Chat templates (`chat_template`; "auto" picks chatml when the tokenizer has
-- <|im_start|>, llama3 when it has <|start_header_id|>, else plain):
--   plain:   "System: ...\n\nUser: ...\n\nAssistant: ...\n\n" then "Assistant:"
--   chatml:  "<|im_start|>role\n...<|im_end|>\n" then "<|im_start|>assistant\n"
--   llama3:  "<|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>"
--            then "<|start_header_id|>assistant<|end_header_id|>\n\n"
-- A last message from the assistant is a prefill: it is rendered open (no end
-- marker, no new header) and the model continues it. Special tokens are only
-- recognised in the template's own markers, never inside message contents. A
-- function template returns the whole prompt string, encoded with special
-- tokens recognised and no BOS added. (Jinja templates of tokenizer_config.json
-- are not interpreted.)
--
-- Errors are result objects {ok = false, kind, message, attempts = 1}: kind
-- "invalid" (bad request, prompt too long, token id out of range),
-- "capability", "cancelled" (Ctrl-C: the model stopped), "model" (the model
-- failed, e.g. out of memory; a failing batch is retried row by row first).

local core = require "rlaif.core"
local common = require "rlaif.llm_common"
local model_mod = require "rlaif.model"
local tokenizer_mod = require "rlaif.tokenizer"

local M = {}

local huge = math.huge
local DEFAULT_MAX_TOKENS = 16
local MAX_BATCH_LOGITS = 1 << 25
local SEED_MASK = (1 << 53) - 1

local CLIENT = require("rlaif.opts").schema("llm.client{api = \"local\"}", {
  api = "string", model = "string|userdata", tokenizer = "string|userdata", name = "string",
  batch_size = { "integer", min = 1 }, seed = "integer", chat_template = { "string|function", check = function(v)
    return type(v) == "function" or v == "auto" or v == "plain" or v == "chatml" or v == "llama3",
      'must be "auto", "plain", "chatml", "llama3" or a function, got ' .. tostring(v)
  end }, max_batch_logits = { "integer", min = 1 }, dtype = { "string", one_of = { "float32", "bf16" } },
  prices = "table", concurrency = { "integer", min = 1 },
  -- transport options of the HTTP backends: accepted, ignored
  base_url = "string", api_key = "string", api_key_env = "string", max_retries = "integer", timeout = "number",
  connect_timeout = "number", stall_timeout = "number", backoff_base = "number", backoff_cap = "number",
  retry_after_cap = "number", aimd = "boolean", cache = "string", headers = "table", ca_file = "string",
  stream = "boolean",
})

local MANY = require("rlaif.opts").schema("llm.complete_many", {
  progress = "boolean|table", on_result = "function", summary = "boolean",
})

local function fail(kind, message)
  return { ok = false, kind = kind, message = message, attempts = 1 }
end

local Client = {}
Client.__index = Client
Client.__name = "rlaif.llm.client"
Client.__tostring = function(c)
  return string.format("rlaif.llm.client(api=local, model=%s)", tostring(c.model))
end

-- ---- text helpers ----

--- s with every byte that is not part of valid UTF-8 replaced by U+FFFD.
local function utf8_clean(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len, bad = utf8.len(s, i)
    if len then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end

-- ---- construction ----

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local ok, v = pcall(core.json.decode, s)
  if ok and type(v) == "table" then return v end
  return nil
end

local function detect_template(specials)
  if specials["<|im_start|>"] and specials["<|im_end|>"] then return "chatml" end
  if specials["<|start_header_id|>"] and specials["<|eot_id|>"] then return "llama3" end
  return "plain"
end

--- client(opts) -> a client with the rlaif.llm interface (see the header).
function M.client(opts)
  opts = CLIENT(opts, 3)
  local m, dir = opts.model, nil
  if type(m) == "string" then
    dir = m
    local err
    m, err = model_mod.try_load(dir, { dtype = opts.dtype })
    if not m then error("llm.client{api = \"local\"}: " .. tostring(err), 2) end
  elseif m == nil then
    error("llm.client{api = \"local\"}: `model` (a model directory or a loaded model) is required", 2)
  end
  if dir == nil and opts.dtype then
    error("llm.client{api = \"local\"}: option 'dtype' applies to a model directory; load the model with " ..
      "rlaif.model.load(dir, {dtype = ...}) instead", 2)
  end
  local cfg = m:config()
  if cfg.head ~= "lm" then error("llm.client{api = \"local\"}: the model has a reward head and cannot generate", 2) end
  local tok = opts.tokenizer or dir
  if type(tok) == "string" then
    local err
    tok, err = tokenizer_mod.try_load(tok)
    if not tok then error("llm.client{api = \"local\"}: " .. tostring(err), 2) end
  elseif tok == nil then
    error("llm.client{api = \"local\"}: `tokenizer` is required when `model` is not a directory", 2)
  end
  if tok:vocab_size() > cfg.vocab_size then
    error(string.format("llm.client{api = \"local\"}: the tokenizer has %d tokens, the model only %d",
      tok:vocab_size(), cfg.vocab_size), 2)
  end
  local specials = tok:special_tokens()
  -- end-of-sequence ids: config.json, generation_config.json, else the tokenizer's <|endoftext|>
  local eos, eos_list = {}, {}
  local function add_eos(id)
    if math.type(id) == "integer" and id >= 0 and id < cfg.vocab_size and not eos[id] then
      eos[id] = true
      eos_list[#eos_list + 1] = id
    end
  end
  add_eos(cfg.eos_id)
  if dir then
    local g = read_json(dir .. "/generation_config.json")
    local e = g and g.eos_token_id
    if type(e) == "table" then for _, id in ipairs(e) do add_eos(id) end else add_eos(e) end
  end
  if #eos_list == 0 then add_eos(specials["<|endoftext|>"]) end
  local tmpl = opts.chat_template or "auto"
  if tmpl == "auto" then tmpl = detect_template(specials) end
  local chat_end = {}
  if tmpl == "chatml" then chat_end[#chat_end + 1] = specials["<|im_end|>"] end
  if tmpl == "llama3" then chat_end[#chat_end + 1] = specials["<|eot_id|>"] end
  local bs = opts.batch_size or opts.concurrency or 8
  local seed = opts.seed or 0
  local self = setmetatable({
    api = "local", model = opts.name or dir or "local", concurrency = bs, prices = opts.prices,
    _m = m, _tok = tok, _V = cfg.vocab_size, _max_seq = cfg.max_seq, _bos = cfg.bos_id,
    _eos = eos, _eos_list = eos_list, _chat_end = chat_end, _template = tmpl, _specials = specials,
    _seed = seed, _draws = 0, _ids = 0, _budget = opts.max_batch_logits or MAX_BATCH_LOGITS,
    _tokcache = {}, _variants = {},
  }, Client)
  self:reset_stats()
  return self
end

-- ---- requests -> jobs ----

local function title(role)
  return (role:gsub("^%l", string.upper))
end

-- Token ids of a chat, or nil, message.
function Client:_render_chat(msgs)
  local tok, tmpl = self._tok, self._template
  if type(msgs) ~= "table" or #msgs == 0 then return nil, "messages must be a non-empty list" end
  for i, msg in ipairs(msgs) do
    if type(msg) ~= "table" or type(msg.role) ~= "string" or type(msg.content) ~= "string" then
      return nil, string.format("messages[%d] must be {role = string, content = string}", i)
    end
  end
  local prefill = msgs[#msgs].role == "assistant"
  if type(tmpl) == "function" then
    local ok, s = pcall(tmpl, msgs)
    if not ok or type(s) ~= "string" then
      return nil, "chat_template: " .. (ok and "did not return a string" or tostring(s))
    end
    return tok:encode(s, { allowed_special = "all" })
  end
  if tmpl == "plain" then
    local parts = {}
    for i, msg in ipairs(msgs) do
      if i == #msgs and prefill then
        parts[#parts + 1] = "Assistant: " .. msg.content
      else
        parts[#parts + 1] = title(msg.role) .. ": " .. msg.content .. "\n\n"
      end
    end
    if not prefill then parts[#parts + 1] = "Assistant:" end
    return tok:encode(table.concat(parts), { add_special = true })
  end
  -- chatml / llama3: markers with special tokens, contents as plain text
  local ids = {}
  local function put(text, special)
    if text == "" then return end
    local t = tok:encode(text, special and { allowed_special = "all" } or nil)
    table.move(t, 1, #t, #ids + 1, ids)
  end
  local open, close, gen
  if tmpl == "chatml" then
    open = function(role) return "<|im_start|>" .. role .. "\n" end
    close, gen = "<|im_end|>\n", "<|im_start|>assistant\n"
  else
    put("<|begin_of_text|>", true)
    open = function(role) return "<|start_header_id|>" .. role .. "<|end_header_id|>\n\n" end
    close, gen = "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n"
  end
  for i, msg in ipairs(msgs) do
    put(open(msg.role), true)
    put(msg.content, false)
    if not (i == #msgs and prefill) then put(close, true) end
  end
  if not prefill then put(gen, true) end
  return ids
end

local function int_opt(req, k, def, lo)
  local v = req[k]
  if v == nil then return def end
  if math.type(v) ~= "integer" or v < lo then return nil, string.format("%s must be an integer >= %d", k, lo) end
  return v
end

local function num_opt(req, k, def, lo, hi)
  local v = req[k]
  if v == nil then return def end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    return nil, string.format("%s must be a number in [%s, %s]", k, tostring(lo), tostring(hi))
  end
  return v
end

local function mix(a, b)
  -- splitmix64 of a combination, kept below 2^53 (model.generate takes a double)
  local z = (a * 0x9E3779B97F4A7C15 + b + 0x632BE59BD9B4E019)
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  z = z ~ (z >> 31)
  return z & SEED_MASK
end

-- A job for a request, or nil, error result.
function Client:_job(i, req)
  if type(req) ~= "table" then return nil, fail("invalid", "a request must be a table") end
  if req.logit_bias ~= nil and next(req.logit_bias) ~= nil then
    return nil, fail("capability", "logit_bias is not supported by the local backend")
  end
  if req.echo ~= nil and type(req.echo) ~= "boolean" then return nil, fail("invalid", "echo must be a boolean") end
  local ids, err
  local chat = false
  if req.prompt ~= nil and req.messages ~= nil then
    return nil, fail("invalid", "give either prompt or messages, not both")
  elseif type(req.prompt) == "string" then
    ids = self._tok:encode(req.prompt, { add_special = true })
  elseif type(req.prompt) == "table" then
    ids = {}
    for k, v in ipairs(req.prompt) do
      if math.type(v) ~= "integer" or v < 0 or v >= self._V then
        return nil, fail("invalid", string.format("prompt[%d] is not a token id in [0, %d)", k, self._V))
      end
      ids[k] = v
    end
  elseif req.messages ~= nil then
    chat = true
    ids, err = self:_render_chat(req.messages)
    if not ids then return nil, fail("invalid", err) end
  else
    return nil, fail("invalid", "a request needs prompt (a string or token ids) or messages")
  end
  if #ids == 0 then
    if self._bos >= 0 then ids = { self._bos } else return nil, fail("invalid", "the prompt is empty") end
  end
  local room = self._max_seq - #ids
  if room <= 0 then
    return nil, fail("invalid", string.format("the prompt has %d tokens; the model's context is %d", #ids,
      self._max_seq))
  end
  local job = { i = i, ids = ids, chat = chat, echo = req.echo or nil }
  if job.echo then
    job.prompt_text = type(req.prompt) == "string" and req.prompt or self._tok:decode(ids)
  end
  local e
  job.max_tokens, e = int_opt(req, "max_tokens", DEFAULT_MAX_TOKENS, 0)
  if not e then job.n, e = int_opt(req, "n", 1, 1) end
  if not e then job.top_k, e = int_opt(req, "top_k", 0, 0) end
  if not e then job.temperature, e = num_opt(req, "temperature", 1.0, 0, huge) end
  if not e then job.top_p, e = num_opt(req, "top_p", 1.0, 0, 1) end
  if not e and req.seed ~= nil and math.type(req.seed) ~= "integer" then e = "seed must be an integer" end
  if not e and req.sample ~= nil and math.type(req.sample) ~= "integer" then e = "sample must be an integer" end
  if e then return nil, fail("invalid", e) end
  if job.top_p <= 0 then return nil, fail("invalid", "top_p must be > 0") end
  if job.max_tokens > room then job.max_tokens = room end
  local lp = req.logprobs
  if lp == true then lp = 0 end
  if lp ~= nil and lp ~= false then
    if math.type(lp) ~= "integer" or lp < 0 then return nil, fail("invalid", "logprobs must be an integer K >= 0") end
    job.K = math.min(lp, self._V)
  end
  local extra = req.logprobs_tokens
  if extra ~= nil then
    if type(extra) ~= "table" then return nil, fail("invalid", "logprobs_tokens must be a list of strings") end
    for k, t in ipairs(extra) do
      if type(t) ~= "string" then
        return nil, fail("invalid", string.format("logprobs_tokens[%d] must be a string", k))
      end
    end
    if job.K then job.extra = self:_variant_ids(extra) end
  end
  local stop = req.stop
  if type(stop) == "string" then stop = { stop } end
  if stop ~= nil and type(stop) ~= "table" then return nil, fail("invalid", "stop must be a string or a list") end
  job.stop = {}
  for k, s in ipairs(stop or {}) do
    if type(s) ~= "string" then return nil, fail("invalid", string.format("stop[%d] must be a string", k)) end
    if s ~= "" then job.stop[#job.stop + 1] = s end
  end
  -- ids at which the model may stop early: end tokens, plus stop strings that are one token
  local sid, list = {}, {}
  local function add(id) if id and not sid[id] then sid[id], list[#list + 1] = true, id end end
  for _, id in ipairs(self._eos_list) do add(id) end
  if chat then for _, id in ipairs(self._chat_end) do add(id) end end
  job.end_ids = {}
  for id in pairs(sid) do job.end_ids[id] = true end
  for _, s in ipairs(job.stop) do
    local t = self._tok:encode(s)
    if #t == 1 then add(t[1]) end
  end
  table.sort(list)
  job.stop_ids = list
  job.greedy = job.temperature == 0 or job.top_k == 1
  if not job.greedy then
    local base = req.seed
    if base == nil then
      local k = req.sample
      if k == nil then
        self._draws = self._draws + 1
        k = self._draws
      end
      base = mix(self._seed, k)
    end
    job.seed = base & SEED_MASK
  end
  return job
end

-- ---- model calls ----

-- The text and raw bytes of a token id (memoized).
function Client:_piece(id)
  local c = self._tokcache[id]
  if c then return c end
  local b = self._tok:token(id) or ""
  c = { utf8_clean(b), b }
  self._tokcache[id] = c
  return c
end

-- The ids of every vocabulary token whose text, leading whitespace stripped, is
-- one of `texts` (the labeler's spelling variants of a label), sorted; memoized.
function Client:_variant_ids(texts)
  local key = table.concat(texts, "\0")
  local cached = self._variants[key]
  if cached then return cached end
  local want = {}
  for _, t in ipairs(texts) do want[t] = true end
  local ids = {}
  for id = 0, self._tok:vocab_size() - 1 do
    local b = self._tok:token(id)
    if b and want[(b:gsub("^%s+", ""))] then ids[#ids + 1] = id end
  end
  self._variants[key] = ids
  return ids
end

-- The K best of a log-softmax row (a Lua array over ids 0..V-1), sorted, plus the
-- ids in `extra` (requested by logprobs_tokens) wherever they rank.
function Client:_top_with(row, K, extra)
  local top = self:_top(row, K)
  if not extra or #extra == 0 then return top end
  local have = {}
  for _, e in ipairs(top) do have[e.id] = true end
  for _, id in ipairs(extra) do
    if not have[id] and id < #row then
      local p = self:_piece(id)
      top[#top + 1] = { token = p[1], bytes = p[2], id = id, logprob = row[id + 1] }
      have[id] = true
    end
  end
  table.sort(top, function(a, b)
    if a.logprob ~= b.logprob then return a.logprob > b.logprob end
    return a.id < b.id
  end)
  return top
end

-- The K best of a log-softmax row (a Lua array over ids 0..V-1), sorted.
function Client:_top(row, K)
  local V = #row
  if K <= 0 then return {} end
  local idx = {}
  if K * 4 >= V then
    for v = 1, V do idx[v] = v end
    table.sort(idx, function(a, b)
      if row[a] ~= row[b] then return row[a] > row[b] end
      return a < b
    end)
  else
    -- keep a sorted list of the best K; insert when better than the worst kept
    local n = 0
    for v = 1, V do
      local x = row[v]
      if n < K or x > row[idx[n]] then
        local j = n < K and n + 1 or n
        while j > 1 and row[idx[j - 1]] < x do
          idx[j] = idx[j - 1]
          j = j - 1
        end
        idx[j] = v
        if n < K then n = n + 1 end
      end
    end
  end
  local top = {}
  for k = 1, K do
    local v = idx[k]
    local p = self:_piece(v - 1)
    top[k] = { token = p[1], bytes = p[2], id = v - 1, logprob = row[v] }
  end
  return top
end

-- Forward `seqs` (lists of ids) in memory-bounded chunks; for each seq s and each
-- position t in want[s] call fn(s, k, row) with row = log_softmax of the logits at
-- t (a Lua array over the vocabulary); k indexes want[s].
function Client:_rows(seqs, want, fn)
  local order = {}
  for s = 1, #seqs do order[s] = s end
  table.sort(order, function(a, b) return #seqs[a] < #seqs[b] end)
  local V, budget, bs = self._V, self._budget, self.concurrency
  local i = 1
  while i <= #order do
    local chunk = { order[i] }
    local j = i + 1
    while j <= #order and #chunk < bs and (#chunk + 1) * #seqs[order[j]] * V <= budget do
      chunk[#chunk + 1] = order[j]
      j = j + 1
    end
    local batch = {}
    for k, s in ipairs(chunk) do batch[k] = seqs[s] end
    local logits = self._m:forward(batch)
    for k, s in ipairs(chunk) do
      local b = logits:select(1, k)
      for w, t in ipairs(want[s]) do fn(s, w, b:select(1, t):log_softmax():totable()) end
    end
    logits:free()
    i = j
  end
end

-- A choice from generated ids (0-based): text, finish reason, kept tokens, count.
function Client:_finish(job, gen)
  local pieces, text_parts = {}, {}
  local eos_at = nil
  for k, id in ipairs(gen) do
    if job.end_ids[id] then
      eos_at = k
      break
    end
    local p = self:_piece(id)
    pieces[k] = p[2]
    text_parts[k] = p[2]
  end
  local raw = table.concat(text_parts)
  local cut = nil
  for _, s in ipairs(job.stop) do
    local a = raw:find(s, 1, true)
    if a and (not cut or a < cut.at) then cut = { at = a, len = #s } end
  end
  local keep, count, finish
  if cut then
    -- tokens starting before the cut stay; the count runs to the token completing the stop string
    local off, stop_end = 0, cut.at + cut.len - 1
    keep, count = 0, #pieces
    for k = 1, #pieces do
      if off < cut.at - 1 then keep = k end
      off = off + #pieces[k]
      if off >= stop_end then
        count = k
        break
      end
    end
    raw = raw:sub(1, cut.at - 1)
    finish = "stop"
  elseif eos_at then
    keep, count, finish = eos_at, eos_at, "stop"
  else
    keep, count, finish = #gen, #gen, "length"
  end
  local ids = table.move(gen, 1, keep, 1, {})
  return { text = utf8_clean(raw), finish_reason = finish, ids = ids, count = count }
end

local function argmax(row)
  local best, bv = 1, -huge
  for v = 1, #row do
    if row[v] > bv then best, bv = v, row[v] end
  end
  return best - 1
end

-- Fill choice.tokens for choices whose job asked for log-probabilities; with
-- echo, the prompt's tokens come first (the first one has no logprob).
function Client:_fill_tokens(items)
  local seqs, want, who = {}, {}, {}
  for _, it in ipairs(items) do
    local job, ch = it.job, it.choice
    ch.tokens = {}
    local np = job.echo and #job.ids - 1 or 0   -- prompt positions with a distribution
    if job.K and #ch.ids + np > 0 then
      local s = table.move(job.ids, 1, #job.ids, 1, {})
      if #ch.ids > 1 then table.move(ch.ids, 1, #ch.ids - 1, #s + 1, s) end
      local w = {}
      for t = 1, np do w[t] = t end
      for k = 1, #ch.ids do w[np + k] = #job.ids + k - 1 end
      seqs[#seqs + 1], want[#want + 1], who[#who + 1] = s, w, { it = it, np = np }
    end
  end
  if #seqs == 0 then return end
  self:_rows(seqs, want, function(s, k, row)
    local it, np = who[s].it, who[s].np
    local id = k <= np and it.job.ids[k + 1] or it.choice.ids[k - np]
    local p = self:_piece(id)
    it.choice.tokens[k] = { token = p[1], bytes = p[2], id = id, logprob = row[id + 1],
      top = self:_top_with(row, it.job.K, it.job.extra) }
  end)
end

-- Prepend the prompt to echo choices: its text, and its first token (which
-- has no distribution) before the tokens _fill_tokens computed.
function Client:_echo(items)
  for _, it in ipairs(items) do
    local job, ch = it.job, it.choice
    if job.echo then
      ch.text = utf8_clean(job.prompt_text) .. ch.text
      if job.K then
        local p = self:_piece(job.ids[1])
        table.insert(ch.tokens, 1, { token = p[1], bytes = p[2], id = job.ids[1] })
      end
    end
  end
end

-- Run a group of jobs that share one model call; returns {job = {choices...}}.
function Client:_run_group(kind, jobs)
  local out = {}
  local items = {}
  if kind == "forward" then
    -- greedy, one token: a single forward pass gives the token and its alternatives
    local seqs, want = {}, {}
    for k, job in ipairs(jobs) do seqs[k], want[k] = job.ids, { #job.ids } end
    self:_rows(seqs, want, function(s, _, row)
      local job = jobs[s]
      local id = argmax(row)
      local ch = self:_finish(job, { id })
      if job.K and #ch.ids > 0 then
        local p = self:_piece(id)
        ch.tokens = { { token = p[1], bytes = p[2], id = id, logprob = row[id + 1],
          top = self:_top_with(row, job.K, job.extra) } }
      else
        ch.tokens = {}
      end
      out[job] = { ch }
    end)
    return out
  end
  if kind == "none" then
    -- max_tokens = 0: no generation; echo jobs still get their prompt's tokens
    for _, job in ipairs(jobs) do
      local ch = self:_finish(job, {})
      out[job] = { ch }
      items[#items + 1] = { job = job, choice = ch }
    end
    self:_fill_tokens(items)
    self:_echo(items)
    return out
  end
  local prompts, rows = {}, {}
  local g = jobs[1]
  local copies = kind == "sample" and g.n or 1
  for _, job in ipairs(jobs) do
    for _ = 1, copies do
      prompts[#prompts + 1] = job.ids
      rows[#rows + 1] = job
    end
  end
  local toks = self._m:generate(prompts, {
    max_new_tokens = g.max_tokens, temperature = kind == "sample" and g.temperature or 0,
    top_k = g.top_k, top_p = g.top_p, stop = g.stop_ids, seed = g.seed or 0,
  })
  for r, job in ipairs(rows) do
    local ch = self:_finish(job, toks[r])
    out[job] = out[job] or {}
    local list = out[job]
    list[#list + 1] = ch
    items[#items + 1] = { job = job, choice = ch }
  end
  self:_fill_tokens(items)
  self:_echo(items)
  return out
end

-- ---- results ----

local function copy_choice(ch)
  local t = {}
  for k, v in pairs(ch) do t[k] = v end
  return t
end

function Client:_response(job, choices, latency)
  if #choices < job.n then
    for j = #choices + 1, job.n do choices[j] = copy_choice(choices[1]) end
  end
  local completion = 0
  local list = {}
  for j, ch in ipairs(choices) do
    completion = completion + ch.count
    list[j] = { index = j - 1, text = ch.text, finish_reason = ch.finish_reason, tokens = ch.tokens or {} }
  end
  self._ids = self._ids + 1
  return {
    ok = true, id = "local-" .. self._ids, model = self.model, text = list[1].text, choices = list,
    usage = { prompt_tokens = #job.ids, completion_tokens = completion },
    latency = latency, attempts = 1, cached = false,
  }
end

function Client:_account(res)
  local s = self._st
  s.requests = s.requests + 1
  if res.ok then
    s.ok = s.ok + 1
    local m = s.models[self.model]
    if not m then
      m = { requests = 0, prompt_tokens = 0, completion_tokens = 0 }
      s.models[self.model] = m
    end
    m.requests = m.requests + 1
    m.prompt_tokens = m.prompt_tokens + res.usage.prompt_tokens
    m.completion_tokens = m.completion_tokens + res.usage.completion_tokens
    s.lat[#s.lat + 1] = res.latency
  else
    s.errors[res.kind] = (s.errors[res.kind] or 0) + 1
  end
end

local function is_interrupt(msg)
  return tostring(msg):find("interrupted", 1, true) ~= nil
end

-- ---- the client interface ----

--- c:complete_many(reqs [, {progress=, on_result=, summary=}]) -> results, info
--- results[i] answers reqs[i]: a response (ok = true) or an error object (ok = false).
function Client:complete_many(reqs, opts)
  opts = MANY(opts)
  if type(reqs) ~= "table" then error("llm.complete_many: requests must be a list", 2) end
  local t0 = core.clock()
  local total = #reqs
  local bar = common.bar(opts.progress, total)
  local results, done, nerr = {}, 0, 0
  local function deliver(i, res)
    results[i] = res
    done = done + 1
    if not res.ok then nerr = nerr + 1 end
    self:_account(res)
    if opts.on_result then opts.on_result(i, res) end
    bar:update(done, { { "errors", nerr } })
  end
  -- requests -> jobs, grouped: greedy one-token jobs, greedy jobs by (max_tokens, stop ids), sampled alone
  local groups, by_key = {}, {}
  for i = 1, total do
    local job, err = self:_job(i, reqs[i])
    if not job then
      deliver(i, err)
    else
      local key, kind
      if job.max_tokens == 0 then
        key, kind = "none", "none"
      elseif job.greedy and job.max_tokens == 1 and not job.echo then
        key, kind = "forward", "forward"
      elseif job.greedy then
        key, kind = "greedy|" .. job.max_tokens .. "|" .. table.concat(job.stop_ids, ","), "greedy"
      else
        kind = "sample"
      end
      local g = key and by_key[key]
      if not g then
        g = { kind = kind, jobs = {} }
        groups[#groups + 1] = g
        if key then by_key[key] = g end
      end
      g.jobs[#g.jobs + 1] = job
    end
  end
  local interrupted = false
  local function run(kind, jobs)
    if interrupted then
      for _, job in ipairs(jobs) do deliver(job.i, fail("cancelled", "cancelled")) end
      return
    end
    local t1 = core.clock()
    local ok, out = pcall(self._run_group, self, kind, jobs)
    if ok then
      local dt = core.clock() - t1
      for _, job in ipairs(jobs) do deliver(job.i, self:_response(job, out[job], dt)) end
    elseif is_interrupt(out) then
      interrupted = true
      for _, job in ipairs(jobs) do deliver(job.i, fail("cancelled", "interrupted")) end
    elseif #jobs > 1 then
      for _, job in ipairs(jobs) do run(kind, { job }) end   -- isolate the failing request
    else
      deliver(jobs[1].i, fail("model", tostring(out)))
    end
  end
  for _, g in ipairs(groups) do
    if g.kind == "sample" then
      run(g.kind, g.jobs)
    else
      -- greedy groups go to the model in batches of rows of similar length
      table.sort(g.jobs, function(a, b) return #a.ids < #b.ids end)
      local bs = self.concurrency
      for a = 1, #g.jobs, bs do run(g.kind, table.move(g.jobs, a, math.min(a + bs - 1, #g.jobs), 1, {})) end
    end
  end
  return results, common.finish_batch(results, interrupted, t0, bar, opts)
end

--- c:try_complete(req), c:complete(req): one request through complete_many
common.add_single(Client)

--- c:stats() -> the rlaif.llm stats shape (no retries or cache hits here).
function Client:stats()
  local s = self._st
  local failed = 0
  local errors = {}
  for k, v in pairs(s.errors) do
    errors[k] = v
    failed = failed + v
  end
  local models, cost = {}, 0
  for name, m in pairs(s.models) do
    local c = { requests = m.requests, prompt_tokens = m.prompt_tokens, completion_tokens = m.completion_tokens }
    c.cost = common.cost(self.prices, name, m)
    cost = cost + (c.cost or 0)
    models[name] = c
  end
  local lat = { n = #s.lat }
  if #s.lat > 0 then
    local v = table.move(s.lat, 1, #s.lat, 1, {})
    table.sort(v)
    local sum = 0
    for _, x in ipairs(v) do sum = sum + x end
    local function q(f) return v[math.floor(f * (#v - 1) + 0.5) + 1] end
    lat.mean, lat.p50, lat.p90, lat.p99, lat.max = sum / #v, q(0.5), q(0.9), q(0.99), v[#v]
  end
  return {
    requests = s.requests, attempts = s.requests, retries = 0, cache_hits = 0, ok = s.ok, duplicates = 0,
    concurrency = self.concurrency, errors = errors, failed = failed, models = models, latency = lat, cost = cost,
  }
end

--- c:summary() -> one line describing the stats so far.
function Client:summary() return common.summary(self:stats(), self.prices) end

function Client:reset_stats()
  self._st = { requests = 0, ok = 0, errors = {}, models = {}, lat = {} }
end

--- c:set_concurrency(n): rows per model batch.
function Client:set_concurrency(n)
  if math.type(n) ~= "integer" or n < 1 then error("llm.set_concurrency: n must be an integer >= 1", 2) end
  self.concurrency = n
end

--- c:close(): drop the model and tokenizer (freed by the GC).
function Client:close()
  self._m, self._tok = nil, nil
end
Client.__close = Client.close

return M
