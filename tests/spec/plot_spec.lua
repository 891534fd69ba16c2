-- rlaif.plot: nice ticks, decimation that keeps extremes, and the SVG of line and
-- bar charts (structure, escaping, legends, empty and non-finite data). The
-- rendering itself is checked in a browser by report_spec.lua.
local plot = require "rlaif.plot"

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

-- a small well-formedness check: every opened element is closed, in order
local function well_formed(svg)
  local stack = {}
  for slash, name, selfclose in svg:gmatch("<(/?)([%w:]+)[^>]-(/?)>") do
    if slash == "/" then
      assert(table.remove(stack) == name, "unbalanced </" .. name .. ">")
    elseif selfclose ~= "/" then
      stack[#stack + 1] = name
    end
  end
  assert(#stack == 0, "unclosed <" .. tostring(stack[#stack]) .. ">")
  assert.is_nil(svg:find("&[^#%w]"), "bare ampersand")
end

describe("rlaif.plot #unit", function()
  it("nice ticks: 1-2-5 steps covering the range, exact labels", function()
    local t, step, dec = plot.nice_ticks(0, 1)
    assert.same({ 0, 0.2, 0.4, 0.6, 0.8, 1 }, t)
    assert.equal(0.2, step)
    assert.equal(1, dec)
    t = plot.nice_ticks(0, 97)
    assert.same({ 0, 20, 40, 60, 80, 100 }, t)
    t, step = plot.nice_ticks(0.0013, 0.0047)
    assert.equal(0.001, step)
    assert.same({ 0.001, 0.002, 0.003, 0.004, 0.005 }, t)
    t = plot.nice_ticks(-3.7, 12.2)
    assert.same({ -5, 0, 5, 10, 15 }, t)
    t = plot.nice_ticks(1, 5000, 6)
    assert.same({ 0, 1000, 2000, 3000, 4000, 5000 }, t)
    -- degenerate and bad ranges still give ticks around the value
    t = plot.nice_ticks(3, 3)
    assert.is_true(t[1] <= 3 and t[#t] >= 3 and #t >= 2)
    t = plot.nice_ticks(0, 0)
    assert.is_true(t[1] <= 0 and t[#t] >= 0 and #t >= 2)
    t = plot.nice_ticks(0 / 0, math.huge)
    assert.same({ 0, 0.2, 0.4, 0.6, 0.8, 1 }, t)
    t = plot.nice_ticks(10, 2)
    assert.same({ 2, 4, 6, 8, 10 }, t)
    assert.equal("12k", plot.fmt_tick(12000, 0))
    assert.equal("2.5M", plot.fmt_tick(2500000, 0))
    assert.equal("0.25", plot.fmt_tick(0.25, 2))
    assert.equal("1e-05", plot.fmt_tick(0.00001, 5))
  end)

  it("decimates thousands of points to the budget, keeping the extremes in order", function()
    local x, y = {}, {}
    for i = 1, 20000 do x[i], y[i] = i, math.sin(i / 500) end
    y[12345] = 50          -- a spike
    y[777] = -50
    y[100] = 0 / 0         -- skipped
    local dx, dy = plot.decimate(x, y, 800)
    assert.is_true(#dx <= 800 and #dx >= 400, #dx)
    local mx, mn = -math.huge, math.huge
    for i = 1, #dx do
      if i > 1 then assert.is_true(dx[i] > dx[i - 1]) end
      mx, mn = math.max(mx, dy[i]), math.min(mn, dy[i])
    end
    assert.equal(50, mx)
    assert.equal(-50, mn)
    assert.equal(1, dx[1])
    assert.equal(20000, dx[#dx])
    local sx = plot.decimate({ 1, 2, 3 }, { 1, 0 / 0, 3 }, 10)
    assert.same({ 1, 3 }, sx)
  end)

  it("line charts: one polyline per series, axes, labels, legend, escaped text", function()
    local x, y1, y2 = {}, {}, {}
    for i = 1, 5000 do x[i], y1[i], y2[i] = i, 1 / i, 0.5 + 0.1 * math.sin(i) end
    local svg = plot.lines { title = "loss <train> & eval", xlabel = "step", ylabel = "loss",
      series = { { name = "sft", x = x, y = y1 }, { name = "rm \"run\"", x = x, y = y2 } } }
    well_formed(svg)
    assert.equal(2, count(svg, "<polyline"))
    assert.matches("loss &lt;train&gt; &amp; eval", svg)
    assert.matches("rm &quot;run&quot;", svg)
    assert.matches('class="legend"', svg)
    assert.matches(">step</text>", svg)
    -- each polyline is decimated
    for pts in svg:gmatch('points="([^"]*)"') do assert.is_true(count(pts, ",") <= 1000) end
    assert.is_true(#svg < 60000, #svg)
    -- one point: a dot; no data: the frame says so
    local one = plot.lines { series = { { name = "a", x = { 1 }, y = { 2 } } } }
    well_formed(one)
    assert.equal(1, count(one, "<circle"))
    local none = plot.lines { title = "empty", series = { { name = "a", x = {}, y = {} } } }
    well_formed(none)
    assert.matches("no data", none)
    assert.equal(0, count(none, "<polyline"))
  end)

  it("bar charts: bars, whiskers, a reference line, one legend entry per label", function()
    local svg = plot.bars { title = "win rate", ylabel = "%", min = 0, max = 100, ref = 50, groups = {
      { name = "rlaif vs sft", bars = { { label = "raw", value = 71, lo = 64, hi = 77 },
        { label = "length-controlled", value = 59, lo = 52, hi = 66 } } },
      { name = "rlhf vs sft", bars = { { label = "raw", value = 73, lo = 66, hi = 79 },
        { label = "length-controlled", value = 61 } } } } }
    well_formed(svg)
    assert.equal(4, count(svg, 'class="bar"'))
    assert.equal(3, count(svg, 'class="whisker"'))
    assert.equal(1, count(svg, 'class="ref"'))
    assert.equal(2, count(svg, "<rect x=\"[%d.]+\" y=\"[%d.]+\" width=\"14\""))   -- legend swatches
    assert.matches(">rlhf vs sft</text>", svg)
    local empty = plot.bars { groups = {} }
    well_formed(empty)
    assert.has_error(function() plot.bars { group = {} } end,
      "plot.bars: unknown option 'group' (did you mean 'groups'?)")
    assert.has_error(function() plot.lines { width = 10 } end,
      "plot.lines: option 'width' must be an integer >= 120 and <= 10000, got 10")
  end)
end)
