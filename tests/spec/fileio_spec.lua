-- tests/spec/fileio_spec.lua -- rlaif.fileio and the writers built on it: every
-- Lua writer replaces files through the C core's one implementation
-- (src/core/fileio.c): an exclusive temporary "<path>.tmp.<pid>.<n>" beside the
-- target, renamed over it, and the temporaries of killed writers removed on the
-- next save -- the same files and rules as the C savers.
local fileio = require "rlaif.fileio"
local core = require "rlaif.core"
local helper = require "spec.helper"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function ls(dir) return sh("ls -A " .. dir) end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- our own pid, and the pid of a process that has exited
local function mypid() return assert(tonumber(helper.read_file("/proc/self/stat"):match("^(%d+)"))) end
local function deadpid() return assert(tonumber(sh("sh -c 'echo $$'"))) end

describe("rlaif.fileio #unit", function()
  local dir
  before_each(function()
    dir = helper.tmpname("_fileio")
    os.remove(dir)
    assert(core.gz.mkdir(dir))
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("writes through the C writer: one temporary <path>.tmp.<pid>.<n> beside the target, then a rename", function()
    local w = fileio.atomic(dir .. "/a.txt")
    w:write("hello ", 42, "\n")
    local name = ls(dir):match("^(%S+)\n$")
    assert.is_truthy(name, ls(dir))
    local pid, n = name:match("^a%.txt%.tmp%.(%d+)%.(%d+)$")
    assert.equal(mypid(), tonumber(pid))
    assert.is_truthy(n)
    w:commit()
    assert.equal("a.txt\n", ls(dir))
    assert.equal("hello 42\n", helper.read_file(dir .. "/a.txt"))
  end)

  it("removes the temporaries that killed writers left beside the same target, and nothing else", function()
    local dead = deadpid()
    write(string.format("%s/a.txt.tmp.%d.3", dir, dead), "a killed writer's half file")
    write(string.format("%s/b.txt.tmp.%d.3", dir, dead), "another target's")
    write(string.format("%s/a.txt.tmp.%d.4", dir, 1), "pid 1 is alive: not ours to judge")
    local w = fileio.atomic(dir .. "/a.txt")
    w:write("x")
    w:commit()
    assert.equal("a.txt\na.txt.tmp.1.4\nb.txt.tmp." .. dead .. ".3\n", ls(dir))
    -- the one-string writer, and the labeler's replacing writer, do the same
    write(string.format("%s/a.txt.tmp.%d.5", dir, dead), "x")
    fileio.write(dir .. "/a.txt", "y")
    assert.equal("a.txt\na.txt.tmp.1.4\nb.txt.tmp." .. dead .. ".3\n", ls(dir))
    write(string.format("%s/a.txt.tmp.%d.6", dir, dead), "x")
    local lw = require("rlaif.labeler").writer(dir .. "/a.txt", { replace = true })
    lw:write { id = 1 }
    lw:close()
    assert.equal("a.txt\na.txt.tmp.1.4\nb.txt.tmp." .. dead .. ".3\n", ls(dir))
  end)

  it("never replaces without force, and an abort or an error leaves the target as it was", function()
    local p = dir .. "/a.txt"
    write(p, "old")
    assert.has_error(function() fileio.atomic(p, { who = "me" }) end,
      "me: " .. p .. " exists; not replacing it without force")
    local w = fileio.atomic(p, { force = true })
    w:write("new")
    w:abort()
    w:abort()   -- idempotent
    assert.equal("a.txt\n", ls(dir))
    assert.equal("old", helper.read_file(p))
    do
      local w2 <close> = fileio.atomic(p, { force = true })
      w2:write("new")
    end   -- closed without commit: dropped
    assert.equal("old", helper.read_file(p))
    assert.has_error(function() fileio.write(p, "x", { who = "me", force = false }) end,
      "me: " .. p .. " exists; not replacing it without force")
    assert.has_error(function() fileio.write(dir .. "/no/such/dir/x", "x", { who = "me" }) end,
      "me: cannot write " .. dir .. "/no/such/dir/x: No such file or directory")
    assert.has_error(function() fileio.atomic(dir .. "/no/x", { who = "me" }) end,
      "me: cannot write " .. dir .. "/no/x: No such file or directory")
    fileio.write(p, "replaced")
    assert.equal("replaced", helper.read_file(p))
  end)

  it("gz.atomic: publish renames early and keeps appending; a closed writer raises", function()
    local p = dir .. "/log.jsonl"
    write(p, "old\n")
    local w = assert(core.gz.atomic(p))
    assert.equal(p, w:path())
    assert(w:write("one\n"))
    assert.equal("old\n", helper.read_file(p))
    assert(w:publish())
    assert.equal("one\n", helper.read_file(p))
    assert(w:write("two\n"))
    assert(core.gz.fsync(w))
    assert.equal("one\ntwo\n", helper.read_file(p))
    assert(w:commit())
    assert.equal("log.jsonl\n", ls(dir))
    assert.has_error(function() w:write("x") end, "attempt to use a closed atomic writer")
    w:abort()   -- closing a closed writer is fine
    local ok, err = core.gz.atomic(dir .. "/no/x")
    assert.is_nil(ok)
    assert.equal("cannot write " .. dir .. "/no/x: No such file or directory", err)
  end)

  it("the labeler's replacing writer keeps the old file until the new one has a record", function()
    local labeler = require "rlaif.labeler"
    local p = dir .. "/labels.jsonl"
    write(p, '{"id":"old"}\n')
    local w = labeler.writer(p, { replace = true })
    assert.equal('{"id":"old"}\n', helper.read_file(p))
    w:close()   -- nothing written: the old file stays, no temporary left
    assert.equal('{"id":"old"}\n', helper.read_file(p))
    assert.equal("labels.jsonl\n", ls(dir))
    w = labeler.writer(p, { replace = true })
    w:write { id = "a" }
    assert.equal('{"id":"a"}\n', helper.read_file(p))
    w:write { id = "b" }
    w:close()
    assert.equal('{"id":"a"}\n{"id":"b"}\n', helper.read_file(p))
    assert.equal("labels.jsonl\n", ls(dir))
  end)

  it("an evaluation that starts afresh keeps the old records until it has a new one", function()
    local eval = require "rlaif.eval"
    local p = dir .. "/records.jsonl"
    write(p, '{"id":"old"}\n')
    local ok, err = pcall(eval.harmless_rate, { judge = function() error("judge down", 0) end, prompts = { "p" },
      responses = { "r" }, ref_length = 1, out = p, resume = false, quiet = true })
    assert.is_false(ok)
    assert.matches("judge down", err)
    assert.equal('{"id":"old"}\n', helper.read_file(p))
    assert.equal("records.jsonl\n", ls(dir))
  end)
end)
