-- rlaif.serve: an OpenAI-compatible HTTP server for local models, for any
-- rlaif.llm-style client, or for your own Lua handler (`rlaif serve`).
--
--   rlaif.serve{model = "ckpt/dir", port = 8000}             -- blocks until Ctrl-C / SIGTERM
--   rlaif.serve{client = judge, name = "sim-judge"}          -- any object with complete_many
--   rlaif.serve{handler = function(req)                      -- raw HTTP, one call per request
--     return {status = 200, json = {path = req.path, body = req:json()}}
--   end}
--   local srv = rlaif.serve.new{...}; srv:step(); srv:close()  -- drive it yourself
--
-- Options: exactly one of model (+ tokenizer), client, handler, batch_handler; name
-- (the model id; default the directory or client.model), host ("127.0.0.1"), port
-- (8000; 0 = any free port), port_file (written once listening), api_key_env,
-- max_batch (64 requests per batch), batch_window (0.002 s), batch_size (32 rows per
-- model call), max_queue (256), max_body (8 MiB), timeout (600 s), read_timeout
-- (30 s), max_connections (1024), max_logprobs (20), seed, chat_template, quiet, log
-- (a line per batch), on_ready = function(srv), on_error = function(req, message)
-- (a handler's error; default: a line on stderr).
-- What is served:
--  * model = DIR | loaded model (+ tokenizer): an in-process rlaif.llm client
--    (api = "local": chat template, logprobs, batched greedy generation),
--    served with the OpenAI routes of rlaif.serve_openai;
--  * client = c: the same OpenAI routes over c:complete_many -- e.g. a
--    simulated judge written in Lua whose results carry tokens/top
--    alternatives (the rlaif.llm result shape) becomes an endpoint any OpenAI
--    client, our labeler included, can query with logprobs;
--  * handler = function(req) -> response | nil: anything else. `req` has id,
--    method, path, query (table), headers (lower-case names; never the
--    Authorization header), body (string), waited (seconds queued) and
--    req:json() -> decoded body | nil, message. The handler returns
--    {status = 200, headers = {Name = "v"}, body = "..." | json = value,
--    content_type = "..."} or answers itself with req:reply(response),
--    req:error(status, message [, param [, type [, code]]]) or a stream:
--    req:start(status [, headers]), req:write(s) (sent at once), req:finish().
--    An error raised by the handler answers 500 and goes to on_error (stderr);
--  * batch_handler = function(reqs): the same, for every request of a batch at once.
-- Batching: libmicrohttpd's thread queues complete requests (src/core/serve.c);
-- this Lua loop takes up to max_batch of them (waiting batch_window seconds
-- after the first for more) and answers them in one go -- for a model, one
-- complete_many call, so concurrent requests share the batched generation, and
-- requests that arrive meanwhile form the next batch. The queue holds max_queue
-- requests (then 429 + retry-after); a request not answered `timeout` seconds
-- after arrival gets 504; bodies over max_body get 413; slow or idle clients are
-- cut after read_timeout. The bearer key, when api_key_env names a variable, is
-- checked by the C layer (401) and never reaches Lua.
-- Stopping: Ctrl-C (raises "interrupted" after a clean stop), SIGTERM (returns
-- normally), srv:close(). Either way queued and unanswered requests get 503 and
-- open streams end before the port closes.
-- What it is not: TLS (it binds to 127.0.0.1 by default), a multi-model router.

local core = require "rlaif.core"
local opts = require "rlaif.opts"
local openai = require "rlaif.serve_openai"

local json = core.json
local M = {}

local OPTS = opts.schema("serve", {
  model = "string|userdata", tokenizer = "string|userdata", client = "table", handler = "function",
  batch_handler = "function", name = "string", host = "string", port = { "integer", min = 0, max = 65535 },
  port_file = "string", api_key_env = "string", max_batch = { "integer", min = 1, max = 4096 },
  batch_window = { "number", min = 0, max = 10 }, max_queue = { "integer", min = 1, max = 1000000 },
  max_body = { "integer", min = 1 }, timeout = { "number", min = 0 }, read_timeout = { "number", min = 0 },
  max_connections = { "integer", min = 1, max = 1000000 }, max_logprobs = { "integer", min = 0, max = 10000 },
  batch_size = { "integer", min = 1 }, seed = "integer", chat_template = "string|function", quiet = "boolean",
  on_ready = "function", on_error = "function", log = "boolean",
})

-- ---- requests ----

local Request = {}
Request.__index = Request

local function header_lines(h)
  if h == nil then return nil end
  local lines = {}
  for k, v in pairs(h) do
    local ks, vs = tostring(k), tostring(v)
    if ks:find("[\r\n:]") or vs:find("[\r\n]") then error("serve: bad header " .. ks, 3) end
    lines[#lines + 1] = ks .. ": " .. vs
  end
  table.sort(lines)
  return table.concat(lines, "\n")
end

--- req:json() -> the body decoded | nil, message
function Request:json()
  local ok, v = pcall(json.decode, self.body)
  if not ok then return nil, tostring(v) end
  return v
end

--- req:reply{status=, headers=, body= | json=, content_type=} -> true | false, why (client gone)
function Request:reply(r)
  if self.done then error("serve: request " .. self.id .. " was already answered", 2) end
  self.done = true
  local status = r.status or 200
  local body, ctype = r.body, r.content_type
  if r.error then
    body = json.encode { error = r.error }
    ctype = "application/json"
  elseif r.json ~= nil then
    body = json.encode(r.json)
    ctype = ctype or "application/json"
  end
  local ok, why = self._srv:respond(self.id, status, ctype or "text/plain; charset=utf-8", header_lines(r.headers),
    body or "")
  self._server:_count(status, ok)
  return ok, why
end

--- req:error(status, message [, param [, type [, code]]]) in OpenAI's error shape.
function Request:error(status, message, param, etype, code)
  return self:reply { status = status, error = { message = message, type = etype or (status >= 500 and
    "server_error" or "invalid_request_error"), param = param or json.null, code = code or json.null } }
end

--- req:start(status [, headers]): begin a streamed answer (chunked; text/event-stream
--- unless headers say otherwise). Then req:write(s) ... req:finish().
function Request:start(status, headers)
  if self.done then error("serve: request " .. self.id .. " was already answered", 2) end
  self.done, self.streaming = true, true
  local ctype = headers and (headers["Content-Type"] or headers["content-type"]) or "text/event-stream"
  local h = {}
  for k, v in pairs(headers or {}) do
    if k:lower() ~= "content-type" then h[k] = v end
  end
  local ok, why = self._srv:stream_start(self.id, status or 200, ctype, header_lines(h))
  self._server:_count(status or 200, ok)
  self.gone = not ok
  return ok, why
end

function Request:write(s)
  if not self.streaming then error("serve: req:write before req:start", 2) end
  if self.gone then return false, "client gone" end
  local ok, why = self._srv:stream_write(self.id, s)
  if not ok then self.gone = true end
  return ok, why
end

function Request:finish()
  if not self.streaming then error("serve: req:finish before req:start", 2) end
  self.streaming = false
  if self.gone then return false, "client gone" end
  return self._srv:stream_end(self.id)
end

--- req:reply_stream(status, chunks): start, write every chunk, finish.
function Request:reply_stream(status, chunks)
  local ok, why = self:start(status)
  if ok then
    for _, c in ipairs(chunks) do
      ok, why = self:write(c)
      if not ok then break end
    end
  end
  self:finish()
  return ok, why
end

-- ---- the server ----

local Server = {}
Server.__index = Server
Server.__name = "rlaif.serve.server"
Server.__tostring = function(s) return string.format("rlaif.serve.server(%s)", s:url()) end

local function eprint(quiet, ...)
  if not quiet then io.stderr:write("rlaif serve: ", table.concat({ ... }), "\n") end
end

local function make_client(o)
  if o.client then return o.client end
  local llm = require "rlaif.llm"
  return llm.client { api = "local", model = o.model, tokenizer = o.tokenizer, name = o.name,
    batch_size = o.batch_size or 32, seed = o.seed, chat_template = o.chat_template }
end

--- serve.new{...} -> a started server (see the header); rlaif.serve{...} = new + run.
function M.new(o)
  o = OPTS(o)
  local modes = (o.model and 1 or 0) + (o.client and 1 or 0) + (o.handler and 1 or 0) + (o.batch_handler and 1 or 0)
  if modes ~= 1 then
    error("serve: give exactly one of model, client, handler or batch_handler", 2)
  end
  if o.tokenizer and not o.model then error("serve: option 'tokenizer' needs 'model'", 2) end
  local key
  if o.api_key_env then
    key = os.getenv(o.api_key_env)
    if key == nil or key == "" then
      error("serve: option 'api_key_env': the environment variable " .. o.api_key_env .. " is not set", 2)
    end
  end
  local self = setmetatable({ quiet = o.quiet, log = o.log, on_error = o.on_error, max_batch = o.max_batch or 64,
    window = o.batch_window or 0.002, counts = {}, batches = 0, requests = 0, errors = 0, t0 = core.clock() },
    Server)
  if o.model or o.client then
    local c = make_client(o)
    local ctx
    if o.model and c._max_seq then ctx = c._max_seq end
    self.openai = openai.handler { client = c, name = o.name or (type(o.model) == "string" and o.model) or
      (type(c.model) == "string" and c.model) or nil, max_logprobs = o.max_logprobs, context = ctx }
    self.client = c
    self.name = self.openai.name
    self.batch = function(reqs) self.openai(reqs) end
  elseif o.handler then
    local h = o.handler
    self.batch = function(reqs)
      for _, req in ipairs(reqs) do self:_call_one(h, req) end
    end
  else
    self.batch = o.batch_handler
  end
  local srv, err = core.serve.start { host = o.host or "127.0.0.1", port = o.port or 8000, api_key = key,
    max_queue = o.max_queue, max_body = o.max_body, timeout = o.timeout, read_timeout = o.read_timeout,
    max_connections = o.max_connections }
  if not srv then error(err, 2) end
  self._srv = srv
  self.host = o.host or "127.0.0.1"
  if self.openai then
    srv:static("/v1/models", 200, "application/json", self.openai.models_body, false)
    srv:static("/health", 200, "application/json", '{"status":"ok"}', true)
  end
  if o.port_file then
    require("rlaif.fileio").write(o.port_file, tostring(srv:port()) .. "\n", { who = "serve: port_file" })
  end
  return self
end

function Server:port() return self._srv:port() end

function Server:url()
  if not self._srv then return "(closed)" end
  local h = self.host:find(":", 1, true) and ("[" .. self.host .. "]") or self.host
  return string.format("http://%s:%d/v1", h, self._srv:port())
end

function Server:_count(status, ok)
  self.counts[status] = (self.counts[status] or 0) + 1
  if status >= 400 then self.errors = self.errors + 1 end
  if not ok then self.counts.gone = (self.counts.gone or 0) + 1 end
end

function Server:_call_one(h, req)
  local ok, r = pcall(h, req)
  if not ok then
    if tostring(r):find("interrupted", 1, true) then error(r, 0) end
    local msg = "handler error on " .. req.method .. " " .. req.path .. ": " .. tostring(r)
    if self.on_error then self.on_error(req, msg) else io.stderr:write("rlaif serve: ", msg, "\n") end
    if not req.done then req:error(500, "handler error: " .. tostring(r)) end
    return
  end
  if req.streaming then req:finish() end
  if not req.done then
    if type(r) ~= "table" then
      req:error(500, "the handler returned no response")
    else
      req:reply(r)
    end
  end
end

--- srv:step([wait]) -> number of requests answered, or nil, "interrupted".
--- Takes one batch (waiting up to `wait` seconds, default 0.5) and answers it.
function Server:step(wait)
  local reqs, err = self._srv:take(self.max_batch, wait or 0.5, self.window)
  if not reqs then return nil, err end
  if #reqs == 0 then return 0 end
  for i, r in ipairs(reqs) do
    r._srv, r._server = self._srv, self
    reqs[i] = setmetatable(r, Request)
  end
  self.batches = self.batches + 1
  self.requests = self.requests + #reqs
  local t0 = core.clock()
  local ok, e = pcall(self.batch, reqs)
  if not ok then
    if tostring(e):find("interrupted", 1, true) then
      for _, r in ipairs(reqs) do
        if not r.done then r:error(503, "the server was interrupted", nil, "server_error", "cancelled") end
      end
      error(e, 0)
    end
    io.stderr:write("rlaif serve: batch error: ", tostring(e), "\n")
    for _, r in ipairs(reqs) do
      if not r.done then r:error(500, "server error: " .. tostring(e)) end
    end
  end
  for _, r in ipairs(reqs) do
    if r.streaming then r:finish() end
    if not r.done then r:error(500, "the handler gave no answer") end
  end
  if self.log then
    io.stderr:write(string.format("rlaif serve: batch of %d in %.3f s\n", #reqs, core.clock() - t0))
  end
  return #reqs
end

--- srv:stats() -> {requests, batches, errors, by_status = {...}, transport = {...}}
function Server:stats()
  return { requests = self.requests, batches = self.batches, errors = self.errors, by_status = self.counts,
    transport = self._srv and self._srv:stats() or nil, seconds = core.clock() - self.t0 }
end

--- srv:close(): stop (503 to what is pending), free the port. Idempotent.
function Server:close()
  if self._srv then
    self._srv:stop(1.0)
    self._srv = nil
  end
end
Server.__close = Server.close

--- srv:run() -> stats, reason ("terminated" on SIGTERM); raises "interrupted" on Ctrl-C.
function Server:run()
  core.serve.catch_sigterm(true)
  local ok, err = pcall(function()
    while true do
      local n, e = self:step(0.5)
      if not n then return e end
      if core.cancelled() then return "interrupted" end
    end
  end)
  local term = core.serve.sigterm_seen()
  core.serve.catch_sigterm(false)
  local stats = self:stats()
  self:close()
  local reason = term and "terminated" or (ok and err) or "interrupted"
  if not ok and not tostring(err):find("interrupted", 1, true) then error(err, 0) end
  if reason == "interrupted" then
    error(setmetatable({ stats = stats, message = "interrupted" },
      { __tostring = function() return "serve: interrupted" end }), 0)
  end
  return stats, reason
end

local function run(o)
  local self = M.new(o)
  eprint(self.quiet, "listening on ", self:url(), self.name and (" (model " .. self.name .. ")") or "")
  if o.on_ready then o.on_ready(self) end
  return self:run()
end

M.Request = Request
return setmetatable(M, { __call = function(_, o) return run(o) end })
