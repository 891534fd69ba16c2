-- examples/quickstart.lua -- a first tour of rlaif, run by `make quickstart`.
--
-- Run it yourself with `./rlaif examples/quickstart.lua` from the checkout (the
-- executable finds its Lua files by itself), or with stock Lua:
--   LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/?.so;;' lua5.4 examples/quickstart.lua

local rlaif = require "rlaif"
local T = rlaif.tensor

-- The runtime: BLIS kernels and threads in use. On CPUs with AVX-512 rlaif picks
-- BLIS's `skx` kernels itself (Debian's BLIS 0.9 does not know AMD Zen 5).
local info = rlaif.info()
print(("rlaif %s: BLIS %s, kernels '%s'%s, %d threads"):format(info.version, info.blis_version,
  info.blis_arch, info.blis_arch_forced and " (selected by rlaif)" or "", info.threads))

-- Tensors are float32, up to 4 dims. Dims and indices are 1-based; -1 is the last.
local x = T.arange(6):reshape { 2, 3 }
print("\nx =", x)
print("x[2] =", x[2], " x[2][3] =", x[2][3])
print("x:T() (a view, no copy) =", x:T())

-- Math broadcasts like NumPy/PyTorch; reductions return tensors.
local y = (x - x:mean(2, true)) / x:std(2, true)
print("\nrow-standardised x =", y)
print("sum =", x:sum():item(), " max along dim 2 =", x:max(2))
print("softmax(x, -1) =", x:softmax(-1))

-- Matrix products go to BLIS, strided views included.
local w = T.randn({ 3, 4 }, 42) -- seeded, reproducible
print("\nx @ w =", x:matmul(w))
local a, b = T.randn({ 1024, 1024 }, 1), T.randn({ 1024, 1024 }, 2)
local c = T.zeros { 1024, 1024 }
a:matmul(b, c) -- warm-up: BLIS allocates its packing buffers on first use
local reps = 10
local t0 = rlaif.core.clock()
for _ = 1, reps do a:matmul(b, c) end
local dt = (rlaif.core.clock() - t0) / reps
print(("1024^3 matmul: %.1f ms, %.0f GFLOP/s on %d threads"):format(dt * 1e3, 2 * 1024 ^ 3 / dt / 1e9,
  rlaif.get_threads()))

-- Tensors save and load in the safetensors format that Hugging Face uses.
local path = os.tmpname() .. ".safetensors"
T.save(path, { ["layer.weight"] = w, ["layer.bias"] = T.zeros { 4 } })
local loaded, names = T.load(path)
print("\nsaved and reloaded:", table.concat(names, ", "), "equal:",
  (loaded["layer.weight"] - w):abs():max():item() == 0)
os.remove(path)

-- Errors name the operation and the bad values.
local ok, err = pcall(function() return x:matmul(T.zeros { 4, 5 }) end)
print("\nan error, caught:", ok, err)

-- Free big tensors at once with :free() or `local t <close> = ...`.
do
  local big <close> = T.zeros { 4096, 1024 }
  print(("a %d MB tensor, freed at the end of this block"):format(big:nbytes() // 2 ^ 20))
end

print([[

Next: open the REPL with `./rlaif`. Each line is evaluated (`1+1` prints 2),
multi-line input continues, results are pretty-printed (tensors as above),
Ctrl-C interrupts a running loop, and help() lists the whole API.]])
