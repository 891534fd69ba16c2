-- Specs for rlaif.metrics: alignment (with the confidence filter), position
-- bias, agreement, bootstrap, binomial test, cost, tables.
local metrics = require "rlaif.metrics"

describe("rlaif.metrics #unit", function()
  local recs = {
    { id = 1, status = "ok", p = 0.9, human = 1, confidence = 9, same_position = false, tokens = { prompt = 10,
      completion = 2 }, requests = 2, cost = 0.01 },
    { id = 2, status = "ok", p = 0.2, human = 1, confidence = 5, same_position = true, position = 1,
      tokens = { prompt = 10, completion = 2 }, requests = 2, cost = 0.01 },
    { id = 3, status = "ok", p = 0.3, human = 2, confidence = 1, same_position = true, position = 2,
      tokens = { prompt = 10, completion = 2 }, requests = 2, cost = 0.01 },
    { id = 4, status = "ok", p = 0.5, human = 2, confidence = 8, same_position = true, position = 1,
      tokens = { prompt = 10, completion = 2 }, requests = 2, cost = 0.01 },
    { id = 5, status = "error", human = 1, requests = 2, tokens = { prompt = 0, completion = 0 } },
  }

  it("computes z_acc with the high-confidence filter", function()
    local a = metrics.alignment(recs, { bootstrap = 0 })
    assert.same({ 4, 2, 1 }, { a.n, a.correct, a.ties })
    assert.equal(0.5, a.z_acc)
    assert.equal(1, a.excluded.status)
    local hc = metrics.alignment(recs, { confidence = true, bootstrap = 0 })
    assert.same({ 3, 2, 1 }, { hc.n, hc.correct, hc.excluded.confidence })
  end)

  it("computes position bias and the binomial test", function()
    local pb = metrics.position_bias(recs)
    assert.same({ 4, 3, 75, 2, 1 }, { pb.n, pb.same, pb.pct_same, pb.first, pb.second })
    assert.equal(1, pb.p_value)
    assert.equal(2 / 1024, metrics.binomial_test(0, 10))
    assert.is_true(math.abs(2 * 11 / 1024 - metrics.binomial_test(9, 10)) < 1e-15)
  end)

  it("bootstraps deterministically and brackets the mean", function()
    local v = {}
    for i = 1, 200 do v[i] = (i % 4 == 0) and 0 or 1 end
    local lo, hi = metrics.bootstrap(v, metrics.mean, { n = 500, seed = 7 })
    local lo2, hi2 = metrics.bootstrap(v, metrics.mean, { n = 500, seed = 7 })
    assert.same({ lo, hi }, { lo2, hi2 })
    assert.is_true(lo < 0.75 and hi > 0.75 and lo > 0.6 and hi < 0.9)
  end)

  it("computes agreement and cost", function()
    local b = {
      { id = 1, status = "ok", p = 0.8 }, { id = 2, status = "ok", p = 0.7 }, { id = 3, status = "ok", p = 0.4 },
    }
    local ag = metrics.agreement(recs, b)
    assert.same({ 3, 2 }, { ag.n, ag.agree })
    local c = metrics.cost(recs)
    assert.same({ 4, 10, 40, 8 }, { c.labeled, c.requests, c.prompt_tokens, c.completion_tokens })
    assert.is_true(math.abs(c.cost_per_label - 0.01) < 1e-15)
  end)

  it("formats a table", function()
    local s = metrics.format_table({ "r1" }, { "c1", "c2" }, function(_, c) return c == "c1" and "1.0" or nil end)
    assert.equal("     c1  c2\n--  ---  --\nr1  1.0   -\n", s)
  end)
end)
