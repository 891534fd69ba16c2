-- tests/fuzz/lua_bindings.lua -- random-argument fuzzer of every C binding in
-- rlaif.core, run under the ASan+UBSan module (build/asan/rlaif/core.so with the
-- sanitizer runtimes preloaded; `make fuzz` and, briefly, `make test` do that).
--
--   cd SCRATCH && lua5.4 ROOT/tests/fuzz/lua_bindings.lua --root ROOT [--calls N] [--seconds S] [--seed K]
--
-- Run it from an empty scratch folder (scripts/fuzz.sh lua does): calls get
-- strings like "x" or "-1" as paths (every path in the pool is relative), so
-- anything a binding creates lands there, and the fixture files it reads are
-- copies made there, never the originals.
--
-- It walks the rlaif.core tables and the metatables of every object it gets
-- back, so bindings added later are fuzzed without listing them here. Each call
-- gets 0-5 arguments drawn from a pool of odd values: wrong types, huge and
-- negative integers, NaN and infinities, empty and ragged tables, strings with
-- NULs, views, freed tensors and models, other objects. Raising an error is a
-- pass; a crash, a sanitizer report or a hang is a finding. Every call is
-- protected, and the pool is rebuilt now and then (calls free and change its
-- objects). SKIP names what is never called, and why.
-- What it is not: a test of results (the specs do that), or of the Lua facade.

local args = { calls = nil, seconds = nil, seed = os.time(), verbose = false, root = "." }
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--calls" then args.calls = math.tointeger(tonumber(arg[i + 1])); i = i + 1
    elseif a == "--seconds" then args.seconds = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--seed" then args.seed = math.tointeger(tonumber(arg[i + 1])); i = i + 1
    elseif a == "--root" then args.root = arg[i + 1]; i = i + 1
    elseif a == "--verbose" then args.verbose = true
    else error("lua_bindings.lua: unknown argument " .. a) end
    i = i + 1
  end
  if not args.calls and not args.seconds then args.calls = 2000 end
end

local ROOT = args.root
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. package.path
package.cpath = ROOT .. "/build/asan/?.so;" .. package.cpath
local core = require "rlaif.core"

-- private copies of the fixtures the pool names, in the scratch folder
local F = ROOT .. "/tests/fixtures/"
assert(os.execute("mkdir -p fx/model fx/tokenizer && cp " .. F .. "tensor_ops.safetensors fx/ && cp -r " .. F
  .. "model/gpt2 fx/model/ && cp " .. F .. "tokenizer/trained.json " .. F .. "tokenizer/corpus.jsonl fx/tokenizer/"),
  "lua_bindings.lua: cannot copy the fixtures")

-- Never called: they block, reach the network, or change files or the process.
local SKIP = {
  ["core.setenv"] = "changes the environment of this process",
  ["core.set_threads"] = "starts up to 1024 OpenMP threads",
  ["core.llm.client"] = "clients send requests over the network (parsers are fuzzed in C)",
  ["core.llm.cancel_request"] = "would cancel every later call (cancellation has its own specs)",
  ["core.tensor.save"] = "writes files at any path it is given",
  ["core.tokenizer.train"] = "writes a tokenizer file at any path it is given",
  ["core.gz.truncate"] = "truncates files at any path it is given",
  ["core.gz.fsync"] = "fsyncs any file descriptor",
  ["core.gz.fsync_dir"] = "fsyncs any folder (slow on a shared disk)",
  ["core.gz.mkdir"] = "creates folders at any path it is given",
  ["core.gz.write_atomic"] = "writes files at any path it is given",
  ["core.gz.atomic"] = "writes files at any path it is given (its writer is tested in test_gz and fileio_spec)",
  ["Model.save"] = "writes a checkpoint directory at any path it is given",
  ["Model.save_state"] = "writes a file at any path it is given",
  ["Model.generate"] = "max_new_tokens up to 2^24 runs for minutes by design (sizes fuzzed in C)",
}
-- the same functions under the module's own name for the methods table
for _, m in ipairs { "save", "save_state", "generate" } do SKIP["core.model.methods." .. m] = SKIP["Model." .. m] end

