-- tests/spec/support/dist_ops.lua -- rlaif.dist's operations across the ranks of
-- `mpirun -np 2` (tests/spec/dist_spec.lua runs it). Each rank checks what the
-- others sent and prints "ok RANK/SIZE THREADS"; any failed check raises, which
-- ends the job with a non-zero status. Usage: rlaif dist_ops.lua
local rlaif = require "rlaif"
local dist, T = rlaif.dist, rlaif.tensor

local r, n = dist.rank(), dist.size()
assert(n >= 2, "run me under mpirun -np 2 or more")
local info = dist.info()
assert(info.built and info.active and info.size == n and info.rank == r, "dist.info: " .. tostring(info.size))
assert(rlaif.info().rank == r and rlaif.info().size == n)
assert(dist.local_size() == n and dist.local_rank() == r)

local function close(a, b) return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b)) end

-- in-place reductions of tensors; every rank holds (r + 1) * (1, 2, 3)
local sum = n * (n + 1) / 2
-- (ipairs: every rank must make the same calls in the same order, and pairs() order
-- differs between processes)
for _, case in ipairs { { "sum", sum }, { "mean", sum / n }, { "max", n }, { "min", 1 } } do
  local op, want = case[1], case[2]
  local t = T.new { 1, 2, 3 } * (r + 1)
  assert(dist.allreduce(t, op) == t, "allreduce returns its tensor")
  local v = t:totable()
  assert(close(v[1], want) and close(v[3], 3 * want), op .. ": " .. v[1] .. " vs " .. want)
end
-- a non-contiguous view: reduced through a copy that is written back
local m = T.new { { 1, 2 }, { 3, 4 } } * (r + 1)
local col = m:T()
dist.allreduce(col, "sum")
local mv = m:totable()
assert(mv[1][2] == 2 * sum and mv[2][1] == 3 * sum, "transposed view: " .. mv[1][2])

-- broadcasts
local b = T.full({ 2, 2 }, r)
dist.broadcast(b, 1)
assert(b:sum():item() == 4, "broadcast from rank 1")
local v = dist.broadcast_value(r == 1 and { name = "one", list = { 1, 2.5, "x" } } or nil, 1)
assert(v.name == "one" and v.list[2] == 2.5 and v.list[3] == "x", "broadcast_value")

-- gathers of Lua values
local g = dist.gather({ rank = r, text = string.rep("y", r) })
if r == 0 then
  assert(#g == n and g[2].rank == 1 and g[2].text == "y", "gather")
else
  assert(g == nil, "gather: nil off the root")
end
local all = dist.allgather(r * 10)
assert(#all == n and all[2] == 10, "allgather")
local sums = dist.sum { r, 0.5, -r }
assert(sums[1] == n * (n - 1) / 2 and sums[2] == 0.5 * n, "sum")
assert(dist.allreduce_numbers({ r }, "max")[1] == n - 1, "allreduce_numbers max")

-- a group: contiguous shares, a stop any rank asks for
local grp = dist.group()
assert(grp.active and grp.size == n and grp.root == (r == 0))
local lo, hi = grp:block(7)
local shares = dist.allgather({ lo, hi })
assert(shares[1][1] == 1 and shares[n][2] == 7 and shares[2][1] == shares[1][2] + 1, "block")
assert(grp:any(r == 1) == true and grp:any(false) == false, "any")
assert(not dist.group(false).active, "group(false) is this process alone")

-- a size mismatch fails on every rank with a message; the group stays usable
local ok, err = pcall(dist.allreduce, T.zeros { r + 1 })
assert(not ok and tostring(err):find("dist.allreduce: the ranks passed different sizes (" .. (r + 1) .. " here",
  1, true), tostring(err))
local ok2, err2 = pcall(dist.broadcast, T.zeros { 1 }, r)
assert(not ok2 and tostring(err2):find("different roots", 1, true), tostring(err2))
dist.barrier()

-- models: gradients summed in one call, rank 1's weights and AdamW state everywhere
local cfg = { arch = "gpt2", vocab_size = 20, n_layer = 1, n_head = 2, d_model = 8, max_seq = 8 }
cfg.seed = 5 + r
local mdl = rlaif.model.new(cfg)
mdl:lm_loss({ { 1, 2, 3, 4 } }, { { 2, 3, 4, -100 } })
local gsum = mdl:grad("transformer.wte.weight"):sum():item()
local want = dist.sum { gsum }[1]
dist.allreduce_grads(mdl)
assert(close(mdl:grad("transformer.wte.weight"):sum():item(), want), "allreduce_grads")
if r == 1 then mdl:adamw_step { lr = 0.01 } end
dist.broadcast_model(mdl, 1)
local w = dist.allgather(mdl:param("transformer.h.0.mlp.c_fc.weight"):sum():item())
assert(w[1] == w[2] and mdl:steps() == 1, "broadcast_model")

print(string.format("ok %d/%d %d", r, n, rlaif.get_threads()))
