-- tests/spec/merge_spec.lua -- sharded labeling and `rlaif merge`: rlaif.labeler.merge
-- on hand-made files (every refusal, the torn line, the order), then the CLI as a
-- user runs it -- `rlaif label --shard I/N`, a kill -9 of one shard, the resume,
-- and a merge that is byte for byte the file one process writes -- and the same
-- under `mpirun -np 2`, where the run shards itself and rank 0 merges. The LLM is
-- the in-process fake (support/kill_client.lua, which can SIGKILL its process).
local helper = require "spec.helper"
local mpi = dofile("tests/spec/support/mpi.lua")
local rlaif = require "rlaif"
local labeler, dist = rlaif.labeler, rlaif.dist
local json = rlaif.core.json

local RLAIF = helper.root .. "/rlaif"

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function nlines(p)
  local n = 0
  local f = io.open(p, "rb")
  if not f then return 0 end
  for _ in f:lines() do n = n + 1 end
  f:close()
  return n
end

local function run(cmd)
  local out = helper.tmpname(".out")
  local _, _, code = os.execute(cmd .. " >" .. sh(out) .. " 2>&1 </dev/null")
  local text = helper.read_file(out) or ""
  os.remove(out)
  return text, code
end

-- n pairs in the generic pairs format (qualities in the text steer the fake judge)
local function write_pairs(path, n)
  local t = {}
  for i = 1, n do
    t[i] = json.encode { id = "p" .. i, prompt = "post " .. i, chosen = "a q" .. (i % 5), rejected = "b q" .. (i % 3) }
  end
  write(path, table.concat(t, "\n") .. "\n")
end

describe("labeler.merge #unit", function()
  local dir
  before_each(function()
    dir = helper.tmpname("_merge")
    os.execute("mkdir -p " .. sh(dir))
  end)
  after_each(function() os.execute("rm -rf " .. sh(dir)) end)

  local DATA = { { id = "a" }, { id = "b" }, { id = "c" }, { id = 4 } }
  local function rec(id, extra)
    local r = { id = id, config = "c1", status = "ok", p = 0.25, model = "m", template = "t" }
    for k, v in pairs(extra or {}) do r[k] = v end
    return json.encode(r) .. "\n"
  end

  it("joins files in the dataset's order, copying each record's line", function()
    write(dir .. "/1", rec(4) .. rec("a"))
    write(dir .. "/2", rec("c", { status = "error" }) .. rec("b", { p = 0.5 }) .. rec("b", { p = 0.75 }))
    local rep = labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/out")
    assert.are.equal(4, rep.written)
    assert.are.equal(1, rep.failed)
    assert.are.same({ 2, 2 }, rep.records)
    -- the last record of an id within a file wins, as a resume reads it
    assert.are.equal(rec("a") .. rec("b", { p = 0.75 }) .. rec("c", { status = "error" }) .. rec(4),
      helper.read_file(dir .. "/out"))
  end)

  it("writes nothing when a pair is missing, in two files, or not in the data", function()
    write(dir .. "/1", rec("a") .. rec("b"))
    write(dir .. "/2", rec("b") .. rec("c") .. rec("zz"))
    local rep = labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/out")
    assert.is_nil(rep.written)
    assert.are.same({ 4 }, rep.missing)
    assert.are.same({ { id = "b", files = { dir .. "/1", dir .. "/2" } } }, rep.duplicates)
    assert.are.same({ "zz" }, rep.extra)
    assert.is_nil(helper.read_file(dir .. "/out"))
    -- partial: the pairs there are, when only some are missing
    write(dir .. "/2", rec("c"))
    rep = labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/out", { partial = true })
    assert.are.equal(3, rep.written)
    assert.are.same({ 4 }, rep.missing)
  end)

  it("ignores and reports a torn last line (a killed writer)", function()
    write(dir .. "/1", rec("a") .. rec("b") .. rec("c") .. '{"id":4,"conf')
    local rep = labeler.merge({ dir .. "/1" }, DATA, dir .. "/out")
    assert.are.same({ dir .. "/1" }, rep.torn)
    assert.are.same({ 4 }, rep.missing)
    assert.is_nil(rep.written)
  end)

  it("refuses files of different configurations, an output that is an input, and overwriting", function()
    write(dir .. "/1", rec("a") .. rec("b"))
    write(dir .. "/2", rec("c", { config = "c2", template = "t2" }) .. rec(4))
    helper.raises(function() labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/out") end,
      "labeler.merge", "different configurations", 'template "t2" vs "t"')
    write(dir .. "/2", rec("c") .. rec(4))
    helper.raises(function() labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/2") end, "labeler.merge",
      dir .. "/2")
    write(dir .. "/out", "old\n")
    helper.raises(function() labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/out") end, "labeler.merge",
      "force")
    assert.are.equal("old\n", helper.read_file(dir .. "/out"))
    assert.are.equal(4, labeler.merge({ dir .. "/1", dir .. "/2" }, DATA, dir .. "/out", { force = true }).written)
    helper.raises(function() labeler.merge({ dir .. "/1" }, DATA, dir .. "/o", { forse = true }) end,
      "labeler.merge", "forse")
    write(dir .. "/3", "not json\n")
    helper.raises(function() labeler.merge({ dir .. "/3" }, DATA, dir .. "/o") end, "labeler.merge", dir .. "/3:1")
  end)

  it("label{shard} takes only its shard's pairs and refuses a file of another shard", function()
    local fake = dofile("tests/spec/support/fake_llm.lua")
    local list = {}
    for i = 1, 12 do list[i] = { id = "p" .. i, context = "post", a = "a q1", b = "b q2" } end
    local L = labeler.new { client = fake.new {}, template = "summarize-base" }
    local s = L:label(list, { out = dir .. "/s2", shard = { 2, 3 } })
    local want = 0
    for i = 1, 12 do if dist.shard_of("p" .. i, 3) == 2 then want = want + 1 end end
    assert.is_true(want > 0 and want < 12)
    assert.are.equal(want, s.ok)
    assert.are.equal(want, nlines(dir .. "/s2"))
    helper.raises(function() L:label(list, { out = dir .. "/s2", shard = { 1, 3 } }) end, "labeler.label",
      dir .. "/s2", "shard 1/3")
    helper.raises(function() L:label(list, { out = dir .. "/x", shard = { 4, 3 } }) end, "labeler.label", "shard",
      "4/3")
  end)
end)

