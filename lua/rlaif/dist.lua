-- rlaif.dist: several processes working as one under mpirun -- data-parallel
-- training and sharded labeling (issue 13). The C side (rlaif.core.dist,
-- src/core/dist.c) holds MPI and the collectives on flat buffers; this file adds
-- Lua values (as JSON), option checks, and the splitting rules the trainers and
-- the CLI share.
--
--   mpirun -np 4 rlaif train.lua          -- each process runs the same script
--   local dist = require "rlaif.dist"
--   dist.rank(), dist.size()              -- 0-based rank of size processes; 0 of 1 without mpirun
--   dist.allreduce(t, "mean")             -- in place, every rank gets the mean of all ranks' t
--   dist.broadcast(t, 0)                  -- rank 0's t into every rank's t
--   local all = dist.gather({loss = x})   -- rank 0: {value of rank 0, value of rank 1, ...}
--   local g = dist.group()                -- what the trainers use: g:block(n), g:sum{...}, g:any(flag)
--
-- A single process (no mpirun, RLAIF_DIST=0, or a build without MPI) is rank 0
-- of 1 and every call works, so a script runs unchanged either way. Collectives
-- block and every rank must make the same calls in the same order; a rank that
-- fails ends the whole job (the exit handler aborts it), it never leaves the
-- others waiting. Ranks are 0-based, as mpirun and MPI number them.
--
-- What it is not: the trainers' data-parallel steps (rlaif.train, rlaif.rl use
-- dist.group), the labeling shards (cli/label.lua, cli/merge.lua use shard_of).

local core = require "rlaif.core"

local cd, json = core.dist, core.json
local M = {}

local OPS = { sum = true, mean = true, max = true, min = true }

local function check_op(who, op)
  if op == nil then return "sum" end
  if not OPS[op] then
    error(string.format("%s: op must be one of sum, mean, max, min, got %s", who, tostring(op)), 3)
  end
  return op
end

local function check_root(who, root)
  if root == nil then return 0 end
  if math.type(root) ~= "integer" or root < 0 or root >= cd.size() then
    error(string.format("%s: root must be a rank from 0 to %d, got %s", who, cd.size() - 1, tostring(root)), 3)
  end
  return root
end

local function check_tensor(who, t)
  if not core.tensor.is_tensor(t) then error(who .. ": expected a tensor, got " .. type(t), 3) end
end

local function check_model(who, m)
  if not tostring(m):match("^rlaif%.Model") then error(who .. ": expected an rlaif model, got " .. type(m), 3) end
end

--- dist.rank() -> this process's rank, 0 to size() - 1 (0 without mpirun)
M.rank = cd.rank
--- dist.size() -> number of processes in the job (1 without mpirun)
M.size = cd.size
--- dist.local_rank() -> rank among the processes on this machine
M.local_rank = cd.local_rank
--- dist.local_size() -> processes on this machine
M.local_size = cd.local_size

--- dist.info() -> {built, active, library, rank, size, local_rank, local_size, thread_level}
--- built: MPI is in this build; active: the process runs under mpirun with MPI initialised.
function M.info() return cd.info() end

--- dist.is_root() -> true on rank 0, the process that writes files and logs
function M.is_root() return cd.rank() == 0 end

--- dist.barrier(): wait until every rank has reached it
function M.barrier() cd.barrier() end

--- dist.finalize(): end MPI now, on every rank together, after the ranks agreed on how the
--- job ends (a command that exits non-zero then does so without aborting the others);
--- collectives fail afterwards. Nothing to do in a single process.
function M.finalize() cd.finalize() end

--- dist.finish(status) -> the job's status: the worst (largest) of every rank's, after
--- which MPI ends (finalize); status itself in a single process
function M.finish(status)
  if cd.size() == 1 then return status end
  local worst = math.tointeger(cd.allreduce_numbers({ status }, "max")[1])
  cd.finalize()
  return worst
end

--- dist.allreduce(t [, op = "sum"]) -> t: in place, t becomes op ("sum", "mean",
--- "max", "min") of every rank's t; every rank must pass the same number of elements.
function M.allreduce(t, op)
  check_tensor("dist.allreduce", t)
  return cd.allreduce(t, check_op("dist.allreduce", op))
end

--- dist.broadcast(t [, root = 0]) -> t: rank root's t copied into every rank's t, in place
function M.broadcast(t, root)
  check_tensor("dist.broadcast", t)
  return cd.broadcast(t, check_root("dist.broadcast", root))
end

--- dist.allreduce_numbers({x1, ...} [, op = "sum"]) -> a new list: op over every rank's
--- list, element by element, in float64
function M.allreduce_numbers(xs, op)
  if type(xs) ~= "table" then error("dist.allreduce_numbers: expected a list of numbers, got " .. type(xs), 2) end
  return cd.allreduce_numbers(xs, check_op("dist.allreduce_numbers", op))
end

--- dist.sum({x1, ...}) -> the lists of every rank summed element-wise (float64): the
--- `reduce` hook of rlaif.rl.trainer
function M.sum(xs)
  if cd.size() == 1 then
    local out = {}
    for i, x in ipairs(xs) do out[i] = x end
    return out
  end
  return cd.allreduce_numbers(xs, "sum")
end

-- JSON of a value, with nil as null (values must be JSON: numbers, strings, booleans, tables)
local function encode(who, v)
  if v == nil then return "null" end
  local ok, s = pcall(json.encode, v)
  if not ok then error(who .. ": " .. tostring(s), 3) end
  return s
end

local function decode(s)
  local v = json.decode(s)
  if v == json.null then return nil end
  return v
end

