-- scripts/bench/gemm.lua -- rlaif.tensor matmul against a direct BLIS call.
--
-- For each shape (square 64..2048, and GPT-2's M=256, K=768 projections with
-- N = 768, 2304, 3072 and the 50257-wide LM head) and for 1 thread and every
-- core, times:
--   rlaif        a:matmul(b, c)                  into a preallocated c
--   blis         tensor._blis_sgemm(a, b, c2)    one bli_sgemm on the same buffers
--   rlaif_alloc  a:matmul(b) then :free()        the allocating form (best of 3
--                                                samples, after the others; it pays
--                                                the page faults of a fresh result)
-- Method: one warm-up call of each, then SAMPLES timed samples per form, each
-- repeating the call until it lasts >= SAMPLE_S (>= 0.5 s per form and shape;
-- a single call for the biggest shapes, with fewer samples). rlaif and BLIS
-- samples are interleaved in ABBA order to cancel drift. Reported GFLOP/s use
-- the BEST sample (least disturbed by other load); the median is printed too.
-- Prints a first line with the environment, then one JSON line per measurement.
-- Not here: correctness beyond a max |rlaif - blis| sanity figure (that is the
-- specs' job), non-square batched products.
--
-- Usage: rlaif scripts/bench/gemm.lua [--quick]   (--quick: small shapes only)

local rlaif = require "rlaif"
local core = require "rlaif.core"
local T = rlaif.tensor

local SAMPLE_S = 0.1     -- minimum duration of one timed sample
local SAMPLES = 5        -- samples per form (3 when one call takes > BIG_S)
local BIG_S = 0.1

-- ---- clock ----

local clock, clock_name = core.clock, "rlaif.core.clock (monotonic wall)"
if not clock then
  -- FALLBACK: CPU time, summed over threads, so multi-threaded GFLOP/s come out too low.
  clock, clock_name = os.clock, "os.clock (CPU time! wrong with threads; rlaif.core.clock missing)"
end

-- ---- JSON lines ----

local function json_value(v)
  local tv = type(v)
  if tv == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif tv == "boolean" then
    return tostring(v)
  elseif math.type(v) == "integer" then
    return string.format("%d", v)
  elseif tv == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.4g", v)
  end
  return "null"
end

-- keys: the field order; values may be nil (written as null)
local function emit(keys, fields)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = '"' .. k .. '":' .. json_value(fields[k]) end
  io.write("{", table.concat(parts, ","), "}\n")
  io.flush()
end

-- ---- environment ----

local function read_cmd(cmd)
  local p = io.popen(cmd)
  if not p then return nil end
  local s = p:read("a")
  p:close()
  return s
end

local function cpu_model()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return "unknown" end
  local s = f:read("a")
  f:close()
  return s:match("model name%s*:%s*([^\n]+)") or s:match("Model%s*:%s*([^\n]+)") or "unknown"
end

local function all_cores()
  local n = tonumber((read_cmd("nproc 2>/dev/null") or ""):match("%d+"))
  return n or rlaif.get_threads()
end

-- ---- timing ----

-- Seconds per call of fn, over one sample of `reps` calls.
local function sample(fn, reps)
  local t0 = clock()
  for _ = 1, reps do fn() end
  return (clock() - t0) / reps
end

local function best_and_median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  local med = n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
  return s[1], med
end

local KEYS = { "bench", "m", "k", "n", "threads", "rlaif_gflops", "blis_gflops", "ratio",
  "rlaif_alloc_gflops", "rlaif_median_gflops", "blis_median_gflops", "reps", "samples", "stat",
  "max_abs_diff" }

local function bench_shape(m, k, n, threads)
  local a = T.rand({ m, k }, 1)
  local b = T.rand({ k, n }, 2)
  local c = T.zeros({ m, n })
  local c2 = T.zeros({ m, n })
  local function run_rlaif() a:matmul(b, c) end
  local function run_blis() T._blis_sgemm(a, b, c2) end
  local function run_alloc() a:matmul(b):free() end

  -- warm up (page in c, c2, BLIS's packing buffers), then size the samples
  run_blis()
  local t1 = sample(run_rlaif, 1)
  local reps = math.max(1, math.ceil(SAMPLE_S / math.max(t1, 1e-9)))
  local samples = t1 > BIG_S and 3 or SAMPLES

  local tr, tb = {}, {}
  for s = 1, samples do -- ABBA: rlaif first in odd samples, BLIS first in even ones
    if s % 2 == 1 then
      tr[s] = sample(run_rlaif, reps)
      tb[s] = sample(run_blis, reps)
    else
      tb[s] = sample(run_blis, reps)
      tr[s] = sample(run_rlaif, reps)
    end
  end
  local ta = math.huge
  for _ = 1, 3 do ta = math.min(ta, sample(run_alloc, reps)) end

  local diff = (c - c2):abs():max():item()
  local flop = 2.0 * m * k * n
  local rbest, rmed = best_and_median(tr)
  local bbest, bmed = best_and_median(tb)
  emit(KEYS, {
    bench = "gemm", m = m, k = k, n = n, threads = threads,
    rlaif_gflops = flop / rbest / 1e9, blis_gflops = flop / bbest / 1e9, ratio = bbest / rbest,
    rlaif_alloc_gflops = flop / ta / 1e9,
    rlaif_median_gflops = flop / rmed / 1e9, blis_median_gflops = flop / bmed / 1e9,
    reps = reps, samples = samples, stat = "best", max_abs_diff = diff,
  })
  for _, t in ipairs { a, b, c, c2 } do t:free() end
  collectgarbage()
end

-- ---- main ----

local quick = arg and arg[1] == "--quick"
local shapes = {}
for _, s in ipairs(quick and { 64, 128, 256 } or { 64, 128, 256, 512, 1024, 2048 }) do
  shapes[#shapes + 1] = { s, s, s }
end
if not quick then
  for _, n in ipairs { 768, 2304, 3072, 50257 } do shapes[#shapes + 1] = { 256, 768, n } end
end

local info = rlaif.info()
local cores = all_cores()
emit({ "bench", "blis_version", "blis_arch", "blis_arch_forced", "threads_default", "cores", "cpu",
  "rlaif_version", "lua", "clock" }, {
  bench = "env", blis_version = info.blis_version, blis_arch = info.blis_arch,
  blis_arch_forced = info.blis_arch_forced, threads_default = info.threads, cores = cores,
  cpu = cpu_model(), rlaif_version = info.version, lua = _VERSION, clock = clock_name,
})

local saved = rlaif.get_threads()
local thread_counts = cores > 1 and { 1, cores } or { 1 }
local t_start = clock()
for _, threads in ipairs(thread_counts) do
  rlaif.set_threads(threads)
  for _, s in ipairs(shapes) do bench_shape(s[1], s[2], s[3], threads) end
end
rlaif.set_threads(saved)
io.stderr:write(string.format("# gemm: %.1f s\n", clock() - t_start))
