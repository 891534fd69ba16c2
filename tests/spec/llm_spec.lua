-- rlaif.llm against a loopback fake server (tests/servers/fake_llm.mjs, plain Node),
-- plus the real payloads in ../shared/data/api-samples (skipped when absent).
-- The fault-injection suite checks retry counts and delays from the server's own
-- request log, that every request ends in exactly one result or error, cache hits,
-- cancellation, and that the API key reaches the server as a header but never the
-- cache file or an error message.
local helper = require "spec.helper"
local llm = require "rlaif.llm"
local core = require "rlaif.core"

local KEY = "sk-test-SECRET-0123456789"

-- ---- the fake server ----

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have_node()
  return os.execute("command -v node >/dev/null 2>&1") == true
end

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end

local read_file = helper.read_file

local Server = {}
Server.__index = Server

local function start_server()
  local tmp = os.tmpname()
  local srv = setmetatable({ port_file = tmp .. ".port", log = tmp .. ".log", pid_file = tmp .. ".pid", tmp = tmp },
    Server)
  -- env -u LD_PRELOAD: the ASan run preloads the sanitizer runtime into lua, not node
  os.execute(string.format(
    "env -u LD_PRELOAD node tests/servers/fake_llm.mjs --port 0 --port-file %s --log %s --ttl 300 --quiet "
      .. ">/dev/null 2>&1 & echo $! > %s",
    sh_quote(srv.port_file), sh_quote(srv.log), sh_quote(srv.pid_file)))
  srv.port = assert(helper.wait_port(srv.port_file), "fake server did not start")
  srv.pid = tonumber(read_file(srv.pid_file))
  srv.url = "http://127.0.0.1:" .. srv.port
  return srv
end

function Server:stop()
  if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null") end
  for _, p in ipairs { self.port_file, self.log, self.pid_file, self.tmp } do os.remove(p) end
end

