-- End-to-end: rlaif.labeler through the real rlaif.llm client against a loopback
-- fake labeler server (tests/servers/fake_labeler.mjs) whose answers follow a
-- hidden preference rule plus a position bias. Expected values are computed
-- here independently. Skips when node or rlaif.llm is unavailable.
local helper = require "spec.helper"
local ok_llm, llm = pcall(require, "rlaif.llm")
local labeler = require "rlaif.labeler"
local metrics = require "rlaif.metrics"

local function start(delay, bias, scale)
  local tmp = helper.tmpname("_fl")
  os.execute(string.format("env -u LD_PRELOAD node tests/servers/fake_labeler.mjs --port-file %s.port " ..
    "--delay %d --bias %s --scale %s --ttl 120 >/dev/null 2>&1 & echo $! > %s.pid", tmp, delay, bias, scale, tmp))
  local port = helper.wait_port(tmp .. ".port")
  local pid = tonumber(helper.read_file(tmp .. ".pid") or "")
  return port, function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.remove(tmp .. ".port") os.remove(tmp .. ".pid") os.remove(tmp)
  end
end

local has_node = os.execute("command -v node >/dev/null 2>&1")

describe("rlaif.labeler end to end #unit", function()
  if not (ok_llm and has_node) then
    it("skipped (no node or no rlaif.llm)", function() pending("node or rlaif.llm unavailable") end)
    return
  end
  local port, stop
  setup(function() port, stop = start(0, 0.8, 0.5) end)
  teardown(function() if stop then stop() end end)

  local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
  local function data(n)
    local out = {}
    for i = 1, n do
      local qa, qb = (i * 7) % 5, (i * 3) % 4
      out[i] = { id = i, context = "post " .. i, a = "first q" .. qa, b = "second q" .. qb,
        human = (i % 3 == 0) and 2 or 1 }
    end
    return out
  end

  for _, api in ipairs { "openai-completions", "openai-chat" } do
    it("recovers the hidden rule and the position bias through " .. api, function()
      assert.truthy(port, "fake server did not start")
      local c = llm.client { api = api, base_url = "http://127.0.0.1:" .. port .. "/v1", model = "fake",
        concurrency = 8, max_retries = 0 }
      local L = labeler.new { client = c, template = "summarize-base", logprobs = 5 }
      local d = data(30)
      local s = L:label(d)
      assert.equal(30, s.ok)
      local same, correct = 0, 0
      for i, r in ipairs(s.records) do
        local qa, qb = (i * 7) % 5, (i * 3) % 4
        local p1_ab, p1_ba = sigmoid(0.5 * (qa - qb) + 0.8), sigmoid(0.5 * (qb - qa) + 0.8)
        assert.is_true(math.abs(r.p_ab - p1_ab) < 1e-9, "p_ab of pair " .. i)
        assert.is_true(math.abs(r.p_ba - (1 - p1_ba)) < 1e-9, "p_ba of pair " .. i)
        if qa ~= qb then assert.equal(qa > qb, r.p > 0.5) end
        local sm = (p1_ab > 0.5) == (p1_ba > 0.5)
        assert.equal(sm, r.same_position)
        if sm then same = same + 1 end
        local ai = r.p > 0.5 and 1 or (r.p < 0.5 and 2 or 0)
        if ai == d[i].human then correct = correct + 1 end
      end
      local pb = metrics.position_bias(s.records)
      assert.equal(100 * same / 30, pb.pct_same)
      assert.equal(100, pb.pct_first)
      assert.equal(correct / 30, metrics.alignment(s.records, { bootstrap = 0 }).z_acc)
    end)
  end

  it("CoT through the client: two requests per order", function()
    local c = llm.client { api = "openai-completions", base_url = "http://127.0.0.1:" .. port .. "/v1",
      model = "fake", concurrency = 4, max_retries = 0 }
    local L = labeler.new { client = c, template = "summarize-detailed", cot = true, logprobs = 5 }
    local r = L:label_one { id = 1, context = "c", a = "q3", b = "q1" }
    assert.equal("ok", r.status)
    assert.equal(4, r.requests)
    assert.equal(4, c:stats().requests)
    assert.same({ "The summary with the higher q is better." }, r.rationales.ba)
  end)
end)
