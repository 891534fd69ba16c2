-- scripts/bench/dist.lua -- data-parallel training on this machine: one process
-- with two threads against `mpirun -np 2` with one thread each (issue 13).
--
-- Cases, each in fresh processes (the issue's table):
--   step      GPT-2 124M shapes, global batch 4 x 64, one training step (forward
--             + backward + gradient all-reduce + AdamW), median of 5 after a
--             warm-up step (3 with --quick); np1 x 2 threads is the reference,
--             np2 x 1 thread (2 rows per rank) the line's ratio. The np2 line also
--             has the all-reduce's share of the step.
--   allreduce the gradient buffer of GPT-2 124M (124.4M floats, 498 MB) summed over
--             2 ranks, best of 5 (3): algbw = bytes / time, busbw = 2 (n-1)/n x
--             bytes / time (what each rank moves in a ring). The reference is the
--             same process's memory bandwidth, a copy_ of the same buffer (read +
--             write); bound_ms = the ring's traffic at that bandwidth, the fastest
--             the all-reduce could be over shared memory.
-- Without MPI in the build or without mpirun it prints one "skipped" line.
-- Timings on a shared machine are noisy: compare the ratios of one run.
--
-- Usage: rlaif scripts/bench/dist.lua [--quick]
--        rlaif scripts/bench/dist.lua --case step|allreduce [--quick]   (internal, one process or rank)

local rlaif = require "rlaif"
local core = require "rlaif.core"
local dist = rlaif.dist
local json = core.json

local quick = false
local case
do
  local i = 1
  while arg and arg[i] do
    if arg[i] == "--quick" then quick = true
    elseif arg[i] == "--case" then case = arg[i + 1]; i = i + 1
    else error("dist.lua: unknown argument " .. arg[i]) end
    i = i + 1
  end
end

local MPIRUN = os.getenv("MPIRUN") or ("mpirun --allow-run-as-root --oversubscribe --bind-to none --mca pml ob1 " ..
  "--mca btl self,vader --mca btl_vader_single_copy_mechanism none")
local G = { V = 50257, L = 12, H = 12, C = 768, B = 4, T = 64 }

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function num(v) return math.floor(v * 1000 + 0.5) / 1000 end

-- ---- inside a process or rank ----

local function run_step()
  local size = dist.size()
  local m = rlaif.model.new { arch = "gpt2", vocab_size = G.V, n_layer = G.L, n_head = G.H, d_model = G.C,
                             max_seq = 1024, seed = 1 }
  dist.broadcast_model(m)
  local x = 12345
  local function rnd()
    x = (x * 1103515245 + 12345) % 2147483648
    return x % G.V
  end
  local ids, tg = {}, {}
  for b = 1, G.B do
    ids[b], tg[b] = {}, {}
    for t = 1, G.T do ids[b][t], tg[b][t] = rnd(), rnd() end
  end
  local lo, hi = dist.block(G.B)
  local mine, mtg = {}, {}
  for b = lo, hi do mine[#mine + 1], mtg[#mtg + 1] = ids[b], tg[b] end
  local steps, ar = {}, {}
  for s = 1, quick and 4 or 6 do
    dist.barrier()
    local t0 = core.clock()
    m:lm_loss(mine, mtg)
    local t1 = core.clock()
    dist.allreduce_grads(m, "mean")
    local t2 = core.clock()
    m:adamw_step { lr = 1e-4, weight_decay = 0.1 }
    m:zero_grad()
    -- the slowest rank sets the step
    local t = dist.allreduce_numbers({ core.clock() - t0, t2 - t1 }, "max")
    if s > 1 then steps[#steps + 1], ar[#ar + 1] = t[1], t[2] end
  end
  if dist.is_root() then
    io.write(json.encode { step_s = median(steps), allreduce_s = median(ar), params = m:num_params(),
      threads = rlaif.info().threads, size = size }, "\n")
  end
end

local function run_allreduce()
  local n = 124439808   -- GPT-2 124M's parameters (tied embeddings)
  local g = rlaif.tensor.full({ n }, dist.rank() + 1)
  local best = math.huge
  for _ = 1, quick and 3 or 5 do
    dist.barrier()
    local t0 = core.clock()
    dist.allreduce(g, "sum")
    best = math.min(best, dist.allreduce_numbers({ core.clock() - t0 }, "max")[1])
  end
  -- the reference: this process's copy bandwidth over the same buffer
  local dst = rlaif.tensor.zeros { n }
  local copy = math.huge
  for _ = 1, quick and 3 or 5 do
    local t0 = core.clock()
    dst:copy_(g)
    copy = math.min(copy, core.clock() - t0)
  end
  if dist.is_root() then
    io.write(json.encode { allreduce_s = best, copy_s = copy, bytes = n * 4, size = dist.size() }, "\n")
  end
end

if case == "step" then return run_step() end
if case == "allreduce" then return run_allreduce() end
assert(case == nil, "dist.lua: unknown case " .. tostring(case))

-- ---- the driver ----

local function emit(t) io.write(json.encode(t), "\n") io.flush() end

local self = arg and arg[0] or "scripts/bench/dist.lua"
local exe = (arg and arg[-1]) or "./rlaif"
local function sub(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("a")
  p:close()
  local line = out:match("(%b{})%s*$")
  return line and json.decode(line) or nil, out
end

local built = rlaif.info().mpi
local has_mpirun = os.execute("command -v mpirun >/dev/null 2>&1") == true
if not (built and has_mpirun) then
  emit { bench = "dist", skipped = not built and "no MPI in this build" or "mpirun not installed" }
  return
end
local q = quick and " --quick" or ""

-- training step: np1 x 2 threads (reference) vs np2 x 1 thread
local one = sub(string.format("RLAIF_NUM_THREADS=2 %s %s --case step%s", exe, self, q))
local two = sub(string.format("%s -x RLAIF_NUM_THREADS=1 -np 2 env RLAIF_NUM_THREADS=1 %s %s --case step%s", MPIRUN,
  exe, self, q))
if one and two then
  emit { bench = "dist", case = "gpt2_124m_step", batch = G.B .. "x" .. G.T, ref = "np1 x 2 threads",
    ref_ms = num(one.step_s * 1000), ms = num(two.step_s * 1000), what = "np2 x 1 thread",
    ratio = num(two.step_s / one.step_s), allreduce_ms = num(two.allreduce_s * 1000),
    allreduce_share = num(two.allreduce_s / two.step_s), threads = { one.threads, two.threads } }
else
  emit { bench = "dist", case = "gpt2_124m_step", error = "a run failed" }
end

-- the all-reduce of the gradient buffer against the copy bandwidth
local ar = sub(string.format("%s -np 2 %s %s --case allreduce%s", MPIRUN, exe, self, q))
if ar then
  local gb = ar.bytes / 1e9
  local copy_gbs = 2 * gb / ar.copy_s   -- a copy reads and writes every byte
  local moved = 2 * (ar.size - 1) / ar.size * gb
  emit { bench = "dist", case = "allreduce_124m", np = ar.size, mb = num(ar.bytes / 1e6),
    ms = num(ar.allreduce_s * 1000), algbw_gbs = num(gb / ar.allreduce_s), busbw_gbs = num(moved / ar.allreduce_s),
    ref = "copy_ bandwidth", ref_gbs = num(copy_gbs), bound_ms = num(moved / copy_gbs * 1000),
    ratio = num(ar.allreduce_s / (moved / copy_gbs)) }
else
  emit { bench = "dist", case = "allreduce_124m", error = "the run failed" }
end
