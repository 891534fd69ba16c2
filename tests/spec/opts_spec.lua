-- rlaif.opts: option tables and CLI flags are checked with messages that name
-- the function, the key and what was expected.
local opts = require "rlaif.opts"

describe("rlaif.opts #unit", function()
  local S = opts.schema("thing.new", {
    n = { "integer", min = 1, default = 4 },
    t = { "number", min = 0 },
    p = { "number", gt = 0, max = 1 },
    name = "string",
    mode = { "string", one_of = { "a", "b" } },
    fn = "function",
    ids = "table|integer",
    even = { "integer", check = function(v) return v % 2 == 0, "must be even" end },
  })

  it("fills defaults and converts integral floats", function()
    local o = S { t = 0.5 }
    assert.equal(4, o.n)
    assert.equal(0.5, o.t)
    assert.equal("integer", math.type(S({ n = 3.0 }).n))
    assert.same({ n = 4 }, S(nil))
  end)

  it("rejects unknown keys with a hint", function()
    assert.has_error(function() S { nam = "x" } end, "thing.new: unknown option 'nam' (did you mean 'name'?)")
    local ok, err = pcall(S, { zzzzzzzz = 1 })
    assert.is_false(ok)
    assert.matches("unknown option 'zzzzzzzz' %(known: even, fn, ids, mode, n, name, p, t%)", err)
  end)

  it("suggests a key by its words and parts, not only by typos", function()
    local G = opts.schema("model:generate", { max_new_tokens = "integer", temperature = "number", top_p = "number",
      top_k = "integer", stop = "table", seed = "integer" })
    local function hint(k)
      local ok, err = pcall(G, { [k] = 1 })
      assert.is_false(ok)
      return err:match("did you mean '([%w_]+)'") or err:match("%(known: .*%)")
    end
    assert.equal("max_new_tokens", hint("max_tokens"))    -- OpenAI's name: the words of one among the other's
    assert.equal("max_new_tokens", hint("max_token"))     -- ... or their beginnings
    assert.equal("max_new_tokens", hint("new_tokens"))
    assert.equal("temperature", hint("temp"))             -- a part of the key
    assert.equal("top_p", hint("topp"))                   -- a typo
    assert.equal("top_k", hint("top-k"))
    assert.equal("seed", hint("seeds"))
    assert.equal("(known: max_new_tokens, seed, stop, temperature, top_k, top_p)", hint("xyz"))
    assert.equal("(known: max_new_tokens, seed, stop, temperature, top_k, top_p)", hint("n"))
    assert.has_error(function() opts.cli("gen", { "--max-tokens", "3" }, { ["max-new-tokens"] = "integer" }) end,
      "rlaif gen: unknown option --max-tokens (did you mean --max-new-tokens?)")
  end)

  it("names key, expectation and value", function()
    assert.has_error(function() S { n = "2" } end, 'thing.new: option \'n\' must be an integer >= 1, got "2"')
    assert.has_error(function() S { n = 0 } end, "thing.new: option 'n' must be an integer >= 1, got 0")
    assert.has_error(function() S { n = 1.5 } end, "thing.new: option 'n' must be an integer >= 1, got 1.5")
    assert.has_error(function() S { t = -1 } end, "thing.new: option 't' must be a number >= 0, got -1")
    assert.has_error(function() S { p = 0 } end, "thing.new: option 'p' must be a number > 0 and <= 1, got 0")
    assert.has_error(function() S { p = 2 } end, "thing.new: option 'p' must be a number > 0 and <= 1, got 2")
    assert.has_error(function() S { t = 0 / 0 } end, "thing.new: option 't' must be a number >= 0, got nan")
    assert.has_error(function() S { mode = "c" } end, 'thing.new: option \'mode\' must be one of "a", "b", got "c"')
    assert.has_error(function() S { fn = 1 } end, "thing.new: option 'fn' must be a function, got 1")
    assert.has_error(function() S { ids = "x" } end, 'thing.new: option \'ids\' must be a table or an integer, got "x"')
    assert.has_error(function() S { even = 3 } end, "thing.new: option 'even' must be even")
    assert.has_error(function() S("x") end, 'thing.new: options must be a table, got "x"')
  end)

  it("points the error at the caller's caller", function()
    local function api(o) local c = S(o); return c end
    local ok, err = pcall(function() api { n = 0 } end)
    assert.is_false(ok)
    assert.matches("opts_spec.lua:%d+: thing.new", err)
  end)

  it("parses CLI flags with checks", function()
    local F = { steps = { "integer", min = 1, default = 10 }, lr = { "number", gt = 0 }, quiet = "flag",
      algo = { "string", one_of = { "ppo", "rloo" } }, data = { "string", multi = true } }
    local o = opts.cli("rl", { "--steps", "5", "--lr=0.5", "--quiet", "pos", "--data", "a", "--data=b" }, F)
    assert.equal(5, o.steps)
    assert.equal(0.5, o.lr)
    assert.is_true(o.quiet)
    assert.same({ "a", "b" }, o.data)
    assert.same({ "pos" }, { o[1] })
    assert.equal(10, opts.cli("rl", {}, F).steps)
    assert.has_error(function() opts.cli("rl", { "--steps", "-3" }, F) end,
      'rlaif rl: option --steps must be an integer >= 1, got "-3"')
    assert.has_error(function() opts.cli("rl", { "--steps", "abc" }, F) end,
      'rlaif rl: option --steps must be an integer >= 1, got "abc"')
    assert.has_error(function() opts.cli("rl", { "--step", "3" }, F) end,
      "rlaif rl: unknown option --step (did you mean --steps?)")
    assert.has_error(function() opts.cli("rl", { "--lr" }, F) end, "rlaif rl: option --lr needs a value (a number > 0)")
    assert.has_error(function() opts.cli("rl", { "--quiet=1" }, F) end, "rlaif rl: option --quiet takes no value")
    assert.has_error(function() opts.cli("rl", { "--algo", "x" }, F) end,
      'rlaif rl: option --algo must be one of "ppo", "rloo", got "x"')
    assert.is_true(opts.cli("rl", { "--help" }, F).help)
  end)

  it("main_args: the start every CLI main shares (usage, status, stray arguments)", function()
    local F = { steps = { "integer", min = 1 }, quiet = "flag" }
    local usage = "usage: rlaif thing [--steps N]\n"
    local function call(args, how)
      local out, err = {}, {}
      -- luacheck: push ignore 122 (the helper prints through io.write and io.stderr)
      local real_write, real_stderr = io.write, io.stderr
      io.write = function(...) for _, s in ipairs { ... } do out[#out + 1] = s end end
      io.stderr = { write = function(_, ...) for _, s in ipairs { ... } do err[#err + 1] = s end end }
      local ok, o, status = pcall(opts.main_args, "thing", args, F, usage, how)
      io.write, io.stderr = real_write, real_stderr
      -- luacheck: pop
      assert(ok, o)
      return o, status, table.concat(out), table.concat(err)
    end
    local o, status, out, err = call { "--steps", "3", "--quiet" }
    assert.same({ 3, true, nil, "", "" }, { o.steps, o.quiet, status, out, err })
    o, status, out, err = call { "--steps", "0" }
    assert.same({ nil, 2, "" }, { o, status, out })
    assert.equal("rlaif thing: option --steps must be an integer >= 1, got \"0\"\n" .. usage, err)
    o, status, out, err = call { "--help" }
    assert.same({ nil, 0, usage, "" }, { o, status, out, err })
    o, status, out, err = call { "--quiet", "extra" }
    assert.same({ nil, 2, "" }, { o, status, out })
    assert.equal("rlaif thing: unexpected argument 'extra'\n" .. usage, err)
    o, status = call({ "a", "b" }, { positional = true })
    assert.same({ "a", "b", nil }, { o[1], o[2], status })
  end)
end)
