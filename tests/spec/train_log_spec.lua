-- tests/spec/train_log_spec.lua -- the trainers' JSONL step logs (log = path) and
-- progress: one line per step with the numbers on_step sees, trimmed to the last
-- checkpoint when a run resumes, intact after an interruption; the progress bar on a
-- pseudo-terminal and silent under quiet.
local helper = require "spec.helper"
local rlaif = require "rlaif"
local json = rlaif.core.json

local ROOT = assert(io.popen("pwd")):read("l")

local function model(head)
  return rlaif.model.new { arch = "gpt2", vocab_size = 40, n_layer = 1, n_head = 2, d_model = 16, max_seq = 32,
    seed = 5, eos_id = 39, head = head }
end

local function data()
  local d = {}
  for i = 1, 12 do d[i] = { prompt = { i % 7 + 1, 2 }, response = { (i * 3) % 11 + 5, 9 } } end
  return d
end

local function read_log(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = json.decode(line) end
  return out
end

describe("rlaif.train step logs #unit", function()
  it("sft: one JSON line per step with what on_step saw", function()
    local log = helper.tmpname(".jsonl")
    local seen = {}
    rlaif.train.sft { model = model(), data = data(), batch_size = 4, epochs = 2, log = log, quiet = true,
      on_step = function(info) seen[#seen + 1] = { step = info.step, loss = info.loss, lr = info.lr } end }
    local rows = read_log(log)
    assert.equal(6, #rows)
    for i, r in ipairs(rows) do
      assert.equal(i, r.step)
      assert.equal(seen[i].loss, r.loss)
      assert.equal(seen[i].lr, r.lr)
      assert.is_number(r.grad_norm)
      assert.is_number(r.tokens)
    end
    os.remove(log)
  end)

  it("a resumed run trims the log to its checkpoint; an interrupted one keeps its finished steps", function()
    local log, state = helper.tmpname(".jsonl"), helper.tmpname(".state")
    os.remove(state)
    local d = data()
    -- interrupted at step 3 (state saved at step 2): the error passes through, the log has 3 lines
    assert.has_error(function()
      rlaif.train.sft { model = model(), data = d, batch_size = 4, epochs = 2, log = log, state = state,
        save_every = 2, quiet = true, on_step = function(info) if info.step == 3 then error("interrupted!", 0) end end }
    end, "interrupted!")
    assert.equal(3, #read_log(log))
    -- the rerun resumes from step 2: the log holds steps 1..6 once each
    rlaif.train.sft { model = model(), data = d, batch_size = 4, epochs = 2, log = log, state = state, save_every = 2,
      quiet = true }
    local rows = read_log(log)
    assert.equal(6, #rows)
    for i, r in ipairs(rows) do assert.equal(i, r.step) end
    os.remove(log)
    os.remove(state)
  end)

  it("reward: loss and train accuracy per step", function()
    local pairs_ = {}
    for i = 1, 10 do
      pairs_[i] = { prompt = { 1, 2 }, chosen = { i % 5 + 3, 4 }, rejected = { 7, i % 3 + 8 }, p = 0.8 }
    end
    local log = helper.tmpname(".jsonl")
    local last = rlaif.train.reward { model = model("reward"), pairs = pairs_, batch_size = 4, epochs = 2, log = log,
      quiet = true }
    local rows = read_log(log)
    assert.equal(6, #rows)
    assert.equal(last.loss, rows[6].loss)
    assert.is_number(rows[1].train_accuracy)
    os.remove(log)
  end)

  it("shows a progress bar on a terminal", function()
    local script = helper.tmpname(".lua")
    local f = assert(io.open(script, "w"))
    f:write([[
local rlaif = require "rlaif"
local m = rlaif.model.new { arch = "gpt2", vocab_size = 40, n_layer = 1, n_head = 2, d_model = 16, max_seq = 32,
  seed = 5, eos_id = 39 }
local d = {}
for i = 1, 12 do d[i] = { prompt = { i % 7 + 1, 2 }, response = { (i * 3) % 11 + 5, 9 } } end
rlaif.train.sft { model = m, data = d, batch_size = 4, epochs = 2 }
]])
    f:close()
    local p = assert(io.popen(string.format("script -qec %q /dev/null 2>&1", ROOT .. "/rlaif " .. script)))
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.matches("sft %[#+%] 6/6 100%%", out)
    assert.matches("loss %d", out)
    assert.matches("sft: 6 steps in", out)
  end)
end)
