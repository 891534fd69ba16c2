-- tests/spec/eval_cli_spec.lua -- `rlaif eval` end to end: ./rlaif against the
-- loopback fake labeler (tests/servers/fake_labeler.mjs) through the real LLM
-- client, with injected HTTP failures and answers without a label, resume after
-- failures and after Ctrl-C (exit 130), the harmless mode, generation from a model
-- directory, and the progress line on a pseudo-terminal. Expected win rates are
-- computed here from the fake judge's rule. Skips when node is missing.
local helper = require "spec.helper"
local json = require("rlaif.core").json

local ROOT = assert(io.popen("pwd")):read("l")
local has_node = os.execute("command -v node >/dev/null 2>&1")

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code
end

local function write_jsonl(path, rows)
  local f = assert(io.open(path, "w"))
  for _, r in ipairs(rows) do f:write(json.encode(r), "\n") end
  f:close()
end

local function read_jsonl(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = json.decode(line) end
  return out
end

local function mkdtemp()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function start(delay, bias)
  local tmp = helper.tmpname("_fl")
  os.execute(string.format("env -u LD_PRELOAD node tests/servers/fake_labeler.mjs --port-file %s.port " ..
    "--delay %d --bias %s --scale 0.5 --ttl 120 >/dev/null 2>&1 & echo $! > %s.pid", tmp, delay, bias, tmp))
  local port = helper.wait_port(tmp .. ".port")
  local pid = tonumber(helper.read_file(tmp .. ".pid") or "")
  return port, function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.remove(tmp .. ".port") os.remove(tmp .. ".pid")
  end
end

-- N items: A has hidden quality (i*7)%5 and a length that grows with i, B (i*3)%4
local function files(dir, n, inject)
  local a, b = {}, {}
  for i = 1, n do
    a[i] = { id = i, prompt = "post " .. i, response = "first q" .. (i * 7) % 5 .. string.rep(" long", i % 6) }
    b[i] = { id = i, prompt = "post " .. i, response = "second q" .. (i * 3) % 4 }
    if inject and inject[i] then a[i].response = a[i].response .. " " .. inject[i] end
  end
  write_jsonl(dir .. "/a.jsonl", a)
  write_jsonl(dir .. "/b.jsonl", b)
  return a, b
end

describe("rlaif eval end to end #unit", function()
  if not has_node then
    it("skipped (no node)", function() pending("node unavailable") end)
    return
  end
  local port, stop
  setup(function() port, stop = start(0, 0.4) end)
  teardown(function() if stop then stop() end end)

  local function eval_cmd(dir, extra)
    return string.format("%s/rlaif eval --a %s/a.jsonl --b %s/b.jsonl --out %s/out --judge-api openai-completions " ..
      "--base-url http://127.0.0.1:%d/v1 --model fake --logprobs 5 --max-retries 0 --bootstrap 200 %s",
      ROOT, dir, dir, dir, port, extra or "")
  end

  it("judges both orders, writes records.jsonl and results.json, prints the table", function()
    assert.truthy(port, "fake server did not start")
    local dir = mkdtemp()
    files(dir, 30)
    local out, code = sh(eval_cmd(dir, "--name-a rlaif --name-b sft --quiet"))
    assert.equal(0, code, out)
    assert.matches("comparison%s+n%s+failed%s+ties%s+win %%%s+95%% CI", out)
    assert.matches("rlaif vs sft%s+30%s+0%s+", out)
    local recs = read_jsonl(dir .. "/out/records.jsonl")
    assert.equal(30, #recs)
    local wins = 0
    for _, r in ipairs(recs) do
      local i = r.id
      local qa, qb = (i * 7) % 5, (i * 3) % 4
      local p_ab, p_ba = sigmoid(0.5 * (qa - qb) + 0.4), 1 - sigmoid(0.5 * (qb - qa) + 0.4)
      assert.is_true(math.abs(r.p_ab - p_ab) < 1e-9 and math.abs(r.p_ba - p_ba) < 1e-9, "item " .. i)
      assert.equal(utf8.len("first q" .. qa .. string.rep(" long", i % 6)), r.len_a)
      assert.equal(#("second q" .. qb), r.len_b)
      wins = wins + ((r.p > 0.5) and 1 or (r.p < 0.5 and 0 or 0.5))
    end
    local res = json.decode(helper.read_file(dir .. "/out/results.json"))
    assert.equal(30, res.n)
    assert.equal(0, res.failed)
    assert.is_true(math.abs(res.win_rate - wins / 30) < 1e-12)
    for _, k in ipairs { "soft_win_rate", "lc_win_rate", "lc_ae2", "ties" } do assert.is_number(res[k], k) end
    assert.equal(2, #res.ci95)
    assert.is_true(res.ci95[1] <= res.win_rate and res.win_rate <= res.ci95[2])
    assert.equal("helpful-base", res.template)
    assert.same({ a = "rlaif", b = "sft" }, res.names)
    -- a rerun judges nothing and gives the same numbers
    local out2, code2 = sh(eval_cmd(dir, "--name-a rlaif --name-b sft"))
    assert.equal(0, code2, out2)
    assert.matches("0 judged, 30 reused", out2)
    local res2 = json.decode(helper.read_file(dir .. "/out/results.json"))
    res.judged, res.reused, res2.judged, res2.reused = nil, nil, nil, nil
    assert.same(res, res2)
    -- another judge template into the same directory is refused
    local out3, code3 = sh(eval_cmd(dir, "--template summarize-base"))
    assert.equal(1, code3)
    assert.matches("holds an evaluation by another judge or mode", out3)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("reports failed requests and unlabeled answers, never as ties; a rerun retries the errors", function()
    local dir = mkdtemp()
    files(dir, 12, { [2] = "[[fail=500]]", [5] = "[[fail=503,times=1]]", [9] = "[[nolabel]]" })
    local out, code = sh(eval_cmd(dir))
    assert.equal(1, code, out)
    assert.matches("3 item%(s%) failed", out)
    assert.matches("a vs b%s+9%s+3%s+", out)
    local by = {}
    for _, r in ipairs(read_jsonl(dir .. "/out/records.jsonl")) do by[r.id] = r end
    assert.equal("error", by[2].status)
    assert.matches("500", by[2].reason)
    assert.equal("error", by[5].status)
    assert.equal("unlabeled", by[9].status)
    local res = json.decode(helper.read_file(dir .. "/out/results.json"))
    assert.equal(9, res.n)
    assert.equal(3, res.failed)
    -- rerun: item 5's server error was transient; 2 still fails, 9 stays unlabeled
    local out2, code2 = sh(eval_cmd(dir))
    assert.equal(1, code2, out2)
    assert.matches("2 judged, 10 reused", out2)
    res = json.decode(helper.read_file(dir .. "/out/results.json"))
    assert.equal(10, res.n)
    assert.equal(2, res.failed)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("harmless mode: single responses with the harmless-rate template", function()
    local dir = mkdtemp()
    files(dir, 16)
    local out, code = sh(string.format("%s/rlaif eval --harmless --a %s/a.jsonl --b %s/b.jsonl --out %s/out " ..
      "--judge-api openai-completions --base-url http://127.0.0.1:%d/v1 --model fake --logprobs 5 " ..
      "--ref-length 10 --bootstrap 100 --quiet", ROOT, dir, dir, dir, port))
    assert.equal(0, code, out)
    assert.matches("policy%s+n%s+failed%s+harmless %%", out)
    local res = json.decode(helper.read_file(dir .. "/out/results.json"))
    assert.equal("harmless", res.mode)
    assert.equal(2, #res.policies)
    local h = 0
    for i = 1, 16 do
      local ph = 1 - sigmoid(-0.5 * ((i * 7) % 5) + 0.4)
      h = h + (ph > 0.5 and 1 or (ph < 0.5 and 0 or 0.5))
    end
    assert.is_true(math.abs(res.policies[1].harmless_rate - h / 16) < 1e-12)
    assert.equal(10, res.policies[1].ref_length)
    assert.equal(16, #read_jsonl(dir .. "/out/records_b.jsonl"))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("bad usage exits 2 and names the flag", function()
    local out, code = sh(ROOT .. "/rlaif eval --a x --b y --out z --tie-margin 0.9")
    assert.equal(2, code)
    assert.matches("rlaif eval: option %-%-tie%-margin must be a number >= 0 and < 0.5, got \"0.9\"", out)
    out, code = sh(ROOT .. "/rlaif eval --a x --out z")
    assert.equal(2, code)
    assert.matches("%-%-a, %-%-b and %-%-out are required", out)
    out, code = sh(ROOT .. "/rlaif eval --a missing.jsonl --b missing.jsonl --out /tmp/rlaif_eval_x " ..
      "--judge-api openai-completions --base-url http://127.0.0.1:9/v1")
    assert.equal(1, code)
    assert.matches("cannot read", out)
    os.execute("rm -rf /tmp/rlaif_eval_x")
  end)
end)

describe("rlaif eval interrupted and on a terminal #unit", function()
  if not has_node then
    it("skipped (no node)", function() pending("node unavailable") end)
    return
  end
  local port, stop
  setup(function() port, stop = start(40, 0.4) end)   -- 40 ms per answer
  teardown(function() if stop then stop() end end)

  it("Ctrl-C exits 130 and keeps the judged records; the rerun finishes the rest", function()
    local dir = mkdtemp()
    files(dir, 40)
    local cmd = string.format("%s/rlaif eval --a %s/a.jsonl --b %s/b.jsonl --out %s/out --judge-api " ..
      "openai-completions --base-url http://127.0.0.1:%d/v1 --model fake --logprobs 5 --concurrency 2 " ..
      "--bootstrap 0", ROOT, dir, dir, dir, port)
    local out, code = sh("timeout --foreground --preserve-status -s INT 1.2 " .. cmd)
    assert.equal(130, code, out)
    assert.matches("interrupted; what was judged is kept", out)
    local kept = 0
    for _, r in ipairs(read_jsonl(dir .. "/out/records.jsonl")) do if r.status == "ok" then kept = kept + 1 end end
    assert.is_true(kept > 0 and kept < 40, "kept " .. kept)
    local out2, code2 = sh(cmd)
    assert.equal(0, code2, out2)
    assert.matches(string.format("%d judged, %d reused", 40 - kept, kept), out2)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("generates from a model directory and shows progress on a terminal", function()
    local rlaif = require "rlaif"
    local dir = mkdtemp()
    local m = rlaif.model.new { arch = "llama", vocab_size = 1000, n_layer = 1, n_head = 2, n_kv_head = 1,
      d_model = 16, d_ff = 32, max_seq = 64, seed = 3, eos_id = 998, tie_embeddings = false }
    assert(m:save(dir .. "/policy"))
    os.execute(string.format("cp tests/fixtures/tokenizer/trained.json %s/policy/tokenizer.json", dir))
    local prompts, b = {}, {}
    for i = 1, 6 do
      prompts[i] = { id = i, prompt = "Context " .. i }
      b[i] = { id = i, prompt = "Context " .. i, response = "baseline q1" }
    end
    write_jsonl(dir .. "/prompts.jsonl", prompts)
    write_jsonl(dir .. "/b.jsonl", b)
    local cmd = string.format("%s/rlaif eval --a %s/policy --prompts %s/prompts.jsonl --b %s/b.jsonl --out %s/out " ..
      "--judge-api openai-completions --base-url http://127.0.0.1:%d/v1 --model fake --logprobs 5 " ..
      "--max-new-tokens 4 --batch-size 2 --bootstrap 0", ROOT, dir, dir, dir, dir, port)
    local out, code = sh(string.format("script -qec %q /dev/null", cmd))
    assert.equal(0, code, out)
    assert.matches("generate a %[#+%] 6/6 100%%", out)     -- the bar, redrawn in place on the terminal
    assert.matches("generate a: 6 responses in", out)
    local gen = read_jsonl(dir .. "/out/responses_a.jsonl")
    assert.equal(6, #gen)
    assert.equal("Context 1", gen[1].prompt)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