describe("rlaif label --shard and rlaif merge #unit", function()
  local dir, data, one
  local BASE = " --format pairs --template summarize-base --quiet --client tests/spec/support/kill_client.lua"
  setup(function()
    dir = helper.tmpname("_shards")
    os.execute("mkdir -p " .. sh(dir))
    data, one = dir .. "/pairs.jsonl", dir .. "/one.jsonl"
    write_pairs(data, 40)
    local text, code = run(RLAIF .. " label --data " .. sh(data) .. BASE .. " --out " .. sh(one))
    assert(code == 0, text)
  end)
  teardown(function() os.execute("rm -rf " .. sh(dir)) end)

  local function label(args, env)
    return run((env or "") .. " " .. RLAIF .. " label --data " .. sh(data) .. BASE .. " " .. args)
  end

  it("a shard killed with kill -9 resumes, and the merge is the single-process file", function()
    local s1, s2, out = dir .. "/s1.jsonl", dir .. "/s2.jsonl", dir .. "/merged.jsonl"
    local text, code = label("--shard 1/2 --out " .. sh(s1))
    assert.are.equal(0, code, text)
    text, code = label("--shard 2/2 --out " .. sh(s2), "KILL_AFTER=9")
    assert.are.equal(137, code, text)   -- 128 + SIGKILL
    local cut = nlines(s2)
    assert.is_true(cut >= 3 and cut < 20, cut .. " records")
    -- the merge says what is missing and writes nothing
    text, code = run(RLAIF .. " merge " .. sh(out) .. " " .. sh(s1) .. " " .. sh(s2) .. " --data " .. sh(data))
    assert.are.equal(1, code, text)
    assert.matches("rlaif merge: %d+ of 40 pairs are missing: \"p%d+\"", text)
    assert.is_nil(helper.read_file(out))
    -- the resume labels only the rest of shard 2
    text, code = run(RLAIF .. " label --data " .. sh(data) .. BASE:gsub(" %-%-quiet", "") .. " --shard 2/2 --out " ..
      sh(s2))
    assert.are.equal(0, code, text)
    assert.matches(string.format("%%(%d already done%%)", cut), text)
    assert.are.equal(nlines(one), nlines(s1) + nlines(s2))
    text, code = run(RLAIF .. " merge " .. sh(out) .. " " .. sh(s2) .. " " .. sh(s1) .. " --data " .. sh(data))
    assert.are.equal(0, code, text)
    assert.matches("40 of 40 pairs from 2 file%(s%)", text)
    assert.are.equal(helper.read_file(one), helper.read_file(out))
    -- the same file twice: every pair in two files
    text, code = run(RLAIF .. " merge " .. sh(out) .. " " .. sh(s1) .. " " .. sh(s1) .. " " .. sh(s2) ..
      " --force --data " .. sh(data))
    assert.are.equal(1, code, text)
    assert.matches("pair%(s%) are in two files", text)
    assert.are.equal(helper.read_file(one), helper.read_file(out))   -- untouched
  end)

  it("names the bad flag and value, and never writes over an input", function()
    local text, code = label("--shard 3/2 --out " .. sh(dir .. "/x.jsonl"))
    assert.are.equal(2, code)
    assert.matches("rlaif label: %-%-shard must be I/N with 1 <= I <= N, got \"3/2\"", text)
    text, code = run(RLAIF .. " merge " .. sh(dir .. "/m.jsonl") .. " " .. sh(one))
    assert.are.equal(2, code)
    assert.matches("rlaif merge: OUT, at least one FILE and %-%-data are required", text)
    text, code = run(RLAIF .. " merge " .. sh(one) .. " " .. sh(one) .. " --data " .. sh(data) .. " --force")
    assert.are.equal(1, code)
    assert.matches("labeler.merge", text)
    assert.matches(one, text, 1, true)
    text, code = run(RLAIF .. " merge " .. sh(one) .. " " .. sh(dir .. "/s1.jsonl") .. " --data " .. sh(data))
    assert.are.equal(1, code)
    assert.matches("exists; pass %-%-force", text)
  end)
end)

