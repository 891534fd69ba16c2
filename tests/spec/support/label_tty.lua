-- tests/spec/support/label_tty.lua -- runs `rlaif label ARGS...` (with --api: the
-- real HTTP client) on a clock that advances STEP seconds per answer the client
-- delivers, so a short run against a fake server shows, deterministically, the
-- progress line of a long one: after the first of N pairs (two answers) the
-- time left is (N - 1) * 2 * STEP. Usage:
--   rlaif tests/spec/support/label_tty.lua STEP ARGS...
-- Test support only: the label command itself is unchanged.
local core = require "rlaif.core"
local llm = require "rlaif.llm"
local step = assert(tonumber(arg[1]), "label_tty.lua: STEP first")
local answered = 0
core.clock = function() return 1000 + answered * step end
local make = llm.client
llm.client = function(o)
  local c = make(o)
  local many = c.complete_many
  c.complete_many = function(self, reqs, opts)
    local o2 = {}
    for k, v in pairs(opts or {}) do o2[k] = v end
    local cb = o2.on_result
    o2.on_result = function(i, r)
      answered = answered + 1
      if cb then cb(i, r) end
    end
    return many(self, reqs, o2)
  end
  return c
end
local main = require "rlaif.cli.label"
os.exit(main { table.unpack(arg, 2) })
