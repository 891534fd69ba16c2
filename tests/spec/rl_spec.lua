-- tests/spec/rl_spec.lua -- rlaif.rl: the four algorithms against PyTorch, the
-- toy task, resume after SIGKILL, and bad input.
--
-- Goldens come from scripts/gen_rl_fixtures.py (PyTorch, committed under
-- tests/fixtures/rl): small random GPT-2 and Llama policies, references and
-- value models, a batch of rows with different prompt and response lengths,
-- temperature 0.7, given old log-probabilities (rho != 1) and old values.
-- luacheck: std +busted

local rlaif = require "rlaif"
local helper = require "spec.helper"
local T, rl = rlaif.tensor, rlaif.rl
local json = rlaif.core.json

local FIX = "tests/fixtures/rl/"

local function close(got, want, tol, what)
  if math.abs(got - want) > tol * math.max(1, math.abs(want)) then
    error(string.format("%s: got %.7g, want %.7g", what, got, want), 2)
  end
end

local function assert_close(got, want, tol, what)
  local g, w = helper.flatten(got), helper.flatten(want)
  assert.are.equal(#w, #g, what .. ": sizes")
  local scale = 0
  for i = 1, #w do scale = math.max(scale, math.abs(w[i])) end
  for i = 1, #w do
    if math.abs(g[i] - w[i]) > tol * math.max(1e-3, scale) then
      error(string.format("%s[%d]: got %.7g, want %.7g (max |want| %.3g)", what, i, g[i], w[i], scale), 2)
    end
  end
end

-- the golden batch as Lua tables
local function golden_batch(g)
  local ids, plen, rlen = g.ids:totable(), g.plen:totable(), g.rlen:totable()
  local old, oldv = g.old_logprobs:totable(), g.old_values:totable()
  local b = { prompts = {}, responses = {}, scores = g.scores:totable(), group = {}, old_logprobs = {},
    old_values = {} }
  for i = 1, #ids do
    local p, r = math.tointeger(plen[i]), math.tointeger(rlen[i])
    local pr, re, ol, ov = {}, {}, {}, {}
    for t = 1, p do pr[t] = math.tointeger(ids[i][t]) end
    for t = 1, r do
      re[t] = math.tointeger(ids[i][p + t])
      ol[t], ov[t] = old[i][p - 1 + t], oldv[i][p - 1 + t]
    end
    b.prompts[i], b.responses[i], b.old_logprobs[i], b.old_values[i] = pr, re, ol, ov
    b.group[i] = math.tointeger(g.group:totable()[i])
  end
  return b
end

local function settings(family)
  local f = assert(io.open(FIX .. family .. "/settings.json"))
  local s = json.decode(f:read("a"))
  f:close()
  return s
end

describe("rlaif.rl against PyTorch #unit", function()
  for _, family in ipairs { "gpt2", "llama" } do
    local g = T.load(FIX .. family .. "/golden.safetensors")
    local s = settings(family)
    for _, algo in ipairs(rl.ALGOS) do
      it(family .. " " .. algo .. ": loss and policy/value gradients", function()
        local policy = rlaif.model.load(FIX .. family .. "/policy")
        local ref = rlaif.model.load(FIX .. family .. "/ref")
        local value = rlaif.model.load(FIX .. family .. "/value", { head = "reward" })
        local tr = rl.trainer {
          algo = algo, policy = policy, ref = ref, value = value, temperature = s.temperature,
          kl_coef = s.kl_coef, gamma = s.gamma, lam = s.lam, cliprange = s.cliprange,
          cliprange_value = s.cliprange_value, vf_coef = s.vf_coef, reward_scale = s.reward_scale,
          group_size = 2,
        }
        policy:zero_grad()
        value:zero_grad()
        local st = tr:backward(golden_batch(g))
        close(st.loss, g[algo .. ".loss"]:item(), 2e-5, "loss")
        close(st.policy_loss, g[algo .. ".policy_loss"]:item(), 2e-5, "policy_loss")
        close(st.value_loss or 0, g[algo .. ".value_loss"]:item(), 2e-5, "value_loss")
        close(st.kl, g[algo .. ".kl"]:item(), 1e-5, "kl")
        for _, name in ipairs(policy:names()) do
          assert_close(policy:grad(name), g[algo .. ".grad." .. name], 2e-4, algo .. " grad " .. name)
        end
        if algo == "reinforce" or algo == "ppo" then
          for _, name in ipairs(value:names()) do
            assert_close(value:grad(name), g[algo .. ".vgrad." .. name], 2e-4, algo .. " value grad " .. name)
          end
        end
        if algo ~= "reinforce" then assert.is_true(st.clipped > 0, "some ratios are clipped") end
        if algo == "ppo" then assert.is_true(st.vf_clipped > 0, "some values are clipped") end
      end)
    end
  end
end)
