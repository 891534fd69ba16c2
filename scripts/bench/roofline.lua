-- scripts/bench/roofline.lua -- this machine's limits: read bandwidth and sgemm
-- GFLOP/s at the model's shapes, on 1 and 2 threads (scripts/bench/roofline_c.c
-- has the method). Run as a benchmark it prints the C program's JSON lines;
-- loaded with dofile (model.lua, rl.lua) it returns measure(), which runs the
-- program in the same benchmark run and returns
--   { read_gbs = {[1] = ..., [2] = ...}, gemm_gflops = {[1] = ..., [2] = ...},
--     lines = { the JSON lines } }
-- or nil and a reason when it cannot be built; limits(r, threads) gives the
-- bounds (GFLOP/s, GB/s) the benchmarks use. BLIS gets the configuration
-- rlaif uses (BLIS_ARCH_TYPE), so the bound is what the library could reach.

local M = {}

local function sh(cmd)
  local p = io.popen(cmd)
  if not p then return nil, "popen failed" end
  local out = p:read("a")
  local ok = p:close()
  return ok and out or nil, out
end

function M.measure()
  local cc = os.getenv("CC") or "cc"
  local mt = "/usr/include/x86_64-linux-gnu"
  local p = io.popen("cc -print-multiarch 2>/dev/null")
  if p then
    local ma = p:read("l")
    p:close()
    if ma and ma ~= "" then mt = "/usr/include/" .. ma end
  end
  local lib = mt:gsub("/usr/include/", "/usr/lib/")
  local exe = "build/bench/roofline_c"
  local out, err = sh(string.format("mkdir -p build/bench && %s -O3 -march=native -std=c11 -isystem %s/blis-openmp "
    .. "scripts/bench/roofline_c.c -L%s/blis-openmp -Wl,-rpath,%s/blis-openmp -lblis -fopenmp -lpthread -o %s 2>&1",
    cc, mt, lib, lib, exe))
  if not out then return nil, "cannot build scripts/bench/roofline_c.c: " .. tostring(err) end
  local arch = "skx"
  local ok, rlaif = pcall(require, "rlaif")
  if ok and rlaif.info then arch = rlaif.info().blis_arch or arch end
  out, err = sh(string.format("BLIS_ARCH_TYPE=%s %s", arch, exe))
  if not out then return nil, exe .. " failed: " .. tostring(err) end
  local r = { read_gbs = {}, gemm_gflops = {}, read_gbs_cpu = {}, gemm_gflops_cpu = {}, lines = {} }
  for line in out:gmatch("[^\n]+") do
    r.lines[#r.lines + 1] = line
    local nt = tonumber(line:match('"threads":(%d+)'))
    if line:find('"what":"read"', 1, true) then
      r.read_gbs[nt] = tonumber(line:match('"gb_per_s":([%d%.e%+%-]+)'))
      r.read_gbs_cpu[nt] = tonumber(line:match('"gb_per_s_cpu":([%d%.e%+%-]+)'))
    elseif line:find('"shape":"model"', 1, true) then
      r.gemm_gflops[nt] = tonumber(line:match('"gflops":([%d%.e%+%-]+)'))
      r.gemm_gflops_cpu[nt] = tonumber(line:match('"gflops_cpu":([%d%.e%+%-]+)'))
    end
  end
  if not (r.read_gbs[1] and r.gemm_gflops[1]) then return nil, "no figures from " .. exe end
  return r
end

-- The limits on `threads` threads: the measured figure, or `threads` x the
-- one-thread figure when that is higher (perfect scaling: the physical limit of
-- that many cores; a two-thread run on cores shared with other work comes out
-- far lower, and a bound must not). The one-thread figure is the better of wall
-- and CPU time (the rate while the thread runs: time-sharing does not lower
-- it). Read bandwidth: the best figure up to `threads` threads, wall or CPU
-- time. CPU time can only overstate it (threads that ran one after the other
-- on a busy machine each had the memory to themselves), which keeps a bound a
-- bound: decoding at batch 1 streamed weights faster than the wall figure.
function M.limits(r, threads)
  local gf1 = math.max(r.gemm_gflops[1], r.gemm_gflops_cpu[1] or 0)
  local g = math.max(r.gemm_gflops[threads] or 0, threads * gf1)
  local bw = 0
  for t = 1, threads do bw = math.max(bw, r.read_gbs[t] or 0, r.read_gbs_cpu[t] or 0) end
  return g, bw
end

-- GPT-2's work, for the bounds: parameters read per decoding step (every weight
-- matrix and the tied LM head; not the position table) and FLOP per token.
function M.gpt2(V, L, C)
  local blocks = L * (12 * C * C + 13 * C)
  return { params = V * C + 1024 * C + blocks + 2 * C, matmul_params = L * 12 * C * C + V * C }
end

-- Run as a benchmark (not through dofile from another script): print the lines.
if arg and arg[0] and arg[0]:match("roofline%.lua$") then
  local r, why = M.measure()
  if not r then
    io.write(string.format('{"bench":"roofline","skipped":%q}\n', why))
    return
  end
  io.write(table.concat(r.lines, "\n"), "\n")
end

return M
