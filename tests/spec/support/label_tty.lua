-- tests/spec/support/label_tty.lua -- runs `rlaif label ARGS...` with the clock
-- of rlaif.core running SCALE times faster than the wall clock, so that a short
-- run against a fake server shows the progress line of a long one (ETA in
-- minutes or hours). Usage: rlaif tests/spec/support/label_tty.lua SCALE ARGS...
-- Test support only: the label command itself is unchanged.
local core = require "rlaif.core"
local scale = assert(tonumber(arg[1]), "label_tty.lua: SCALE first")
local real = core.clock
local t0 = real()
core.clock = function() return t0 + (real() - t0) * scale end
local main = require "rlaif.cli.label"
os.exit(main { table.unpack(arg, 2) })
