-- rlaif.opts: the one option checker of every public Lua entry point and CLI.
--
--   local opts = require "rlaif.opts"
--   local GEN = opts.schema("model:generate", {
--     max_new_tokens = { "integer", min = 1, default = 32 },
--     temperature    = { "number", min = 0, default = 1 },
--     top_p          = { "number", gt = 0, max = 1 },
--     stop           = "table|integer",
--     on_step        = "function",
--     mode           = { "string", one_of = { "direct", "pairwise" } },
--   })
--   local o = GEN(user_opts)          -- a checked copy with the defaults filled in
--
-- A failure raises "<fn>: option '<key>' <what was expected>, got <what came>",
-- e.g. `model:generate: option 'top_p' must be a number > 0 and <= 1, got 2` or
-- `labeler.new: unknown option 'templat' (did you mean 'template'?)`, pointing at
-- the caller's caller (the user's line), never at this file.
--
-- Types: number, integer (a number with an exact integer value), string, boolean,
-- table, function, userdata, any, or several joined by '|'. Constraints: min/max
-- (inclusive), gt/lt (exclusive), one_of (a list of allowed values), check (a
-- function(v) -> ok [, message]) and default. A spec may be a type string alone.
--
-- The CLI side: opts.cli(cmd, args, flags) parses `--key value`, `--key=value` and
-- boolean `--flag`, checks each value against the same kinds of spec and raises
-- "rlaif <cmd>: option --key ..." for the CLI's main to print (exit 2);
-- opts.main_args does that printing, --help and stray arguments for every CLI.
-- What it is not: a general argument-parsing library. Holds no state, sets no globals.

local M = {}

local TYPE_NAMES = {
  number = "a number", integer = "an integer", string = "a string", boolean = "a boolean",
  table = "a table", ["function"] = "a function", userdata = "a userdata", any = "any value",
}

local function describe(v)
  local t = type(v)
  if t == "string" then return string.format("%q", #v > 40 and v:sub(1, 37) .. "..." or v) end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  return t
end

local function type_ok(tname, v)
  if tname == "any" then return v ~= nil end
  if tname == "integer" then return math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v)
    and v > -2 ^ 63 and v < 2 ^ 63) end
  return type(v) == tname
end

