-- lua/rlaif/repl.lua -- helpers for the interactive REPL of the `rlaif`
-- executable (src/main.c): repl.pretty(...) formats results for display and
-- repl.help(topic) lists and documents the API.
--
-- It is not part of require "rlaif" and sets no globals; the REPL loads it and
-- binds the globals `help` (= repl.help) and `rlaif`. Its only state is
-- repl.docs, one-line docs keyed by API path ("tensor.zeros", "Tensor:matmul"),
-- which other modules may extend. help() lists whatever the `rlaif` table
-- holds, so an undocumented function still shows up.

local repl = {}

local MAX_ITEMS = 20      -- table entries shown before "..."
local MAX_KEYS = 10000    -- hash keys collected for sorting before giving up
local MAX_INLINE = 60     -- characters of a multi-line value shown inside a table

-- ---- docs ----

repl.docs = {
  ["version"] = "rlaif.version -- version string of rlaif",
  ["info"] = "rlaif.info() -> {version=, blis_version=, blis_arch=, blis_arch_forced=, threads=}",
  ["set_threads"] = "rlaif.set_threads(n) -- threads used by BLIS and the element-wise kernels",
  ["get_threads"] = "rlaif.get_threads() -> number of threads in use",
  ["core"] = "rlaif.core -- the C module the rest of rlaif is built on",
  ["tensor.new"] = "rlaif.tensor.new({{1, 2}, {3, 4}}) -> new tensor from nested tables (or a number)",
  ["tensor.zeros"] = "rlaif.tensor.zeros({d1, d2, ...}) -> new float32 tensor of zeros",
  ["tensor.ones"] = "rlaif.tensor.ones({d1, d2, ...}) -> new float32 tensor of ones",
  ["tensor.arange"] = "rlaif.tensor.arange([start,] stop [, step]) -> new 1-D tensor start, ..., < stop",
  ["tensor.is_tensor"] = "rlaif.tensor.is_tensor(v) -> true if v is a tensor",
  ["tensor.save"] = "rlaif.tensor.save(path, {name = t, ...}) -- write a safetensors file",
  ["tensor.load"] = "rlaif.tensor.load(path) -> {name = t, ...}, {names in file order}",
  ["Tensor:shape"] = "t:shape() -> {d1, d2, ...}",
  ["Tensor:reshape"] = "t:reshape({d1, d2, ...}) -> tensor with t's elements in a new shape",
  ["Tensor:matmul"] = "a:matmul(b [, out]) -> a @ b, written into out when given",
  ["Tensor:free"] = "t:free() -- release t's memory now; t is unusable afterwards",
}

-- ---- pretty printing ----

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return string.format("<%s: __tostring failed: %s>", type(v), tostring(s))
end

-- Squeeze a multi-line rendering (a tensor, a long string) onto one short line.
local function inline(s)
  s = s:gsub("%s+", " ")
  if #s > MAX_INLINE then s = s:sub(1, MAX_INLINE) .. "..." end
  return s
end

local key_rank = { number = 1, string = 2 }

-- Numbers first, then strings, then everything else by its printed form.
local function key_less(a, b)
  local ra, rb = key_rank[type(a)] or 3, key_rank[type(b)] or 3
  if ra ~= rb then return ra < rb end
  if ra == 3 then return safe_tostring(a) < safe_tostring(b) end
  return a < b
end

local format_value

