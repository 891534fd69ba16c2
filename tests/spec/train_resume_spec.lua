-- tests/spec/train_resume_spec.lua -- a training run killed with SIGKILL and
-- rerun on the same state file continues where the last checkpoint left it and
-- reproduces the uninterrupted run's losses exactly (weights, AdamW moments,
-- step and data position are all in the checkpoint).
local helper = require "spec.helper"

local ROOT = assert(io.popen("pwd")):read("l")

local CHILD = [[
local rlaif = require "rlaif"
local state, log, hang_at = arg[1], arg[2], tonumber(arg[3])
local m = rlaif.model.new { arch = "gpt2", vocab_size = 40, n_layer = 2, n_head = 2, d_model = 16,
                            max_seq = 32, seed = 11, eos_id = 39 }
local data = {}
for i = 1, 12 do
  data[i] = { prompt = { i % 7 + 1, 2 }, response = { (i * 3) % 11 + 5, (i * 5) % 13 + 3, 9 } }
end
rlaif.train.sft { model = m, data = data, batch_size = 4, epochs = 3, lr = 3e-3, state = state,
  save_every = 2,
  on_step = function(info)
    local f = assert(io.open(log, "a"))
    f:write(string.format("%d %.17g\n", info.step, info.loss))
    f:close()
    if info.step == hang_at then
      assert(io.open(log .. ".ready", "w")):close()
      while true do end -- wait here for SIGKILL
    end
  end }
]]

local function read_log(path)
  local steps = {}
  for line in io.lines(path) do
    local step, loss = line:match("^(%d+) (%S+)$")
    steps[#steps + 1] = { tonumber(step), loss }
  end
  return steps
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("rlaif.train resume #unit", function()
  it("continues after kill -9 with the uninterrupted run's losses", function()
    local script = helper.tmpname(".lua")
    local f = assert(io.open(script, "w"))
    f:write(CHILD)
    f:close()
    local rlaif = ROOT .. "/rlaif"
    -- the reference: one uninterrupted run
    local ref_log, ref_state = helper.tmpname(".log"), helper.tmpname(".state")
    os.remove(ref_state)
    assert.is_true(os.execute(("%s %s %s %s -1"):format(rlaif, script, ref_state, ref_log)))
    local ref = read_log(ref_log)
    assert.equal(9, #ref)
    -- a run killed at step 5 (the last checkpoint is step 4), then rerun
    local log, state = helper.tmpname(".log"), helper.tmpname(".state")
    os.remove(state)
    local p = assert(io.popen(("%s %s %s %s 5 >/dev/null 2>&1 & echo $!"):format(rlaif, script, state, log)))
    local pid = p:read("l")
    p:close()
    local t0 = os.time()
    while not exists(log .. ".ready") and os.time() - t0 < 60 do os.execute("sleep 0.05") end
    assert.is_true(exists(log .. ".ready"), "the child never reached step 5")
    os.execute("kill -9 " .. pid)
    os.execute("sleep 0.2")
    assert.is_true(os.execute(("%s %s %s %s -1"):format(rlaif, script, state, log)))
    local got = read_log(log)
    -- steps 1..5 from the killed run, then 5..9 again from the checkpoint at step 4
    local steps = {}
    for i, s in ipairs(got) do steps[i] = s[1] end
    assert.same({ 1, 2, 3, 4, 5, 5, 6, 7, 8, 9 }, steps)
    for i = 1, 5 do assert.equal(ref[i][2], got[i][2]) end
    for i = 6, 10 do assert.equal(ref[got[i][1]][2], got[i][2]) end
    for _, path in ipairs { script, ref_log, ref_state, log, log .. ".ready", state } do os.remove(path) end
  end)
end)
