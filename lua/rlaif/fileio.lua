-- rlaif.fileio: the rules every Lua writer of rlaif follows, in one place: an
-- output is never one of the inputs (compared by file identity, so links and
-- other spellings of a path count), and a file is replaced atomically (a
-- temporary beside it, fsync, rename, fsync of the directory), never truncated
-- in place. The C writers (src/core/fileio.c) follow the same rules.
--
--   local fileio = require "rlaif.fileio"
--   fileio.check_outputs("label", {data = "in.jsonl"}, {out = "labels.jsonl"})   -- raises on a clash
--   local w = fileio.atomic("pairs.jsonl", {who = "labeler.export_pairs", force = false})
--   w:write(line, "\n") ... w:commit()      -- or w:abort() (also on error: nothing replaced)
--
-- What it is not: no appends (the labeler's writer appends crash-safely) and no
-- JSON. Holds no state and sets no globals.

local gz = require("rlaif.core").gz

local M = {}

-- The identity of a path: its file's, or for a file not there yet, its
-- directory's plus its name.
local function identity(p)
  local id = gz.file_id(p)
  if id then return id end
  local d, name = p:match("^(.*)/([^/]*)$")
  if not d then d, name = ".", p end
  local did = gz.file_id(d == "" and "/" or d)
  return did and (did .. "/" .. name) or nil
end

--- same_file(a, b) -> true when the paths a and b name one file (existing, or to
--- be created in the same directory under the same name).
function M.same_file(a, b)
  if a == nil or b == nil then return false end
  local ia, ib = identity(a), identity(b)
  return ia ~= nil and ia == ib
end

--- check_outputs(who, inputs, outputs): raises "<who>: <output key> FILE is the same
--- file as <input key> FILE ..." when an output is an input or two outputs are one
--- file. inputs and outputs map a name (an option like "data") to a path or nil.
function M.check_outputs(who, inputs, outputs)
  local function keys(t)
    local ks = {}
    for k in pairs(t) do ks[#ks + 1] = k end
    table.sort(ks)
    return ks
  end
  local outs = keys(outputs)
  for i, ok in ipairs(outs) do
    local op = outputs[ok]
    for _, ik in ipairs(keys(inputs)) do
      if M.same_file(op, inputs[ik]) then
        error(string.format("%s: %s %s is the same file as %s %s: an output must never overwrite an input",
          who, ok, op, ik, inputs[ik]), 0)
      end
    end
    for j = i + 1, #outs do
      if M.same_file(op, outputs[outs[j]]) then
        error(string.format("%s: %s %s and %s %s are the same file", who, ok, op, outs[j], outputs[outs[j]]), 0)
      end
    end
  end
end

local Atomic = {}
Atomic.__index = Atomic

local serial = 0

--- atomic(path [, {who = name for messages, force = false}]) -> writer with
--- :write(...), :commit() and :abort(). Raises when `path` exists and not force
--- ("... exists; pass force to replace it"), or when the temporary cannot be made.
function M.atomic(path, o)
  o = o or {}
  local who = o.who or "fileio.atomic"
  if not o.force and gz.file_id(path) then
    error(string.format("%s: %s exists; not replacing it without force", who, path), 0)
  end
  serial = serial + 1
  local tmp = string.format("%s.tmp.%d.%d", path, os.time(), serial)
  local f, err = io.open(tmp, "wb")
  if not f then error(string.format("%s: cannot write %s: %s", who, path, tostring(err)), 0) end
  f:setvbuf("full", 1 << 16)
  return setmetatable({ f = f, path = path, tmp = tmp, who = who }, Atomic)
end

function Atomic:write(...)
  local ok, err = self.f:write(...)
  if not ok then
    self:abort()
    error(string.format("%s: writing %s: %s", self.who, self.path, tostring(err)), 0)
  end
  return self
end

--- w:commit(): flush, fsync and rename the temporary over the target.
function Atomic:commit()
  local f = self.f
  if not f then return end
  local ok, err = gz.fsync(f)
  f:close()
  self.f = nil
  if ok then ok, err = os.rename(self.tmp, self.path) end
  if not ok then
    os.remove(self.tmp)
    error(string.format("%s: writing %s: %s", self.who, self.path, tostring(err)), 0)
  end
  gz.fsync_dir(self.path)
end

--- w:abort(): drop the temporary; the target stays as it was. Idempotent.
function Atomic:abort()
  if self.f then
    self.f:close()
    self.f = nil
    os.remove(self.tmp)
  end
end
Atomic.__close = Atomic.abort
Atomic.__gc = Atomic.abort

return M