describe("rlaif label under mpirun #unit #noasan", function()
  if not mpi.available then
    it("skipped", function() pending(mpi.why) end)
    return
  end

  it("shards itself; a rank killed with kill -9 ends the job, the rerun resumes and rank 0 merges", function()
    local dir = helper.tmpname("_mpilabel")
    os.execute("mkdir -p " .. sh(dir))
    local data, one, out = dir .. "/pairs.jsonl", dir .. "/one.jsonl", dir .. "/job.jsonl"
    write_pairs(data, 40)
    local base = " label --data " .. sh(data) .. " --format pairs --template summarize-base --quiet " ..
      "--client tests/spec/support/kill_client.lua --out "
    local text, code = run(RLAIF .. base .. sh(one))
    assert(code == 0, text)
    text, code = mpi.run(2, "-x KILL_RANK=1 -x KILL_AFTER=9 " .. RLAIF .. base .. sh(out), 60)
    assert.are_not.equal(0, code, text)
    assert.is_nil(helper.read_file(out))
    local s1, s2 = dir .. "/job.shard-1-of-2.jsonl", dir .. "/job.shard-2-of-2.jsonl"
    assert.is_true(nlines(s2) < nlines(s1), text)
    text, code = mpi.run(2, RLAIF .. base .. sh(out) .. " --export-pairs " .. sh(dir .. "/x.jsonl"), 60)
    assert.are.equal(0, code, text)
    assert.are.equal(helper.read_file(one), helper.read_file(out))
    assert.are.equal(40, nlines(dir .. "/x.jsonl"))
    -- a single-process file is not taken over by a job
    text, code = mpi.run(2, RLAIF .. base .. sh(one), 60)
    assert.are_not.equal(0, code)
    assert.matches("was not made by a run of 2 processes", text)
    os.execute("rm -rf " .. sh(dir))
  end)
end)
