-- tests/spec/eval_shard_spec.lua -- sharded evaluation: eval.win_rate{shard =,
-- shards =} with a function judge (the filter, the combine, every refusal), then
-- `rlaif eval --shard I/N` as a user runs it -- one shard killed with kill -9, the
-- combine refused naming the missing ids, the resume, and a combine that gives the
-- numbers and records of one process -- and the same under `mpirun -np 2`, where
-- each rank judges its shard and rank 0 combines. The LLM is the in-process fake
-- (support/kill_client.lua, which can SIGKILL its process).
local helper = require "spec.helper"
local mpi = dofile("tests/spec/support/mpi.lua")
local rlaif = require "rlaif"
local eval, dist = rlaif.eval, rlaif.dist
local json = rlaif.core.json

local RLAIF = helper.root .. "/rlaif"

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local out = helper.tmpname(".out")
  local _, _, code = os.execute(cmd .. " >" .. sh(out) .. " 2>&1 </dev/null")
  local text = helper.read_file(out) or ""
  os.remove(out)
  return text, code
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function lines(path)
  local t = {}
  local f = io.open(path, "rb")
  if not f then return t end
  for l in f:lines() do t[#t + 1] = l end
  f:close()
  return t
end

-- the records of a file by id (the last one of an id wins, as a resume reads it)
local function by_id(path)
  local t = {}
  for _, l in ipairs(lines(path)) do
    local r = json.decode(l)
    t[r.id] = r
  end
  return t
end

local function sorted_lines(path)
  local t = lines(path)
  table.sort(t)
  return t
end

-- results.json without what says how it was made (counts of this run, its paths)
local function numbers(path)
  local r = json.decode(assert(helper.read_file(path), path))
  for _, t in ipairs { r, table.unpack(r.policies or {}) } do
    t.judged, t.reused, t.records, t.shards = nil, nil, nil, nil
  end
  return r
end

-- n items: A's quality (i*7)%5 with a length growing with i, B's (i*3)%4
local function write_files(dir, n)
  local fa, fb = assert(io.open(dir .. "/a.jsonl", "w")), assert(io.open(dir .. "/b.jsonl", "w"))
  for i = 1, n do
    fa:write(json.encode { id = i, prompt = "post " .. i, response = "first q" .. (i * 7) % 5 ..
      string.rep(" long", i % 6) }, "\n")
    fb:write(json.encode { id = i, prompt = "post " .. i, response = "second q" .. (i * 3) % 4 }, "\n")
  end
  fa:close()
  fb:close()
end

describe("eval shards in process #unit", function()
  local dir
  before_each(function()
    dir = helper.tmpname("_evshard")
    os.execute("mkdir -p " .. sh(dir))
  end)
  after_each(function() os.execute("rm -rf " .. sh(dir)) end)

  local A, B = {}, {}
  for i = 1, 30 do
    A[i] = { id = "x" .. i, prompt = "p" .. i, response = string.rep("a", i % 7 + 1) }
    B[i] = { id = "x" .. i, prompt = "p" .. i, response = string.rep("b", i % 4 + 1) }
  end
  -- P(first is better) from the lengths: deterministic, position-free
  local function judge(_, first, second) return #first / (#first + #second) end
  local function win(extra)
    local o = { judge = judge, a = A, b = B, bootstrap = 100, quiet = true }
    for k, v in pairs(extra or {}) do o[k] = v end
    return eval.win_rate(o)
  end

  it("judges only a shard's items, and the shards combine to the numbers of one run", function()
    local full = win { out = dir .. "/one.jsonl" }
    local f1, f2 = dir .. "/s1.jsonl", dir .. "/s2.jsonl"
    local r1 = win { shard = { 1, 2 }, out = f1 }
    local r2 = win { shard = { 2, 2 }, out = f2 }
    assert.are.equal(30, r1.n + r2.n)
    assert.is_true(r1.n > 5 and r2.n > 5, r1.n .. " + " .. r2.n)
    for id in pairs(by_id(f1)) do assert.are.equal(1, dist.shard_of(id, 2), id) end
    for id in pairs(by_id(f2)) do assert.are.equal(2, dist.shard_of(id, 2), id) end
    local c = win { shards = { f1, f2 }, out = dir .. "/all.jsonl" }
    assert.are.equal(0, c.judged)
    assert.are.equal(30, c.reused)
    for _, k in ipairs { "n", "failed", "wins", "losses", "ties", "win_rate", "soft_win_rate", "lc_win_rate",
      "ci95", "lc_ci95" } do
      assert.are.same(full[k], c[k], k)
    end
    assert.are.same(sorted_lines(dir .. "/one.jsonl"), sorted_lines(dir .. "/all.jsonl"))
  end)

  it("refuses a missing item (naming it and its shard), a foreign record and a bad shard, writing nothing", function()
    local f1, f2 = dir .. "/s1.jsonl", dir .. "/s2.jsonl"
    win { shard = { 1, 2 }, out = f1 }
    win { shard = { 2, 2 }, out = f2 }
    -- drop the last record of shard 2
    local l2 = lines(f2)
    local gone = json.decode(table.remove(l2)).id
    write(f2, table.concat(l2, "\n") .. "\n")
    local out = dir .. "/all.jsonl"
    helper.raises(function() win { shards = { f1, f2 }, out = out } end, "eval.win_rate",
      "1 item(s) not judged in the shards", "shard 2/2: 1", json.encode(gone))
    assert.is_nil(helper.read_file(out))
    -- an absent shard file: all of its items are named missing
    helper.raises(function() win { shards = { f1, dir .. "/none.jsonl" }, out = out } end, "eval.win_rate",
      "shard 2/2: " .. #l2 + 1)
    -- shard 1's records given as shard 2's
    helper.raises(function() win { shards = { f2, f1 }, out = out } end, "eval.win_rate",
      "in the file of another shard")
    assert.is_nil(helper.read_file(out))
    helper.raises(function() win { shard = { 3, 2 } } end, "eval.win_rate", "option 'shard'", "{3, 2}")
    helper.raises(function() win { shard = "1/2" } end, "eval.win_rate", "shard")
  end)
end)

describe("rlaif eval --shard #unit", function()
  local dir, one
  local function cmd(out, extra)
    return string.format("%s eval --a %s/a.jsonl --b %s/b.jsonl --client tests/spec/support/kill_client.lua " ..
      "--logprobs 5 --bootstrap 200 --out %s %s", RLAIF, sh(dir), sh(dir), sh(out), extra or "")
  end
  setup(function()
    dir = helper.tmpname("_evshardcli")
    os.execute("mkdir -p " .. sh(dir))
    write_files(dir, 40)
    one = dir .. "/one"
    local text, code = run(cmd(one, "--quiet"))
    assert(code == 0, text)
  end)
  teardown(function() os.execute("rm -rf " .. sh(dir)) end)

  it("a shard killed with kill -9 resumes, and the combine is the single-process evaluation", function()
    local out = dir .. "/sharded"
    local text, code = run(cmd(out, "--shard 1/2 --quiet"))
    assert.are.equal(0, code, text)
    text, code = run("KILL_AFTER=5 " .. cmd(out, "--shard 2/2 --quiet"))
    assert.are.equal(137, code, text)   -- 128 + SIGKILL
    local have = by_id(out .. "/records.shard-2-of-2.jsonl")
    local missing = {}
    for i = 1, 40 do
      if dist.shard_of(i, 2) == 2 and not have[i] then missing[#missing + 1] = i end
    end
    assert.is_true(#missing > 0 and next(have) ~= nil, #missing .. " missing")
    -- the combine names what is missing, judges nothing and writes no result
    text, code = run(cmd(out))
    assert.are.equal(1, code, text)
    assert.matches(string.format("rlaif eval: eval.win_rate: %d item%%(s%%) not judged in the shards %%(shard " ..
      "2/2: %d; rerun those shards%%): %s", #missing, #missing, table.concat(missing, ", ", 1,
        math.min(#missing, 20))), text)
    assert.is_nil(helper.read_file(out .. "/records.jsonl"))
    assert.is_nil(helper.read_file(out .. "/results.json"))
    -- the resume judges only the rest of shard 2
    text, code = run(cmd(out, "--shard 2/2"))
    assert.are.equal(0, code, text)
    local n2 = 0
    for i = 1, 40 do if dist.shard_of(i, 2) == 2 then n2 = n2 + 1 end end
    assert.matches(string.format("%d judged, %d reused", #missing, n2 - #missing), text)
    text, code = run(cmd(out))
    assert.are.equal(0, code, text)
    assert.matches("0 judged, 40 reused %(2 shards combined%)", text)
    assert.matches("a vs b%s+40%s+0%s+", text)
    assert.are.same(numbers(one .. "/results.json"), numbers(out .. "/results.json"))
    assert.are.same(sorted_lines(one .. "/records.jsonl"), sorted_lines(out .. "/records.jsonl"))
    -- a shard of another count into this directory is refused
    text, code = run(cmd(out, "--shard 1/3"))
    assert.are.equal(1, code, text)
    assert.matches("holds shards of 2, not of 3", text)
  end)

  it("the harmless rate of two policies combines too", function()
    local function hcmd(out, extra)
      return cmd(out, "--harmless --ref-length 20 --quiet " .. (extra or ""))
    end
    local h1, hs = dir .. "/h1", dir .. "/hs"
    local text, code = run(hcmd(h1))
    assert.are.equal(0, code, text)
    for _, s in ipairs { "1/2", "2/2" } do
      text, code = run(hcmd(hs, "--shard " .. s))
      assert.are.equal(0, code, text)
    end
    text, code = run(hcmd(hs))
    assert.are.equal(0, code, text)
    assert.are.same(numbers(h1 .. "/results.json"), numbers(hs .. "/results.json"))
    assert.are.same(sorted_lines(h1 .. "/records_b.jsonl"), sorted_lines(hs .. "/records_b.jsonl"))
  end)

  it("names a bad --shard and refuses model directories", function()
    local text, code = run(cmd(dir .. "/x", "--shard 0/2"))
    assert.are.equal(2, code)
    assert.matches("rlaif eval: %-%-shard must be I/N with 1 <= I <= N, got \"0/2\"", text)
    os.execute("mkdir -p " .. sh(dir .. "/model") .. " && echo '{}' > " .. sh(dir .. "/model/config.json"))
    text, code = run(string.format("%s eval --a %s --b %s/b.jsonl --prompts %s/a.jsonl --client " ..
      "tests/spec/support/kill_client.lua --out %s --shard 1/2", RLAIF, sh(dir .. "/model"), sh(dir), sh(dir),
      sh(dir .. "/x")))
    assert.are.equal(2, code)
    assert.matches("%-%-a " .. dir .. "/model is a model directory", text)
  end)
end)

describe("rlaif eval under mpirun #unit #noasan", function()
  if not mpi.available then
    it("skipped", function() pending(mpi.why) end)
    return
  end

  it("each rank judges its shard; a rank killed with kill -9 ends the job, the rerun resumes and rank 0 " ..
    "combines", function()
    local dir = helper.tmpname("_mpieval")
    os.execute("mkdir -p " .. sh(dir))
    write_files(dir, 40)
    local base = string.format(" eval --a %s/a.jsonl --b %s/b.jsonl --client tests/spec/support/kill_client.lua " ..
      "--logprobs 5 --bootstrap 200 --quiet --out ", sh(dir), sh(dir))
    local text, code = run(RLAIF .. base .. sh(dir .. "/one"))
    assert(code == 0, text)
    local out = dir .. "/job"
    text, code = mpi.run(2, "-x KILL_RANK=1 -x KILL_AFTER=5 " .. RLAIF .. base .. sh(out), 60)
    assert.are_not.equal(0, code, text)
    assert.is_nil(helper.read_file(out .. "/results.json"))
    text, code = mpi.run(2, RLAIF .. base .. sh(out), 60)
    assert.are.equal(0, code, text)
    assert.matches("a vs b%s+40%s+0%s+", text)
    assert.are.same(numbers(dir .. "/one/results.json"), numbers(out .. "/results.json"))
    assert.are.same(sorted_lines(dir .. "/one/records.jsonl"), sorted_lines(out .. "/records.jsonl"))
    os.execute("rm -rf " .. sh(dir))
  end)
end)
