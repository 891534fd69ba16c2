-- rlaif.progress: the status line in terminal and log mode, with a fake clock and
-- stream so every stretch of time is covered (the pty test drives a real terminal).
local progress = require "rlaif.progress"

local function sink()
  local s = { buf = {} }
  function s:write(...) for _, v in ipairs { ... } do self.buf[#self.buf + 1] = tostring(v) end end
  function s.flush() end
  function s:text() return table.concat(self.buf) end
  return s
end

describe("rlaif.progress #unit", function()
  it("formats durations at every scale without raising", function()
    local f = progress.fmt_duration
    assert.equal("0s", f(0))
    assert.equal("59s", f(59.2))
    assert.equal("1m00s", f(59.7))
    assert.equal("1m30s", f(90.4))
    assert.equal("59m59s", f(3599.4))
    assert.equal("1h00m", f(3600))
    assert.equal("2h05m", f(2 * 3600 + 5 * 60 + 10.5))
    assert.equal("1d01h", f(90000))
    assert.equal(">99d", f(1e12))
    assert.equal("?", f(math.huge))
    assert.equal("?", f(0 / 0))
    assert.equal("?", f(-1))
    for e = -3, 9, 0.1 do assert.is_string(f(10 ^ e * 1.37)) end
  end)

  it("draws a bar on a terminal, throttled, with ETA and fields", function()
    local now, out = 0, sink()
    local p = progress.new { total = 100, label = "lab", unit = "pair", tty = true, stream = out,
      clock = function() return now end, width = 10 }
    now = 1
    p:update(10, { loss = 1.25 })
    assert.equal("\rlab [#.........] 10/100  10% 10.0 pair/s ETA 9s loss 1.25", out:text())
    now = 1.05
    p:update(11)  -- within the redraw interval: no draw
    assert.equal(1, #out.buf // 3)
    now = 100
    p:update(50)
    assert.matches("ETA 1m40s", out:text())
    p:finish()
    assert.matches("\nlab: 50 pairs in 1m40s %(0.5/s%)\n$", out:text())
    p:finish() -- idempotent
  end)

  it("prints counter lines at an interval when not a terminal", function()
    local now, out = 0, sink()
    local p = progress.new { total = 10, label = "gen", tty = false, stream = out, interval = 5,
      clock = function() return now end }
    for i = 1, 10 do now = i; p:update(i) end
    local lines = {}
    for l in out:text():gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(2, #lines) -- at t=5 and t=10
    assert.equal("gen 5/10  50% 1.0 it/s ETA 5s", lines[1])
    p:finish()
    -- the last counter line already showed 10/10: the finish adds only the summary
    assert.equal("gen 5/10  50% 1.0 it/s ETA 5s\ngen 10/10 100% 1.0 it/s ETA 0s\ngen: 10 its in 10s (1.0/s)\n",
      out:text())
  end)

  it("leaves no line in a log for work shorter than one interval", function()
    local now, out = 0, sink()
    local p = progress.new { total = 9, label = "sft", unit = "step", tty = false, stream = out, interval = 10,
      clock = function() return now end }
    for i = 1, 9 do now = i * 0.01; p:update(i) end
    p:finish()
    assert.equal("", out:text())
    -- an explicit message is the caller's and always printed; false prints nothing
    local q = progress.new { total = 2, label = "x", tty = false, stream = out, clock = function() return now end }
    q:update(2)
    q:finish("x: done")
    assert.equal("x: done\n", out:text())
    -- long work with finish(false): its last counter line, no summary
    local r = progress.new { total = 2, tty = false, stream = out, clock = function() return now end }
    now = now + 100
    r:finish(false)
    assert.equal("x: done\n0/2   0% 0.0 it/s ETA ?\n", out:text())
  end)

  it("summarises in a log when the work outlasted one interval, with or without a counter line", function()
    -- updates only in the first interval, then a long tail: the last counter line and the summary
    local now, out = 0, sink()
    local p = progress.new { total = 4, label = "rm", unit = "step", tty = false, stream = out, interval = 10,
      clock = function() return now end }
    now = 1; p:update(1)
    now = 12
    p:finish()
    assert.equal("rm 1/4  25% 0.1 step/s ETA 36s\nrm: 1 step in 12s (0.1/s)\n", out:text())
    -- exactly one interval counts as long
    out = sink()
    now = 0
    p = progress.new { total = 1, label = "a", tty = false, stream = out, interval = 5,
      clock = function() return now end }
    now = 5; p:finish()
    assert.matches("^a 0/1 +0%% .*\na: 0 its in 5s %(0.0/s%)\n$", out:text())
  end)

  it("summarises short work on a terminal, where the bar was drawn", function()
    local now, out = 0, sink()
    local p = progress.new { total = 2, label = "t", tty = true, stream = out, clock = function() return now end }
    now = 0.01; p:update(2)
    p:finish()
    assert.matches("\nt: 2 its in 0s %(200/s%)\n$", out:text())
  end)

  it("is silent when quiet and survives odd input", function()
    local out = sink()
    local p = progress.new { total = 0, quiet = true, stream = out, tty = true }
    p:update(5); p:note("x"); p:finish()
    assert.equal("", out:text())
    local now = 0
    local q = progress.new { tty = true, stream = out, clock = function() return now end }
    q:update(0 / 0); q:update(3); now = -5; q:update(4); q:finish()
    assert.matches("4 its", out:text())
    assert.has_error(function() progress.new { total = -1 } end,
      "progress.new: option 'total' must be a number >= 0, got -1")
  end)
end)