-- normalise a spec: "string" | {"integer", min=..} -> {types = {...}, ...}
local function norm(key, spec)
  if type(spec) == "string" then spec = { spec } end
  assert(type(spec) == "table" and type(spec[1]) == "string", "opts: bad spec for '" .. tostring(key) .. "'")
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  s.types = {}
  for t in spec[1]:gmatch("[^|]+") do
    assert(TYPE_NAMES[t], "opts: unknown type '" .. t .. "' for '" .. tostring(key) .. "'")
    s.types[#s.types + 1] = t
  end
  return s
end

local function expected(s)
  local names = {}
  for i, t in ipairs(s.types) do names[i] = TYPE_NAMES[t] end
  local e = table.concat(names, " or ")
  local bounds = {}
  if s.gt ~= nil then bounds[#bounds + 1] = "> " .. tostring(s.gt) end
  if s.min ~= nil then bounds[#bounds + 1] = ">= " .. tostring(s.min) end
  if s.lt ~= nil then bounds[#bounds + 1] = "< " .. tostring(s.lt) end
  if s.max ~= nil then bounds[#bounds + 1] = "<= " .. tostring(s.max) end
  if #bounds > 0 then e = e .. " " .. table.concat(bounds, " and ") end
  if s.one_of then
    local vals = {}
    for i, v in ipairs(s.one_of) do vals[i] = describe(v) end
    e = "one of " .. table.concat(vals, ", ")
  end
  return e
end

--- check_value(spec, v) -> v (converted: integral floats become integers for
--- "integer") or nil, message "must be ..., got ...". A nil v is accepted (absent).
function M.check_value(spec, v, key)
  local s = spec.types and spec or norm(key or "?", spec)
  if v == nil then return nil end
  local which
  for _, t in ipairs(s.types) do
    if type_ok(t, v) then which = t break end
  end
  if not which then return nil, "must be " .. expected(s) .. ", got " .. describe(v) end
  if which == "integer" then v = math.tointeger(v) end
  if type(v) == "number" then
    if v ~= v then return nil, "must be " .. expected(s) .. ", got nan" end
    if (s.min ~= nil and v < s.min) or (s.max ~= nil and v > s.max) or (s.gt ~= nil and v <= s.gt)
      or (s.lt ~= nil and v >= s.lt) then
      return nil, "must be " .. expected(s) .. ", got " .. describe(v)
    end
  end
  if s.one_of then
    local found = false
    for _, a in ipairs(s.one_of) do if a == v then found = true break end end
    if not found then return nil, "must be " .. expected(s) .. ", got " .. describe(v) end
  end
  if s.check then
    local ok, msg = s.check(v)
    if not ok then return nil, msg or ("is invalid: " .. describe(v)) end
  end
  return v
end

-- The closest known key, for "did you mean": among the keys near `key` -- a
-- small edit distance (a typo: templat, top-p), one containing the other
-- (temp), or every word of one among the other's words or their beginnings
-- (max_tokens, max_token for max_new_tokens; words split at _ and -) -- the
-- one with the fewest edits.
local function words(s)
  local w = {}
  for part in s:gmatch("[^_%-]+") do w[part:lower()] = true end
  return w
end

-- every word of a is a word of b, or the start of one (token, tokens)
local function subset(a, b)
  for w in pairs(a) do
    local found = b[w]
    if not found and #w >= 3 then
      for v in pairs(b) do
        if v:sub(1, #w) == w then found = true break end
      end
    end
    if not found then return false end
  end
  return next(a) ~= nil
end

local function closest(key, known)
  local function dist(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        local c = a:byte(i) == b:byte(j) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + c)
      end
      prev = cur
    end
    return prev[#b]
  end
  local kw, lk = words(key), key:lower()
  local best, bd
  for _, k in ipairs(known) do
    local d = dist(key, k)
    local near = d <= math.max(2, #key // 3)
    if not near and #key >= 3 and #k >= 3 then
      local lo = k:lower()
      near = lo:find(lk, 1, true) ~= nil or lk:find(lo, 1, true) ~= nil
        or subset(kw, words(k)) or subset(words(k), kw)
    end
    if near and (not bd or d < bd) then best, bd = k, d end
  end
  return best
end

--- schema(fn, specs [, {allow_unknown = false}]) -> checker(t [, level]) that returns a
--- checked copy of t (nil = {}) with defaults filled in, or raises naming fn and the key.
--- `level` is the error level relative to the checker's caller (default 2: the caller's
--- caller, the user's line when the checker runs first thing in a public function).
function M.schema(fn, specs, flags)
  local S, known = {}, {}
  for k, spec in pairs(specs) do
    S[k] = norm(k, spec)
    known[#known + 1] = k
  end
  table.sort(known)
  local allow_unknown = flags and flags.allow_unknown
  local checker = {}
  checker.fn, checker.specs, checker.known = fn, S, known
  setmetatable(checker, { __call = function(_, t, level)
    level = (level or 2) + 1
    if t == nil then t = {} end
    if type(t) ~= "table" then error(string.format("%s: options must be a table, got %s", fn, describe(t)), level) end
    local out = {}
    for k, v in pairs(t) do
      local s = S[k]
      if not s then
        if not allow_unknown then
          local hint = type(k) == "string" and closest(k, known)
          error(string.format("%s: unknown option '%s'%s", fn, tostring(k),
            hint and (" (did you mean '" .. hint .. "'?)") or (" (known: " .. table.concat(known, ", ") .. ")")), level)
        end
        out[k] = v
      else
        local cv, msg = M.check_value(s, v, k)
        if msg then error(string.format("%s: option '%s' %s", fn, k, msg), level) end
        out[k] = cv
      end
    end
    for k, s in pairs(S) do
      if out[k] == nil and s.default ~= nil then out[k] = s.default end
      if out[k] == nil and s.required then error(string.format("%s: option '%s' is required (%s)", fn, k,
        expected(s)), level) end
    end
    return out
  end })
  return checker
end

--- check(fn, t, specs [, level]) -> checked copy; schema() without keeping the checker.
function M.check(fn, t, specs, level)
  return M.schema(fn, specs)(t, (level or 2) + 1)
end

-- ---- the CLI side ----

--- cli(cmd, args, flags) -> options table keyed by flag name ("base-url") with values
--- converted and checked. flags: {name = spec} where spec is a value spec as above,
--- or "flag" for a boolean switch; `multi = true` collects repeated flags into a list;
--- positional arguments go to the list part of the result. Raises
--- "rlaif <cmd>: ..." on an unknown flag, a missing value or a bad value.
function M.cli(cmd, args, flags)
  local S = {}
  for k, spec in pairs(flags) do
    if spec == "flag" then S[k] = { flag = true } else
      S[k] = norm(k, spec)
    end
  end
  local o, i = {}, 1
  local function fail(msg) error("rlaif " .. cmd .. ": " .. msg, 0) end
  local known = {}
  for k in pairs(S) do known[#known + 1] = k end
  table.sort(known)
  local rest_positional = false
  while i <= #args do
    local a = args[i]
    if a == "--" and not rest_positional then
      rest_positional = true
    elseif rest_positional or a:sub(1, 2) ~= "--" or a == "-" then
      if a == "-h" and not rest_positional then
        o.help = true
      else
        o[#o + 1] = a
      end
    else
      local k, v = a:match("^%-%-([%w%-_]+)=(.*)$")
      if not k then k = a:match("^%-%-([%w%-_]+)$") end
      local s = k and S[k]
      if not s then
        if k == "help" then o.help = true else
          local hint = k and closest(k, known)
          fail(string.format("unknown option %s%s", a:match("^[^=]*"), hint and (" (did you mean --" .. hint .. "?)")
            or ""))
        end
      elseif s.flag then
        if v ~= nil then fail("option --" .. k .. " takes no value") end
        o[k] = true
      else
        if v == nil then
          i = i + 1
          v = args[i]
          if v == nil then fail("option --" .. k .. " needs a value (" .. expected(s) .. ")") end
        end
        local cv = v
        if s.types[1] == "number" or s.types[1] == "integer" then
          cv = tonumber(v)
          if cv == nil then fail(string.format("option --%s must be %s, got %s", k, expected(s), describe(v))) end
        end
        local ok, msg = M.check_value(s, cv, k)
        if msg then fail(string.format("option --%s %s", k, msg:gsub("got .*$", "got " .. describe(v)))) end
        if s.multi then
          o[k] = o[k] or {}
          table.insert(o[k], ok)
        else
          o[k] = ok
        end
      end
    end
    i = i + 1
  end
  for k, s in pairs(S) do
    if o[k] == nil and s.default ~= nil then o[k] = s.default end
  end
  return o
end

--- main_args(cmd, args, flags, usage [, {positional = false}]) -> options, or nil and
--- the exit status: the start every CLI main shares. A bad flag prints its message
--- and the usage to stderr (status 2); --help / -h prints the usage (status 0);
--- a positional argument, unless positional = true, is "rlaif <cmd>: unexpected
--- argument 'x'" (status 2).
---   local o, status = opts.main_args("label", args, FLAGS, usage)
---   if not o then return status end
function M.main_args(cmd, args, flags, usage, how)
  local ok, o = pcall(M.cli, cmd, args, flags)
  if not ok then
    io.stderr:write(tostring(o), "\n", usage)
    return nil, 2
  end
  if o.help then
    io.write(usage)
    return nil, 0
  end
  if #o > 0 and not (how and how.positional) then
    io.stderr:write("rlaif ", cmd, ": unexpected argument '", o[1], "'\n", usage)
    return nil, 2
  end
  return o
end

return M
