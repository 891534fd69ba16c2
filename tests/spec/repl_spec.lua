-- tests/spec/repl_spec.lua -- the REPL helpers (lua/rlaif/repl.lua) in process,
-- and the REPL on a real terminal through scripts/check_repl.sh (tmux drives
-- ./rlaif: expressions, multi-line input, tables, tensors, tracebacks, Ctrl-C
-- in Lua and C loops and at the prompt, help(), Ctrl-D, history). The terminal
-- part is pending when tmux is not installed; it takes about 3 seconds.

local repl = require "rlaif.repl"
local rlaif = require "rlaif"

local has_tmux = os.execute("command -v tmux >/dev/null 2>&1")

-- help's output as a string
local function help(topic)
  local out = {}
  repl.help(topic, function(s) out[#out + 1] = s end)
  return table.concat(out)
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("rlaif.repl #unit", function()
  describe("pretty", function()
    it("separates values by tabs and quotes strings", function()
      assert.are.equal('1\t"a\\9b"\tnil\ttrue\t2.5', repl.pretty(1, "a\tb", nil, true, 2.5))
      assert.are.equal('"two\\nlines"', repl.pretty("two\nlines"))
      assert.are.equal("", repl.pretty())
    end)

    it("shows tables one level deep: array part, then sorted keys", function()
      assert.are.equal('{1, 2, 3, [10] = 5, ["a b"] = 6, e = {}, ["end"] = 7, nested = {...}, x = 4}',
        repl.pretty({ 1, 2, 3, x = 4, nested = { 1 }, e = {}, [10] = 5, ["a b"] = 6, ["end"] = 7 }))
    end)

    it("truncates after 20 entries", function()
      local big, hash = {}, {}
      for i = 1, 100 do big[i] = i end
      for i = 1, 30 do hash[string.format("k%02d", i)] = i end
      local s = repl.pretty(big)
      assert.is_truthy(s:match("^{1, 2, 3, .*, 19, 20, %.%.%.}$"), s)
      s = repl.pretty(hash)
      assert.is_truthy(s:match("^{k01 = 1, .*, k20 = 20, %.%.%.}$"), s)
    end)

    it("uses __tostring, and survives one that fails", function()
      local obj = setmetatable({}, { __tostring = function() return "OBJ" end })
      assert.are.equal("OBJ", repl.pretty(obj))
      local bad = setmetatable({}, { __tostring = function() error("nope") end })
      assert.is_truthy(repl.pretty(bad):match("^<table: __tostring failed: .*nope>$"))
    end)

    it("prints tensors like tostring, on one line inside tables", function()
      local t = rlaif.tensor.arange(6):reshape({ 2, 3 })
      assert.are.equal(tostring(t), repl.pretty(t))
      local s = repl.pretty({ w = t })
      assert.is_falsy(s:find("\n"), s)
      assert.is_truthy(s:match("^{w = tensor%(%[%[0%., 1%., 2%.%], %[3%., 4%., 5%.%]%]%)}$"), s)
    end)
  end)

  describe("help", function()
    it("lists the rlaif table by walking it", function()
      local s = help()
      assert.is_truthy(s:find("rlaif.get_threads() ->", 1, true), s)
      assert.is_truthy(s:match("module rlaif%.tensor: [^\n]*arange"), s)
      assert.is_truthy(s:match("tensor methods[^\n]*:[^\n]* abs,"), s)
      assert.is_falsy(s:find("_blis_sgemm", 1, true), s)
    end)

    it("picks up functions added later, with or without a doc", function()
      rlaif.spec_added = function() end
      local s = help()
      rlaif.spec_added = nil
      assert.is_truthy(s:find("rlaif.spec_added(...)", 1, true), s)
    end)

    it("documents one function given by value or by name", function()
      local doc = "rlaif.tensor.zeros({d1, d2, ...}) -> new float32 tensor of zeros\n"
      assert.are.equal(doc, help(rlaif.tensor.zeros))
      assert.are.equal(doc, help("tensor.zeros"))
      assert.are.equal(doc, help("rlaif.tensor.zeros"))
      assert.are.equal(doc, help("zeros"))
      assert.is_truthy(help("t:matmul"):match("^a:matmul%(b"))
    end)

    it("lists one module", function()
      local s = help(rlaif.tensor)
      assert.is_truthy(s:match("^module rlaif%.tensor:\n"), s)
      assert.is_truthy(s:find("  rlaif.tensor.ones({d1, d2, ...})", 1, true), s)
      assert.are.equal(s, help("tensor"))
      assert.is_truthy(help(rlaif.core):match("^module rlaif%.core:\n"))
    end)

    it("documents every function of every module and every object method", function()
      local undocumented = {}
      local function check(line)
        -- the fallback for a function without a doc is "rlaif.x.y(...)" / "t:y(...)" alone
        if line:match("%(%.%.%.%)\n$") and not line:find(" -- ", 1, true) then
          undocumented[#undocumented + 1] = line
        end
      end
      local n = 0
      for name, v in pairs(rlaif) do
        if type(v) == "table" then
          for _, line in ipairs(lines(help(name))) do check(line .. "\n") n = n + 1 end
        end
      end
      for _, class in ipairs { { "t", rlaif.tensor.meta.methods }, { "m", rlaif.model.methods },
        { "tok", rlaif.tokenizer.methods } } do
        for k in pairs(class[2]) do check(help(class[1] .. ":" .. k)) n = n + 1 end
      end
      assert.is_true(n > 250, n)
      assert.same({}, undocumented)
      assert.is_truthy(help("m:generate"):match("^m:generate%(prompts"))
      assert.is_truthy(help("tok:encode"):match("^tok:encode%(text"))
      assert.is_truthy(help("rlaif.labeler.new"):match("^rlaif%.labeler%.new"))
      assert.is_truthy(help():find("model methods, m:name(...): adamw_step,", 1, true))
    end)

    it("shows a function's whole doc block, and its first sentence whole in a module listing", function()
      local d = help("rlaif.labeler.debias")
      assert.is_truthy(d:match("^rlaif%.labeler%.debias%(%.%.%.%) %-%- Two%-order debiasing%. p1_ab"), d)
      assert.is_truthy(d:find("\n    a tie) and same_position.\n", 1, true), d)   -- the block's last line
      local l = help(rlaif.labeler)
      assert.is_truthy(l:find("\n  rlaif.labeler.debias(...) -- Two-order debiasing.\n", 1, true), l)
      -- a first sentence over several source lines is shown whole, wrapped
      local t = help(rlaif.train)
      assert.is_truthy(t:find("rlaif.train.save_reward_stats(dir, res) -> true | nil, message: write\n", 1, true), t)
      assert.is_truthy(t:find(" normalise this model's rewards.\n", 1, true), t)
    end)

    it("says when it knows nothing", function()
      assert.is_truthy(help("no_such_thing"):match("^help: nothing known about \"no_such_thing\""))
      assert.is_truthy(help(print):match("^help: nothing known about this function"))
    end)
  end)
end)

describe("rlaif REPL in a terminal #unit", function()
  if not has_tmux then
    pending("scripts/check_repl.sh needs tmux")
    return
  end

  it("passes scripts/check_repl.sh", function()
    local p = assert(io.popen("scripts/check_repl.sh 2>&1"))
    local out = p:read("a")
    local _, _, code = p:close()
    assert.is_truthy(out:find("check_repl: all expectations met", 1, true), out)
    assert.are.equal(0, code, out)
  end)
end)
