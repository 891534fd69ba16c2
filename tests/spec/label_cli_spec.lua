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
    srv = servers.labeler { delay = 15 }   -- slow enough for the client's own progress callbacks
    dir = helper.tmpname("_tty")
    os.execute("mkdir -p " .. sh(dir))
    write_pairs(dir .. "/pairs.jsonl", 10)
  end)
  teardown(function()
    if srv then srv:stop() end
    os.execute("rm -rf " .. sh(dir))
  end)

  -- label_tty.lua's clock moves STEP seconds per answer: after the first of 10
  -- pairs (two answers, one request at a time) 9 pairs are left at 2 * STEP
  -- seconds each. The old bar crashed in the minutes range (a fractional
  -- number of seconds given to %02d).
  for _, case in ipairs {
    { "seconds", 1.5, "0.3 pair/s ETA 27s" }, { "minutes", 100.5, "0.0 pair/s ETA 30m09s" },
    { "hours", 1000.5, "0.0 pair/s ETA 5h00m" },
  } do
    local name, step, first = case[1], case[2], case[3]
    it("draws the bar with time left in " .. name .. " and labels every pair", function()
      local out = dir .. "/" .. name .. ".jsonl"
      local text, code = run_tty(string.format("%s tests/spec/support/label_tty.lua %g --data %s --format pairs " ..
        "--template summarize-base --api openai-completions --base-url %s/v1 --model fake --concurrency 1 " ..
        "--out %s", RLAIF, step, sh(dir .. "/pairs.jsonl"), srv.url, sh(out)))
      assert.equal(0, code, text)
      assert.is_truthy(text:find("\rlabel [##......................] 1/10  10% " .. first .. " errors 0", 1, true),
        text)
      assert.matches("10/10 100%%", text)
      assert.equal(10, #readlines(out), text)
    end)
  end
end)

local FAKE = " --client tests/spec/support/fake_client.lua --template summarize-base --format pairs"

