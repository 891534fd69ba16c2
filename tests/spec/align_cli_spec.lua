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

local function align(args)
  local out = helper.tmpname(".out")
  local _, _, code = os.execute(("%s/rlaif align %s >%s 2>&1"):format(ROOT, args, out))
  local text = helper.read_file(out)
  os.remove(out)
  return text, code
end

describe("rlaif align reports what it sees #unit", function()
  local a, b
  before_each(function() a, b = helper.tmpname(".jsonl"), helper.tmpname(".jsonl") end)
  after_each(function() os.remove(a) os.remove(b) end)

  it("keeps two files of the same template apart, numbered as in the details", function()
    write(a, { record(1, 0.9, 1, true), record(2, 0.2, 2, true), record(3, 0.7, 2, true), record(4, 0.6, 1, true) })
    write(b, { record(1, 0.9, 1, true), record(2, 0.8, 2, true), record(3, 0.3, 2, true), record(4, 0.1, 1, true) })
    local out, code = align(("--labels %s --labels %s --bootstrap 0"):format(a, b))
    assert.equal(0, code, out)
    assert.matches("summarize%-base 0%-shot %(1%)%s+75%.0\n", out)
    assert.matches("summarize%-base 0%-shot %(2%)%s+50%.0\n", out)
    assert.matches("1%. summarize%-base 0%-shot", out)
    assert.matches("2%. summarize%-base 0%-shot", out)
  end)

  it("counts ties and warns when the labels carry no preference or mix configurations", function()
    write(a, { record(1, 0.5, 1, true), record(2, 0.505, 2, true), record(3, 0.497, 2, true) })
    local out, code = align(("--labels %s --bootstrap 0"):format(a))
    assert.equal(0, code, out)
    assert.matches("warning: " .. a:gsub("%p", "%%%0") .. ": all 3 labels are within 0%.01 of 0%.5: the labeler " ..
      "expresses no preference", out)
    assert.matches("ties", out)
    local row = out:match("\n(1%. summarize[^\n]*)")
    assert.matches("  33%.3  +%-  +1  ", row)   -- z_acc 1/3 (the tie counts as not aligned), no CI, 1 tie
    write(b, { record(1, 0.9, 1, true), (record(2, 0.2, 2, true):gsub('"model":"m"', '"model":"other"')) })
    out = align(("--labels %s --bootstrap 0"):format(b))
    assert.matches("warning: " .. b:gsub("%p", "%%%0") .. " mixes 2 labeling configurations", out)
  end)

  it("checks its flags: --bootstrap with a cap, --confidence spellings shared with Lua", function()
    write(a, { record(1, 0.9, 1, true) })
    for _, case in ipairs {
      { "--bootstrap abc", 'rlaif align: option --bootstrap must be an integer >= 0 and <= 100000, got "abc"' },
      { "--bootstrap -1", 'rlaif align: option --bootstrap must be an integer >= 0 and <= 100000, got "-1"' },
      { "--bootstrap 1e9", 'rlaif align: option --bootstrap must be an integer >= 0 and <= 100000, got "1e9"' },
      { "--confidence hig", 'rlaif align: option --confidence must be "high", "all" or a list of confidence ' ..
        'values like 1,2,8,9, got "hig"' },
      { "--bootstrp 3", "rlaif align: unknown option --bootstrp (did you mean --bootstrap?)" },
    } do
      local out, code = align(("--labels %s %s"):format(a, case[1]))
      assert.equal(2, code, out)
      assert.equal(case[2], out:match("^[^\n]*"))
    end
    local metrics = require "rlaif.metrics"
    assert.equal(metrics.confidence_set("high"), metrics.confidence_set(true))
    assert.same({ [1] = true, [9] = true }, metrics.confidence_set("1,9"))
    assert.same(metrics.confidence_set("1,9"), metrics.confidence_set({ 1, 9 }))
    assert.is_false(metrics.confidence_set("all"))
    local recs = { { id = 1, status = "ok", p = 0.9, human = 1, confidence = 9 },
                   { id = 2, status = "ok", p = 0.9, human = 1, confidence = 5 } }
    assert.equal(1, metrics.alignment(recs, { confidence = "high", bootstrap = 0 }).n)
    assert.equal(2, metrics.alignment(recs, { confidence = "all", bootstrap = 0 }).n)
    assert.has_error(function() metrics.alignment(recs, { bootstrap = 1e9 }) end,
      "metrics.alignment: option 'bootstrap' must be an integer >= 0 and <= 100000, got 1000000000")
    assert.has_error(function() metrics.alignment(recs, { confidence = "hig" }) end,
      "metrics.alignment: option 'confidence' must be \"high\", \"all\" or a list of confidence values like " ..
      "1,2,8,9, got \"hig\"")
  end)
end)
