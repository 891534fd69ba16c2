-- tests/spec/align_cli_spec.lua -- `rlaif align` over label files: the Table-2
-- style summary keeps two-order and one-order (--no-swap) runs of the same
-- template apart, with alignment values computed here by hand.
local helper = require "spec.helper"

local ROOT = assert(io.popen("pwd")):read("l")

local function write(path, lines)
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end

local function record(id, p, human, two_orders)
  local p_ba = two_orders and string.format(',"p_ba":%.17g', p) or ""
  return string.format('{"id":%d,"p":%.17g,"p_ab":%.17g%s,"human":%d,"status":"ok","template":"summarize-base",' ..
    '"shots":0,"task":"summarization","model":"m","tokens":{"prompt":10,"completion":1}}', id, p, p, p_ba, human)
end

describe("rlaif align #unit", function()
  it("prints one row per prompt configuration, one-order runs apart", function()
    local swap, noswap = helper.tmpname(".jsonl"), helper.tmpname(".jsonl")
    -- aligned when (p > 0.5) == (human chose the first response): 3 of 4, then 2 of 4
    write(swap, { record(1, 0.9, 1, true), record(2, 0.2, 2, true), record(3, 0.7, 2, true),
                  record(4, 0.6, 1, true) })
    write(noswap, { record(1, 0.9, 1, false), record(2, 0.8, 2, false), record(3, 0.3, 2, false),
                    record(4, 0.1, 1, false) })
    local p = assert(io.popen(("%s/rlaif align --labels %s --labels %s --bootstrap 0 2>&1"):format(ROOT, swap, noswap)))
    local out = p:read("a")
    p:close()
    os.remove(swap)
    os.remove(noswap)
    assert.matches("summarize%-base 0%-shot%s+75%.0\n", out)
    assert.matches("summarize%-base 0%-shot one order%s+50%.0\n", out)
  end)
end)
