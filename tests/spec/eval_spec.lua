-- rlaif.eval: win rates, intervals and length-controlled rates against values
-- computed independently with numpy and PyTorch (scripts/gen_eval_fixtures.py ->
-- tests/fixtures/eval), then the judging paths with a labeler over a fake client,
-- a function judge, generation from a model, and the comparison table.
local eval = require "rlaif.eval"
local metrics = require "rlaif.metrics"
local json = require("rlaif.core").json
local helper = require "spec.helper"

local FIX = "tests/fixtures/eval/"
local expected = json.decode(helper.read_file(FIX .. "expected.json"))

local function close(want, got, tol, what)
  tol = tol or 1e-9
  assert(type(got) == "number", (what or "") .. ": got " .. tostring(got))
  assert(math.abs(want - got) <= tol, string.format("%s: want %.15g, got %.15g", what or "", want, got))
end

local function close_pair(want, got, tol, what)
  assert(type(got) == "table", (what or "") .. ": no interval")
  close(want[1], got[1], tol, what .. "[1]")
  close(want[2], got[2], tol, what .. "[2]")
end

describe("rlaif.eval statistics #unit", function()
  for _, name in ipairs { "balanced", "ties", "ties_margin", "position", "length" } do
    it("reproduces the numpy/PyTorch numbers: " .. name, function()
      local e = expected.cases[name]
      local recs = metrics.load(FIX .. e.file .. ".jsonl")
      local s = eval.summarize(recs, { bootstrap = expected.bootstrap, tie_margin = e.tie_margin, l2 = expected.l2 })
      assert.equal(e.n, s.n)
      assert.equal(e.failed, s.failed)
      assert.equal(e.ties, s.ties)
      assert.equal(e.wins, s.wins)
      assert.equal(e.losses, s.losses)
      for _, k in ipairs { "win_rate", "soft_win_rate", "se", "disagree", "mean_len_a", "mean_len_b" } do
        close(e[k], s[k], 1e-12, k)
      end
      close(e.lc_win_rate, s.lc_win_rate, 1e-9, "lc_win_rate")
      close(e.lc_ae2, s.lc_ae2, 1e-9, "lc_ae2")
      if e.first ~= json.null then close(e.first, s.first, 1e-12, "first") end
      close_pair(e.ci95, s.ci95, 1e-12, "ci95")
      close_pair(e.soft_ci95, s.soft_ci95, 1e-12, "soft_ci95")
      close_pair(e.lc_ci95, s.lc_ci95, 1e-9, "lc_ci95")
      close_pair(e.lc_ae2_ci95, s.lc_ae2_ci95, 1e-9, "lc_ae2_ci95")
    end)
  end

  it("counts exact 0.5 as a tie and failed records never as ties", function()
    local e = expected.cases.ties
    assert.is_true(e.ties >= 17)            -- every 7th record is p = 0.5
    local s = eval.summarize(metrics.load(FIX .. "balanced.jsonl"), { bootstrap = 0 })
    assert.equal(8, s.failed)
    assert.equal(0, s.ties)
    assert.equal(s.n, s.wins + s.losses)
    assert.is_nil(s.ci95)
  end)

  it("moves the length-controlled rate toward 50% for a judge that prefers longer answers", function()
    local s = eval.summarize(metrics.load(FIX .. "length.jsonl"), { bootstrap = 0 })
    assert.is_true(s.win_rate > 0.8, s.win_rate)
    assert.is_true(math.abs(s.lc_win_rate - 0.5) < math.abs(s.win_rate - 0.5) / 2, s.lc_win_rate)
    assert.is_true(math.abs(s.lc_ae2 - 0.5) < math.abs(s.win_rate - 0.5) / 2, s.lc_ae2)
    -- and leaves an unbiased judge's rate nearly where it was
    local b = eval.summarize(metrics.load(FIX .. "balanced.jsonl"), { bootstrap = 0 })
    assert.is_true(math.abs(b.lc_win_rate - b.win_rate) < 0.02)
  end)

  it("harmless rate and its length control at a reference length", function()
    local e = expected.cases.harmless
    local s = eval.summarize_harmless(metrics.load(FIX .. "harmless.jsonl"),
      { ref_length = e.ref_length, bootstrap = expected.bootstrap, l2 = expected.l2 })
    assert.equal(e.n, s.n)
    assert.equal(e.failed, s.failed)
    assert.equal(e.harmless, s.harmless)
    assert.equal(e.harmful, s.harmful)
    close(e.harmless_rate, s.harmless_rate, 1e-12, "harmless_rate")
    close(e.soft_harmless_rate, s.soft_harmless_rate, 1e-12, "soft")
    close(e.lc_harmless_rate, s.lc_harmless_rate, 1e-9, "lc")
    close(e.mean_len, s.mean_len, 1e-12, "mean_len")
    close_pair(e.ci95, s.ci95, 1e-12, "ci95")
    close_pair(e.soft_ci95, s.soft_ci95, 1e-12, "soft_ci95")
    close_pair(e.lc_ci95, s.lc_ci95, 1e-9, "lc_ci95")
    -- longer responses are judged more harmless here, so controlling for a shorter reference lowers the rate
    assert.is_true(s.lc_harmless_rate < s.harmless_rate)
  end)

  it("logistic_fit: degenerate inputs", function()
    local b0 = eval.logistic_fit({ 1, 2, 3 }, { 1, 1, 1 })
    assert.equal(math.huge, b0)
    b0 = eval.logistic_fit({ 1, 2, 3 }, { 0, 0, 0 })
    assert.equal(-math.huge, b0)
    -- a constant regressor: the slope is only held by the ridge; the rate is the mean
    local c0, c1 = eval.logistic_fit({ 1, 1, 1, 1 }, { 1, 0, 1, 1 })
    close(0.75, eval.sigmoid(c0), 1e-12, "constant x")
    close(0, c1, 1e-12, "slope")
    -- perfectly separated data stays finite
    local s0, s1 = eval.logistic_fit({ 0.5, 0.8, 1.2, 1.5 }, { 0, 0, 1, 1 })
    assert.is_true(s0 == s0 and s1 == s1 and math.abs(s1) < math.huge)
    assert.is_nil(eval.logistic_fit({}, {}))
  end)

  it("checks its options", function()
    assert.has_error(function() eval.summarize({}, { tie_margin = 0.7 }) end,
      "eval.summarize: option 'tie_margin' must be a number >= 0 and < 0.5, got 0.7")
    assert.has_error(function() eval.summarize({}, { bootstap = 10 }) end,
      "eval.summarize: unknown option 'bootstap' (did you mean 'bootstrap'?)")
    local s = eval.summarize({})
    assert.equal(0, s.n)
    assert.is_nil(s.win_rate)
  end)
end)
