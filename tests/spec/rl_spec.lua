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

-- ---- the toy task: a known Lua reward (the share of token 3 in the response) ----

local V = 12
local function toy_policy()
  return rlaif.model.new { arch = "gpt2", vocab_size = V, n_layer = 2, n_head = 2, d_model = 32, max_seq = 32,
    seed = 3, eos_id = V - 1 }
end
local function count3(_, responses)
  local out = {}
  for i, r in ipairs(responses) do
    local c = 0
    for _, t in ipairs(r) do if t == 3 then c = c + 1 end end
    out[i] = c / #r
  end
  return out
end
local TOY_PROMPTS = {}
for i = 1, 16 do TOY_PROMPTS[i] = { (i % 5) + 1, (i % 3) + 2 } end

local function toy_run(algo, o)
  local cfg = { algo = algo, policy = toy_policy(), reward = count3, lr = 3e-3, value_lr = 1e-2, kl_coef = 0.01,
    temperature = 1.0, max_new_tokens = 8, eos = false, seed = 1, vf_coef = 0.5 }
  local steps, bs = 24, 8
  for k, v in pairs(o or {}) do
    if k == "steps" then steps = v elseif k == "batch_size" then bs = v else cfg[k] = v end
  end
  local tr = rl.trainer(cfg)
  local _, all = tr:train { prompts = TOY_PROMPTS, steps = steps, batch_size = bs, quiet = true }
  return all, tr
end

local function mean_reward(all, i0, i1)
  local s = 0
  for i = i0, i1 do s = s + all[i].reward_mean end
  return s / (i1 - i0 + 1)
end

-- Tiny models run on one thread: a 2-thread OpenMP region per kernel costs more
-- than the kernel, and far more when the machine is oversubscribed.
local saved_threads
local function one_thread()
  setup(function() saved_threads = rlaif.get_threads() rlaif.set_threads(1) end)
  teardown(function() rlaif.set_threads(saved_threads) end)
end