local seed = args.seed
math.randomseed(seed)
local R = math.random

-- ---- the pool of arguments ----

local FIX = "fx/"
local pool, objects = {}, {}

local function keep(v)   -- objects returned by calls join the pool (bounded)
  local t = type(v)
  if (t == "userdata" or t == "table") and #objects < 64 then objects[#objects + 1] = v end
end

local function rebuild()
  local T = core.tensor
  local function try(f, ...)
    local ok, v = pcall(f, ...)
    return ok and v or nil
  end
  local base = try(T.arange, 24)
  local m = base and try(base.reshape, base, { 2, 3, 4 })
  local freed = try(T.zeros, { 2 })
  if freed then freed:free() end
  local model = try(core.model.new, { vocab_size = 11, n_layer = 1, n_head = 2, d_model = 4, max_seq = 8 })
  local llama = try(core.model.new, { arch = "llama", vocab_size = 7, n_layer = 1, n_head = 2, n_kv_head = 1,
                                      d_model = 4, head = "reward" })
  local freed_model = try(core.model.new, { vocab_size = 5, n_layer = 1, n_head = 1, d_model = 2 })
  if freed_model then pcall(getmetatable(freed_model).__gc, freed_model) end
  local tok = try(core.tokenizer.load, FIX .. "tokenizer/trained.json")
  local reader = try(core.gz.open, FIX .. "tokenizer/corpus.jsonl")
  pool = {
    false, true, 0, 1, -1, 2, 3, 4, 7, 2 ^ 31 // 1, 2 ^ 31 // 1 - 1, -(2 ^ 31) // 1, 2 ^ 32 // 1 + 2, 2 ^ 53 // 1,
    math.maxinteger, math.mininteger, 0.5, -0.0, 2.5, 1e308, -1e308, 1 / 0, -1 / 0, 0 / 0, 1e-300,
    "", "x", "abc", "\0\255\254", string.rep("ab", 600), "openai-chat", "gpt2", "F32", "tanh", "none", "reward",
    "nonexistent/file", FIX .. "tensor_ops.safetensors", FIX .. "model/gpt2", FIX .. "tokenizer/trained.json",
    FIX .. "tokenizer/corpus.jsonl",
    {}, { 1, 2, 3 }, { { 1, 2 }, { 3 } }, { -1 }, { 0 }, { 2, 3 }, { math.maxinteger }, { 2 ^ 32 // 1 + 2, 1 },
    { 0 / 0 }, { 1.5 }, { "x" }, { {} }, { a = 1 }, { 1, 2, 3, 4, 5 }, { 2, 0, 3 }, { -2, -1 },
    { max_new_tokens = 2, temperature = 0 }, { vocab_size = 3, d_model = 2, n_head = 1, n_layer = 1 },
    { prompt = "hi", max_tokens = 2, logprobs = 2 }, { messages = { { role = "user", content = "x" } } },
    { encoding = "cl100k_base" }, { indent = true }, setmetatable({}, { __len = function() return 2 ^ 40 // 1 end }),
    function() end, coroutine.create(function() end), io.stderr,
    base, m, m and try(m.transpose, m, 1, 3), m and try(m.narrow, m, 3, 2, 2), freed, try(T.zeros, {}),
    try(T.zeros, { 0 }), try(T.zeros, { 3, 0 }), try(T.ones, { 1 }),
    try(T.ones, { 1 }) and try(T.expand, T.ones { 1 }, { 3, 5 }),
    try(T.randn, { 4, 4 }, 1), try(T.full, { 2, 2 }, 0 / 0), try(T.new, { { 1, 2 }, { 3, 4 } }),
    model, llama, freed_model, tok, reader, core.json.array and try(core.json.array, {}),
  }
  for _, o in ipairs(objects) do pool[#pool + 1] = o end
  objects = {}
end

local function arg_value()
  return pool[R(#pool + 1)]   -- one past the end: nil
end

-- ---- the callables: module functions and the methods of every object ----

local function callables()
  -- every (name, function) first: one C function may be reachable under several
  -- names (core.model.methods.save is Model.save), so SKIP is applied to the functions
  local all, skipf = {}, {}
  local function add(name, f)
    if type(f) == "function" then
      all[#all + 1] = { name = name, f = f }
      if SKIP[name] then skipf[f] = true end
    end
  end
  local function walk(prefix, t, depth)
    for k, v in pairs(t) do
      if type(k) == "string" then
        if type(v) == "function" then add(prefix .. "." .. k, v)
        elseif type(v) == "table" and depth < 2 and k ~= "meta" then walk(prefix .. "." .. k, v, depth + 1) end
      end
    end
  end
  walk("core", core, 0)
  -- methods, found through the metatables of the objects in the pool
  for _, o in ipairs(pool) do
    local mt = type(o) == "userdata" and getmetatable(o)
    if type(mt) == "table" and tostring(mt.__name):find("^rlaif%.") then   -- ours only, never io's FILE*
      local idx = mt.__index
      local class = tostring(mt.__name or "?"):gsub("^rlaif%.", "")
      if type(idx) ~= "table" then idx = mt.methods end
      if type(idx) == "table" then
        for k, v in pairs(idx) do
          if type(k) == "string" then add(class .. "." .. k, v) end
        end
      end
      for k, v in pairs(mt) do
        if type(k) == "string" and k ~= "__gc" and k ~= "__index" then add(class .. "." .. k, v) end
      end
    end
  end
  local named = {}
  for _, c in ipairs(all) do named[c.name] = true end
  for name in pairs(SKIP) do   -- a renamed binding must not slip past its skip entry
    assert(named[name], "lua_bindings.lua: SKIP entry " .. name .. " matches no binding; update SKIP")
  end
  local list, seen = {}, {}
  for _, c in ipairs(all) do
    if not skipf[c.f] and not seen[c.f] then
      seen[c.f] = true
      list[#list + 1] = c
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- ---- the loop ----

local start = os.clock()
local calls, raised, returned = 0, 0, 0
local list
local names_called = {}

local function done()
  if args.calls and calls >= args.calls then return true end
  if args.seconds and os.clock() - start >= args.seconds then return true end
  return false
end

while not done() do
  if calls % 150 == 0 then
    rebuild()
    list = callables()
    collectgarbage()
  end
  local c = list[R(#list)]
  local n = R(0, 5)
  local a = {}
  -- methods mostly get an object of their own class first
  if R() < 0.6 and not c.name:find("^core%.") then
    for _, o in ipairs(pool) do
      local mt = getmetatable(o)
      if type(mt) == "table" and tostring(mt.__name or ""):gsub("^rlaif%.", "") == c.name:match("^[^.]+") then
        a[1] = o
        if R() < 0.5 then break end
      end
    end
    n = math.max(n, 1)
  end
  for i = #a + 1, n do a[i] = arg_value() end
  if args.verbose then io.stderr:write(c.name, "(", n, " args)\n") end
  local res = table.pack(pcall(c.f, table.unpack(a, 1, n)))
  calls = calls + 1
  names_called[c.name] = true
  core.llm.cancel_reset()
  if res[1] then
    returned = returned + 1
    for i = 2, res.n do keep(res[i]) end
  else
    raised = raised + 1
  end
  if calls % 50 == 0 then collectgarbage("step", 64) end
end
pool, objects = {}, {}
collectgarbage()
collectgarbage()

local distinct = 0
for _ in pairs(names_called) do distinct = distinct + 1 end
local skipped = {}
for k in pairs(SKIP) do skipped[#skipped + 1] = k end
table.sort(skipped)
print(string.format("lua_bindings: %d calls of %d bindings (%d of %d callables reached) in %.1f s CPU, seed %d: "
  .. "%d returned, %d raised; skipped: %s", calls, #list, distinct, #list, os.clock() - start, seed, returned,
  raised, table.concat(skipped, ", ")))