local function format_key(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then
    return k
  end
  return "[" .. format_value(k, 1) .. "]"
end

-- {1, 2, x = 3, nested = {...}}: the array part, then the other keys sorted.
local function format_table(t, depth)
  if depth > 0 then return next(t) == nil and "{}" or "{...}" end
  local items, n = {}, 0
  while n < MAX_ITEMS and rawget(t, n + 1) ~= nil do
    n = n + 1
    items[n] = format_value(rawget(t, n), depth + 1)
  end
  local more = rawget(t, n + 1) ~= nil
  if not more then
    local keys = {}
    for k in next, t do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        if #keys >= MAX_KEYS then more = true break end
        keys[#keys + 1] = k
      end
    end
    table.sort(keys, key_less)
    for _, k in ipairs(keys) do
      if #items >= MAX_ITEMS then more = true break end
      items[#items + 1] = format_key(k) .. " = " .. format_value(rawget(t, k), depth + 1)
    end
  end
  if more then items[#items + 1] = "..." end
  return "{" .. table.concat(items, ", ") .. "}"
end

function format_value(v, depth)
  local tv = type(v)
  local s
  if tv == "string" then
    s = string.format("%q", v):gsub("\\\n", "\\n")   -- "\<newline>" -> "\n"
  elseif tv == "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" and rawget(mt, "__tostring") then
      s = safe_tostring(v)
    else
      return format_table(v, depth)
    end
  else
    s = safe_tostring(v)     -- tensors: their PyTorch-like __tostring
  end
  if depth > 0 then s = inline(s) end
  return s
end

--- Format any number of values for display, separated by tabs. Strings are
-- quoted (%q), tables shown one level deep, everything else via tostring.
function repl.pretty(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = format_value((select(i, ...)), 0)
  end
  return table.concat(parts, "\t")
end

-- ---- help ----

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- Tensor methods: the methods table of the "rlaif.Tensor" metatable (its
-- `methods` field, or __index when that is a table).
local function tensor_methods()
  local ok, reg = pcall(debug.getregistry)
  local mt = ok and type(reg) == "table" and reg["rlaif.Tensor"]
  if type(mt) ~= "table" then return nil end
  local index = rawget(mt, "methods") or rawget(mt, "__index")
  return type(index) == "table" and index or nil
end

-- Everything help knows: {path = "tensor.zeros", value = fn, parent = "tensor"},
-- top-level values, then one level into each module table, then tensor methods.
local function entries(rlaif)
  local list = {}
  for _, k in ipairs(sorted_keys(rlaif)) do
    local v = rlaif[k]
    list[#list + 1] = { path = k, value = v }
    if type(v) == "table" then
      for _, k2 in ipairs(sorted_keys(v)) do
        list[#list + 1] = { path = k .. "." .. k2, value = v[k2], parent = k, name = k2 }
      end
    end
  end
  local methods = tensor_methods()
  if methods then
    for _, k in ipairs(sorted_keys(methods)) do
      list[#list + 1] = { path = "Tensor:" .. k, value = methods[k], parent = "Tensor", name = k }
    end
  end
  return list
end

-- A module function and the tensor method of the same name share one doc.
local function doc_of(path)
  local doc = repl.docs[path]
  if doc then return doc end
  local name = path:match("^tensor%.(.+)$")
  if name then return repl.docs["Tensor:" .. name] end
  name = path:match("^Tensor:(.+)$")
  if name then return repl.docs["tensor." .. name] end
  return nil
end

local function describe(e)
  local doc = doc_of(e.path)
  if doc then return doc end
  local name = e.path:match("^Tensor:") and ("t:" .. e.path:sub(8)) or ("rlaif." .. e.path)
  if type(e.value) == "function" then return name .. "(...)" end
  if type(e.value) == "table" then return name .. " -- table" end
  return name .. " = " .. format_value(e.value, 1)
end

-- "heading: a, b, c" wrapped at 78 columns.
local function wrap_names(heading, names, out)
  local line = heading
  for i, n in ipairs(names) do
    local piece = n .. (i < #names and "," or "")
    if #line + 1 + #piece > 78 then
      out(line .. "\n")
      line = "   "
    end
    line = line .. " " .. piece
  end
  out(line .. "\n")
end

local function names_under(list, parent)
  local names = {}
  for _, e in ipairs(list) do
    if e.parent == parent then names[#names + 1] = e.name end
  end
  return names
end

-- Top-level values one per line, then each module's and the tensor methods'
-- names, wrapped.
local function list_all(rlaif, list, out)
  out(string.format("rlaif %s -- help(\"tensor.zeros\"), help(rlaif.tensor), help(fn) for more\n",
    tostring(rlaif.version)))
  for _, e in ipairs(list) do
    if not e.parent and type(e.value) ~= "table" then out("  " .. describe(e) .. "\n") end
  end
  for _, e in ipairs(list) do
    if not e.parent and type(e.value) == "table" then
      local names = names_under(list, e.path)
      if #names > 0 then wrap_names("module rlaif." .. e.path .. ":", names, out) end
    end
  end
  local methods = names_under(list, "Tensor")
  if #methods > 0 then wrap_names("tensor methods, t:name(...):", methods, out) end
end

-- Normalise "rlaif.tensor.zeros", "t:matmul", "Tensor.matmul" or "zeros".
local function find_by_name(list, name)
  name = name:gsub("^rlaif%.", ""):gsub("^[Tt]ensor[:.]", "Tensor:"):gsub("^t:", "Tensor:")
  for _, e in ipairs(list) do
    if e.path == name then return e end
  end
  for _, e in ipairs(list) do  -- a bare name: the first path ending in it
    if e.path:match("[.:]" .. name:gsub("%p", "%%%0") .. "$") then return e end
  end
  if doc_of(name) then return { path = name } end
  return nil
end

--- help() lists the rlaif API; help(fn), help("name") or help(module) prints
-- one entry's doc line or a module's listing. Writes with io.write by default.
function repl.help(topic, write)
  local out = write or io.write
  local ok, rlaif = pcall(require, "rlaif")
  if not ok then
    out("help: cannot load rlaif: " .. tostring(rlaif) .. "\n")
    return
  end
  local list = entries(rlaif)
  if topic == nil or rawequal(topic, rlaif) then
    list_all(rlaif, list, out)
    return
  end
  local found
  if type(topic) == "string" then
    found = find_by_name(list, topic)
  else  -- by value: prefer the shortest path (rlaif.tensor over rlaif.core.tensor)
    for pass = 1, 2 do
      for _, e in ipairs(list) do
        if rawequal(e.value, topic) and (pass == 2 or not e.parent) then found = e break end
      end
      if found then break end
    end
  end
  if not found then
    out(string.format("help: nothing known about %s; help() lists the API\n",
      type(topic) == "string" and string.format("%q", topic) or "this " .. type(topic)))
  elseif type(found.value) == "table" then
    out("module rlaif." .. found.path .. ":\n")
    for _, k in ipairs(sorted_keys(found.value)) do
      out("  " .. describe({ path = found.path .. "." .. k, value = found.value[k] }) .. "\n")
    end
  else
    out(describe(found) .. "\n")
  end
end

return repl
