-- rlaif.serve_openai: the OpenAI HTTP API over any rlaif.llm-style client --
-- the wire format half of `rlaif serve` (rlaif.serve is the server half).
--
--   local h = require("rlaif.serve_openai").handler{client = c, name = "my-model"}
--   h(reqs)   -- answers a batch of HTTP requests (see rlaif.serve): one complete_many call
--
-- Routes: POST /v1/completions, POST /v1/chat/completions, GET /v1/models,
-- GET /v1/models/{id}, GET /health. A batch of HTTP requests becomes one
-- c:complete_many(list) call (the local backend batches greedy requests
-- into the model's batched generation), and every answer has OpenAI's shape:
--   completions  {id="cmpl-..", object="text_completion", created, model, system_fingerprint,
--                 choices={{text, index, logprobs = nil | {tokens, token_logprobs,
--                 top_logprobs = {{[token] = logprob}}, text_offset}, finish_reason}}, usage}
--   chat         {id="chatcmpl-..", object="chat.completion", ..., choices={{index,
--                 message={role="assistant", content, refusal=null}, logprobs = null |
--                 {content={{token, logprob, bytes, top_logprobs={{token, logprob, bytes}}}},
--                 refusal=null}, finish_reason}}, usage={prompt_tokens, completion_tokens, total_tokens}}
--   stream=true  text/event-stream: `data: {chunk}` events (one per token, logprobs for
--                exactly that chunk's tokens), a finish chunk per choice, the usage chunk
--                when stream_options.include_usage, then `data: [DONE]`
--   errors       {"error": {"message", "type", "param", "code"}}: 400 bad request (param
--                names the field), 404 unknown model or path, 405 wrong method, 500 the
--                model failed, 503 interrupted.
-- Parameters: completions: model, prompt (string, strings, token ids, lists of ids),
-- max_tokens (default 16; 0 with echo scores the prompt), temperature (0..2), top_p,
-- n (1..128), seed, stop (a string or up to 4), logprobs (0..max_logprobs, default 20
-- like vLLM; OpenAI allows 5), echo, stream, stream_options, user; best_of only 1 or n,
-- suffix only empty, penalties only 0, logit_bias only empty. Chat: model, messages
-- (content a string or text parts; system/developer/user/assistant), max_completion_tokens
-- or max_tokens (default 1024, or the context when smaller), logprobs + top_logprobs (0..max_logprobs),
-- n, seed, stop, temperature, top_p, stream, stream_options, response_format text only,
-- no tools. Extensions as in vLLM: top_k. Unknown fields are ignored (like vLLM).
-- Tokens that are not valid UTF-8 are written "bytes:\xNN..." in completions logprobs
-- (OpenAI's convention) and carry their raw bytes in chat logprobs.
-- What it is not: an HTTP server (rlaif.serve), a model runner (the client does that).

local core = require "rlaif.core"
local opts_mod = require "rlaif.opts"

local json = core.json
local null = json.null
local array = json.array

local M = {}

local NEG = -9999.0   -- OpenAI's value for a log-probability of -inf

local HANDLER = opts_mod.schema("serve_openai.handler", {
  client = { "table", required = true }, name = "string", max_logprobs = { "integer", min = 0, max = 10000 },
  context = { "integer", min = 1 }, created = "integer",
})

-- ---- errors ----

local function err(status, message, param, etype, code)
  return { status = status, error = { message = message, type = etype or "invalid_request_error",
    param = param or null, code = code or null } }
end

local function bad(message, param) return err(400, message, param) end

-- result kinds of rlaif.llm failures -> HTTP status and error type
local function from_result(res)
  local kind = res.kind
  if kind == "invalid" then return bad(res.message) end
  if kind == "capability" then return err(400, res.message, nil, "invalid_request_error", "unsupported_parameter") end
  if kind == "cancelled" then return err(503, "the request was cancelled: " .. tostring(res.message), nil,
    "server_error", "cancelled") end
  if kind == "http" and math.type(res.status) == "integer" and res.status >= 400 and res.status < 600 then
    return err(res.status, tostring(res.message), nil, res.status < 500 and "invalid_request_error" or "server_error")
  end
  return err(500, "the model failed: " .. tostring(res.message), nil, "server_error", kind)
end

-- ---- field checks (each returns value or nil, error response) ----

local function is_int(v) return math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v)
  and v > -2 ^ 53 and v < 2 ^ 53) end

local function get_int(b, k, lo, hi)
  local v = b[k]
  if v == nil or v == null then return nil end
  if not is_int(v) or v < lo or v > hi then
    return nil, bad(string.format("'%s' must be an integer in [%d, %d]", k, lo, hi), k)
  end
  return math.tointeger(v)
end

local function get_num(b, k, lo, hi)
  local v = b[k]
  if v == nil or v == null then return nil end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    return nil, bad(string.format("'%s' must be a number in [%s, %s]", k, tostring(lo), tostring(hi)), k)
  end
  return v
end

local function get_bool(b, k)
  local v = b[k]
  if v == nil or v == null then return nil end
  if type(v) ~= "boolean" then return nil, bad(string.format("'%s' must be a boolean", k), k) end
  return v
end

local function get_stop(b)
  local v = b.stop
  if v == nil or v == null then return nil end
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or #v > 4 or next(v) ~= nil and #v == 0 then
    return nil, bad("'stop' must be a string or a list of at most 4 strings", "stop")
  end
  for _, s in ipairs(v) do
    if type(s) ~= "string" then return nil, bad("'stop' must be a string or a list of at most 4 strings", "stop") end
  end
  return v
end

local function zero_or_absent(b, k)
  local v = b[k]
  return v == nil or v == null or v == 0
end

local function empty_or_absent(b, k)
  local v = b[k]
  return v == nil or v == null or v == "" or (type(v) == "table" and next(v) == nil)
end

-- Sampling fields shared by both endpoints -> the rlaif.llm request (or nil, error).
local function common_fields(b, req)
  local e
  req.temperature, e = get_num(b, "temperature", 0, 2)
  if e then return nil, e end
  req.top_p, e = get_num(b, "top_p", 0, 1)
  if e then return nil, e end
  req.top_k, e = get_int(b, "top_k", -1, 1 << 30)
  if e then return nil, e end
  if req.top_k == -1 then req.top_k = nil end   -- vLLM: -1 = off
  req.n, e = get_int(b, "n", 1, 128)
  if e then return nil, e end
  req.seed, e = get_int(b, "seed", -(1 << 53), 1 << 53)
  if e then return nil, e end
  req.stop, e = get_stop(b)
  if e then return nil, e end
  if not empty_or_absent(b, "logit_bias") then
    return nil, err(400, "logit_bias is not supported by this server", "logit_bias", "invalid_request_error",
      "unsupported_parameter")
  end
  for _, k in ipairs { "presence_penalty", "frequency_penalty" } do
    if not zero_or_absent(b, k) then
      return nil, err(400, k .. " is not supported by this server (only 0)", k, "invalid_request_error",
        "unsupported_parameter")
    end
  end
  local so = b.stream_options
  if so ~= nil and so ~= null and type(so) ~= "table" then
    return nil, bad("'stream_options' must be an object", "stream_options")
  end
  return req
end

-- ---- token text ----

local function valid_utf8(s) return utf8.len(s) ~= nil end

-- Legacy completions token string: the text, or "bytes:\xNN.." when the bytes are not UTF-8.
local function legacy_token(t)
  local b = t.bytes or t.token or ""
  if valid_utf8(b) then return b end
  return "bytes:" .. b:gsub(".", function(c) return string.format("\\x%02x", c:byte()) end)
end

local function byte_list(s)
  local out = array {}
  for i = 1, #s do out[i] = s:byte(i) end
  return out
end

local function lp(v)
  if v == nil then return null end
  if v == -math.huge or v ~= v or v < NEG then return NEG end
  return v
end

-- ---- the handler ----

--- handler{client = c, name = "model-id", max_logprobs = 20, context = n} -> function(reqs)
--- Answers a batch of rlaif.serve requests; also usable as rlaif.serve{batch_handler = h}.
function M.handler(o)
  o = HANDLER(o)
  local client = o.client
  if type(client.complete_many) ~= "function" then
    error("serve_openai.handler: option 'client' must have a complete_many method", 2)
  end
  local name = o.name or (type(client.model) == "string" and client.model) or "rlaif"
  local max_lp = o.max_logprobs or 20
  local created = o.created or os.time()
  local serial = 0
  local fingerprint = "rlaif-" .. core.version

  local H = {}

  local function new_id(prefix)
    serial = serial + 1
    return string.format("%s-%x%06x", prefix, created, serial)
  end

  local function model_object()
    return { id = name, object = "model", created = created, owned_by = "rlaif" }
  end
  H.models_body = json.encode { object = "list", data = array { model_object() } }

  local function check_model(b)
    local m = b.model
    if m == nil or m == null then return true end
    if type(m) ~= "string" then return nil, bad("'model' must be a string", "model") end
    if m ~= name then
      return nil, err(404, string.format("The model `%s` does not exist (this server serves `%s`)", m, name),
        "model", "invalid_request_error", "model_not_found")
    end
    return true
  end

  -- POST /v1/completions -> {kind, body, reqs = {llm requests}} or nil, error
  local function parse_completions(b)
    local ok, e = check_model(b)
    if not ok then return nil, e end
    local p = b.prompt
    local prompts = {}
    if type(p) == "string" then
      prompts[1] = p
    elseif type(p) == "table" and #p > 0 then
      if is_int(p[1]) then
        prompts[1] = p
      else
        for i, x in ipairs(p) do
          if type(x) ~= "string" and type(x) ~= "table" then
            return nil, bad("'prompt' must be a string, a list of strings, token ids or lists of token ids",
              "prompt")
          end
          prompts[i] = x
        end
      end
    else
      return nil, bad("'prompt' is required: a string, a list of strings, token ids or lists of token ids",
        "prompt")
    end
    for _, x in ipairs(prompts) do
      if type(x) == "table" then
        if #x == 0 then return nil, bad("a token-id prompt must not be empty", "prompt") end
        for _, id in ipairs(x) do
          if not is_int(id) then return nil, bad("token-id prompts must hold integers", "prompt") end
        end
      end
    end
    local base, e2 = common_fields(b, {})
    if not base then return nil, e2 end
    local mt
    mt, e2 = get_int(b, "max_tokens", 0, 1 << 30)
    if e2 then return nil, e2 end
    local K
    K, e2 = get_int(b, "logprobs", 0, max_lp)
    if e2 then return nil, e2 end
    local echo
    echo, e2 = get_bool(b, "echo")
    if e2 then return nil, e2 end
    local stream
    stream, e2 = get_bool(b, "stream")
    if e2 then return nil, e2 end
    local best_of = b.best_of
    if best_of ~= nil and best_of ~= null and best_of ~= 1 and best_of ~= (base.n or 1) then
      return nil, err(400, "best_of other than 1 or n is not supported by this server", "best_of",
        "invalid_request_error", "unsupported_parameter")
    end
    if not empty_or_absent(b, "suffix") then
      return nil, err(400, "suffix is not supported by this server", "suffix", "invalid_request_error",
        "unsupported_parameter")
    end
    local reqs = {}
    for i, x in ipairs(prompts) do
      local r = {}
      for k, v in pairs(base) do r[k] = v end
      r.prompt = x
      r.max_tokens = mt or 16
      r.echo = echo or nil
      -- a stream needs the tokens to cut chunks at; logprobs are only shown when asked
      r.logprobs = K or (stream and 0 or nil)
      reqs[i] = r
    end
    return { kind = "completions", body = b, reqs = reqs, K = K, echo = echo, stream = stream, n = base.n or 1,
      prompts = prompts }
  end

  local function message_text(m, i)
    local c = m.content
    if c == nil or c == null then return "" end
    if type(c) == "string" then return c end
    if type(c) == "table" then
      local parts = {}
      for _, part in ipairs(c) do
        if type(part) ~= "table" or part.type ~= "text" or type(part.text) ~= "string" then
          return nil, bad(string.format("messages[%d].content: only text parts are supported", i - 1),
            "messages")
        end
        parts[#parts + 1] = part.text
      end
      return table.concat(parts)
    end
    return nil, bad(string.format("messages[%d].content must be a string or a list of text parts", i - 1),
      "messages")
  end

  local ROLES = { system = "system", developer = "system", user = "user", assistant = "assistant" }

  local function parse_chat(b)
    local ok, e = check_model(b)
    if not ok then return nil, e end
    local ms = b.messages
    if type(ms) ~= "table" or #ms == 0 then return nil, bad("'messages' must be a non-empty list", "messages") end
    local msgs = {}
    for i, m in ipairs(ms) do
      if type(m) ~= "table" or type(m.role) ~= "string" then
        return nil, bad(string.format("messages[%d] must be an object with a role", i - 1), "messages")
      end
      local role = ROLES[m.role]
      if not role then
        return nil, bad(string.format("messages[%d].role '%s' is not supported (system, developer, user, " ..
          "assistant)", i - 1, m.role), "messages")
      end
      local text, e2 = message_text(m, i)
      if not text then return nil, e2 end
      msgs[i] = { role = role, content = text }
    end
    if not empty_or_absent(b, "tools") or not empty_or_absent(b, "functions") then
      return nil, err(400, "tools are not supported by this server", "tools", "invalid_request_error",
        "unsupported_parameter")
    end
    local rf = b.response_format
    if rf ~= nil and rf ~= null and not (type(rf) == "table" and rf.type == "text") then
      return nil, err(400, "response_format other than {type = \"text\"} is not supported by this server",
        "response_format", "invalid_request_error", "unsupported_parameter")
    end
    local req, e2 = common_fields(b, {})
    if not req then return nil, e2 end
    local mt
    mt, e2 = get_int(b, "max_completion_tokens", 1, 1 << 30)
    if e2 then return nil, e2 end
    if mt == nil then
      mt, e2 = get_int(b, "max_tokens", 1, 1 << 30)
      if e2 then return nil, e2 end
    end
    local want_lp
    want_lp, e2 = get_bool(b, "logprobs")
    if e2 then return nil, e2 end
    local top
    top, e2 = get_int(b, "top_logprobs", 0, max_lp)
    if e2 then return nil, e2 end
    if top and top > 0 and not want_lp then
      return nil, bad("when using 'top_logprobs', 'logprobs' must be set to true", "top_logprobs")
    end
    local stream
    stream, e2 = get_bool(b, "stream")
    if e2 then return nil, e2 end
    req.messages = msgs
    -- default: 1024 (or the context when smaller). Not "the rest of the context" per request:
    -- equal max_tokens is what lets the local backend batch concurrent chats together.
    req.max_tokens = mt or math.min(o.context or 1024, 1024)
    req.logprobs = want_lp and (top or 0) or (stream and 0 or nil)
    return { kind = "chat", body = b, reqs = { req }, K = want_lp and (top or 0) or nil, stream = stream,
      n = req.n or 1 }
  end

  -- ---- answers ----

  local function usage_of(results)
    local pt, ct = 0, 0
    for _, r in ipairs(results) do
      pt = pt + (r.usage and r.usage.prompt_tokens or 0)
      ct = ct + (r.usage and r.usage.completion_tokens or 0)
    end
    return { prompt_tokens = pt, completion_tokens = ct, total_tokens = pt + ct }
  end

  -- legacy logprobs of tokens[a..b], text offsets counted in characters from `off`
  local function legacy_logprobs(tokens, a, b, off, K)
    local L = { tokens = array {}, token_logprobs = array {}, top_logprobs = array {}, text_offset = array {} }
    for i = a, b do
      local t = tokens[i]
      local k = #L.tokens + 1
      local s = legacy_token(t)
      L.tokens[k] = s
      L.token_logprobs[k] = lp(t.logprob)
      L.text_offset[k] = off
      off = off + (utf8.len(t.token or "") or #(t.token or ""))
      if t.top == nil or t.logprob == nil then
        L.top_logprobs[k] = null
      else
        local d = {}
        for j = 1, math.min(K, #t.top) do
          local alt = t.top[j]
          local key = legacy_token(alt)
          if d[key] == nil then d[key] = lp(alt.logprob) end
        end
        if d[s] == nil then d[s] = lp(t.logprob) end   -- the sampled token is always there
        L.top_logprobs[k] = d
      end
    end
    return L, off
  end

  local function chat_logprob(t, K)
    local top = array {}
    for j = 1, math.min(K, #(t.top or {})) do
      local alt = t.top[j]
      local b = alt.bytes or alt.token or ""
      top[j] = { token = alt.token or "", logprob = lp(alt.logprob), bytes = byte_list(b) }
    end
    local b = t.bytes or t.token or ""
    return { token = t.token or "", logprob = lp(t.logprob), bytes = byte_list(b), top_logprobs = top }
  end

  -- Cut a choice into stream pieces: {text, a, b} = text and the tokens a..b it
  -- came from. Token bytes are accumulated until they form whole characters;
  -- when the tokens do not spell the text (a generic client), one piece.
  local function pieces(choice, text)
    local toks = choice.tokens or {}
    local raw = {}
    for i, t in ipairs(toks) do raw[i] = t.bytes or t.token or "" end
    local joined = table.concat(raw)
    local out = {}
    if #toks == 0 or joined:sub(1, #text) ~= text then
      out[1] = { text = text, a = 1, b = #toks }
      return out
    end
    local pos, a = 0, 1      -- bytes of text emitted; first token not yet emitted
    local acc = 0
    for i = 1, #toks do
      acc = acc + #raw[i]
      local upto = math.min(acc, #text)
      local chunk = text:sub(pos + 1, upto)
      if (upto > pos and valid_utf8(chunk)) or i == #toks then
        out[#out + 1] = { text = text:sub(pos + 1, upto), a = a, b = i }
        pos, a = upto, i + 1
      end
    end
    if pos < #text then out[#out + 1] = { text = text:sub(pos + 1), a = #toks + 1, b = #toks } end
    return out
  end

  local function sse(t) return "data: " .. json.encode(t) .. "\n\n" end

  -- completions: one HTTP request's results -> response table or stream events
  local function answer_completions(job, results)
    local id, now = new_id("cmpl"), os.time()
    local choices = array {}
    local events = {}
    local per = job.n
    for pi, res in ipairs(results) do
      local prompt = job.prompts[pi]
      local prompt_chars = 0
      if not job.echo and type(prompt) == "string" then prompt_chars = utf8.len(prompt) or #prompt end
      for ci, ch in ipairs(res.choices) do
        local index = (pi - 1) * per + (ci - 1)
        local lpo = null
        if job.K then lpo = (legacy_logprobs(ch.tokens or {}, 1, #(ch.tokens or {}), prompt_chars, job.K)) end
        choices[#choices + 1] = { text = ch.text, index = index, logprobs = lpo,
          finish_reason = ch.finish_reason or null }
        if job.stream then
          local off = prompt_chars
          for _, pc in ipairs(pieces(ch, ch.text)) do
            local l = null
            if job.K then l, off = legacy_logprobs(ch.tokens, pc.a, pc.b, off, job.K) end
            events[#events + 1] = { k = #events, index = index, ev = { id = id, object = "text_completion",
              created = now, model = name, choices = array { { text = pc.text, index = index, logprobs = l,
              finish_reason = null } } } }
          end
          events[#events + 1] = { k = #events, index = index, last = true, ev = { id = id,
            object = "text_completion", created = now, model = name, choices = array { { text = "",
            index = index, logprobs = null, finish_reason = ch.finish_reason or null } } } }
        end
      end
    end
    local usage = usage_of(results)
    if not job.stream then
      return { status = 200, json = { id = id, object = "text_completion", created = now, model = name,
        system_fingerprint = fingerprint, choices = choices, usage = usage } }
    end
    return { status = 200, events = events, usage = job.body.stream_options ~= nil and
      type(job.body.stream_options) == "table" and job.body.stream_options.include_usage == true and
      { id = id, object = "text_completion", created = now, model = name, choices = array {}, usage = usage } }
  end

  local function answer_chat(job, res)
    local id, now = new_id("chatcmpl"), os.time()
    local choices = array {}
    local events = {}
    for ci, ch in ipairs(res.choices) do
      local index = ci - 1
      local lpo = null
      if job.K then
        local content = array {}
        for i, t in ipairs(ch.tokens or {}) do content[i] = chat_logprob(t, job.K) end
        lpo = { content = content, refusal = null }
      end
      choices[ci] = { index = index, message = { role = "assistant", content = ch.text, refusal = null },
        logprobs = lpo, finish_reason = ch.finish_reason or null }
      if job.stream then
        local base = { id = id, object = "chat.completion.chunk", created = now, model = name,
          system_fingerprint = fingerprint }
        local function chunk(delta, l, fin)
          local t = {}
          for k, v in pairs(base) do t[k] = v end
          t.choices = array { { index = index, delta = delta, logprobs = l, finish_reason = fin or null } }
          return t
        end
        events[#events + 1] = { index = index, ev = chunk({ role = "assistant", content = "", refusal = null },
          job.K and { content = array {}, refusal = null } or null) }
        for _, pc in ipairs(pieces(ch, ch.text)) do
          local l = null
          if job.K then
            local content = array {}
            for i = pc.a, pc.b do content[#content + 1] = chat_logprob(ch.tokens[i], job.K) end
            l = { content = content, refusal = null }
          end
          events[#events + 1] = { index = index, ev = chunk({ content = pc.text }, l) }
        end
        events[#events + 1] = { index = index, ev = chunk({}, null, ch.finish_reason) }
      end
    end
    local usage = usage_of { res }
    if not job.stream then
      return { status = 200, json = { id = id, object = "chat.completion", created = now, model = name,
        system_fingerprint = fingerprint, choices = choices, usage = usage } }
    end
    local so = job.body.stream_options
    return { status = 200, events = events, usage = type(so) == "table" and so.include_usage == true and
      { id = id, object = "chat.completion.chunk", created = now, model = name, system_fingerprint = fingerprint,
      choices = array {}, usage = usage } }
  end

  -- Interleave the events of several choices (index 0's first chunk, index
  -- 1's first chunk, ...), as OpenAI streams n > 1.
  local function interleave(events)
    local by, order = {}, {}
    for _, e in ipairs(events) do
      if not by[e.index] then
        by[e.index] = {}
        order[#order + 1] = e.index
      end
      table.insert(by[e.index], e.ev)
    end
    local out, k = {}, 1
    local more = true
    while more do
      more = false
      for _, ix in ipairs(order) do
        local ev = by[ix][k]
        if ev then
          out[#out + 1] = ev
          more = true
        end
      end
      k = k + 1
    end
    return out
  end

  -- ---- routing ----

  local function only_get(method, path)
    if method ~= "GET" then
      return err(405, "use GET for " .. path, nil, "invalid_request_error", "method_not_allowed")
    end
  end

  local function route(req)
    local path, method = req.path, req.method
    if path == "/health" or path == "/v1/health" then
      local e = only_get(method, path)
      if e then return e end
      return { status = 200, json = { status = "ok" } }
    end
    if path == "/v1/models" then
      local e = only_get(method, path)
      if e then return e end
      return { status = 200, body = H.models_body, content_type = "application/json" }
    end
    local mid = path:match("^/v1/models/(.+)$")
    if mid then
      local e = only_get(method, path)
      if e then return e end
      if mid ~= name then
        return err(404, string.format("The model `%s` does not exist", mid), nil, "invalid_request_error",
          "model_not_found")
      end
      return { status = 200, json = model_object() }
    end
    local parse = (path == "/v1/completions" and parse_completions) or
      (path == "/v1/chat/completions" and parse_chat) or nil
    if not parse then
      return err(404, "Unknown request URL: " .. method .. " " .. path .. " (this server has /v1/completions, " ..
        "/v1/chat/completions and /v1/models)", nil, "invalid_request_error", "unknown_url")
    end
    if method ~= "POST" then
      return err(405, "use POST for " .. path, nil, "invalid_request_error", "method_not_allowed")
    end
    local ok, b, jerr = pcall(json.decode, req.body)
    if not ok or type(b) ~= "table" or (next(b) ~= nil and #b > 0) then
      local why = (not ok and tostring(b)) or jerr or "the body is not a JSON object"
      why = why:gsub("^json%.decode: ", "")
      return err(400, "We could not parse the JSON body of your request: " .. why, nil, "invalid_request_error",
        "invalid_json")
    end
    local job, e = parse(b)
    if not job then return e end
    return job
  end

  --- h(reqs): answer every request of the batch (each req has :reply and :reply_stream).
  local function handle(reqs)
    local jobs, list = {}, {}
    for i, req in ipairs(reqs) do
      local r = route(req)
      if r.kind then
        r.first = #list + 1
        for _, x in ipairs(r.reqs) do list[#list + 1] = x end
        jobs[i] = r
      else
        req:reply(r)
      end
    end
    if #list == 0 then return end
    local results = client:complete_many(list)
    for i, req in ipairs(reqs) do
      local job = jobs[i]
      if job then
        local rs, failed = {}, nil
        for k = 1, #job.reqs do
          local res = results[job.first + k - 1]
          if not res or not res.ok then
            failed = res or { kind = "model", message = "no result" }
            break
          end
          rs[k] = res
        end
        if failed then
          req:reply(from_result(failed))
        else
          local ans = job.kind == "chat" and answer_chat(job, rs[1]) or answer_completions(job, rs)
          if ans.events then
            local evs = interleave(ans.events)
            local out = {}
            for k, ev in ipairs(evs) do out[k] = sse(ev) end
            if ans.usage then out[#out + 1] = sse(ans.usage) end
            out[#out + 1] = "data: [DONE]\n\n"
            req:reply_stream(200, out)
          else
            req:reply(ans)
          end
        end
      end
    end
  end
  H.handle = handle
  H.name = name
  return setmetatable(H, { __call = function(_, reqs) return handle(reqs) end })
end

return M
