-- tests/spec/dist_spec.lua -- rlaif.dist: a single process is rank 0 of 1 and
-- every call works; under `mpirun -np 2` the operations reach across the ranks
-- (support/dist_ops.lua checks them from inside the job), a failing rank ends
-- the job instead of leaving the other waiting, and the SFT, reward-model and RL
-- trainers give the same numbers as one process, to 1e-4 relative
-- (support/dist_train.lua). The mpirun parts start ./rlaif, so they are not
-- rerun under ASan (make test-c runs the C collectives under mpirun and ASan).
local helper = require "spec.helper"
local mpi = dofile("tests/spec/support/mpi.lua")
local rlaif = require "rlaif"
local dist, T = rlaif.dist, rlaif.tensor
local json = rlaif.core.json

local RLAIF = helper.root .. "/rlaif"

describe("rlaif.dist in one process #unit", function()
  it("is rank 0 of 1, and says whether MPI is built in", function()
    assert.are.equal(0, dist.rank())
    assert.are.equal(1, dist.size())
    assert.is_true(dist.is_root())
    local info = dist.info()
    assert.is_false(info.active)
    assert.are.equal(1, info.size)
    assert.are.equal(rlaif.info().mpi, info.built)
    assert.are.equal(0, rlaif.info().rank)
    if info.built then assert.truthy(rlaif.info().mpi_library:find("MPI", 1, true)) end
  end)

  it("rlaif --version says whether MPI is built in", function()
    local f = assert(io.popen(RLAIF .. " --version 2>&1"))
    local out = f:read("a")
    f:close()
    if dist.info().built then
      assert.matches("\nMPI: Open MPI v[%d.]+ %(built in; one process, not started by mpirun%)\n", out)
    else
      assert.matches("\nMPI: not built in %(one process%)\n", out)
    end
  end)

  it("runs every collective as a group of one", function()
    local t = T.new { 1, -2, 3 }
    for _, op in ipairs { "sum", "mean", "max", "min" } do
      assert.are.equal(t, dist.allreduce(t, op))
      assert.are.same({ 1, -2, 3 }, t:totable())
    end
    assert.are.same({ 1, -2, 3 }, dist.broadcast(t, 0):totable())
    dist.barrier()
    assert.are.same({ { a = { 1, "x" } } }, dist.gather({ a = { 1, "x" } }))
    assert.are.same({ 5 }, dist.allgather(5))
    assert.are.same({ k = true }, dist.broadcast_value({ k = true }))
    assert.are.same({ 0.5, 3 }, dist.sum { 0.5, 3 })
    assert.are.same({ 2 }, dist.allreduce_numbers({ 2 }, "min"))
    local m = rlaif.model.new { arch = "gpt2", vocab_size = 20, n_layer = 1, n_head = 2, d_model = 8, max_seq = 8,
      seed = 1 }
    local before = m:param("transformer.wte.weight"):sum():item()
    dist.broadcast_model(m)
    dist.allreduce_grads(m, "mean")
    assert.are.equal(before, m:param("transformer.wte.weight"):sum():item())
    local g = dist.group()
    assert.is_false(g.active)
    assert.are.same({ 1, 7 }, { g:block(7) })
    assert.is_true(g:any(true))
    assert.are.same({ 4, 5 }, g:sum { 4, 5 })
  end)

  it("splits work: contiguous blocks, and shards by a hash of the id", function()
    -- blocks of 7 items over 3 ranks: 2, 2, 3; an empty share when items < ranks
    assert.are.same({ 1, 2 }, { dist.block(7, 0, 3) })
    assert.are.same({ 3, 4 }, { dist.block(7, 1, 3) })
    assert.are.same({ 5, 7 }, { dist.block(7, 2, 3) })
    local lo, hi = dist.block(1, 0, 2)
    assert.is_true(hi < lo)
    -- FNV-1a 64 of the id's JSON text, floor-mod n, as Python computes it:
    --   h = 14695981039346656037; for b in json.dumps(id).encode(): h = ((h ^ b) * 1099511628211) % 2**64
    --   (signed 64-bit) % n + 1
    local want = { p1 = { 1, 2, 1, 3 }, p2 = { 2, 3, 4, 1 }, abc = { 2, 1, 4, 7 } }
    for id, w in pairs(want) do
      assert.are.same(w, { dist.shard_of(id, 2), dist.shard_of(id, 3), dist.shard_of(id, 4), dist.shard_of(id, 7) })
    end
    assert.are.same({ 1, 2, 3, 1 }, { dist.shard_of(7, 2), dist.shard_of(7, 3), dist.shard_of(7, 4),
      dist.shard_of(7, 7) })
    assert.are_not.equal(dist.shard_of(7, 7), dist.shard_of("7", 7))   -- 7 and "7" are different ids
    assert.are.same({ 2, 4 }, { dist.parse_shard("2/4") })
  end)

  it("names the function and the bad value", function()
    helper.raises(function() dist.allreduce(T.zeros { 2 }, "avg") end, "dist.allreduce", "avg")
    helper.raises(function() dist.allreduce({ 1 }) end, "dist.allreduce: expected a tensor, got table")
    helper.raises(function() dist.broadcast(T.zeros { 2 }, 1) end, "dist.broadcast: root must be a rank from 0 to 0",
      "got 1")
    helper.raises(function() dist.gather(0 / 0) end, "dist.gather", "NaN")
    helper.raises(function() dist.allreduce_grads({}) end, "dist.allreduce_grads: expected an rlaif model")
    helper.raises(function() dist.allreduce_numbers({ 1, "x" }) end, "dist.allreduce_numbers", "element 2",
      "string")
    helper.raises(function() dist.parse_shard("3/2", "rlaif label") end, "rlaif label: --shard", "3/2")
    helper.raises(function() dist.parse_shard("0/2") end, "--shard must be I/N", "0/2")
    helper.raises(function() dist.allreduce(T.zeros { 1, 2 }:expand { 3, 2 }) end, "dist.allreduce", "expanded")
  end)
end)

