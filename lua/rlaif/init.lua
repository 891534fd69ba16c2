-- rlaif: Reinforcement Learning from AI Feedback, a C toolkit with embedded Lua.
-- `require "rlaif"` returns the whole API; `rlaif.core` is the C module, and each
-- field below is a Lua facade over it. Sets no globals.

local core = require "rlaif.core"

-- RLAIF_NUM_THREADS must mean what it says: a value the core would silently
-- ignore (and run on every core instead) is an error here.
do
  local v = os.getenv("RLAIF_NUM_THREADS")
  if v ~= nil and v ~= "" then
    local n = v:match("^%s*(%d+)%s*$")
    n = n and tonumber(n)
    if not n or n < 1 or n > 4095 then
      error(string.format("require \"rlaif\": RLAIF_NUM_THREADS must be an integer from 1 to 4095, got %q",
        v), 0)
    end
  end
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
}

--- rlaif.set_threads(n): threads for BLIS and the element-wise kernels.
rlaif.set_threads = core.set_threads
--- rlaif.get_threads() -> n
rlaif.get_threads = core.get_threads
--- rlaif.manual_seed(n): seed the generator of tensors made without a seed
rlaif.manual_seed = rlaif.tensor.manual_seed

--- rlaif.info() -> {version, blis_version, blis_arch, blis_arch_forced, threads, kernels, kernels_forced}
--- kernels: "avx512" | "scalar" (RLAIF_KERNELS=scalar forces the portable loops; kernels_forced)
function rlaif.info()
  return core.info()
end

return rlaif
