-- scripts/bench/embed.lua -- the cost of the embedding API (include/rlaif/state.h)
-- against the raw Lua C API in the same process: builds scripts/bench/embed_c.c
-- against the public headers and build/librlaif.so, runs it, and passes its
-- JSON lines on (see the header of embed_c.c for what each one measures).
local function emit(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = string.format("%q:%q", k, tostring(t[k])) end
  io.write("{", table.concat(parts, ","), "}\n")
end

local cc = os.getenv("CC") or "cc"
local exe = "build/bench/embed_c"
local cmd = string.format("mkdir -p build/bench && %s -O2 -std=c11 -Iinclude -I/usr/include/lua5.4 "
  .. "scripts/bench/embed_c.c -Lbuild -Wl,-rpath,$PWD/build -lrlaif -llua5.4 -o %s 2>&1", cc, exe)
local p = io.popen(cmd)
local out = p:read("a")
if not p:close() then
  emit { bench = "embed", skipped = "cannot build scripts/bench/embed_c.c (make first?)", why = out }
  return
end
p = io.popen(exe)
io.write(p:read("a"))
if not p:close() then emit { bench = "embed", failed = exe } end
