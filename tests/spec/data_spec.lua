-- Specs for rlaif.data (dataset readers) and the gz/json bindings under it.
local data = require "rlaif.data"
local core = require "rlaif.core"
local helper = require "spec.helper"
local json, gz = core.json, core.gz

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

describe("rlaif.core.json #unit", function()
  it("encodes integers exactly, floats round-trip, keys sorted", function()
    assert.equal('{"a":1,"b":0.10000000000000001,"c":[1,2],"d":2.0,"e":9007199254740993}',
      json.encode { e = 9007199254740993, d = 2.0, c = { 1, 2 }, b = 0.1, a = 1 })
    local x = 0.1 + 0.2
    assert.equal(x, json.decode(json.encode(x)))
    assert.equal("integer", math.type(json.decode("3")))
    assert.equal("float", math.type(json.decode("3.5")))
    assert.equal("[]", json.encode(json.array {}))
    assert.equal(json.null, json.decode("null"))
  end)

  it("writes integers, floats and strings exactly", function()
    assert.equal('[9223372036854775807,-9223372036854775808,0,-7,-0.0,1e+22,100.0,0.5]',
      json.encode { math.maxinteger, math.mininteger, 0, -7, -0.0, 1e22, 100.0, 0.5 })
    assert.equal('"a\\"b\\\\\\n\\t\\u0001\\u007f\u{e9}"', json.encode("a\"b\\\n\t\1\127\u{e9}"))
    assert.equal('{\n  "a": [\n    1,\n    {\n      "b": true\n    }\n  ]\n}', json.encode({ a = { 1, { b = true } } },
      { indent = true }))
  end)

  it("sorts the keys of small and large objects and handles long output", function()
    for _, n in ipairs { 1, 17, 24, 25, 40, 300 } do
      local t, names = {}, {}
      for i = 1, n do
        local k = "k" .. (i * 7919 % 1009)
        t[k] = i
        names[#names + 1] = k
      end
      table.sort(names)
      local want = {}
      for _, k in ipairs(names) do want[#want + 1] = string.format("%q:%d", k, t[k]) end
      assert.equal("{" .. table.concat(want, ",") .. "}", json.encode(t))
    end
    local big = string.rep("x", 5000)
    assert.equal('{"a":"' .. big .. '","b":[1,{"c":"' .. big .. '"}]}', json.encode { b = { 1, { c = big } }, a = big })
    -- an error once the output has left its first buffer still names the path
    assert.has_error(function() json.encode { a = big, b = { c = { 1, 0 / 0 } } } end, "json.encode: NaN at .b.c[2]")
    assert.has_error(function() json.encode { a = big, b = { 1, x = 2 } } end,
      "json.encode: table mixes array and object keys (object keys must be strings) at .b")
  end)

  it("names the offending field and reports syntax errors as nil, msg", function()
    assert.has_error(function() json.encode { a = { b = { 1, 0 / 0 } } } end, "json.encode: NaN at .a.b[2]")
    local v, err = json.decode('{"a": }')
    assert.is_nil(v)
    assert.equal("json.decode: syntax error at byte 7", err)
  end)
end)

describe("rlaif.data #unit", function()
  local tmp
  before_each(function() tmp = helper.tmpname(".jsonl") end)
  after_each(function() os.remove(tmp) os.remove(tmp .. ".gz") end)

  it("splits HH transcripts at the last assistant turn and joins them back", function()
    local t = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: see you"
    local ctx, r = data.split_hh(t)
    assert.equal("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye", ctx)
    assert.equal("see you", r)
    assert.equal(t, data.join_hh(ctx, r))
  end)

  it("reads pairs with user-named fields, gzip too, and ids from the data or the line", function()
    write(tmp, '{"q":"c1","good":"a","bad":"b","key":"k1"}\n\n{"q":"c2","good":"a2","bad":"b2","key":"k2"}\n')
    os.execute("gzip -kf " .. tmp)
    for _, p in ipairs { tmp, tmp .. ".gz" } do
      local recs = data.read(p, { format = "pairs", fields = { prompt = "q", chosen = "good", rejected = "bad",
        id = "key" } })
      assert.equal(2, #recs)
      assert.same({ "k2", "c2", "a2", "b2", 1, 3 }, { recs[2].id, recs[2].context, recs[2].a, recs[2].b,
        recs[2].human, recs[2].line })
    end
    write(tmp, '{"prompt":"p","chosen":"a","rejected":"b"}\n')
    assert.equal(1, data.read(tmp, { format = "pairs" })[1].id)
  end)

  it("stops at a malformed line with file and line, or skips and reports it", function()
    write(tmp, '{"chosen":"\\n\\nHuman: x\\n\\nAssistant: a","rejected":"\\n\\nHuman: x\\n\\nAssistant: b"}\n' ..
      '{"chosen": 1, "rejected": "x"}\n{bad json\n')
    local ok, err = pcall(data.read, tmp, { format = "hh" })
    assert.is_false(ok)
    assert.equal(tmp .. ":2: field 'chosen' is a number, expected a string", err)
    local recs, st = data.read(tmp, { format = "hh", skip_bad = true })
    assert.equal(1, #recs)
    assert.equal(2, st.bad)
    assert.equal(tmp .. ":3: invalid JSON: syntax error at byte 3", st.messages[2])
  end)

  it("detects a corrupt gzip stream", function()
    write(tmp, string.rep('{"prompt":"p","chosen":"a","rejected":"b"}\n', 2000))
    os.execute("gzip -kf " .. tmp)
    local f = io.open(tmp .. ".gz", "rb")
    local s = f:read("a")
    f:close()
    write(tmp .. ".gz", s:sub(1, #s // 2))
    local ok, err = pcall(data.read, tmp .. ".gz", { format = "pairs" })
    assert.is_false(ok)
    assert.matches("corrupt or truncated gzip data", err)
    local r = gz.open(tmp .. ".gz")
    assert.equal("userdata", type(r))
    r:close()
    assert.has_error(function() r:read() end, "attempt to use a closed gz reader")
  end)

  it("reads the OpenAI comparison record", function()
    local p = helper.shared("data/openai-tldr/comparison-example.json")
    if not p then return pending("../shared absent") end
    local r = data.read(p, { format = "comparisons" })[1]
    assert.equal(2, r.human)          -- choice 1 -> the second summary
    assert.equal(8, r.confidence)
    assert.equal("legaladvice", r.fields.subreddit)
    assert.matches("^ car accident", r.a)
  end)

  it("loads the HH harmless test split and round-trips every transcript", function()
    local p = helper.shared("data/hh-rlhf/harmless-base-test.jsonl.gz")
    if not p then return pending("../shared absent") end
    local r = gz.open(p)
    local n = 0
    local reader = data.open(p, { format = "hh" })
    for line in r:lines() do
      local o = json.decode(line)
      local rec = reader:next()
      n = n + 1
      assert.equal(n, rec.id)
      assert.equal(o.chosen, data.join_hh(rec.context, rec.a))
      assert.equal(o.rejected, data.join_hh(rec.context_b or rec.context, rec.b))
    end
    assert.is_nil(reader:next())
    assert.equal(2312, n)
  end)
end)