describe("rlaif.rl toy task #unit", function()
  one_thread()
  for _, algo in ipairs(rl.ALGOS) do
    it(algo .. " raises a known reward well above the SFT policy's, with bounded KL", function()
      local grouped = algo == "rloo" or algo == "grpo"
      local all = toy_run(algo, grouped and { batch_size = 4, group_size = 4 } or nil)
      local before, after = mean_reward(all, 1, 2), mean_reward(all, #all - 2, #all)
      assert.is_true(before < 0.15, "the SFT policy samples token 3 about 1/12 of the time: " .. before)
      assert.is_true(after > before + 0.25 and after > 3 * before,
        string.format("%s: reward %.3f -> %.3f", algo, before, after))
      for _, st in ipairs(all) do assert.is_true(st.kl < 25, "KL bounded: " .. st.kl) end
    end)
  end

  it("a large beta keeps the policy near the reference", function()
    local free = toy_run("reinforce")
    local tied = toy_run("reinforce", { kl_coef = 2.0 })
    local kf, kt = free[#free].kl, tied[#tied].kl
    assert.is_true(math.abs(kt) < 1.0 and kt < kf / 4, string.format("KL %.3f (beta 2) vs %.3f (beta 0.01)", kt, kf))
    assert.is_true(mean_reward(tied, #tied - 2, #tied) < mean_reward(free, #free - 2, #free))
  end)

  it("a resumed run restores what callbacks changed (temperature, learning rate, beta)", function()
    local function run(dir, steps)
      local tr = rl.trainer { algo = "ppo", policy = toy_policy(), reward = count3, lr = 3e-3, kl_coef = 0.01,
        temperature = 1.0, max_new_tokens = 6, eos = false, seed = 2 }
      local _, all = tr:train { prompts = TOY_PROMPTS, steps = steps, batch_size = 4, quiet = true, out = dir,
        save_every = 2, on_step = function(t, st)
          if st.step == 2 then t.temperature, t.opt.lr, t.kl_coef = 0.7, 1e-3, 0.2 end
        end }
      return all
    end
    local a, b = helper.tmpname("_rla"), helper.tmpname("_rlb")
    os.remove(a) os.remove(b)
    run(a, 6)
    run(b, 4)
    local resumed = run(b, 6)
    assert.are.equal(2, #resumed)   -- steps 5 and 6 only
    assert.are.equal(0.7, resumed[1].temperature)
    local la, lb = helper.read_file(a .. "/log.jsonl"), helper.read_file(b .. "/log.jsonl")
    local function strip(x) return (x:gsub('"[%w_]*_per_s":[^,}]*,?', ""):gsub('"time_%w+":[^,}]*,?', "")) end
    assert.are.equal(strip(la), strip(lb))
    os.execute("rm -rf " .. a .. " " .. b)
  end)

  it("the adaptive KL controller follows Ziegler et al. (TRL's AdaptiveKLController)", function()
    -- value *= 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon; the expected values are
    -- TRL's class run in numpy (init 0.1, target 6, horizon 10000), each update's branch noted
    local c = rl.kl_controller { init = 0.1, target = 6, horizon = 10000 }
    local want = {
      { 12.0, 256, 0.100512 },              -- above the +20% clip
      { 3.0, 256, 0.09999737856 },          -- below the -20% clip
      { 6.6, 100, 0.10009737593856 },       -- inside: +10%
      { 5.4, 1000, 0.0990964021791744 },    -- inside: -10%, n scales the step
      { -2.0, 64, 0.09896955878438506 },    -- a negative k1 estimate: clipped
      { 6.0, 512, 0.09896955878438506 },    -- on target: unchanged
    }
    for i, w in ipairs(want) do
      local v = c:update(w[1], w[2])
      assert.are.equal(v, c.value)
      close(v, w[3], 1e-14, "update " .. i .. " (kl " .. w[1] .. ", n " .. w[2] .. ")")
    end
    local h = rl.kl_controller { init = 0.2, target = 1, horizon = 40 }
    close(h:update(1.1, 8), 0.2 * (1 + 0.1 * 8 / 40), 1e-14, "horizon")
    local fixed = rl.kl_controller { init = 0.05 }
    assert.are.equal(0.05, fixed:update(100, 1000))
    assert.are.equal(0.05, fixed.value)
  end)

  it("ref_dtype = bf16 keeps the reference copy in bf16; its KL stays near the float32 one", function()
    local p32 = toy_policy()
    local a = rl.trainer { algo = "reinforce", policy = p32, reward = count3, lr = 3e-3, max_new_tokens = 6,
      eos = false, seed = 2 }
    local b = rl.trainer { algo = "reinforce", policy = toy_policy(), reward = count3, lr = 3e-3, max_new_tokens = 6,
      eos = false, seed = 2, ref_dtype = "bf16" }
    assert.equal("float32", a.ref:dtype())
    assert.equal("bf16", b.ref:dtype())
    assert.is_true(b.ref:param_bytes() < 0.6 * a.ref:param_bytes())
    local sa, sb = a:step(TOY_PROMPTS), b:step(TOY_PROMPTS)
    -- at the first step the policy equals its reference: KL 0 in float32, the
    -- bf16 rounding's own small KL otherwise
    assert.is_true(math.abs(sa.kl) < 1e-6)
    assert.is_true(math.abs(sb.kl) > 0 and math.abs(sb.kl) < 0.05, "bf16 reference KL " .. sb.kl)
    helper.raises(function()
      rl.trainer { algo = "reinforce", policy = p32, ref = toy_policy(), ref_dtype = "bf16", reward = count3 }
    end, "rl.trainer", "ref_dtype")
    helper.raises(function()
      rl.trainer { algo = "reinforce", policy = p32, ref_dtype = "fp8", reward = count3 }
    end, "rl.trainer", "ref_dtype", "fp8")
  end)

  it("a reward model loaded in bf16 (the user's choice) scores rollouts near the float32 one", function()
    local rm = rlaif.model.new { arch = "gpt2", vocab_size = 12, n_layer = 1, n_head = 2, d_model = 8,
      head = "reward", seed = 5 }
    rm:param("score.weight"):mul_(50)   -- rewards of order 1, so the rounding shows
    local rm16 = rm:clone()
    rm16:to_bf16()
    local function run(r)
      return rl.trainer { algo = "reinforce", policy = toy_policy(), reward = r, lr = 3e-3, max_new_tokens = 6,
        eos = false, seed = 2 }:step(TOY_PROMPTS)
    end
    local s32, s16 = run(rm), run(rm16)
    assert.equal("float32", rm:dtype())   -- the trainer converts nothing it is given
    assert.is_true(s16.reward_mean ~= s32.reward_mean)
    assert.is_true(math.abs(s16.reward_mean - s32.reward_mean) <= 0.05 * (1 + math.abs(s32.reward_mean)),
      string.format("bf16 reward %.5f float32 %.5f", s16.reward_mean, s32.reward_mean))
  end)

  it("the adaptive controller moves beta towards the target KL; callbacks can change it", function()
    local seen = {}
    local target, horizon, bs = 0.5, 50, 8
    local all, tr = toy_run("reinforce", { target_kl = target, horizon = horizon, steps = 6, batch_size = bs,
      on_step = function(t, st) seen[#seen + 1] = st.kl_coef if st.step == 5 then t.kl_coef = 0.5 end end })
    assert.are.equal(6, #all)
    assert.is_true(seen[2] ~= seen[1], "beta adapts")
    assert.are.equal(0.01, all[1].kl_coef)
    -- each step's beta rewards that step's rollouts; the update uses the batch's mean KL and
    -- n = number of rollouts (TRL's n_steps = batch size), and the next step starts from it
    for i, st in ipairs(all) do
      local e = math.max(-0.2, math.min(0.2, st.kl / target - 1))
      close(st.next_kl_coef, st.kl_coef * (1 + e * bs / horizon), 1e-12, "step " .. i .. " next_kl_coef")
      if i > 1 and i ~= 6 then close(st.kl_coef, all[i - 1].next_kl_coef, 1e-12, "step " .. i .. " kl_coef") end
    end
    assert.are.equal(0.5, all[6].kl_coef)
    close(tr.kl_coef, all[6].next_kl_coef, 1e-12, "after step 6")
    assert.is_true(tr.kl_coef ~= 0.5)   -- adapted again after step 6
  end)
end)

-- ---- bad input ----

describe("rlaif.rl bad input #unit", function()
  one_thread()
  local function tr_with(o)
    local cfg = { algo = "reinforce", policy = toy_policy(), reward = count3, max_new_tokens = 4, eos = false }
    for k, v in pairs(o) do cfg[k] = v end
    return rl.trainer(cfg)
  end

  it("names an unknown algorithm and bad options", function()
    assert.has_error(function() tr_with { algo = "dpo" } end,
      'rl.trainer: option \'algo\' must be one of "reinforce", "ppo", "rloo", "grpo", got "dpo"')
    assert.has_error(function() tr_with { temperature = 0 } end,
      "rl.trainer: option 'temperature' must be a number > 0, got 0")
    assert.has_error(function() tr_with { kl_coeff = 1 } end,
      "rl.trainer: unknown option 'kl_coeff' (did you mean 'kl_coef'?)")
  end)

  it("rejects group_size < 2 for rloo and grpo", function()
    for _, algo in ipairs { "rloo", "grpo" } do
      assert.has_error(function() tr_with { algo = algo, group_size = 1 } end,
        "rl.trainer: " .. algo .. " needs group_size >= 2 (got 1)")
    end
  end)

  it("rejects reward functions that return the wrong count, NaN or strings", function()
    local cases = {
      { function(_, r) local t = {} for i = 1, #r - 1 do t[i] = 0 end return t end,
        "the reward function returned 1 scores for 2 responses" },
      { function(_, r) local t = {} for i = 1, #r do t[i] = 0 / 0 end return t end,
        "the reward function returned %-?nan at 1, expected a finite number" },
      { function(_, r) local t = {} for i = 1, #r do t[i] = "good" end return t end,
        "the reward function returned a string at 1, expected a number" },
      { function() return 1 end, "the reward function returned a number, expected a table of 2 numbers" },
    }
    for _, c in ipairs(cases) do
      local tr = tr_with { reward = c[1] }
      local ok, err = pcall(tr.step, tr, { { 1, 2 }, { 3 } })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("rl: " .. c[2]), tostring(err))
    end
  end)

  it("rejects mismatched tokenizer and model vocabularies", function()
    local tok = setmetatable({}, { __index = { vocab_size = function() return 1000 end } })
    assert.has_error(function() tr_with { tokenizer = tok } end,
      "rl.trainer: the tokenizer has 1000 tokens but the policy's vocabulary has 12")
    local rm = rlaif.model.new { arch = "gpt2", vocab_size = 13, n_layer = 1, n_head = 2, d_model = 8, head = "reward" }
    assert.has_error(function() tr_with { reward = rm } end,
      "rl.trainer: the reward model's vocabulary (13) differs from the policy's (12)")
  end)

  it("rejects out-of-vocabulary and malformed batches without crashing", function()
    local tr = tr_with {}
    assert.has_error(function() tr:backward { prompts = { { 1 } }, responses = { { 99 } }, scores = { 1 } } end)
    assert.has_error(function() tr:backward { prompts = { { 1 } }, responses = { {} }, scores = { 1 } } end,
      "rl.batch: responses[1] is empty")
    assert.has_error(function()
      tr:backward { prompts = { { 1 } }, responses = { { 2, 3 } }, scores = { 1 }, old_logprobs = { { 0 } } }
    end, "rl.batch: old_logprobs[1] has 1 values, expected 2 (one per response token)")
    local ok, err = pcall(tr.backward, tr, { prompts = { { 1 } }, responses = { { 2 } }, scores = { 0 / 0 } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("expected a finite number"))
  end)
end)

-- ---- the CLI: reward model, Lua reward, LLM judge, kill -9 resume ----

local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end

local function setup_cli_dir()
  local d = helper.tmpname("_rl")
  os.remove(d)
  assert(os.execute("mkdir -p " .. d .. "/policy"))
  local texts = {}
  for i = 1, 40 do texts[i] = "the cat sat on the mat number " .. i .. " and the dog ran away quickly" end
  assert(rlaif.tokenizer.train { texts = texts, vocab_size = 300, pattern = "gpt2", special = { "<|endoftext|>" },
    output = d .. "/policy/tokenizer.json" })
  local tok = assert(rlaif.tokenizer.load(d .. "/policy/tokenizer.json"))
  local eos = tok:id("<|endoftext|>")
  local m = rlaif.model.new { arch = "gpt2", vocab_size = tok:vocab_size(), n_layer = 2, n_head = 2, d_model = 32,
    max_seq = 64, seed = 1, eos_id = eos }
  assert(m:save(d .. "/policy"))
  local rm = m:clone { head = "reward" }
  rm:param("score.weight"):fill_(0.05)
  assert(rm:save(d .. "/rm"))
  assert(rlaif.train.save_reward_stats(d .. "/rm", { reward_mean = 0.5, reward_std = 2 }))
  local f = assert(io.open(d .. "/prompts.jsonl", "w"))
  for i = 1, 12 do f:write(string.format('{"prompt": "the cat number %d"}\n', i)) end
  f:close()
  f = assert(io.open(d .. "/reward.lua", "w"))
  f:write([[
local calls = 0
return function(prompts, responses, rows)
  calls = calls + 1
  local marker = os.getenv("RL_KILL_MARKER")
  if marker and calls == tonumber(os.getenv("RL_KILL_AT")) and not io.open(marker, "rb") then
    io.open(marker, "w"):close()
    os.execute("kill -9 " .. io.open("/proc/self/stat"):read("n"))   -- SIGKILL mid-step
  end
  local out = {}
  for i, r in ipairs(responses) do local _, n = r:gsub("a", "") out[i] = n / math.max(1, #r) end
  return out
end
]])
  f:close()
  return d
end

local function log_lines(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = json.decode(line) end
  return out
end

local TIMING = { rollout_tokens_per_s = true, update_tokens_per_s = true, time_rollout = true, time_score = true,
  time_update = true }

describe("rlaif rl CLI #unit", function()
  local d
  setup(function() d = setup_cli_dir() end)
  teardown(function() if d then os.execute("rm -rf " .. d) end end)

  local function run(args, env)
    return sh(string.format("cd %s && RLAIF_NUM_THREADS=1 %s %s/rlaif rl --policy policy --data prompts.jsonl " ..
      "--max-new-tokens 10 --batch-size 4 --quiet %s 2>%s/err.txt", d, env or "", helper.root, args, d))
  end

  it("a run killed with SIGKILL resumes and reproduces the uninterrupted run", function()
    local common = "--reward-lua reward.lua --steps 9 --save-every 3 --lr 1e-3 --algo ppo --epochs 2 " ..
      "--minibatch-size 2"
    assert.are.equal(0, run(common .. " --out a"))
    local code = run(common .. " --out b", "RL_KILL_MARKER=" .. d .. "/m RL_KILL_AT=5")
    assert.are.equal(137, code)    -- 128 + SIGKILL
    assert.are.equal(1, run(common .. " --out b"))   -- refuses to overwrite a run without --resume
    assert.truthy(helper.read_file(d .. "/err.txt"):find("pass --resume", 1, true))
    assert.are.equal(0, run(common .. " --out b --resume"))
    local la, lb = log_lines(d .. "/a/log.jsonl"), log_lines(d .. "/b/log.jsonl")
    assert.are.equal(9, #la)
    assert.are.equal(#la, #lb)
    for i = 1, #la do
      for k, v in pairs(la[i]) do
        if not TIMING[k] then assert.are.same(v, lb[i][k], "step " .. i .. " " .. k) end
      end
    end
    assert.are.equal(helper.read_file(d .. "/a/samples.jsonl"), helper.read_file(d .. "/b/samples.jsonl"))
    assert.are.equal(helper.read_file(d .. "/a/policy/model.safetensors"),
      helper.read_file(d .. "/b/policy/model.safetensors"))
    -- a different configuration refuses the checkpoint
    assert.are.equal(1, run("--reward-lua reward.lua --steps 9 --algo reinforce --out b --resume"))
    assert.truthy(helper.read_file(d .. "/err.txt"):find("different configuration", 1, true))
  end)

  it("trains from a reward model, normalised by its reward_stats.json", function()
    assert.are.equal(0, run("--reward-model rm --steps 2 --algo rloo --group-size 2 --out rm_run"))
    local l = log_lines(d .. "/rm_run/log.jsonl")
    assert.are.equal(2, #l)
    local rm = rlaif.model.load(d .. "/rm", { head = "reward" })
    assert.is_true(l[1].score_mean ~= l[1].reward_mean)
    -- reward = (score - 0.5) / 2 from the stats file (no EOS penalty)
    assert.is_true(math.abs(l[1].reward_mean - (l[1].score_mean - 0.5) / 2) < 1e-6)
    assert.truthy(rm)
    assert.truthy(helper.read_file(d .. "/rm_run/policy/model.safetensors"))
  end)

  it("draws a progress line (step, reward, KL, tokens/s, ETA) on a terminal", function()
    if not os.execute("command -v script >/dev/null 2>&1") then pending("script(1) unavailable") return end
    local out = d .. "/tty.txt"
    local cmd = string.format("cd %s && RLAIF_NUM_THREADS=1 %s/rlaif rl --policy policy --data prompts.jsonl " ..
      "--reward-lua reward.lua --max-new-tokens 6 --batch-size 2 --steps 3 --out tty_run", d, helper.root)
    assert.are.equal(0, sh(string.format("script -qec %q %s >/dev/null 2>&1", cmd, out)))
    local screen = helper.read_file(out) or ""
    assert.truthy(screen:find("rl reinforce", 1, true), screen)
    assert.truthy(screen:find("3/3", 1, true), screen)
    assert.truthy(screen:find("reward", 1, true) and screen:find("kl", 1, true) and screen:find("tok/s", 1, true))
    assert.truthy(screen:find("\r", 1, true), "redrawn in place")
    assert.truthy(screen:find("rlaif rl: 3 steps (reinforce)", 1, true), screen)
  end)

  it("reports bad flags and a missing reward", function()
    assert.are.equal(2, run("--algo dpo --out x"))
    assert.truthy(helper.read_file(d .. "/err.txt"):find("option --algo must be one of", 1, true))
    assert.are.equal(1, run("--out x"))
    assert.truthy(helper.read_file(d .. "/err.txt"):find("give exactly one of --reward-model", 1, true))
  end)

  local has_node = os.execute("command -v node >/dev/null 2>&1")
  it("trains from an LLM judge (d-RLAIF scores) served by the fake server", function()
    if not has_node then pending("node unavailable") return end
    local tmp = helper.tmpname("_fl")
    os.execute(string.format("env -u LD_PRELOAD node tests/servers/fake_labeler.mjs --port-file %s.port " ..
      "--ttl 60 >/dev/null 2>&1 & echo $! > %s.pid", tmp, tmp))
    local port = helper.wait_port(tmp .. ".port")
    local pid = tonumber(helper.read_file(tmp .. ".pid") or "")
    local ok, err = pcall(function()
      assert.truthy(port, "fake server did not start")
      assert.are.equal(0, run(string.format("--judge-api openai-completions --judge-base-url " ..
        "http://127.0.0.1:%d/v1 --judge-model fake --steps 2 --out judge_run", port)))
      -- the fake answers " 1"/"1" and " 2"/"2" with equal mass and no other score:
      -- s = 1.5, reward = (1.5 - 5.5) / 4.5
      for _, st in ipairs(log_lines(d .. "/judge_run/log.jsonl")) do
        assert.is_true(math.abs(st.reward_mean - (1.5 - 5.5) / 4.5) < 1e-9)
      end
    end)
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.remove(tmp .. ".port") os.remove(tmp .. ".pid")
    assert(ok, err)
  end)
end)
