-- rlaif.tensor: the C tensor module (rlaif.core.tensor) plus what is easier in
-- Lua: PyTorch-style printing, inclusive slicing and a few compositions.
-- Everything here is built on the C primitives; no numeric loop lives in Lua.

local core = require "rlaif.core"

local tensor = core.tensor
local methods = tensor.meta.methods

-- ---- printing, modelled on PyTorch's _tensor_str ----

local EDGE, THRESHOLD, LINEWIDTH = 3, 1000, 80

-- The indices shown along a dim of size n: all, or the first and last EDGE.
local function shown(n, summarize)
  local idx = {}
  if summarize and n > 2 * EDGE then
    for i = 1, EDGE do idx[#idx + 1] = i end
    idx[#idx + 1] = false -- the "..." marker
    for i = n - EDGE + 1, n do idx[#idx + 1] = i end
  else
    for i = 1, n do idx[#idx + 1] = i end
  end
  return idx
end

-- Collect the numbers that will be printed (for choosing a format).
local function collect(t, summarize, out)
  if t:dim() == 0 then
    out[#out + 1] = t:item()
    return
  end
  for _, i in ipairs(shown(t:size(1), summarize)) do
    if i then
      local v = t[i]
      if type(v) == "number" then out[#out + 1] = v else collect(v, summarize, out) end
    end
  end
end

local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- A function number -> string with PyTorch's int / fixed / scientific choice.
local function formatter(values)
  local int_mode, maxa, mina = true, nil, nil
  for _, v in ipairs(values) do
    if is_finite(v) then
      if v ~= math.floor(v) then int_mode = false end
      local a = math.abs(v)
      if a > 0 then
        maxa = math.max(maxa or a, a)
        mina = math.min(mina or a, a)
      end
    end
  end
  local fmt
  if int_mode then
    fmt = function(v)
      if not is_finite(v) then return tostring(v):gsub("^%-?inf", { inf = "inf", ["-inf"] = "-inf" }) end
      return string.format("%.0f.", v)
    end
    if maxa and maxa > 1e8 then int_mode = false end
  end
  if not int_mode then
    local sci = maxa and (maxa / mina > 1000 or maxa > 1e8 or mina < 1e-4)
    local pattern = sci and "%.4e" or "%.4f"
    fmt = function(v) return string.format(pattern, v) end
  end
  return function(v)
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    return fmt(v)
  end
end

local function render(t, fmt, width, indent, summarize)
  if t:dim() == 0 then return fmt(t:item()) end
  local n = t:size(1)
  local parts = {}
  if t:dim() == 1 then
    local per_line = math.max(1, (LINEWIDTH - indent) // (width + 2))
    local line, lines = {}, {}
    for _, i in ipairs(shown(n, summarize)) do
      local s = i and string.format("%" .. width .. "s", fmt(t[i])) or "..."
      line[#line + 1] = s
      if #line == per_line then
        lines[#lines + 1] = table.concat(line, ", ")
        line = {}
      end
    end
    if #line > 0 then lines[#lines + 1] = table.concat(line, ", ") end
    return "[" .. table.concat(lines, ",\n" .. string.rep(" ", indent + 1)) .. "]"
  end
  local sep = "," .. string.rep("\n", t:dim() - 1) .. string.rep(" ", indent + 1)
  for _, i in ipairs(shown(n, summarize)) do
    parts[#parts + 1] = i and render(t[i], fmt, width, indent + 1, summarize) or "..."
  end
  return "[" .. table.concat(parts, sep) .. "]"
end

--- tensor.format(t) -> string, as PyTorch prints it: `tensor([[1., 2.], ...])`.
function tensor.format(t)
  local shape = t:shape()
  if t:numel() == 0 then
    local dims = {}
    for i, d in ipairs(shape) do dims[i] = tostring(d) end
    if #shape == 1 then return "tensor([])" end
    return "tensor([], size=(" .. table.concat(dims, ", ") .. "))"
  end
  local summarize = t:numel() > THRESHOLD
  local values = {}
  collect(t, summarize, values)
  local fmt = formatter(values)
  local width = 0
  for _, v in ipairs(values) do width = math.max(width, #fmt(v)) end
  return "tensor(" .. render(t, fmt, width, 7, summarize) .. ")"
end

tensor.meta.__tostring = function(t)
  if t:is_freed() then return "tensor(<freed>)" end
  return tensor.format(t)
end

-- ---- compositions ----

--- t:slice(dim, first [, last]): elements first..last (inclusive, negative
--- counts from the end, like string.sub) of dim, as a view.
function methods.slice(t, dim, first, last)
  local n = t:size(dim)
  last = last or n
  if first < 0 then first = n + first + 1 end
  if last < 0 then last = n + last + 1 end
  if last < first then return t:narrow(dim, first, 0) end
  return t:narrow(dim, first, last - first + 1)
end

--- t:std([dim [, keepdim [, correction=1]]]): standard deviation.
function methods.std(t, dim, keepdim, correction)
  return t:var(dim, keepdim, correction):sqrt()
end

--- t:T(): the last two dims swapped (a view).
function methods.T(t) return t:transpose() end

for _, name in ipairs { "slice", "std", "T" } do tensor[name] = methods[name] end

-- ---- random tensors without a seed: a global generator ----

-- splitmix64 over a 64-bit state; seeded from the clock at load, or by
-- rlaif.manual_seed(n). Each unseeded rand/randn takes the next value as its seed.
local rng_state = (os.time() * 1000003) ~ math.floor(core.clock() * 1e9) ~ math.floor(os.clock() * 1e6)

local function next_seed()
  rng_state = rng_state + -7046029254386353131   -- 0x9E3779B97F4A7C15
  local z = rng_state
  z = (z ~ (z >> 30)) * -4658895280553007687     -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685     -- 0x94D049BB133111EB
  return (z ~ (z >> 31)) & 0x7FFFFFFFFFFFFFFF
end

--- tensor.manual_seed(n): reset the generator behind unseeded rand/randn (rlaif.manual_seed).
function tensor.manual_seed(n)
  if math.type(n) ~= "integer" then
    error("manual_seed: the seed must be an integer, got " .. (type(n) == "number" and tostring(n) or type(n)), 2)
  end
  rng_state = n
end

local raw = rawget(tensor, "_raw") or {}   -- the C functions, kept once (a reload wraps them again)
rawset(tensor, "_raw", raw)
raw.rand, raw.randn = raw.rand or tensor.rand, raw.randn or tensor.randn
local c_rand, c_randn = raw.rand, raw.randn

--- tensor.rand(shape [, seed]) / tensor.randn(shape [, seed]): uniform [0, 1) /
--- standard normal. With a seed, the same numbers on any machine; without one,
--- fresh numbers from the generator rlaif.manual_seed sets.
function tensor.rand(shape, seed)
  if seed == nil then seed = next_seed() end
  return c_rand(shape, seed)
end
--- tensor.randn(shape [, seed]): standard normal; without a seed, from the rlaif.manual_seed generator
function tensor.randn(shape, seed)
  if seed == nil then seed = next_seed() end
  return c_randn(shape, seed)
end

-- ---- loaders: load raises, try_load returns nil, message ----

local c_load = tensor.load

--- tensor.try_load(path) -> {name = t}, {names in file order} | nil, message
function tensor.try_load(path)
  if type(path) ~= "string" then
    error("tensor.try_load: path must be a string, got " .. type(path), 2)
  end
  local ok, t, names = pcall(c_load, path)
  if not ok then return nil, tostring(t) end   -- C errors carry no source position
  return t, names
end

return tensor