--- dist.gather(value [, root = 0]) -> on rank root, the list of every rank's value in rank
--- order; nil on the other ranks. Values travel as JSON (numbers, strings, booleans, tables).
function M.gather(v, root)
  local parts = cd.gather_strings(encode("dist.gather", v), check_root("dist.gather", root))
  if not parts then return nil end
  local out = {}
  for i, s in ipairs(parts) do out[i] = decode(s) end
  return out, #parts
end

--- dist.allgather(value) -> on every rank, the list of every rank's value in rank order
function M.allgather(v)
  local parts = cd.gather_strings(encode("dist.allgather", v), -1)
  local out = {}
  for i, s in ipairs(parts) do out[i] = decode(s) end
  return out, #parts
end

--- dist.broadcast_value(value [, root = 0]) -> rank root's value on every rank (as JSON)
function M.broadcast_value(v, root)
  root = check_root("dist.broadcast_value", root)
  if cd.size() == 1 then return v end
  local s = cd.rank() == root and encode("dist.broadcast_value", v) or nil
  return decode(cd.broadcast_string(s, root))
end

--- dist.allreduce_grads(model [, op = "sum"]): the model's gradients (one flat buffer, one
--- call) summed ("sum") or averaged ("mean") over the ranks, in place
function M.allreduce_grads(m, op)
  check_model("dist.allreduce_grads", m)
  if op ~= nil and op ~= "sum" and op ~= "mean" then
    error("dist.allreduce_grads: op must be sum or mean, got " .. tostring(op), 2)
  end
  cd.allreduce_grads(m, op or "sum")
end

--- dist.broadcast_model(model [, root = 0]): rank root's parameters, AdamW state and step
--- count into every rank's model (the same starting point everywhere)
function M.broadcast_model(m, root)
  check_model("dist.broadcast_model", m)
  cd.broadcast_model(m, check_root("dist.broadcast_model", root))
end

-- ---- splitting work ----

--- dist.block(n [, rank [, size]]) -> first, last: the contiguous share of items 1..n of
--- a rank (this one by default): sizes differ by at most one, in rank order; last < first
--- when the share is empty.
function M.block(n, rank, size)
  rank, size = rank or cd.rank(), size or cd.size()
  return n * rank // size + 1, n * (rank + 1) // size
end

--- dist.shard_of(id, n) -> 1..n: the shard of an item (a labeling pair, an evaluation item)
--- with this id: FNV-1a (64-bit) of the id's JSON text, modulo n. Independent of the
--- item's position, so shards stay put when a dataset is reordered or grows.
function M.shard_of(id, n)
  local s = json.encode(id)
  local h = -3750763034362895579   -- 14695981039346656037, the FNV offset basis, as a signed integer
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 1099511628211
  end
  return (h % n) + 1
end

--- dist.parse_shard("I/N", who) -> i, n (1 <= i <= n); raises naming `who` and the text
function M.parse_shard(s, who)
  local i, n = tostring(s):match("^%s*(%d+)%s*/%s*(%d+)%s*$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i < 1 or i > n then
    error(string.format("%s: --shard must be I/N with 1 <= I <= N, got %q", who or "dist", tostring(s)), 0)
  end
  return math.tointeger(i), math.tointeger(n)
end

--- dist.cli_shard(text, cmd) -> {i, n} | nil (no --shard) | false, message: a CLI's
--- --shard flag, refused under mpirun (where each process takes its shard by itself)
function M.cli_shard(s, cmd)
  if s == nil then return nil end
  local ok, i, n = pcall(M.parse_shard, s, cmd)
  if not ok then return false, tostring(i) end
  if M.size() > 1 then
    return false, cmd .. ": --shard and mpirun: under mpirun each process takes its shard by itself"
  end
  return { i, n }
end

-- ---- the trainers' view: a group of processes, or of one ----

local Group = {}
Group.__index = Group

--- dist.group([enabled = true]) -> the processes a trainer spreads over: every rank of the
--- job, or this process alone when enabled is false or there is no job. Fields rank,
--- size, root (rank 0), active (size > 1); methods block(n), sum(list), any(flag),
--- allgather(v), broadcast_value(v), sync_model(m) -- identities for a group of one.
function M.group(enabled)
  local on = enabled ~= false and cd.size() > 1
  local rank, size = on and cd.rank() or 0, on and cd.size() or 1
  return setmetatable({ rank = rank, size = size, root = rank == 0, active = on }, Group)
end

--- g:block(n) -> first, last of this rank's contiguous share of 1..n
function Group:block(n) return M.block(n, self.rank, self.size) end

--- g:sum(list) -> the list summed over the group's ranks (float64)
function Group:sum(xs)
  if not self.active then return xs end
  return cd.allreduce_numbers(xs, "sum")
end

--- g:any(flag) -> true when flag is true on any rank (a stop every rank obeys)
function Group:any(flag)
  if not self.active then return flag and true or false end
  return cd.allreduce_numbers({ flag and 1 or 0 }, "max")[1] > 0
end

--- g:allgather(v) -> every rank's v, in rank order
function Group:allgather(v)
  if not self.active then return { v } end
  return (M.allgather(v))
end

--- g:broadcast_value(v) -> rank 0's v on every rank
function Group:broadcast_value(v)
  if not self.active then return v end
  return M.broadcast_value(v, 0)
end

--- g:sync_model(m): rank 0's weights and optimizer state into every rank's model
function Group:sync_model(m)
  if self.active then cd.broadcast_model(m, 0) end
end

--- g:allreduce_grads(m): sum the gradients over the group's ranks
function Group:allreduce_grads(m)
  if self.active then cd.allreduce_grads(m, "sum") end
end

M.Group = Group
return M
