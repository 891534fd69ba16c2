-- tests/spec/support/mpi.lua -- run commands under mpirun from a spec.
--
--   local mpi = dofile("tests/spec/support/mpi.lua")
--   if not mpi.available then pending(mpi.why) end
--   local out, code = mpi.run(2, "./rlaif script.lua")   -- stdout+stderr, exit status
--
-- The command is $MPIRUN, else OpenMPI's mpirun set up for a test machine: as root
-- too, more ranks than cores allowed, no pinning (other work shares the cores), and
-- shared memory only (no network interfaces probed, no single-copy ptrace tricks
-- that containers forbid) -- the same as the Makefile's MPIRUN.
local helper = require "spec.helper"

local M = {}

M.cmd = os.getenv("MPIRUN") or ("mpirun --allow-run-as-root --oversubscribe --bind-to none --mca pml ob1 " ..
  "--mca btl self,vader --mca btl_vader_single_copy_mechanism none")

local built = require("rlaif.core").info().mpi
local has_mpirun = os.execute("command -v mpirun >/dev/null 2>&1") == true
M.available = built and has_mpirun
M.why = not built and "this build has no MPI (make WITH_MPI=0, or OpenMPI is not installed)"
  or (not has_mpirun and "mpirun is not installed") or nil

--- run(np, cmdline [, timeout_s = 300]) -> output (stdout and stderr), exit status
function M.run(np, cmd, timeout)
  local out = helper.tmpname(".mpi")
  local line = string.format("timeout -k 5 %d %s -np %d %s >%s 2>&1 </dev/null", timeout or 300, M.cmd, np, cmd, out)
  local _, _, code = os.execute(line)
  local text = helper.read_file(out) or ""
  os.remove(out)
  return text, code
end

return M