-- The requests the server saw whose prompt contains `needle` (all when nil).
function Server:requests(needle)
  local out = {}
  local f = io.open(self.log, "r")
  if not f then return out end
  for line in f:lines() do
    local e = llm.decode_json(line)
    if e and (needle == nil or (e.body and e.body:find(needle, 1, true))) then out[#out + 1] = e end
  end
  f:close()
  return out
end

local function gaps(reqs)
  local g = {}
  for i = 2, #reqs do g[#g + 1] = reqs[i].t - reqs[i - 1].t end
  return g
end

local uniq = 0
-- A unique prompt (attempts are counted per prompt by the server).
local function P(directive)
  uniq = uniq + 1
  return string.format("%s prompt #%d %s", directive or "", uniq, tostring(os.time()))
end

local node = have_node()
local srv

local function client(opts)
  local o = { api = "openai-chat", base_url = srv.url .. "/v1", model = "fake-model", api_key = KEY,
              backoff_base = 0.02, backoff_cap = 0.2, max_retries = 4, concurrency = 8 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return llm.client(o)
end

local BASES = {
  ["openai-chat"] = "/v1", ["openai-completions"] = "/v1", vllm = "/v1", llamacpp = "", ollama = "", tgi = "",
  gemini = "/v1beta", anthropic = "",
}

describe("rlaif.llm against the fake server #unit", function()
  if not node then
    pending("node is not installed; the fake server needs it")
    return
  end
  setup(function() srv = start_server() end)
  teardown(function() if srv then srv:stop() end end)

  describe("normalized responses", function()
    it("openai-chat with logprobs: text, tokens, sorted top, -inf, usage, metadata", function()
      local c = client()
      local r = c:complete { messages = { { role = "user", content = P() } }, max_tokens = 2, logprobs = 4,
                             temperature = 0 }
      assert.is_true(r.ok)
      assert.are.equal("1 is", r.text)
      assert.are.equal("length", r.choices[1].finish_reason)
      assert.are.equal(2, #r.choices[1].tokens)
      local t = r.choices[1].tokens[1]
      assert.are.equal("1", t.token)
      assert.are.equal("1", t.bytes)
      assert.is_true(math.abs(t.logprob + 0.1) < 1e-12)
      assert.are.equal(4, #t.top)
      for i = 2, #t.top do assert.is_true(t.top[i - 1].logprob >= t.top[i].logprob) end
      assert.are.equal(-math.huge, t.top[4].logprob) -- -9999.0 is -inf
      assert.are.equal(2, r.usage.completion_tokens)
      assert.is_true(r.usage.prompt_tokens > 0)
      assert.are.equal(1, r.attempts)
      assert.is_false(r.cached)
      assert.is_true(r.latency > 0 and r.latency < 5)
      assert.truthy(r.request_id:match("^req_"))
      assert.truthy(r.id:match("^chatcmpl%-"))
    end)

    for api, base in pairs(BASES) do
      for _, stream in ipairs { false, true } do
        it(api .. (stream and " streamed" or "") .. " gives the same normalized answer", function()
          local c = client { api = api, base_url = srv.url .. base }
          local lp = api ~= "anthropic" and 3 or nil
          local r = c:complete { prompt = P(), max_tokens = 3, logprobs = lp, stream = stream, temperature = 0 }
          assert.are.equal("1 is better", r.text)
          assert.are.equal("length", r.choices[1].finish_reason)
          assert.are.equal(3, r.usage.completion_tokens)
          if lp and not (api == "gemini" and stream) then
            local toks = r.choices[1].tokens
            assert.are.equal(3, #toks)
            assert.are.equal(" is", toks[2].token)
            assert.are.equal(3, #toks[2].top)
            assert.are.equal(" is", toks[2].top[1].token)
            assert.are.equal(-math.huge, toks[2].top[3].logprob)
          end
        end)
      end
    end

    it("n > 1 choices, streamed (interleaved) and not", function()
      local c = client()
      for _, stream in ipairs { false, true } do
        local r = c:complete { prompt = P(), n = 3, max_tokens = 4, stream = stream, logprobs = 2, temperature = 0 }
        assert.are.equal(3, #r.choices)
        assert.are.equal("1 is better.", r.choices[1].text)
        assert.are.equal("2 is better.", r.choices[2].text)
        assert.are.equal("1 is better.", r.choices[3].text)
        assert.are.equal("stop", r.choices[2].finish_reason)
        assert.are.equal(4, #r.choices[2].tokens)
        assert.are.equal("2", r.choices[2].tokens[1].top[1].token)
      end
    end)

    it("llama.cpp's old probabilities format becomes logprobs", function()
      local c = client { api = "llamacpp", base_url = srv.url }
      local r = c:complete { prompt = P("[[legacy]]"), max_tokens = 1, logprobs = 2, temperature = 0 }
      local t = r.choices[1].tokens[1]
      assert.are.equal("1", t.token)
      assert.is_true(math.abs(t.logprob + 0.1) < 1e-9)
      assert.is_true(math.abs(t.top[2].logprob + 3) < 1e-9)
    end)

    it("SSE framing variants: no space after data:, CRLF, comments", function()
      local c = client()
      local r = c:complete { prompt = P("[[nospace,crlf,comments]]"), max_tokens = 3, stream = true, temperature = 0 }
      assert.are.equal("1 is better", r.text)
    end)

    it("label_probs renormalises over the labels", function()
      local c = client()
      local r = c:complete { prompt = P(), max_tokens = 1, logprobs = 5, temperature = 0 }
      local p, missing = llm.label_probs(r, { "1", "2" })
      assert.is_false(missing)
      assert.is_true(math.abs(p["1"] + p["2"] - 1) < 1e-12)
      assert.is_true(p["1"] > p["2"])
      local _, miss = llm.label_probs(r, { "A?", "B?" })
      assert.is_true(miss)
    end)
  end)

  describe("retries", function()
    it("429 with retry-after-ms: waits as asked and succeeds on the third attempt", function()
      local c = client()
      local p = P("[[fail=429,times=2,ra_ms=250]]")
      local r = c:complete { prompt = p, max_tokens = 1 }
      assert.are.equal(3, r.attempts)
      local reqs = srv:requests(p)
      assert.are.equal(3, #reqs)
      for _, g in ipairs(gaps(reqs)) do assert.is_true(g >= 0.24 and g < 1.5, "gap " .. g) end
      assert.are.equal(2, c:stats().retries)
    end)

    it("429 without retry-after: exponential backoff with jitter", function()
      local c = client { backoff_base = 0.1, backoff_cap = 1 }
      local p = P("[[fail=429,times=3]]")
      local r = c:complete { prompt = p, max_tokens = 1 }
      assert.are.equal(4, r.attempts)
      local g = gaps(srv:requests(p))
      assert.are.equal(3, #g)
      -- 0.1, 0.2, 0.4 scaled by (1 - 0.25 u)
      local want = { 0.1, 0.2, 0.4 }
      for i = 1, 3 do assert.is_true(g[i] >= 0.75 * want[i] - 0.01 and g[i] < want[i] + 0.3, "gap " .. g[i]) end
    end)

    it("retry-after in seconds and as an HTTP date", function()
      local c = client()
      local p = P("[[fail=503,times=1,ra=1]]")
      assert.are.equal(2, c:complete { prompt = p, max_tokens = 1 }.attempts)
      local g = gaps(srv:requests(p))
      assert.is_true(g[1] >= 0.95, "gap " .. g[1])
      local p2 = P("[[fail=429,times=1,ra_date=2]]")
      assert.are.equal(2, c:complete { prompt = p2, max_tokens = 1 }.attempts)
      local g2 = gaps(srv:requests(p2))
      assert.is_true(g2[1] >= 0.9 and g2[1] < 3.5, "gap " .. g2[1]) -- dates have 1 s resolution
    end)

    it("a retry-after above the cap is not waited for", function()
      local c = client { retry_after_cap = 5 }
      local p = P("[[fail=429,ra=60]]")
      local r, err = c:try_complete { prompt = p, max_tokens = 1 }
      assert.is_nil(r)
      assert.are.equal(1, err.attempts)
      assert.truthy(err.message:find("cap", 1, true))
    end)

    for _, code in ipairs { 408, 409, 500, 502, 503, 504, 529 } do
      it("retries " .. code, function()
        local r = client():complete { prompt = P("[[fail=" .. code .. ",times=2]]"), max_tokens = 1 }
        assert.are.equal(3, r.attempts)
      end)
    end

    it("retries TGI's 424 and Anthropic's 529 overloaded", function()
      local tgi = client { api = "tgi", base_url = srv.url }
      local r = tgi:complete { prompt = P("[[fail=424,times=1]]"), max_tokens = 1 }
      assert.are.equal(2, r.attempts)
      r = client { api = "anthropic", base_url = srv.url }:complete {
        prompt = P("[[fail=529,times=1,body=overloaded]]"), max_tokens = 1 }
      assert.are.equal(2, r.attempts)
    end)

    for _, code in ipairs { 400, 401, 403, 404, 422 } do
      it("does not retry " .. code, function()
        local p = P("[[fail=" .. code .. "]]")
        local r, err = client():try_complete { prompt = p, max_tokens = 1 }
        assert.is_nil(r)
        assert.is_false(err.ok)
        assert.are.equal("http", err.kind)
        assert.are.equal(code, err.status)
        assert.are.equal(1, err.attempts)
        assert.truthy(err.message:find("fake failure", 1, true))
        assert.are.equal(1, #srv:requests(p))
      end)
    end

    it("x-should-retry overrides the status", function()
      local p = P("[[fail=503,should_retry=false]]")
      local _, err = client():try_complete { prompt = p, max_tokens = 1 }
      assert.are.equal(1, err.attempts)
      local r = client():complete { prompt = P("[[fail=400,times=1,should_retry=true]]"), max_tokens = 1 }
      assert.are.equal(2, r.attempts)
    end)

    it("x-should-retry: true never turns a quota or capability error into a retry", function()
      for _, case in ipairs { { "openai-chat", "/v1" }, { "anthropic", "" }, { "gemini", "/v1beta" } } do
        local p = P("[[fail=429,body=quota,should_retry=true]]")
        local c = client { api = case[1], base_url = srv.url .. case[2] }
        local _, err = c:try_complete { prompt = p, max_tokens = 1 }
        assert.are.equal(429, err.status)
        assert.are.equal("http", err.kind)
        assert.are.equal(1, err.attempts, case[1])
        assert.are.equal(1, #srv:requests(p), case[1])
        assert.truthy(err.message:find("quota exhausted: not retried", 1, true), err.message)
      end
      local p = P("[[fail=403,body=logprobs,should_retry=true]]")
      local _, err = client():try_complete { prompt = p, max_tokens = 1, logprobs = 5 }
      assert.are.equal("capability", err.kind)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #srv:requests(p))
      -- and a plain 429 with the header is retried as usual
      local r = client():complete { prompt = P("[[fail=429,times=1,should_retry=true]]"), max_tokens = 1 }
      assert.are.equal(2, r.attempts)
    end)

    it("501 is final: the server cannot do what was asked", function()
      local p = P("[[fail=501]]")
      local _, err = client():try_complete { prompt = p, max_tokens = 1 }
      assert.are.equal("capability", err.kind)
      assert.are.equal(501, err.status)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #srv:requests(p))
    end)

    it("quota errors are not retried (OpenAI, Anthropic spend limit, Gemini daily quota)", function()
      local cases = { { "openai-chat", "/v1" }, { "anthropic", "" }, { "gemini", "/v1beta" } }
      for _, case in ipairs(cases) do
        local p = P("[[fail=429,body=quota]]")
        local c = client { api = case[1], base_url = srv.url .. case[2] }
        local _, err = c:try_complete { prompt = p, max_tokens = 1 }
        assert.are.equal(429, err.status)
        assert.are.equal(1, err.attempts, case[1])
        assert.truthy(err.message:find("quota", 1, true), err.message)
      end
    end)

    it("Gemini's RetryInfo delay in the body is honoured", function()
      local p = P("[[fail=429,times=1,retry_delay=0.3]]")
      local r = client { api = "gemini", base_url = srv.url .. "/v1beta" }:complete { prompt = p, max_tokens = 1 }
      assert.are.equal(2, r.attempts)
      assert.is_true(gaps(srv:requests(p))[1] >= 0.28)
    end)

    it("a refused logprobs request is a capability error, not retried", function()
      local _, err = client():try_complete { prompt = P("[[fail=403,body=logprobs]]"), max_tokens = 1, logprobs = 5 }
      assert.are.equal("capability", err.kind)
      assert.are.equal(1, err.attempts)
      -- and a backend without logprobs refuses before sending anything
      local _, err2 = client { api = "anthropic", base_url = srv.url }:try_complete { prompt = P(), logprobs = 2 }
      assert.are.equal("capability", err2.kind)
      assert.are.equal(0, err2.attempts)
    end)

    it("dropped connections, cut bodies, truncated and non-JSON 200s are retried", function()
      local c = client()
      for _, d in ipairs { "drop", "cut", "truncate", "garbage" } do
        local r = c:complete { prompt = P("[[" .. d .. ",times=2]]"), max_tokens = 1 }
        assert.are.equal(2 + 1, r.attempts, d)
        assert.are.equal("1", r.text)
      end
    end)

    it("an answer with no choices is a parse error, not retried", function()
      local res = client():complete_many { { prompt = P("[[empty]]"), max_tokens = 1 } }
      assert.is_false(res[1].ok)
      assert.equal("parse", res[1].kind)
      assert.equal(1, res[1].attempts)
      assert.equal("llm.parse: openai-chat: the answer has no choices", res[1].message)
      local r, err = llm.parse("openai-completions", '{"id": "x", "choices": []}')
      assert.is_nil(r)
      assert.equal("llm.parse: openai-completions: the answer has no choices", err)
    end)

    it("gives up with the right kind after max_retries", function()
      local c = client { max_retries = 2 }
      local _, e1 = c:try_complete { prompt = P("[[drop]]"), max_tokens = 1 }
      assert.are.equal("transport", e1.kind)
      assert.are.equal(3, e1.attempts)
      assert.is_nil(e1.status)
      local _, e2 = c:try_complete { prompt = P("[[truncate]]"), max_tokens = 1 }
      assert.are.equal("parse", e2.kind)
      assert.are.equal(3, e2.attempts)
      local _, e3 = c:try_complete { prompt = P("[[fail=500]]"), max_tokens = 1 }
      assert.are.equal("http", e3.kind)
      assert.are.equal(500, e3.status)
      assert.are.equal(3, e3.attempts)
      assert.truthy(e3.message:find("gave up after 3 attempts", 1, true))
    end)

    it("streams: mid-stream errors and early ends are retried, for every backend", function()
      for api, base in pairs(BASES) do
        local c = client { api = api, base_url = srv.url .. base }
        for _, d in ipairs { "midstream", "early" } do
          local r, err = c:try_complete { prompt = P("[[" .. d .. ",times=1]]"), max_tokens = 3, stream = true }
          assert.is_truthy(r, api .. " " .. d .. ": " .. tostring(err))
          assert.are.equal(2, r.attempts, api .. " " .. d)
          assert.are.equal("1 is better", r.text)
        end
      end
    end)

    it("a mid-stream error that persists ends as an http error after HTTP 200", function()
      local _, err = client { max_retries = 1 }:try_complete { prompt = P("[[midstream]]"), stream = true }
      assert.are.equal("http", err.kind)
      assert.truthy(err.message:find("after HTTP 200", 1, true))
      assert.are.equal(2, err.attempts)
    end)

    it("stalled and slow answers time out and are retried", function()
      local c = client { stall_timeout = 1, timeout = 10 }
      local r = c:complete { prompt = P("[[stall=3000,times=1]]"), max_tokens = 1, stream = true }
      assert.are.equal(2, r.attempts)
      local c2 = client { timeout = 0.3, max_retries = 1 }
      local _, err = c2:try_complete { prompt = P("[[delay=1500]]"), max_tokens = 1 }
      assert.are.equal("transport", err.kind)
      assert.truthy(err.message:lower():find("timeout", 1, true) or err.message:lower():find("timed out", 1, true))
      local ok = c2:complete { prompt = P("[[delay=100]]"), max_tokens = 1 }
      assert.are.equal(1, ok.attempts)
    end)
  end)

  describe("batches", function()
    it("every request ends exactly once, in input order, faults and all", function()
      local c = client { concurrency = 16, max_retries = 3 }
      local faults = { "", "[[fail=429,times=1]]", "[[drop,times=1]]", "[[truncate,times=1]]", "[[fail=400]]",
                       "[[fail=503,times=2]]", "[[midstream,times=1]]", "[[drop]]" }
      local reqs = {}
      for i = 1, 240 do
        local f = faults[(i - 1) % #faults + 1]
        reqs[i] = { prompt = P(f), max_tokens = (i - 1) % 4 + 1, stream = f:find("midstream") ~= nil, temperature = 0 }
      end
      local seen, count = {}, 0
      local res, info = c:complete_many(reqs, { on_result = function(i, r)
        assert.is_nil(seen[i])
        seen[i] = r
        count = count + 1
      end })
      assert.are.equal(240, #res)
      assert.are.equal(240, count)
      local want = { "1", "1 is", "1 is better", "1 is better." }
      for i = 1, 240 do
        local r = res[i]
        assert.are.equal(seen[i], r)
        local f = faults[(i - 1) % #faults + 1]
        if f == "[[fail=400]]" then
          assert.is_false(r.ok)
          assert.are.equal(400, r.status)
        elseif f == "[[drop]]" then
          assert.is_false(r.ok)
          assert.are.equal("transport", r.kind)
          assert.are.equal(4, r.attempts)
        else
          assert.is_true(r.ok, tostring(r.message))
          assert.are.equal(want[(i - 1) % 4 + 1], r.text) -- the answer to this very request
        end
      end
      assert.are.equal(180, info.ok)
      assert.are.equal(60, info.failed)
      local s = c:stats()
      assert.are.equal(240, s.requests)
      assert.are.equal(180, s.ok)
      assert.are.equal(30, s.errors.http)
      assert.are.equal(30, s.errors.transport)
      assert.are.equal(0, s.duplicates)
      assert.are.equal(180, s.models["fake-model"].requests)
      assert.is_true(s.latency.p50 > 0 and s.latency.p99 >= s.latency.p50)
    end)

    it("AIMD: 429s shrink the concurrency", function()
      local c = client { concurrency = 64 }
      local reqs = {}
      for i = 1, 64 do reqs[i] = { prompt = P("[[fail=429,times=1]]"), max_tokens = 1 } end
      local res = c:complete_many(reqs)
      for i = 1, 64 do assert.is_true(res[i].ok) end
      assert.is_true(c:stats().concurrency < 64)
    end)

    it("a raised error in on_result aborts the batch and is re-raised after cleanup", function()
      local c = client()
      local reqs = {}
      for i = 1, 20 do reqs[i] = { prompt = P("[[delay=50]]"), max_tokens = 1 } end
      helper.raises(function()
        c:complete_many(reqs, { on_result = function(i) if i then error("stop here") end end })
      end, "stop here")
      -- the client still works
      assert.is_true(c:complete { prompt = P(), max_tokens = 1 }.ok)
    end)

    it("cancellation (Ctrl-C) returns promptly with partial results marked", function()
      local c = client { concurrency = 4 }
      local reqs = {}
      for i = 1, 40 do reqs[i] = { prompt = P(i <= 4 and "" or "[[delay=3000]]"), max_tokens = 1 } end
      local t0 = core.clock()
      local n = 0
      local res, info = c:complete_many(reqs, { on_result = function()
        n = n + 1
        if n == 2 then llm.cancel_request() end
      end })
      llm.cancel_reset()
      assert.is_true(core.clock() - t0 < 2.5)
      assert.is_true(info.interrupted)
      assert.are.equal(40, #res)
      local ok, cancelled = 0, 0
      for i = 1, 40 do
        if res[i].ok then ok = ok + 1 else
          assert.are.equal("cancelled", res[i].kind)
          cancelled = cancelled + 1
        end
      end
      assert.is_true(ok >= 2 and cancelled >= 30)
      assert.truthy(info.summary:find("INTERRUPTED", 1, true))
      assert.is_true(c:complete { prompt = P(), max_tokens = 1 }.ok)
    end)

    it("connections closed by the server, after an answer or while idle, are replaced", function()
      local c = client { concurrency = 8, max_retries = 0 }
      for round = 1, 3 do
        local reqs = {}
        for i = 1, 24 do
          local f = i % 3 == 0 and "[[close]]" or i % 3 == 1 and "[[idle_close=20]]" or ""
          reqs[i] = { prompt = P(f .. " round " .. round .. " #" .. i), max_tokens = 1 }
        end
        local t0 = core.clock()
        local res = c:complete_many(reqs)
        assert.is_true(core.clock() - t0 < 2)
        for i = 1, 24 do
          assert.is_true(res[i].ok, tostring(res[i].message))
          assert.are.equal(1, res[i].attempts)
        end
        sleep(0.1) -- the idle connections are closed by now: the next round must not hang on them
      end
    end)

    it("a refused key (401/403) stops the batch: the rest is not sent", function()
      for _, code in ipairs { 401, 403 } do
        local c = client { concurrency = 2 }
        local tag = "key" .. code .. "-" .. os.time()
        local reqs = {}
        for i = 1, 30 do reqs[i] = { prompt = P("[[fail=" .. code .. "]] " .. tag), max_tokens = 1 } end
        local res, info = c:complete_many(reqs)
        assert.equal(30, #res)
        assert.is_false(info.interrupted)
        assert.equal(srv.url .. "/v1 rejected the request with HTTP " .. code .. " (HTTP " .. code ..
          ": fake failure " .. code .. " [invalid_request_error]): check the API key", info.stopped)
        local sent = #srv:requests(tag)
        assert.is_true(sent >= 1 and sent <= 3, sent .. " requests sent")
        local http, cancelled = 0, 0
        for _, r in ipairs(res) do
          if r.kind == "http" then http = http + 1 else
            assert.equal("cancelled", r.kind)
            cancelled = cancelled + 1
          end
        end
        assert.is_true(http >= 1 and http <= sent)   -- one still in flight may be cut short
        assert.equal(30, http + cancelled)
        assert.matches("STOPPED", info.summary)
        assert.is_true(c:complete { prompt = P(), max_tokens = 1 }.ok)   -- the client still works
      end
    end)

    it("a server that cannot be reached fails at once and stops the batch", function()
      local port = assert(dofile("tests/spec/support/servers.lua").dead_port())
      local c = client { base_url = "http://127.0.0.1:" .. port .. "/v1", concurrency = 4, max_retries = 5,
        backoff_base = 0.5, backoff_cap = 8 }
      local reqs = {}
      for i = 1, 40 do reqs[i] = { prompt = P(), max_tokens = 1 } end
      local t0 = core.clock()
      local res, info = c:complete_many(reqs)
      assert.is_true(core.clock() - t0 < 5, "took " .. (core.clock() - t0) .. " s")   -- retries: >= 14 s
      assert.matches("^cannot connect to http://127.0.0.1:" .. port .. "/v1 %(transport: Couldn't connect",
        info.stopped)
      local failed = 0
      for _, r in ipairs(res) do
        if r.kind == "transport" then
          failed = failed + 1
          assert.equal(1, r.attempts)
          assert.matches("not retried", r.message)
        else
          assert.equal("cancelled", r.kind)
        end
      end
      assert.is_true(failed >= 1 and failed <= 4)
    end)

    it("a server that answered before and then went away is retried, then the batch stops", function()
      local own = start_server()
      local c = client { base_url = own.url .. "/v1", max_retries = 2, backoff_base = 0.01, backoff_cap = 0.02 }
      assert.is_true(c:complete { prompt = P(), max_tokens = 1 }.ok)
      own:stop()
      sleep(0.05)
      local res, info = c:complete_many { { prompt = P(), max_tokens = 1 } }
      assert.equal("transport", res[1].kind)
      assert.equal(3, res[1].attempts)
      assert.matches("gave up after 3 attempts", res[1].message)
      assert.matches("^cannot connect to " .. own.url:gsub("%p", "%%%0") .. "/v1", info.stopped)
    end)

    it("progress: a bar over the requests on a terminal, then the summary", function()
      local out = { buf = {} }
      function out:write(...) for _, v in ipairs { ... } do self.buf[#self.buf + 1] = tostring(v) end end
      function out.flush() end
      local reqs = {}
      for i = 1, 6 do reqs[i] = { prompt = P(i == 3 and "[[fail=400]]" or "[[delay=30]]"), max_tokens = 1 } end
      local res, info = client():complete_many(reqs, { progress = { tty = true, stream = out, redraw = 0 } })
      assert.equal(6, #res)
      local text = table.concat(out.buf)
      assert.matches("^\rllm %[[#.]+%] %d/6 +%d+%% [%d.]+ req/s ETA %S+ errors %d", text)
      assert.matches("\rllm %[#+%] 6/6 100%% [%d.]+ req/s ETA 0s errors 1 *\n", text)
      assert.matches("\nllm: 6 requests, 5 ok %(0 cached%), 1 failed in [%d.]+ s", text)
      assert.equal(info.summary, text:match("\n(llm: 6 requests[^\n]*)\n$"))
      assert.has_error(function() client():complete_many(reqs, { progres = true }) end,
        "llm.complete_many: unknown option 'progres' (did you mean 'progress'?)")
    end)

    it("bad requests become error objects in their slots", function()
      local res = client():complete_many { { prompt = P(), max_tokens = 1 }, { prompt = P(), max_token = 1 },
                                           { messages = "nope" } }
      assert.is_true(res[1].ok)
      assert.are.equal("invalid", res[2].kind)
      assert.truthy(res[2].message:find("max_token", 1, true))
      assert.are.equal("invalid", res[3].kind)
    end)
  end)

  describe("cache and secrets", function()
    local path
    before_each(function() path = helper.tmpname(".sqlite") end)
    after_each(function()
      for _, s in ipairs { "", "-wal", "-shm" } do os.remove(path .. s) end
    end)

    it("a rerun hits the cache and costs nothing; samples are distinct and reproducible", function()
      local tag = P()
      local reqs = {}
      for i = 1, 10 do reqs[i] = { prompt = tag .. " q" .. i, max_tokens = 2, logprobs = 2, temperature = 0 } end
      for i = 11, 13 do reqs[i] = { prompt = tag .. " sampled", max_tokens = 2, temperature = 0.7 } end
      local c = client { cache = path, prices = { ["fake-model"] = { prompt = 1, completion = 2 } } }
      local r1 = c:complete_many(reqs)
      assert.are.equal(13, #srv:requests(tag)) -- the 3 identical sampled requests are 3 samples
      local s1 = c:stats()
      assert.is_true(s1.cost > 0)
      c:close()
      local c2 = client { cache = path }
      local r2 = c2:complete_many(reqs)
      assert.are.equal(13, #srv:requests(tag)) -- nothing new reached the server
      for i = 1, 13 do
        assert.is_true(r2[i].cached)
        assert.are.equal(r1[i].text, r2[i].text)
        assert.are.same(r1[i].choices, r2[i].choices) -- incl. -inf logprobs
      end
      assert.are.equal(13, c2:stats().cache_hits)
      -- a 4th sample is new
      reqs[14] = { prompt = tag .. " sampled", max_tokens = 2, temperature = 0.7 }
      local r3 = c2:complete_many(reqs)
      assert.is_false(r3[14].cached)
      assert.are.equal(14, #srv:requests(tag))
      c2:close()
    end)

    it("the key is sent as a header, never cached, never in messages", function()
      local c = client { cache = path }
      local p = P()
      c:complete { prompt = p, max_tokens = 1 }
      local reqs = srv:requests(p)
      assert.are.equal("Bearer " .. KEY, reqs[1].headers.authorization)
      assert.is_nil(reqs[1].body:find(KEY, 1, true))
      local _, err = c:try_complete { prompt = P("[[fail=401,body=echo_key]]"), max_tokens = 1 }
      assert.truthy(err.message:find("Incorrect API key", 1, true))
      assert.is_nil(err.message:find(KEY, 1, true))
      assert.is_nil(tostring(err):find(KEY, 1, true))
      assert.is_nil(c:summary():find(KEY, 1, true))
      assert.is_nil(tostring(c):find(KEY, 1, true))
      for k, v in pairs(c) do assert.is_nil(tostring(v):find(KEY, 1, true), k) end
      c:close()
      for _, s in ipairs { "", "-wal" } do
        local bytes = read_file(path .. s)
        if bytes then assert.is_nil(bytes:find(KEY, 1, true), "key found in cache" .. s) end
      end
    end)

    it("Anthropic and Gemini keys go in their own headers", function()
      local p = P()
      client { api = "anthropic", base_url = srv.url }:complete { prompt = p, max_tokens = 1 }
      local p2 = P()
      client { api = "gemini", base_url = srv.url .. "/v1beta" }:complete { prompt = p2, max_tokens = 1 }
      local a, g = srv:requests(p)[1], srv:requests(p2)[1]
      assert.are.equal(KEY, a.headers["x-api-key"])
      assert.are.equal("2023-06-01", a.headers["anthropic-version"])
      assert.is_nil(a.headers.authorization)
      assert.are.equal(KEY, g.headers["x-goog-api-key"])
      assert.is_nil(g.path:find(KEY, 1, true))
    end)

    it("the key comes from api_key_env, and OPENAI_* defaults do not leak to local servers", function()
      local c = llm.client { api = "vllm", base_url = srv.url .. "/v1", model = "m", api_key_env = "RLAIF_NO_SUCH_VAR" }
      local p = P()
      c:complete { prompt = p, max_tokens = 1 }
      assert.is_nil(srv:requests(p)[1].headers.authorization)
    end)
  end)

  describe("misuse raises", function()
    it("unknown options and bad values", function()
      assert.has_error(function() llm.client { api = "nope" } end,
        'llm.client: option \'api\' must be one of "openai-chat", "openai-completions", "vllm", "llamacpp", ' ..
        '"ollama", "tgi", "gemini", "anthropic", "local", "sim", got "nope"')
      assert.has_error(function() llm.client { concurency = 3 } end,
        "llm.client: unknown option 'concurency' (did you mean 'concurrency'?)")
      assert.has_error(function() llm.client { timeout = "10" } end,
        "llm.client: option 'timeout' must be a number >= 0, got \"10\"")
      assert.has_error(function() llm.client { concurrency = 0 } end,
        "llm.client: option 'concurrency' must be an integer >= 1 and <= 65536, got 0")
      assert.has_error(function() llm.client { api = "local", model = "x", batch_size = "8" } end,
        "llm.client{api = \"local\"}: option 'batch_size' must be an integer >= 1, got \"8\"")
      -- the bad URL shown, the function named once, at the caller's line
      local ok, err = pcall(function() local c = llm.client { base_url = "ftp://x" } return c end)
      assert.is_false(ok)
      assert.matches("^tests/spec/llm_spec%.lua:%d+: llm%.client: base_url must start with http:// or https://, " ..
        "got \"ftp://x\"$", err)
      assert.has_error(function() client():complete { prompt = P(), extra = { f = print } } end,
        "llm.run: cannot convert a function to JSON")
    end)

    it("complete raises a printable error object", function()
      local ok, e = pcall(function() client():complete { prompt = P("[[fail=404]]"), max_tokens = 1 } end)
      assert.is_false(ok)
      assert.are.equal("http", e.kind)
      assert.truthy(tostring(e):find("^llm.complete: http 404: HTTP 404"))
    end)
  end)
end)

-- ---- the real payloads ----

describe("rlaif.llm parses the real api-samples #unit", function()
  local dir = helper.shared("data/api-samples/openai_chat_default_response.json")
  if not dir then
    pending("../shared/data/api-samples is absent")
    return
  end
  local function sample(name)
    local s = read_file(helper.shared("data/api-samples/" .. name))
    -- drop "# SOURCE" comment lines some files start with
    return (s:gsub("^#[^\n]*\n", ""):gsub("\n#[^\n]*", ""))
  end
  local function near(a, b) return math.abs(a - b) < 1e-9 end

  it("OpenAI chat", function()
    local r = assert(llm.parse("openai-chat", sample "openai_chat_logprobs_response.json"))
    assert.are.equal("Hello! How can I assist you today?", r.choices[1].text)
    assert.are.equal(9, #r.choices[1].tokens)
    local t = r.choices[1].tokens[1]
    assert.are.equal("Hello", t.token)
    assert.is_true(near(t.logprob, -0.31725305))
    assert.are.equal("Hi", t.top[2].token)
    assert.are.equal("<|end|>", r.choices[1].tokens[3].top[2].token)
    assert.are.equal(9, r.usage.prompt_tokens)
    r = assert(llm.parse("openai-chat", sample "openai_chat_default_response.json"))
    assert.are.equal("Hello! How can I assist you today?", r.choices[1].text)
    assert.are.same({ prompt_tokens = 19, completion_tokens = 10 }, r.usage)
    assert.are.equal("stop", r.choices[1].finish_reason)
    r = assert(llm.parse("openai-chat", sample "openai_chat_n3_recorded.json"))
    assert.are.equal(3, #r.choices)
    assert.are.equal('{"city":"San Francisco","temperature":63.0,"units":"f"}', r.choices[3].text)
  end)

  it("OpenAI chat streams", function()
    local r = assert(llm.parse("openai-chat", sample "openai_chat_stream_logprobs_recorded.sse", true))
    assert.are.equal("Foo!", r.text or r.choices[1].text)
    assert.are.equal(2, #r.choices[1].tokens)
    assert.is_true(near(r.choices[1].tokens[2].logprob, -0.26638845))
    assert.are.same({ prompt_tokens = 9, completion_tokens = 2 }, r.usage)
    r = assert(llm.parse("openai-chat", sample "openai_chat_stream_n3_recorded.sse", true))
    assert.are.equal(3, #r.choices)
    assert.are.equal('{"city":"San Francisco","temperature":61,"units":"f"}', r.choices[2].text)
    assert.are.equal("stop", r.choices[3].finish_reason)
    -- the spec's chunk example: JSON lines without SSE framing
    local sse = {}
    for line in sample("openai_chat_stream_chunks_spec_example.txt"):gmatch("[^\n]+") do
      if line:sub(1, 1) == "{" then sse[#sse + 1] = "data: " .. line .. "\n\n" end
    end
    r = assert(llm.parse("openai-chat", table.concat(sse) .. "data: [DONE]\n\n", true))
    assert.are.equal("Hello", r.choices[1].text)
  end)

  it("OpenAI legacy completions", function()
    local r = assert(llm.parse("openai-completions", sample "openai_completions_response.json"))
    assert.are.equal("\n\nThis is indeed a test", r.choices[1].text)
    assert.are.equal("length", r.choices[1].finish_reason)
    r = assert(llm.parse("openai-completions", sample "openai_completions_echo_logprobs_davinci002.json"))
    local toks = r.choices[1].tokens
    assert.is_nil(toks[1].logprob) -- echo: null
    assert.are.same({}, toks[1].top)
    assert.is_true(near(toks[2].logprob, -12.203847))
    assert.are.equal(",", toks[2].top[1].token)
    -- a 3-chunk excerpt without [DONE]: the stream "ended early"
    local s = sample "openai_completions_stream_logprobs_gpt35instruct_2023.sse"
    local bad, msg = llm.parse("openai-completions", s, true)
    assert.is_nil(bad)
    assert.truthy(msg:find("ended early", 1, true))
    r = assert(llm.parse("openai-completions", s .. "data: [DONE]\n\n", true))
    assert.are.equal("\n\nHi.", r.choices[1].text)
    assert.are.equal("Hello", r.choices[1].tokens[2].top[1].token) -- -0.73 sorts before "Hi" -1.03
  end)

  it("vLLM", function()
    local r = assert(llm.parse("openai-completions", sample "vllm_completions_stream_logprobs_v0.16_excerpt.sse", true))
    assert.are.equal("7", r.choices[1].text)
    local top = r.choices[1].tokens[1].top
    local order = {}
    for i = 1, #top do order[i] = top[i].token end
    assert.are.same({ "7", "3", "1", "2", "9" }, order)
    local bad, msg = llm.parse("openai-completions", sample "vllm_completions_echo_logprobs_v0.16_TRUNCATED.txt")
    assert.is_nil(bad)
    assert.truthy(msg:find("truncated", 1, true))
    r = assert(llm.parse("openai-chat", sample "vllm_chat_stream_v0.9_finish_stop_reason.sse", true))
    assert.are.equal("가요?", r.choices[1].text)
    assert.is_nil((llm.parse("openai-chat", sample "vllm_chat_stream_logprobs_first_chunks_litellm10686.sse", true)))
    local e = llm.error_info(400, sample "vllm_error_new_nested.json")
    assert.is_true(e.capability)
    assert.truthy(e.message:find("greater than max allowed", 1, true))
    e = llm.error_info(400, sample "vllm_error_old_flat_2024.json")
    assert.truthy(e.message:find("Cannot request more than 5 logprobs.", 1, true))
    assert.is_false(e.retryable)
  end)

  it("llama.cpp", function()
    local r = assert(llm.parse("llamacpp", sample "llamacpp_completion_probabilities_OLD_format_2024_excerpt.json"))
    local toks = r.choices[1].tokens
    assert.are.equal(3, #toks)
    assert.is_true(near(toks[1].logprob, math.log(0.9832262396812439)))
    assert.are.equal(" happiness", toks[3].top[2].token)
    local bad, msg, kind = llm.parse("openai-chat", sample "llamacpp_stream_error_legacy_2025.sse", true)
    assert.is_nil(bad)
    assert.are.equal("http", kind)
    assert.truthy(msg:find("context size", 1, true))
    local e = llm.error_info(503, sample "llamacpp_health_503_loading.json")
    assert.is_true(e.retryable)
    assert.truthy(e.message:find("Loading model", 1, true))
  end)

  it("Ollama", function()
    local r = assert(llm.parse("ollama", sample "ollama_generate_nonstream_docs.json"))
    assert.are.equal('{\n  "age": 22,\n  "available": true\n}', r.choices[1].text)
    assert.are.same({ prompt_tokens = 28, completion_tokens = 16 }, r.usage)
    assert.are.equal("stop", r.choices[1].finish_reason)
    local bad, msg, kind = llm.parse("ollama", sample "ollama_stream_error_native.ndjson", true)
    assert.is_nil(bad)
    assert.are.equal("http", kind)
    assert.truthy(msg:find("an error was encountered while running the model", 1, true))
    local e = llm.error_info(400, sample "ollama_error_native.json")
    assert.truthy(e.message:find("top_logprobs must be between 0 and 20", 1, true))
    assert.is_false(e.retryable)
    local s = sample "ollama_openai_compat_stream_finish_reason_empty_2024.sse"
    assert.is_nil((llm.parse("openai-chat", s, true))) -- "" is not a finish reason: ended early
    r = assert(llm.parse("openai-chat", s .. "data: [DONE]\n\n", true))
    assert.are.equal(" if you", r.choices[1].text)
    assert.is_nil(r.choices[1].finish_reason)
  end)

  it("TGI", function()
    local r = assert(llm.parse("tgi", sample "tgi_generate_details_snapshot_bloom560m.json"))
    assert.are.equal(" le faire fondre à la casserole avec", r.choices[1].text)
    assert.are.equal(10, #r.choices[1].tokens)
    assert.are.equal(0.0, r.choices[1].tokens[4].logprob)
    assert.are.equal(5608, r.choices[1].tokens[2].id)
    assert.are.same({ prompt_tokens = 11, completion_tokens = 10 }, r.usage)
    r = assert(llm.parse("openai-chat", sample "tgi_chat_completion_snapshot.json"))
    assert.truthy(r.choices[1].text:find("^As of your last question"))
    assert.are.same({ prompt_tokens = 61, completion_tokens = 100 }, r.usage)
    assert.is_nil((llm.parse("tgi", sample "tgi_generate_stream_2023.sse", true))) -- excerpt: ended early
    local errs = llm.decode_json(sample "tgi_errors_openapi_examples.json")
    for status, retry in pairs { [422] = false, [424] = true, [429] = true, [500] = true } do
      local e = llm.error_info(status, llm.encode_json(errs[tostring(status)]))
      assert.are.equal(retry, e.retryable, status)
      assert.are.equal(errs[tostring(status)].error .. " [" .. errs[tostring(status)].error_type .. "]", e.message)
    end
  end)

  it("Gemini", function()
    local r = assert(llm.parse("gemini", sample "gemini_generatecontent_logprobs_fixture.json"))
    assert.truthy(r.choices[1].text:find("^I do not have access to real%-time information"))
    assert.are.equal(50, #r.choices[1].tokens)
    assert.are.equal(" not", r.choices[1].tokens[3].token)
    assert.are.equal(0.0, r.choices[1].tokens[3].logprob)
    assert.are.equal("stop", r.choices[1].finish_reason)
    assert.are.same({ prompt_tokens = 11, completion_tokens = 50 }, r.usage)
    local e = llm.error_info(400, sample "gemini_error_logprobs_not_enabled.json")
    assert.is_true(e.capability)
    assert.is_false(e.retryable)
  end)

  it("OpenAI and Anthropic errors", function()
    local e = llm.error_info(429, sample "openai_error_429_rate_limit.json")
    assert.is_true(e.retryable)
    assert.is_false(e.quota)
    assert.truthy(e.message:find("rate_limit_exceeded", 1, true))
    e = llm.error_info(403, sample "openai_error_403_logprobs_not_allowed.json")
    assert.is_true(e.capability)
    e = llm.error_info(400, sample "openai_error_400_logprobs_reasoning_models.json")
    assert.is_true(e.capability)
    e = llm.error_info(429, sample "anthropic_error_429_rate_limit.json")
    assert.is_true(e.retryable)
    assert.truthy(e.message:find("rate limit", 1, true))
    e = llm.error_info(529, sample "anthropic_error_529_overloaded.json")
    assert.is_true(e.retryable)
    assert.are.equal("Overloaded [overloaded_error]", e.message)
  end)
end)

describe("rlaif.llm helpers #unit", function()
  it("retry-after parsing and backoff", function()
    assert.are.equal(0.25, llm.decode_json("0.25"))
    assert.are.equal(0.25, core.llm.retry_after("250", "3"))
    assert.are.equal(3, core.llm.retry_after(nil, "3"))
    assert.is_nil(core.llm.retry_after(nil, "later"))
    assert.are.equal(0.5, core.llm.backoff(0.5, 8, 1, 0))
    assert.are.equal(8, core.llm.backoff(0.5, 8, 7, 0))
  end)

  it("requests are canonical: the same table gives the same body", function()
    local req = { prompt = "x", extra = { b = 1, a = { z = 1, y = 2 } }, logit_bias = { [50256] = -100, [11] = 5 } }
    local _, b1 = llm.build("openai-completions", "http://h/v1", "m", req)
    local _, b2 = llm.build("openai-completions", "http://h/v1", "m", req)
    assert.are.equal(b1, b2)
    assert.truthy(b1:find('"logit_bias":{"11":5,"50256":-100}', 1, true))
    assert.truthy(b1:find('"a":{"y":2,"z":1},"b":1', 1, true))
  end)
end)
