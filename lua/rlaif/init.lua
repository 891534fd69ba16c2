-- rlaif: Reinforcement Learning from AI Feedback, a C toolkit with embedded Lua.
-- `require "rlaif"` returns the whole API; `rlaif.core` is the C module, and each
-- field below is a Lua facade over it. Sets no globals.

local core = require "rlaif.core"

-- RLAIF_NUM_THREADS must mean what it says: a value the core would silently
-- ignore (and run on every core instead) is an error here (the executable
-- refuses it before anything runs, rlaif --version included).
do
  local ok, err = core.check_env()
  if not ok then error("require \"rlaif\": " .. err, 0) end
end

local rlaif = {
  core = core,
  version = core.version,
  tensor = require "rlaif.tensor",
  model = require "rlaif.model",
  train = require "rlaif.train",
  tokenizer = require "rlaif.tokenizer",
  llm = require "rlaif.llm",
  prompts = require "rlaif.prompts",
  data = require "rlaif.data",
  labeler = require "rlaif.labeler",
  rl = require "rlaif.rl",
  metrics = require "rlaif.metrics",
  eval = require "rlaif.eval",
  plot = require "rlaif.plot",
  report = require "rlaif.report",
  serve = require "rlaif.serve",
  sim = require "rlaif.sim",
  dist = require "rlaif.dist",
}

--- rlaif.set_threads(n): threads for BLIS and the element-wise kernels.
rlaif.set_threads = core.set_threads
--- rlaif.get_threads() -> n
rlaif.get_threads = core.get_threads
--- rlaif.manual_seed(n): seed the generator of tensors made without a seed
rlaif.manual_seed = rlaif.tensor.manual_seed

--- rlaif.info() -> {version, blis_version, blis_arch, blis_arch_forced, threads, kernels, kernels_forced,
---   mpi, mpi_library, rank, size}
--- kernels: "avx512" | "scalar" (RLAIF_KERNELS=scalar forces the portable loops; kernels_forced);
--- mpi: MPI is built in (rlaif.dist); rank, size: this process in an mpirun job (0 of 1 alone)
function rlaif.info()
  return core.info()
end

return rlaif
