-- tests/spec/serve_spec.lua -- `rlaif serve` and rlaif.serve: the official
-- openai npm SDK as the client (completions, chat, logprobs, streaming, echo,
-- seeds, errors, 40 concurrent requests), our own client and labeler through
-- the server against the in-process backend, the bearer key, a custom Lua
-- handler (streaming, 429 with retry-after, 504), abuse (malformed HTTP, bad
-- JSON, huge and endless bodies, slow clients), SIGTERM and Ctrl-C.
-- Servers run as ./rlaif subprocesses on loopback ports they choose; the
-- in-process server (rlaif.serve.new) is driven with :step() against curl
-- running in the background. The openai SDK comes from build/npm-test
-- (scripts/test-npm.sh); its parts skip only when that could not be installed
-- because the npm registry was unreachable.
local helper = require "spec.helper"
local rlaif = require "rlaif"
local json = rlaif.core.json

local TOKENIZER = "tests/fixtures/tokenizer/trained.json"
local EOS = 998

local function sh(cmd) return os.execute(cmd) end
local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local function mkdtemp()
  local d = os.tmpname()
  os.remove(d)
  assert(sh("mkdir -p " .. q(d)))
  return d
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- The node that runs the npm references, or nil, why.
local function npm_node()
  local why = helper.read_file("build/npm-test/UNAVAILABLE")
  if why then return nil, why end
  local node = (helper.read_file("build/npm-test/node-path") or ""):gsub("%s+$", "")
  if node == "" or not helper.read_file("build/npm-test/node_modules/openai/package.json") then
    return nil, "build/npm-test is missing: run `sh scripts/test-npm.sh` (make test does)"
  end
  return node
end

-- A background `./rlaif serve ARGS`; returns {port, log, stop(sig) -> exit status}.
local function start(args, env)
  local tmp = helper.tmpname("_serve")
  sh(string.format("( %s ./rlaif serve %s --port 0 --port-file %s.port >%s.log 2>&1; echo $? > %s.rc ) " ..
    ">/dev/null 2>&1 & echo $! > %s.pid", env or "env -u LD_PRELOAD", args, tmp, tmp, tmp, tmp))
  local port = helper.wait_port(tmp .. ".port")
  local pid = tonumber(helper.read_file(tmp .. ".pid") or "")
  local s = { port = port, log = tmp .. ".log", tmp = tmp }
  s.url = port and ("http://127.0.0.1:" .. port .. "/v1")
  function s.stop(sig)
    if pid then sh(string.format("pkill -%s -P %d 2>/dev/null", sig or "TERM", pid)) end
    local rc
    for _ = 1, 200 do
      rc = tonumber(helper.read_file(tmp .. ".rc") or "")
      if rc then break end
      sh("sleep 0.05")
    end
    pid = nil
    return rc
  end
  function s.cleanup()
    if pid then s.stop("KILL") end
    for _, e in ipairs { ".port", ".pid", ".rc", ".log", "" } do os.remove(tmp .. e) end
  end
  return s
end

-- curl ARGS -> status, body (headers to a side file when `headers` is true)
local function curl(args)
  local out = helper.tmpname("_curl")
  sh(string.format("curl -s -o %s -w '%%{http_code}' %s > %s.code 2>/dev/null", out, args, out))
  local code = tonumber(helper.read_file(out .. ".code") or "")
  local body = helper.read_file(out) or ""
  os.remove(out)
  os.remove(out .. ".code")
  return code, body
end

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) end