describe("rlaif label never loses data #unit", function()
  local dir, data
  before_each(function()
    dir = helper.tmpname("_lose")
    os.execute("mkdir -p " .. sh(dir))
    data = dir .. "/pairs.jsonl"
    write_pairs(data, 6)
  end)
  after_each(function() os.execute("rm -rf " .. sh(dir)) end)

  it("refuses an --export-pairs or --out that is the dataset (also through a link)", function()
    local before = helper.read_file(data)
    os.execute("ln -s pairs.jsonl " .. sh(dir .. "/link.jsonl"))
    local same = " is the same file as %-%-data %S+: an output must never overwrite an input\n$"
    for _, args in ipairs {
      { "--out " .. sh(dir .. "/l.jsonl") .. " --export-pairs " .. sh(data),
        "^rlaif label: %-%-export%-pairs %S+" .. same },
      { "--out " .. sh(data), "^rlaif label: %-%-out %S+" .. same },
      { "--out " .. sh(dir .. "/link.jsonl"), "^rlaif label: %-%-out %S+" .. same },
      { "--out " .. sh(dir .. "/l.jsonl") .. " --export-pairs " .. sh(dir .. "/./l.jsonl"),
        "^rlaif label: %-%-export%-pairs %S+ and %-%-out %S+ are the same file\n$" },
    } do
      local text, code = run(RLAIF .. " label --data " .. sh(data) .. FAKE .. " --quiet " .. args[1])
      assert.equal(1, code, text)
      assert.matches(args[2], text)
      assert.equal(before, helper.read_file(data))
    end
  end)

  it("writes --export-pairs atomically and replaces a file only with --force", function()
    local out, ex = dir .. "/l.jsonl", dir .. "/ex.jsonl"
    local f = assert(io.open(ex, "wb")); f:write("precious\n"); f:close()
    local text, code = run(RLAIF .. " label --data " .. sh(data) .. FAKE .. " --quiet --out " .. sh(out) ..
      " --export-pairs " .. sh(ex))
    assert.equal(1, code, text)
    assert.equal("rlaif label: --export-pairs " .. ex .. " exists; pass --force to replace it\n", text)
    assert.equal("precious\n", helper.read_file(ex))
    assert.is_nil(helper.read_file(out))          -- refused before any labeling
    text, code = run(RLAIF .. " label --data " .. sh(data) .. FAKE .. " --quiet --out " .. sh(out) ..
      " --export-pairs " .. sh(ex) .. " --force")
    assert.equal(0, code, text)
    assert.equal(6, #readlines(ex))
    assert.equal("ex.jsonl\nl.jsonl\npairs.jsonl\n", (run("ls " .. sh(dir))))   -- no temporary left behind
  end)

  it("resumes only into a file made with the same configuration, unless told to", function()
    local out = dir .. "/l.jsonl"
    local base = RLAIF .. " label --data " .. sh(data) .. " --client tests/spec/support/fake_client.lua " ..
      "--format pairs --quiet --out " .. sh(out)
    local _, code = run(base .. " --template summarize-base --limit 3")
    assert.equal(0, code)
    local before = helper.read_file(out)
    local text
    text, code = run(base .. " --template summarize-detailed")
    assert.equal(1, code)
    assert.matches("^rlaif label: labeler%.label: " .. out:gsub("%p", "%%%0") .. " holds labels made with another " ..
      "configuration %(template \"summarize%-base\" there, \"summarize%-detailed\" here, template_hash ", text)
    assert.matches("resume = \"mixed\"", text)
    assert.equal(before, helper.read_file(out))
    text, code = run(base .. " --template summarize-base --model other-model")
    assert.equal(1, code)
    assert.matches("model \"fake%-model\" there, \"other%-model\" here", text)
    text, code = run(base .. " --template summarize-base --logprobs 5")
    assert.equal(1, code)
    assert.matches("other labeling options %(config %x+ there, %x+ here%)", text)
    -- the same configuration resumes; --resume-mixed adds to a file of another one
    text, code = run(base .. " --template summarize-base --limit 1")
    assert.equal(0, code, text)
    assert.equal(4, #readlines(out))
    text, code = run(base .. " --template summarize-detailed --resume-mixed")
    assert.equal(0, code, text)
    assert.equal(6, #readlines(out))
    local r = json.decode(readlines(out)[6])
    assert.same({ "summarize-detailed", "fake-model" }, { r.template, r.model })
    assert.matches("^%x+$", r.config)
  end)

  it("--no-resume keeps the old file until the new run has written a record", function()
    local out = dir .. "/l.jsonl"
    local _, code = run(RLAIF .. " label --data " .. sh(data) .. FAKE .. " --quiet --out " .. sh(out))
    assert.equal(0, code)
    local before = helper.read_file(out)
    local broken = dir .. "/broken.lua"
    local f = assert(io.open(broken, "wb"))
    f:write('return { complete_many = function() error("backend exploded") end }\n')
    f:close()
    local text
    text, code = run(RLAIF .. " label --data " .. sh(data) .. " --client " .. sh(broken) ..
      " --template summarize-base --format pairs --quiet --no-resume --out " .. sh(out))
    assert.equal(1, code)
    assert.matches("backend exploded", text)
    assert.equal(before, helper.read_file(out))
    assert.equal("broken.lua\nl.jsonl\npairs.jsonl\n", (run("ls " .. sh(dir))))   -- no temporary left behind
    -- a run that works replaces it: only the new records remain
    text, code = run(RLAIF .. " label --data " .. sh(data) .. FAKE .. " --quiet --no-resume --limit 2 --out " ..
      sh(out))
    assert.equal(0, code, text)
    assert.equal(2, #readlines(out))
  end)

  it("HH exports keep the \"\\n\\nAssistant:\" boundary: prompt .. chosen is the transcript", function()
    local hh = dir .. "/hh.jsonl"
    local f = assert(io.open(hh, "wb"))
    local t = {}
    for i = 1, 3 do
      t[i] = { chosen = "\n\nHuman: question " .. i .. "?\n\nAssistant: answer q" .. i,
        rejected = "\n\nHuman: question " .. i .. "?\n\nAssistant: other q" .. (5 - i) }
      f:write(json.encode(t[i]), "\n")
    end
    f:close()
    local out, ex = dir .. "/l.jsonl", dir .. "/ex.jsonl"
    local text, code = run(RLAIF .. " label --data " .. sh(hh) ..
      " --client tests/spec/support/fake_client.lua --quiet --out " .. sh(out) .. " --export-pairs " .. sh(ex))
    assert.equal(0, code, text)
    local first = json.decode(readlines(out)[1])
    assert.equal("helpful-base", first.template)        -- HH data gets the HH template
    for _, l in ipairs(readlines(ex)) do
      local r = json.decode(l)
      local src = t[r.id]
      assert.matches("\n\nAssistant:$", r.prompt)
      local pair = { r.prompt .. r.chosen, r.prompt .. r.rejected }
      table.sort(pair)
      local want = { src.chosen, src.rejected }
      table.sort(want)
      assert.same(want, pair)
    end
  end)
end)

describe("rlaif label exit statuses and failures #unit", function()
  if not servers.has_node then
    it("skipped", function() pending("needs node") end)
    return
  end
  local dir, srv
  setup(function()
    srv = servers.labeler { delay = 0 }
    dir = helper.tmpname("_exit")
    os.execute("mkdir -p " .. sh(dir))
  end)
  teardown(function()
    if srv then srv:stop() end
    os.execute("rm -rf " .. sh(dir))
  end)

  local function label(data, out, extra, url)
    return run(string.format("timeout 30 %s label --data %s --format pairs --template summarize-base " ..
      "--api openai-completions --base-url %s/v1 --model fake --quiet --out %s %s", RLAIF, sh(data),
      url or srv.url, sh(out), extra or ""))
  end

  local function statuses(out)
    local n = {}
    for _, l in ipairs(readlines(out)) do
      local r = json.decode(l)
      n[r.status] = (n[r.status] or 0) + 1
    end
    return n
  end

  it("exits 1 when pairs failed, and an empty answer is an error, not 'unlabeled'", function()
    local data, out = dir .. "/fail.jsonl", dir .. "/fail-labels.jsonl"
    write_pairs(data, 4, " [[empty]]")
    local text, code = label(data, out, "--max-retries 0")
    assert.equal(1, code, text)
    assert.matches("rlaif label: 4 pairs failed; their records say why, and a rerun retries them\n", text)
    assert.same({ error = 4 }, statuses(out))
    assert.matches("the answer has no choices", json.decode(readlines(out)[1]).reason)
  end)

  it("stops after a rejected key: few requests, no record for pairs never sent", function()
    local data, out = dir .. "/auth.jsonl", dir .. "/auth-labels.jsonl"
    write_pairs(data, 50, " [[fail=401]]")
    local own = servers.labeler {}
    local text, code = label(data, out, "--concurrency 2", own.url)
    local served = own:stop()
    assert.equal(1, code, text)
    assert.matches("rlaif label: labeler: stopped: " .. own.url:gsub("%p", "%%%0") .. "/v1 rejected the " ..
      "request with HTTP 401 %(HTTP 401: injected failure 401 %[server_error%]%): check the API key; " ..
      "%d+ pairs were not sent %(a rerun sends them%)\n", text)
    assert.is_true(served <= 3, served .. " requests")
    local n = statuses(out)
    assert.is_nil(n.ok)
    assert.is_true((n.error or 0) <= 1)
  end)

  it("fails at once when the server cannot be reached", function()
    local data, out = dir .. "/dead.jsonl", dir .. "/dead-labels.jsonl"
    write_pairs(data, 200)
    local port = servers.dead_port()
    local clock = require("rlaif.core").clock
    local t0 = clock()
    local text, code = label(data, out, "", "http://127.0.0.1:" .. port)
    -- retrying would take ~14 s per wave of 16 requests (over 5 minutes here); a loaded
    -- machine may take a few seconds just to start the process
    assert.is_true(clock() - t0 < 10, "took " .. (clock() - t0) .. " s")
    assert.equal(1, code, text)
    assert.matches("labeler: stopped: cannot connect to http://127.0.0.1:" .. port .. "/v1 %(transport: " ..
      "Couldn't connect to server %(the server has not answered yet: not retried%)%); %d+ pairs were not sent", text)
    local n = statuses(out)
    assert.is_nil(n.ok)
    assert.is_true((n.error or 0) <= 8)
  end)

  it("Ctrl-C exits 130 and leaves unsent pairs to the rerun, which labels each pair once", function()
    local data, out = dir .. "/int.jsonl", dir .. "/int-labels.jsonl"
    write_pairs(data, 200)
    local slow = servers.labeler { delay = 20 }
    local status = dir .. "/status"
    os.execute(string.format("sh -c '%s label --data %s --format pairs --template summarize-base " ..
      "--api openai-completions --base-url %s/v1 --model fake --quiet --concurrency 4 --out %s " ..
      ">%s.err 2>&1 & echo $! > %s.pid; wait $!; echo $? > %s' &", RLAIF, data, slow.url, out, status, status,
      status))
    local pid
    for _ = 1, 200 do
      pid = pid or tonumber(helper.read_file(status .. ".pid") or "")
      if pid and #readlines(out) >= 10 then break end
      os.execute("sleep 0.02")
    end
    os.execute("kill -INT " .. tostring(pid))
    for _ = 1, 250 do
      if helper.read_file(status) then break end
      os.execute("sleep 0.02")
    end
    slow:stop()
    assert.equal("130\n", helper.read_file(status), helper.read_file(status .. ".err"))
    assert.matches("rlaif label: labeler: interrupted; %d+ pairs were not sent %(a rerun sends them%)",
      helper.read_file(status .. ".err"))
    local first = #readlines(out)
    assert.is_true(first >= 10 and first < 200, first .. " records")
    assert.same({ ok = first }, statuses(out))        -- nothing "cancelled" was written
    local text, code = label(data, out, "")
    assert.equal(0, code, text)
    local count = {}
    for _, l in ipairs(readlines(out)) do
      local r = json.decode(l)
      assert.equal("ok", r.status)
      count[r.id] = (count[r.id] or 0) + 1
    end
    for i = 1, 200 do assert.equal(1, count["p" .. i], "pair p" .. i) end
  end)
end)
