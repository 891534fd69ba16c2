-- tests/spec/label_cli_spec.lua -- `rlaif label` as a user runs it: the progress
-- line on a real terminal (a pseudo-terminal from script(1)) for every stretch
-- of remaining time, exit statuses, failures that must stop a run, and the
-- paths that must never lose data. The LLM is tests/servers/fake_labeler.mjs on
-- loopback, or an in-process fake (--client).
local helper = require "spec.helper"
local servers = dofile("tests/spec/support/servers.lua")
local json = require("rlaif.core").json

local ROOT = helper.root
local RLAIF = ROOT .. "/rlaif"

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function readlines(p)
  local out = {}
  local f = io.open(p, "rb")
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

-- n pairs in the generic pairs format; `extra` goes into every prompt
local function write_pairs(path, n, extra)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do
    f:write(json.encode { id = "p" .. i, prompt = "post " .. i .. (extra or ""), chosen = "a q" .. (i % 5),
      rejected = "b q" .. (i % 3) }, "\n")
  end
  f:close()
end

-- run a shell command line; returns its stdout+stderr and exit status
local function run(cmd)
  local out = helper.tmpname(".out")
  local _, _, code = os.execute(cmd .. " >" .. sh(out) .. " 2>&1 </dev/null")
  local text = helper.read_file(out) or ""
  os.remove(out)
  return text, code
end

-- the same under a pseudo-terminal: stdout and stderr are a terminal
local function run_tty(cmd)
  return run("script -qec " .. sh(cmd) .. " /dev/null")
end

local has_script = os.execute("command -v script >/dev/null 2>&1") == true

describe("rlaif label on a terminal #unit", function()
  if not (servers.has_node and has_script) then
    it("skipped", function() pending("needs node and script(1)") end)
    return
  end
  local srv, dir
  setup(function()
    srv = servers.labeler { delay = 20 }
    dir = helper.tmpname("_tty")
    os.execute("mkdir -p " .. sh(dir))
    write_pairs(dir .. "/pairs.jsonl", 20)
  end)
  teardown(function()
    if srv then srv:stop() end
    os.execute("rm -rf " .. sh(dir))
  end)

  -- The fake server answers each request after 20 ms, one at a time, so the
  -- first pair takes >= 40 ms of wall time and 19 pairs remain: the ETA is at
  -- least 19 * 0.04 * SCALE seconds. SCALE = 1: seconds; 200: minutes (>= 76 s);
  -- 10000: hours (>= 3800 s).
  for _, case in ipairs {
    { "seconds", 1, "ETA %d+s" }, { "minutes", 200, "ETA %d+m%d%ds" }, { "hours", 10000, "ETA %d+h%d%dm" },
  } do
    local name, scale, pattern = case[1], case[2], case[3]
    it("draws the bar with time left in " .. name .. " and labels every pair", function()
      local out = dir .. "/" .. name .. ".jsonl"
      local text, code = run_tty(string.format("%s tests/spec/support/label_tty.lua %d --data %s --format pairs " ..
        "--template summarize-base --api openai-completions --base-url %s/v1 --model fake --concurrency 1 " ..
        "--out %s", RLAIF, scale, sh(dir .. "/pairs.jsonl"), srv.url, sh(out)))
      assert.equal(0, code, text)
      assert.matches("\rlabel %[[#.]+%] %d+/20 +%d+%% [%d.]+ pair/s " .. pattern, text)
      assert.matches("20/20 100%%", text)
      assert.equal(20, #readlines(out), text)
    end)
  end
end)