describe("rlaif serve #unit", function()
  local dir, ref, srv

  setup(function()
    dir = mkdtemp()
    local m = rlaif.model.new { arch = "llama", vocab_size = 1000, n_layer = 2, n_head = 4, n_kv_head = 2,
      d_model = 32, d_ff = 64, max_seq = 256, seed = 7, eos_id = EOS, tie_embeddings = false }
    m:param("lm_head.weight"):mul_(40)   -- peaked distributions: clear argmaxes
    assert(m:save(dir))
    write(dir .. "/tokenizer.json", helper.read_file(TOKENIZER))
    ref = rlaif.llm.client { api = "local", model = dir, name = "tiny" }
    srv = start("--model " .. q(dir) .. " --name tiny --log --batch-window 0.01 --read-timeout 1 " ..
      "--max-body 1000000 " ..
      "--max-logprobs 1000")
    assert.truthy(srv.port, "the server did not start: " .. tostring(helper.read_file(srv.log)))
  end)

  teardown(function()
    if srv then srv.cleanup() end
    for _, f in ipairs { "config.json", "model.safetensors", "tokenizer.json" } do os.remove(dir .. "/" .. f) end
    os.remove(dir)
  end)

  it("answers the openai SDK: completions, chat, logprobs, streams, echo, seeds, errors, 40 at once", function()
    local node, why = npm_node()
    if not node then
      pending("openai SDK unavailable: " .. why)
      return
    end
    local prompts = { "Hello world", "The summary is", "a", "Text - the cat sat on the mat.\nSummary 1 -" }
    local pf = helper.tmpname("_prompts")
    write(pf, json.encode(prompts))
    local p = assert(io.popen(string.format("env -u LD_PRELOAD %s tests/node/openai_client.mjs --url %s " ..
      "--model tiny --prompts %s --concurrent 40 2>&1", q(node), srv.url, pf)))
    local text = p:read("a")
    p:close()
    os.remove(pf)
    local ok, out = pcall(json.decode, text)
    assert(ok and type(out) == "table", "openai client output: " .. text)
    assert.equal("6.49.0", out.sdk)
    assert.equal("tiny", out.models[1].id)
    assert.equal("model", out.models[1].object)

    -- a completion with logprobs equals the in-process backend, token for token
    local want = ref:complete { prompt = prompts[1], max_tokens = 6, temperature = 0, logprobs = 3 }
    local c = out.completion
    assert.equal("text_completion", c.object)
    assert.equal(want.text, c.choices[1].text)
    assert.equal(want.choices[1].finish_reason, c.choices[1].finish_reason)
    assert.same({ prompt_tokens = want.usage.prompt_tokens, completion_tokens = 6,
      total_tokens = want.usage.prompt_tokens + 6 }, c.usage)
    local L = c.choices[1].logprobs
    local off = utf8.len(prompts[1])
    for k, t in ipairs(want.choices[1].tokens) do
      assert.equal(t.token, L.tokens[k])
      assert.is_true(close(t.logprob, L.token_logprobs[k]), "logprob " .. k)
      assert.equal(off, L.text_offset[k])
      off = off + utf8.len(t.token)
      local n = 0
      for tok, v in pairs(L.top_logprobs[k]) do
        n = n + 1
        local found = false
        for _, a in ipairs(t.top) do if a.token == tok and close(a.logprob, v) then found = true end end
        assert.is_true(found or tok == t.token, "top alternative " .. tok)
      end
      assert.is_true(n >= 3 and n <= 4)
    end

    -- chat: the chat template of the local backend, OpenAI's TokenLogprob shape
    local msgs = { { role = "system", content = "Be brief." }, { role = "user", content = prompts[1] } }
    local wc = ref:complete { messages = msgs, max_tokens = 5, temperature = 0, logprobs = 2 }
    local ch = out.chat
    assert.equal("chat.completion", ch.object)
    assert.equal("assistant", ch.choices[1].message.role)
    assert.equal(wc.text, ch.choices[1].message.content)
    for k, t in ipairs(wc.choices[1].tokens) do
      local e = ch.choices[1].logprobs.content[k]
      assert.equal(t.token, e.token)
      assert.is_true(close(t.logprob, e.logprob))
      assert.equal(#t.bytes, #e.bytes)
      assert.equal(2, #e.top_logprobs)
      assert.is_true(close(t.top[2].logprob, e.top_logprobs[2].logprob))
    end

    -- streams spell the same text, with logprobs for exactly each chunk's tokens
    local s, toks, fin = "", {}, nil
    for _, chunk in ipairs(out.completion_stream) do
      local cc = chunk.choices[1]
      s = s .. cc.text
      if cc.logprobs ~= json.null then
        for _, t in ipairs(cc.logprobs.tokens) do toks[#toks + 1] = t end
      end
      if cc.finish_reason ~= json.null then fin = cc.finish_reason end
    end
    assert.equal(c.choices[1].text, s)
    assert.same(L.tokens, toks)
    assert.equal("length", fin)
    local cs = out.chat_stream
    assert.equal("assistant", cs[1].choices[1].delta.role)
    assert.equal(0, #cs[1].choices[1].logprobs.content)
    local st, ntok = "", 0
    for i = 2, #cs - 2 do
      st = st .. cs[i].choices[1].delta.content
      ntok = ntok + #cs[i].choices[1].logprobs.content
    end
    assert.equal(wc.text, st)
    assert.equal(#wc.choices[1].tokens, ntok)
    assert.equal("length", cs[#cs - 1].choices[1].finish_reason)
    assert.equal(0, #cs[#cs].choices)                     -- the usage chunk
    assert.equal(5, cs[#cs].usage.completion_tokens)

    -- echo with max_tokens 0 scores the prompt: first token null, then the model's logprobs
    local e = out.echo.choices[1]
    assert.equal(prompts[1], e.text)
    assert.equal(json.null, e.logprobs.token_logprobs[1])
    assert.equal(json.null, e.logprobs.top_logprobs[1])
    local ids = ref._tok:encode(prompts[1], { add_special = true })
    local logits = ref._m:forward(ids)
    for k = 2, #ids do
      local row = logits[1][k - 1]:log_softmax():totable()
      assert.is_true(close(row[ids[k] + 1], e.logprobs.token_logprobs[k], 1e-4), "echo logprob " .. k)
    end

    -- a seed makes sampling reproducible; n = 2 gives two choices
    assert.equal(2, #out.sampled[1].choices)
    assert.equal(out.sampled[1].choices[1].text, out.sampled[2].choices[1].text)
    assert.equal(out.sampled[1].choices[2].text, out.sampled[2].choices[2].text)
    local seen = {}
    for _, chunk in ipairs(out.stream_n2) do seen[chunk.choices[1].index] = true end
    assert.is_true(seen[0] and seen[1])

    -- errors arrive as the SDK's exception classes with OpenAI's fields
    assert.same({ "NotFoundError", 404, "model_not_found", "model" }, { out.err_model.error.name,
      out.err_model.error.status, out.err_model.error.code, out.err_model.error.param })
    assert.equal("BadRequestError", out.err_temperature.error.name)
    assert.equal("temperature", out.err_temperature.error.param)
    assert.equal(400, out.err_top_logprobs.error.status)
    assert.equal("top_logprobs", out.err_top_logprobs.error.param)
    assert.equal(400, out.err_messages.error.status)
    assert.equal("unsupported_parameter", out.err_logit_bias.error.code)

    -- 40 concurrent requests: every answer is the greedy text of its prompt, and
    -- the server answered them in batches
    assert.equal(40, #out.concurrent)
    for _, r in ipairs(out.concurrent) do
      assert.is_nil(r.error, r.error and r.error.message)
      local w = r.kind == "completion" and ref:complete { prompt = r.prompt, max_tokens = 5, temperature = 0 } or
        ref:complete { messages = { { role = "user", content = r.prompt } }, max_tokens = 5, temperature = 0 }
      assert.equal(w.text, r.text, r.kind .. " " .. r.prompt)
    end
    local biggest = 0
    for n in helper.read_file(srv.log):gmatch("batch of (%d+)") do biggest = math.max(biggest, tonumber(n)) end
    assert.is_true(biggest >= 4, "largest batch " .. biggest)
  end)

  it("gives our own client and the labeler the labels of the in-process backend", function()
    local data = helper.tmpname("_pairs.jsonl")
    local rows = {}
    local texts = { { "The cat sat on the mat all day.", "A cat sat.", "A dog ran." },
      { "Rain fell in the city.", "It rained.", "Sunny skies." },
      { "Stocks rose sharply.", "Markets up.", "Markets down a lot today." },
      { "She won the race.", "A win.", "She lost." } }
    for i, t in ipairs(texts) do
      rows[i] = json.encode { id = "p" .. i, prompt = t[1], chosen = t[2], rejected = t[3] }
    end
    write(data, table.concat(rows, "\n") .. "\n")
    local a, b = data .. ".local", data .. ".http"
    local base = "./rlaif label --data " .. data .. " --format pairs --template summarize-base --quiet --no-resume " ..
      "--logprobs 1000 "
    assert.is_true(sh("env -u LD_PRELOAD " .. base .. "--api local --model " .. q(dir) .. " --out " .. a))
    assert.is_true(sh("env -u LD_PRELOAD " .. base .. "--api openai-completions --base-url " .. srv.url ..
      " --model tiny --out " .. b))
    local function load(p)   -- records by id (they are appended in completion order)
      local out, n = {}, 0
      for line in io.lines(p) do
        local r = json.decode(line)
        out[r.id], n = r, n + 1
      end
      return out, n
    end
    local la, na = load(a)
    local lb, nb = load(b)
    assert.equal(#texts, na)
    assert.equal(na, nb)
    for i = 1, #texts do
      local x, y = la["p" .. i], lb["p" .. i]
      assert.equal("ok", x.status)
      assert.equal(x.status, y.status)
      for _, k in ipairs { "p", "p_ab", "p_ba" } do
        assert.is_true(close(x[k], y[k], 1e-6), string.format("pair %d %s: %s vs %s", i, k, tostring(x[k]),
          tostring(y[k])))
      end
    end
    -- and the client in-process: the same top-K alternatives through HTTP
    local c = rlaif.llm.client { api = "openai-completions", base_url = srv.url, model = "tiny", max_retries = 0 }
    local r = c:complete { prompt = "Which is better, 1 or 2?", max_tokens = 1, temperature = 0, logprobs = 5 }
    local w = ref:complete { prompt = "Which is better, 1 or 2?", max_tokens = 1, temperature = 0, logprobs = 5 }
    for k = 1, 5 do
      -- raw bytes: tokens that are not UTF-8 travel as "bytes:\xNN" and come back raw
      assert.equal(w.choices[1].tokens[1].top[k].bytes, r.choices[1].tokens[1].top[k].token)
      assert.is_true(close(w.choices[1].tokens[1].top[k].logprob, r.choices[1].tokens[1].top[k].logprob))
    end
    local cc = rlaif.llm.client { api = "openai-chat", base_url = srv.url, model = "tiny", max_retries = 0 }
    local rc = cc:complete { messages = { { role = "user", content = "Hi" } }, max_tokens = 3, temperature = 0,
      logprobs = 2, stream = true }
    assert.equal(ref:complete { messages = { { role = "user", content = "Hi" } }, max_tokens = 3,
      temperature = 0 }.text, rc.text)
    for _, p in ipairs { data, a, b } do os.remove(p) end
  end)

  it("rejects malformed, oversized and endless requests and slow clients, and keeps serving", function()
    local code, body = curl("-d '{\"prompt\": ' " .. srv.url .. "/completions")
    assert.equal(400, code)
    assert.equal("invalid_json", json.decode(body).error.code)
    code, body = curl("-d '[1, 2]' " .. srv.url .. "/completions")
    assert.equal(400, code)
    assert.matches("not a JSON object", json.decode(body).error.message)
    local deep = string.rep("[", 5000) .. string.rep("]", 5000)
    local f = helper.tmpname("_deep")
    write(f, '{"prompt": ' .. deep .. '}')
    code, body = curl("--data-binary @" .. f .. " " .. srv.url .. "/completions")
    assert.equal(400, code)
    assert.equal("invalid_json", json.decode(body).error.code)
    write(f, '{"prompt": "caf\xe9 \xff\xfe ok", "max_tokens": 2, "temperature": 0}')   -- not UTF-8
    code, body = curl("--data-binary @" .. f .. " " .. srv.url .. "/completions")
    assert.equal(200, code)
    assert.equal(2, json.decode(body).usage.completion_tokens)
    os.remove(f)
    code, body = curl(srv.url .. "/completions")
    assert.equal(405, code)
    assert.equal("method_not_allowed", json.decode(body).error.code)
    code, body = curl(srv.url .. "/nothing")
    assert.equal(404, code)
    assert.equal("unknown_url", json.decode(body).error.code)
    -- a body announced larger than the limit: 413 before reading it
    code, body = curl("-H 'Content-Length: 100000000' -d x " .. srv.url .. "/completions")
    assert.equal(413, code)
    assert.equal("request_too_large", json.decode(body).error.code)
    -- raw sockets: garbage, an endless chunked body, a client that stops sending
    local node = (helper.read_file("build/npm-test/node-path") or "node"):gsub("%s+$", "")
    local p = assert(io.popen(string.format("env -u LD_PRELOAD %s tests/node/http_abuse.mjs --port %d 2>&1",
      q(node), srv.port)))
    local out = p:read("a")
    p:close()
    local r = json.decode(out)
    assert.matches("^HTTP/1%.1 400", r.garbage)
    assert.is_true(r.chunked_closed, "the over-long chunked body was not cut")
    assert.is_true(r.slow_closed, "the slow client was not cut")
    assert.equal(200, r.during_slow)           -- others were served meanwhile
    code = curl(srv.url .. "/models")
    assert.equal(200, code)
    code, body = curl("-s " .. srv.url:gsub("/v1$", "") .. "/health")
    assert.equal(200, code)
    assert.equal("ok", json.decode(body).status)
  end)
end)

describe("rlaif serve options, keys and signals #unit", function()
  local dir
  setup(function()
    dir = mkdtemp()
    local m = rlaif.model.new { arch = "gpt2", vocab_size = 1000, n_layer = 1, n_head = 2, d_model = 16,
      max_seq = 64, seed = 3, eos_id = EOS }
    assert(m:save(dir))
    write(dir .. "/tokenizer.json", helper.read_file(TOKENIZER))
  end)
  teardown(function()
    for _, f in ipairs { "config.json", "model.safetensors", "tokenizer.json" } do os.remove(dir .. "/" .. f) end
    os.remove(dir)
  end)

  it("checks the bearer key in C; the key never appears in answers or logs", function()
    local s = start("--model " .. q(dir) .. " --api-key-env RLAIF_TEST_KEY",
      "env -u LD_PRELOAD RLAIF_TEST_KEY=sk-test-secret-123")
    assert.truthy(s.port)
    local code, body = curl("-d '{\"prompt\":\"a\",\"max_tokens\":1}' " .. s.url .. "/completions")
    assert.equal(401, code)
    assert.equal("invalid_api_key", json.decode(body).error.code)
    code = curl("-H 'Authorization: Bearer sk-wrong' " .. s.url .. "/models")
    assert.equal(401, code)
    code, body = curl("-H 'Authorization: Bearer sk-test-secret-123' -d '{\"prompt\":\"a\",\"max_tokens\":1}' " ..
      s.url .. "/completions")
    assert.equal(200, code)
    assert.equal("text_completion", json.decode(body).object)
    code = curl(s.url:gsub("/v1$", "") .. "/health")   -- public
    assert.equal(200, code)
    assert.equal(0, s.stop("TERM"))
    assert.is_nil(helper.read_file(s.log):find("sk-test-secret", 1, true))
    assert.matches("stopped %(terminated%)", helper.read_file(s.log))
    s.cleanup()
    -- a missing variable is an error naming it, before anything listens
    local p = io.popen("env -u LD_PRELOAD -u NOPE_KEY ./rlaif serve --model " .. q(dir) ..
      " --port 0 --api-key-env NOPE_KEY 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    assert.matches("NOPE_KEY is not set", out)
    assert.matches("rc=1", out)
  end)

  it("exits 130 on Ctrl-C and 2 on bad flags", function()
    local s = start("--model " .. q(dir))
    assert.truthy(s.port)
    assert.equal(200, (curl(s.url .. "/models")))
    assert.equal(130, s.stop("INT"))
    assert.matches("interrupted", helper.read_file(s.log))
    s.cleanup()
    local p = io.popen("env -u LD_PRELOAD ./rlaif serve --model x --port 99999 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    assert.matches("option %-%-port must be an integer >= 0 and <= 65535", out)
    assert.matches("rc=2", out)
    p = io.popen("env -u LD_PRELOAD ./rlaif serve --model " .. q(dir .. "/missing") .. " --port 0 2>&1; echo rc=$?")
    out = p:read("a")
    p:close()
    assert.matches("missing", out)
    assert.matches("rc=1", out)
  end)

  it("runs a custom Lua handler in-process: routes, streams, 500s, 429 when full, 504 after the timeout", function()
    local errors = {}
    local srv = rlaif.serve.new { port = 0, max_queue = 2, timeout = 30, quiet = true, max_batch = 1,
      on_error = function(_, msg) errors[#errors + 1] = msg end,
      handler = function(req)
        if req.path == "/echo" then return { status = 200, json = { body = req:json(), q = req.query.x } } end
        if req.path == "/stream" then
          req:start(200)
          for i = 1, 3 do req:write("data: " .. i .. "\n\n") end
          req:finish()
          return
        end
        if req.path == "/boom" then error("kaboom") end
        if req.path == "/slow" then
          sh("sleep 0.1")
          return { status = 200, body = "late", headers = { ["X-Slow"] = "yes" } }
        end
        return { status = 404, json = { error = "no" } }
      end }
    local base = "http://127.0.0.1:" .. srv:port()
    local tmp = helper.tmpname("_h")
    local function bg(name, args)   -- curl in the background; "__END__" marks a finished transfer
      sh(string.format("(curl -s -i %s; echo __END__) > %s.%s 2>&1 &", args, tmp, name))
    end
    -- step the server until every named transfer has finished; returns {name = {status, text}}
    local function finish(names, server)
      local out, t0 = {}, rlaif.core.clock()
      while rlaif.core.clock() - t0 < 10 do
        local all = true
        for _, name in ipairs(names) do
          local s = helper.read_file(tmp .. "." .. name) or ""
          if s:find("__END__\n$") then out[name] = { tonumber(s:match("^HTTP/1%.1 (%d+)")), s } else all = false end
        end
        if all then break end
        assert((server or srv):step(0.02))
      end
      for _, name in ipairs(names) do os.remove(tmp .. "." .. name) end
      return out
    end
    bg("echo", "-d '{\"a\":[1,2]}' '" .. base .. "/echo?x=7'")
    bg("stream", base .. "/stream")
    bg("boom", base .. "/boom")
    local r = finish { "echo", "stream", "boom" }
    assert.equal(200, r.echo[1])
    assert.same({ body = { a = { 1, 2 } }, q = "7" }, json.decode(r.echo[2]:match("\r\n\r\n(.-)__END__")))
    assert.equal(200, r.stream[1])
    assert.matches("chunked", r.stream[2]:lower())
    assert.matches("data: 1\n\ndata: 2\n\ndata: 3\n\n__END__", r.stream[2])
    assert.equal(500, r.boom[1])
    assert.matches("kaboom", r.boom[2])
    assert.equal(1, #errors)   -- reported through on_error, with the request it failed
    assert.matches("^handler error on GET /boom: .*kaboom", errors[1])
    -- a queue of 2: six requests at once while nothing is taken -> 2 queued, 4 get 429 + retry-after
    local names = {}
    for i = 1, 6 do
      names[i] = "f" .. i
      bg(names[i], base .. "/slow")
    end
    sh("sleep 0.4")
    r = finish(names)
    local n429, n200 = 0, 0
    for _, name in ipairs(names) do
      local c2, s2 = r[name][1], r[name][2]
      if c2 == 429 then
        n429 = n429 + 1
        assert.matches("[Rr]etry%-[Aa]fter: 1", s2)
        assert.matches("rate_limit_exceeded", s2)
      elseif c2 == 200 then
        n200 = n200 + 1
        assert.matches("X%-Slow: yes", s2)
      end
    end
    assert.equal(6, n429 + n200)
    assert.is_true(n429 >= 2, "429s: " .. n429)
    assert.is_true(n200 >= 2, "200s: " .. n200)
    local st = srv:stats()
    assert.is_true(st.transport.rejected_full >= 2)
    assert.is_true(st.by_status[500] >= 1)
    srv:close()
    -- not answered within `timeout`: 504 from the C layer; the late answer is dropped
    srv = rlaif.serve.new { port = 0, timeout = 0.2, quiet = true, handler = function()
      sh("sleep 0.5")
      return { status = 200, body = "too late" }
    end }
    base = "http://127.0.0.1:" .. srv:port()
    bg("never", base .. "/never")
    r = finish { "never" }
    assert.equal(504, r.never[1])
    assert.matches("not answered within 0.2 s", r.never[2])
    st = srv:stats()
    assert.equal(1, st.transport.timed_out)
    assert.equal(1, st.by_status.gone)   -- the handler's late answer found no one waiting
    srv:close()
    os.remove(tmp)
    -- option checking names the option
    assert.has_error(function() rlaif.serve.new { handler = print, port = 70000 } end,
      "serve: option 'port' must be an integer >= 0 and <= 65535, got 70000")
    assert.has_error(function() rlaif.serve.new { port = 0 } end,
      "serve: give exactly one of model, client, handler or batch_handler")
    assert.has_error(function() rlaif.serve.new { handler = print, porty = 1 } end,
      "serve: unknown option 'porty' (did you mean 'port'?)")
  end)

  it("serves any complete_many client (a simulated judge) with OpenAI's logprob shapes", function()
    local judge = { model = "sim-judge" }
    function judge.complete_many(_, reqs)
      local out = {}
      for i, r in ipairs(reqs) do
        local alts = { { token = " 1", logprob = math.log(0.7) }, { token = " 2", logprob = math.log(0.3) } }
        out[i] = { ok = true, text = " 1", usage = { prompt_tokens = 3, completion_tokens = 1 },
          choices = { { text = " 1", finish_reason = "length", tokens = { { token = " 1", logprob = alts[1].logprob,
          top = alts } } } } }
        assert(r.max_tokens == 1)
      end
      return out
    end
    local srv = rlaif.serve.new { client = judge, port = 0, quiet = true }
    local url = "http://127.0.0.1:" .. srv:port() .. "/v1"
    local tmp = helper.tmpname("_j")
    sh(string.format("curl -s -d '{\"model\":\"sim-judge\",\"messages\":[{\"role\":\"user\"," ..
      "\"content\":\"1 or 2?\"}],\"max_tokens\":1,\"logprobs\":true,\"top_logprobs\":2}' %s/chat/completions > %s &",
      url, tmp))
    local t0 = rlaif.core.clock()
    local n = 0
    while n == 0 and rlaif.core.clock() - t0 < 5 do n = assert(srv:step(0.2)) end
    sh("sleep 0.2")
    srv:close()
    local r = json.decode(helper.read_file(tmp))
    os.remove(tmp)
    local e = r.choices[1].logprobs.content[1]
    assert.equal(" 1", e.token)
    assert.is_true(close(math.log(0.7), e.logprob))
    assert.equal(" 2", e.top_logprobs[2].token)
    assert.same({ 32, 50 }, e.top_logprobs[2].bytes)
    assert.equal("sim-judge", r.model)
  end)
end)
