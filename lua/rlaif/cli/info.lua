-- lua/rlaif/cli/info.lua -- `rlaif info`: print the runtime configuration
-- (versions, BLIS kernels, threads, where the Lua files were loaded from).
--
-- A subcommand module returns a function main(args): args holds the
-- arguments after the command name, and the integer it returns is the exit
-- status. It is not a library; require "rlaif" for the API.

local rlaif = require "rlaif"

local usage = "usage: rlaif info\nPrints rlaif, Lua and BLIS versions, BLIS kernels and threads.\n"

local function main(args)
  local o, status = require("rlaif.opts").main_args("info", args, {}, usage)
  if not o then return status end
  local info = rlaif.info()
  local chooser = info.blis_arch_forced and "selected by rlaif" or "chosen by BLIS or BLIS_ARCH_TYPE"
  io.write(string.format("rlaif %s\n", tostring(info.version)))
  io.write(string.format("%s\n", _VERSION))
  io.write(string.format("BLIS %s, kernel configuration: %s (%s)\n",
    tostring(info.blis_version), tostring(info.blis_arch), chooser))
  if info.blis_note then io.write("note: ", info.blis_note, "\n") end
  io.write(string.format("kernels: %s (%s)\n", tostring(info.kernels),
    info.kernels_forced and "forced by RLAIF_KERNELS=scalar" or "chosen for this CPU"))
  if info.kernels_note then io.write("note: ", info.kernels_note, "\n") end
  io.write(string.format("threads: %s\n", tostring(info.threads)))
  io.write(string.format("lua files: %s\n",
    package.searchpath("rlaif", package.path) or "(not found)"))
  return 0
end

return main
