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

  -- independent values: scripts/gen_metrics_fixtures.py (numpy), committed
  local fx = (function()
    local f = assert(io.open("tests/fixtures/metrics/metrics.json", "rb"))
    local d = require("rlaif.core").json.decode(f:read("a"))
    f:close()
    return d
  end)()
  local function near(want, got, what)
    assert(type(got) == "number" and math.abs(got - want) <= 1e-12 * math.max(1, math.abs(want)),
      string.format("%s: got %s, want %.17g", what, tostring(got), want))
  end

  it("agreement, kappa and mean |p_a - p_b| equal numpy's values", function()
    assert.equal(4, #fx.cases)
    for _, c in ipairs(fx.cases) do
      local w, g = c.agreement, metrics.agreement(c.a, c.b)
      assert.same({ w.n, w.agree }, { g.n, g.agree }, c.name)
      near(w.rate, g.rate, c.name .. " rate")
      near(w.kappa, g.kappa, c.name .. " kappa")
      near(w.mean_abs_diff, g.mean_abs_diff, c.name .. " mean_abs_diff")
      for _, k in ipairs { "alignment", "alignment_hc" } do
        local a = metrics.alignment(c.a, { bootstrap = 0, confidence = k == "alignment_hc" or nil })
        assert.same({ c[k].n, c[k].correct }, { a.n, a.correct }, c.name .. " " .. k)
        near(c[k].z_acc, a.z_acc, c.name .. " " .. k .. " z_acc")
      end
    end
    -- by hand: 3 pairs on both sides of 0.5, one tie (counted in the mean |dp| only)
    local a = { { id = 1, status = "ok", p = 0.9 }, { id = 2, status = "ok", p = 0.2 },
                { id = 3, status = "ok", p = 0.8 }, { id = 4, status = "ok", p = 0.5 } }
    local b = { { id = 4, status = "ok", p = 0.7 }, { id = 3, status = "ok", p = 0.3 },
                { id = 2, status = "ok", p = 0.1 }, { id = 1, status = "ok", p = 0.6 } }
    local g = metrics.agreement(a, b)
    assert.same({ 3, 2 }, { g.n, g.agree })
    -- confusion [[1, 1], [0, 1]] / 3: p_o = 2/3, p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9, kappa = (2/9)/(5/9)
    near(0.4, g.kappa, "kappa by hand")
    near((0.3 + 0.1 + 0.5 + 0.2) / 4, g.mean_abs_diff, "mean |dp| by hand")
  end)

  it("bootstrap intervals equal numpy's, resample for resample", function()
    assert.equal(4, #fx.bootstrap)
    for i, c in ipairs(fx.bootstrap) do
      local lo, hi = metrics.bootstrap(c.values, metrics.mean, { n = c.n, alpha = c.alpha, seed = c.seed })
      near(c.ci[1], lo, "case " .. i .. " lo")
      near(c.ci[2], hi, "case " .. i .. " hi")
    end
  end)

  it("a 95% bootstrap interval covers the true mean as often as numpy finds", function()
    -- R simulated data sets of N Bernoulli(p) draws (rlaif's generator), one
    -- interval each; the share that contains p must match numpy's simulation of
    -- the same rule within 5 standard errors (false failure ~6e-7).
    local cv = fx.coverage
    local R, covered = 800, 0
    for r = 1, R do
      local gen = metrics.rng(100000 + r)
      local v = {}
      for i = 1, cv.N do v[i] = gen(1000) <= cv.p * 1000 and 1 or 0 end
      local lo, hi = metrics.bootstrap(v, metrics.mean, { n = cv.B, alpha = cv.alpha, seed = r })
      if lo <= cv.p and cv.p <= hi then covered = covered + 1 end
    end
    local se = math.sqrt(cv.coverage * (1 - cv.coverage) / R + cv.sd ^ 2)
    local got = covered / R
    assert(math.abs(got - cv.coverage) <= 5 * se,
      string.format("coverage %.4f, numpy %.4f +- %.4f", got, cv.coverage, 5 * se))
  end)

  it("formats a table", function()
    local s = metrics.format_table({ "r1" }, { "c1", "c2" }, function(_, c) return c == "c1" and "1.0" or nil end)
    assert.equal("     c1  c2\n--  ---  --\nr1  1.0   -\n", s)
  end)
end)