describe("rlaif.dist under mpirun #unit #noasan", function()
  if not mpi.available then
    it("skipped", function() pending(mpi.why) end)
    return
  end

  it("reduces, broadcasts and gathers across two ranks, one thread each", function()
    local out, code = mpi.run(2, RLAIF .. " tests/spec/support/dist_ops.lua")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("ok 0/2 1", 1, true), out)
    assert.truthy(out:find("ok 1/2 1", 1, true), out)
  end)

  it("says where each process is in rlaif --version", function()
    local out, code = mpi.run(2, RLAIF .. " --version")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("rank 1 of 2", 1, true), out)
    assert.truthy(out:find("threads: 1\n", 1, true), out)
  end)

  it("ends the job when one rank fails, instead of leaving the other waiting", function()
    local script = helper.tmpname(".lua")
    local f = assert(io.open(script, "wb"))
    f:write('local d = require("rlaif").dist\nif d.rank() == 1 then error("boom on rank 1") end\n',
      'd.barrier()\nprint("rank 0 passed the barrier")\n')
    f:close()
    local t0 = os.time()
    local out, code = mpi.run(2, RLAIF .. " " .. script, 60)
    os.remove(script)
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code)   -- not the timeout
    assert.is_true(os.time() - t0 < 30)
    assert.truthy(out:find("boom on rank 1", 1, true), out)
    assert.falsy(out:find("passed the barrier", 1, true), out)
  end)
end)

describe("data-parallel trainers #unit #noasan", function()
  if not mpi.available then
    it("skipped", function() pending(mpi.why) end)
    return
  end

  local function read_json(p)
    local s = assert(helper.read_file(p), "no result file " .. p)
    return json.decode(s)
  end

  -- every number of a and b, matched by path, within 1e-4 relative
  local function compare(a, b, path, bad)
    if type(a) == "table" then
      assert(type(b) == "table", path .. ": missing")
      for k, v in pairs(a) do compare(v, b[k], path .. "." .. tostring(k), bad) end
      for k in pairs(b) do if a[k] == nil then bad[#bad + 1] = path .. "." .. tostring(k) .. ": extra" end end
    elseif type(a) == "number" then
      if type(b) ~= "number" then
        bad[#bad + 1] = path .. ": missing"
      elseif math.abs(a - b) > 1e-4 * math.max(math.abs(a), math.abs(b), 1e-3) then
        bad[#bad + 1] = string.format("%s: %.9g vs %.9g", path, a, b)
      end
    end
  end

  local one, two
  setup(function()
    local dir = helper.tmpname("_dp")
    os.execute("mkdir -p " .. dir .. "/one " .. dir .. "/two")
    local script = helper.root .. "/tests/spec/support/dist_train.lua"
    -- one process without mpirun, then two under it
    os.execute(RLAIF .. " " .. script .. " " .. dir .. "/one.json " .. dir .. "/one >/dev/null 2>&1")
    local out, code = mpi.run(2, RLAIF .. " " .. script .. " " .. dir .. "/two.json " .. dir .. "/two")
    assert(code == 0, out)
    one, two = read_json(dir .. "/one.json"), read_json(dir .. "/two.json")
    os.execute("rm -rf " .. dir)
  end)

  it("mpirun -np 2 gives one process's SFT, reward-model, PPO and GRPO numbers (1e-4)", function()
    assert.are.equal(1, one.size)
    assert.are.equal(2, two.size)
    one.size, two.size = nil, nil
    assert.are.equal(12, #one.sft)
    assert.are.equal(8, #one.rm.steps)
    assert.are.equal(4, #one.ppo)
    assert.are.equal(4, one.ppo[1].rows)
    assert.are.equal(8, one.grpo[1].rows)
    local bad = {}
    compare(one, two, "", bad)
    assert.are.same({}, bad)
  end)

  it("a resumed run (rank 0 reads the state, every rank gets it) continues the straight run", function()
    assert.are.equal(6, #one.sft_resumed)
    for k, run in ipairs { one, two } do
      for i, s in ipairs(run.sft_resumed) do
        local want = run.sft[6 + i]
        assert.are.equal(want.step, s.step)
        assert.is_true(math.abs(want.loss - s.loss) <= 1e-6 * want.loss, k .. ": step " .. s.step)
      end
    end
  end)
end)
