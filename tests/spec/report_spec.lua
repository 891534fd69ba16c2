-- tests/spec/report_spec.lua -- rlaif.report: the page's sections and its
-- self-containment from in-memory runs and run directories, `rlaif report`, and
-- the page rendered in real headless Chromium (scripts/check_report.mjs: the
-- DevTools protocol over a pipe): SVGs laid out, polylines and bars counted, no
-- console errors, no network request, a screenshot that is not blank. The browser
-- part is pending when chromium or node is missing.
local helper = require "spec.helper"
local report = require "rlaif.report"
local eval = require "rlaif.eval"
local json = require("rlaif.core").json

local ROOT = assert(io.popen("pwd")):read("l")
local CHROMIUM = os.getenv("RLAIF_CHROMIUM") or "/usr/bin/chromium"

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function self_contained(html)
  assert.is_nil(html:find("<script", 1, true), "a script")
  assert.is_nil(html:find("@import", 1, true), "an @import")
  assert.is_nil(html:find("%ssrc="), "a src attribute")
  assert.is_nil(html:find("%shref="), "an href attribute")
  assert.is_nil(html:find("url%([^#]"), "an external url()")
  -- the only URL is the SVG namespace
  for u in html:gmatch("https?://[^\"'%s<]+") do assert.equal("http://www.w3.org/2000/svg", u) end
end

local function log_rows(n, f)
  local rows = {}
  for step = 1, n do rows[step] = f(step) end
  return rows
end

describe("rlaif.report #unit", function()
  it("renders curves, win-rate bars, tables and samples from in-memory runs, escaped and self-contained", function()
    local judge = function(_, x, y) return #x > #y and 0.8 or 0.3 end
    local r = eval.win_rate { judge = judge, prompts = { "p<1>", "p2", "p3" },
      a = { "long <b>answer</b>", "yy", "z" }, b = { "short", "xxx", "w" }, names = { a = "rlaif", b = "sft" },
      bootstrap = 50, quiet = true }
    local html = report.render { title = "t <&>", generated = "now", runs = {
      { name = "rl", logs = { log = log_rows(3000, function(s) return { step = s, reward_mean = s / 3000, kl = 0.1,
        note = "x" } end) } },
      { name = "sft", logs = { log = log_rows(20, function(s) return { step = s, loss = 3 - s / 10, lr = 1e-4 } end) }
      },
      { name = "eval", evals = { r } },
    } }
    self_contained(html)
    assert.matches("<title>t &lt;&amp;&gt;</title>", html)
    -- one plot per numeric field (reward_mean, kl, loss, lr) + the win-rate bars
    assert.equal(5, count(html, "<svg"))
    assert.equal(4, count(html, "<polyline"))
    assert.equal(3, count(html, 'class="bar"'))
    assert.matches("Training curves", html)
    assert.matches("rlaif vs sft", html)
    assert.matches("long &lt;b&gt;answer&lt;/b&gt;", html)     -- samples side by side, escaped
    assert.matches("p&lt;1&gt;", html)
    assert.is_nil(html:find("<b>answer", 1, true))
    -- the curves are decimated: 3000 steps -> at most 1000 vertices
    for pts in html:gmatch('points="([^"]*)"') do assert.is_true(count(pts, ",") <= 1000) end
    -- nothing to show still makes a page
    local empty = report.render { runs = { { name = "x" } } }
    assert.matches("nothing to show", empty)
    assert.has_error(function() report.render { runs = { 3 } } end,
      "report.render: run 1 must be a path or a table, got number")
    assert.has_error(function() report.render { runs = {}, sample = 1 } end,
      "report.render: unknown option 'sample' (did you mean 'samples'?)")
  end)
end)

describe("rlaif report in headless Chromium #unit", function()
  local has_node = os.execute("command -v node >/dev/null 2>&1")
  local dir

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    -- the demonstration runs: real SFT/RM logs, simulated RL logs and judges, a label file
    assert(os.execute(string.format("%s/rlaif scripts/report_demo.lua %s 60 >/dev/null", ROOT, dir)))
  end)
  teardown(function() if dir then os.execute("rm -rf '" .. dir .. "'") end end)

  it("reads run directories by content", function()
    local run = report.load_run(dir .. "/rlaif")
    assert.same({ "log" }, run.log_order)
    assert.equal(2000, #run.logs.log)
    assert.equal(1, #run.samples)
    local ev = report.load_run(dir .. "/eval_rlaif_vs_sft")
    assert.equal(1, #ev.evals)
    assert.equal(120, #ev.evals[1].sample_records)
    local lab = report.load_run(dir .. "/labels")
    assert.same({ "summarize-base" }, lab.label_order)
    assert.equal(150, #lab.labels["summarize-base"])
    local html = helper.read_file(dir .. "/report.html")
    self_contained(html)
    assert.matches("Labeler alignment and position bias", html)
    assert.matches("summarize%-base", html)
  end)

  it("rlaif report writes the page and refuses to overwrite an input", function()
    local out = dir .. "/cli.html"
    local p = io.popen(string.format("%s/rlaif report %s/sft %s/rlaif %s/eval_rlaif_vs_sft --out %s --title CLI " ..
      "2>&1; echo \"exit=$?\"", ROOT, dir, dir, dir, out))
    local text = p:read("a")
    p:close()
    assert.matches("exit=0", text)
    local html = helper.read_file(out)
    self_contained(html)
    assert.matches("<h1>CLI</h1>", html)
    p = io.popen(string.format("%s/rlaif report %s/report.html --out %s/report.html 2>&1; echo \"exit=$?\"", ROOT, dir,
      dir))
    text = p:read("a")
    p:close()
    assert.matches("exit=1", text)
    assert.matches("is one of the inputs", text)
    p = io.popen(ROOT .. "/rlaif report --out x.html 2>&1; echo \"exit=$?\"")
    text = p:read("a")
    p:close()
    assert.matches("exit=2", text)
  end)

  it("renders in Chromium: plots drawn, no console errors, no network, a non-blank screenshot", function()
    if not (has_node and exists(CHROMIUM)) then
      pending("needs node and " .. CHROMIUM .. " (scripts/install-deps.sh installs chromium)")
      return
    end
    local shot = dir .. "/shot.png"
    local p = io.popen(string.format("env -u LD_PRELOAD node scripts/check_report.mjs %s/report.html " ..
      "--screenshot %s --chromium %s 2>&1", dir, shot, CHROMIUM))
    local text = p:read("a")
    p:close()
    local r = json.decode(text:match("({.*})%s*$") or "")
    assert(type(r) == "table", text)
    -- 10 curve plots (sft/rm/rl fields) + win-rate bars + harmless bars
    assert.equal(12, r.svg, text)
    assert.equal(12, r.svg_drawn, text)
    assert.equal(20, r.polyline, text)
    assert.equal(15, r.bar, text)            -- 3 comparisons x 3 bars + 3 policies x 2 bars
    assert.equal(15, r.whisker, text)
    assert.equal(12, r.legend, text)
    assert.equal(3, r.table, text)           -- win rates, harmless rates, alignment
    assert.same({}, r.errors)
    assert.same({}, r.network)
    assert.is_true(r.png.width == 1200 and r.png.height > 1000, text)
    assert.is_true(r.png.nonwhite > 0.03, text)
    assert.is_true(r.png.colors > 50, text)
    assert.is_true(exists(shot))
  end)
end)
