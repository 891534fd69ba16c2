-- rlaif.fileio: the rules every Lua writer of rlaif follows, in one place: an
-- output is never one of the inputs (compared by file identity, so links and
-- other spellings of a path count), and a file is replaced atomically, never
-- truncated in place. The replacing itself is the C core's one implementation
-- (src/core/fileio.c through rlaif.core.gz: a temporary created exclusively
-- beside the target, fsync, rename, fsync of the directory; temporaries of
-- killed writers removed on the next save), so Lua and C writers behave alike.
--
--   local fileio = require "rlaif.fileio"
--   fileio.check_outputs("label", {data = "in.jsonl"}, {out = "labels.jsonl"})   -- raises on a clash
--   local w = fileio.atomic("pairs.jsonl", {who = "labeler.export_pairs", force = false})
--   w:write(line, "\n") ... w:commit()      -- or w:abort() (also on error: nothing replaced)
--   fileio.write("results.json", text, {who = "eval"})   -- the same for one string
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

local function exists_check(path, o, who)
  if not o.force and gz.file_id(path) then
    error(string.format("%s: %s exists; not replacing it without force", who, path), 0)
  end
end

--- atomic(path [, {who = name for messages, force = false}]) -> writer with
--- :write(...), :commit() and :abort() (also its __close). Raises when `path`
--- exists and not force ("... exists; not replacing it without force"), or when
--- the temporary cannot be made; :write and :commit raise on I/O errors (the
--- temporary is removed and `path` left as it was).
function M.atomic(path, o)
  o = o or {}
  local who = o.who or "fileio.atomic"
  exists_check(path, o, who)
  local w, err = gz.atomic(path)
  if not w then error(who .. ": " .. tostring(err), 0) end
  return setmetatable({ w = w, path = path, who = who }, Atomic)
end

function Atomic:write(...)
  local ok, err = self.w:write(...)
  if not ok then
    self:abort()
    error(self.who .. ": " .. tostring(err), 0)
  end
  return self
end

--- w:commit(): flush, fsync and rename the temporary over the target.
function Atomic:commit()
  local w = self.w
  if not w then return end
  self.w = nil
  local ok, err = w:commit()
  if not ok then error(self.who .. ": " .. tostring(err), 0) end
end

--- w:abort(): drop the temporary; the target stays as it was. Idempotent.
function Atomic:abort()
  if self.w then
    self.w:abort()
    self.w = nil
  end
end
Atomic.__close = Atomic.abort

--- write(path, s [, {who =, force = true}]): replace path with the string s
--- atomically; raises "<who>: cannot write PATH: reason". Unlike atomic(), it
--- replaces an existing file unless force = false.
function M.write(path, s, o)
  o = o or {}
  local who = o.who or "fileio.write"
  if o.force == false then exists_check(path, o, who) end
  local ok, err = gz.write_atomic(path, s)
  if not ok then error(who .. ": " .. tostring(err), 0) end
end

return M
