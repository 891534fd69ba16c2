-- scripts/bench/rl.lua -- RL from AI feedback (rlaif.rl), rlaif vs PyTorch.
--
-- Cases, each run in a fresh process so its peak RSS (VmHWM) is its own:
--   ppo_step  one PPO step on GPT-2 124M shapes: 16 prompts of 64 tokens, 32 new
--             tokens each (temperature 0.9, no EOS), policy + ref + value (a policy
--             copy with a value head), a Lua reward; time split into rollout
--             (generation), scoring (reward, reference / old-policy / old-value
--             passes) and update (value + policy forward/backward, two AdamW
--             steps). Best of 2 steps after a warm-up step.
--   gen_b16   rollout alone at batch 16 and 64 (64-token prompts, 32 new tokens,
--   gen_b64   sampling at 0.9): tokens/s, best of 2.
-- With python3-torch, scripts/bench/rl_torch.py runs the same work in PyTorch
-- (a hand-written GPT-2 with a KV cache, the same PPO conventions) and the line
-- carries both and the ratio. The compute bound of a rollout is
-- GEMM FLOP/s / (2 x parameters) tokens/s, with the FLOP/s of a GPT-2-sized
-- sgemm (M = 1024, K = 768, N = 3072) measured here on the same threads.
-- Threads: RLAIF_NUM_THREADS, default 2, for both; PyTorch gets the same BLIS
-- kernels (BLIS_ARCH_TYPE) and threads (BLIS_NUM_THREADS). One JSON line per case.
--
-- Usage: rlaif scripts/bench/rl.lua [--quick]     (--quick: gen_b16 only)
--        rlaif scripts/bench/rl.lua --case NAME   (one case, used internally)

local rlaif = require "rlaif"
local core = require "rlaif.core"

local THREADS = tonumber(os.getenv("RLAIF_NUM_THREADS") or "") or 2
local SHAPE = { V = 50257, L = 12, H = 12, C = 768 }
local CASES = {
  ppo_step = { B = 16, T = 64, new = 32 },
  gen_b16 = { B = 16, T = 64, new = 32 },
  gen_b64 = { B = 64, T = 64, new = 32 },
}
local ORDER = { "ppo_step", "gen_b16", "gen_b64" }

local function peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or nil
end

local function num(v)
  if v == nil or v ~= v then return "null" end
  if math.type(v) == "integer" then return string.format("%d", v) end
  return string.format("%.4g", v)
end

local function prompts(c)
  local x, out = 12345, {}
  for b = 1, c.B do
    out[b] = {}
    for t = 1, c.T do
      x = (x * 1103515245 + 12345) % 2147483648
      out[b][t] = x % SHAPE.V
    end
  end
  return out
end

-- GEMM FLOP/s of a GPT-2-sized product on these threads (best of 5)
local function gemm_flops()
  local T = rlaif.tensor
  local a, b, c = T.randn({ 1024, 768 }, 1), T.randn({ 768, 3072 }, 2), T.zeros { 1024, 3072 }
  a:matmul(b, c)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = core.clock()
    a:matmul(b, c)
    best = math.min(best, core.clock() - t0)
  end
  return 2 * 1024 * 768 * 3072 / best
end

local function run_case(name)
  local c = assert(CASES[name], "unknown case " .. name)
  rlaif.set_threads(THREADS)
  local m = rlaif.model.new { arch = "gpt2", vocab_size = SHAPE.V, n_layer = SHAPE.L, n_head = SHAPE.H,
    d_model = SHAPE.C, max_seq = 1024, seed = 1 }
  local p = prompts(c)
  local out = { case = name }
  if name == "ppo_step" then
    local function reward(_, responses)
      local r = {}
      for i, y in ipairs(responses) do r[i] = (y[1] % 7) / 7 end
      return r
    end
    local tr = rlaif.rl.trainer { algo = "ppo", policy = m, reward = reward, temperature = 0.9,
      max_new_tokens = c.new, eos = false, lr = 1e-5, seed = 1 }
    tr:step(p)   -- warm-up: allocations, BLIS buffers
    local best
    for _ = 1, 2 do
      local st = tr:step(p)
      local total = st.time_rollout + st.time_score + st.time_update
      if not best or total < best.total then
        best = { total = total, rollout = st.time_rollout, score = st.time_score, update = st.time_update }
      end
    end
    out.seconds, out.rollout_s, out.score_s, out.update_s = best.total, best.rollout, best.score, best.update
  else
    local opts = { max_new_tokens = c.new, temperature = 0.9, seed = 1 }
    m:generate(p, opts)
    local best = math.huge
    for _ = 1, 2 do
      local t0 = core.clock()
      m:generate(p, opts)
      best = math.min(best, core.clock() - t0)
    end
    out.seconds, out.tokens_per_s = best, c.B * c.new / best
    out.gemm_flops = gemm_flops()
    out.params = m:num_params()
  end
  out.peak_rss_mb = peak_rss_mb()
  local parts = {}
  for _, k in ipairs { "seconds", "rollout_s", "score_s", "update_s", "tokens_per_s", "gemm_flops", "params",
    "peak_rss_mb" } do
    if out[k] then parts[#parts + 1] = string.format('"%s":%s', k, num(out[k])) end
  end
  io.write(string.format('{"case":"%s",%s}\n', name, table.concat(parts, ",")))
end

-- ---- driver ----

local function parse(line)
  if not line then return nil end
  local r = {}
  for k, v in line:gmatch('"([%w_]+)":%s*([%d%.e%+%-]+)') do r[k] = tonumber(v) end
  return r.seconds and r or nil
end

local function capture(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local s = p:read("a")
  p:close()
  return parse(s:match("{[^\n]*\"case\"[^\n]*}"))
end

local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return arg and arg[i] or "lua5.4"
end

if arg and arg[1] == "--case" then
  run_case(arg[2])
  return
end

local quick = arg and arg[1] == "--quick"
local have_torch = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
local lua = interpreter()
local env = string.format("RLAIF_NUM_THREADS=%d LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/?.so;;' ",
  THREADS)
-- PyTorch reaches BLIS through libblas: give it the kernels and threads rlaif uses
-- (Debian's BLIS would otherwise run generic kernels, single-threaded, on some CPUs)
local info = rlaif.info()
local torch_env = env .. string.format("BLIS_ARCH_TYPE=%s BLIS_NUM_THREADS=%d ", info.blis_arch, THREADS)
local function ratio(a, b) return a and b and a / b or nil end
for _, name in ipairs(ORDER) do
  if not quick or name == "gen_b16" then
    local r = capture(env .. lua .. " scripts/bench/rl.lua --case " .. name) or {}
    local t = have_torch and capture(torch_env .. "/usr/bin/python3 scripts/bench/rl_torch.py " .. name) or {}
    t = t or {}
    if name == "ppo_step" then
      io.write(string.format('{"bench":"rl","case":"%s","threads":%d,"rlaif_s":%s,"torch_s":%s,"speedup":%s,' ..
        '"rlaif_rollout_s":%s,"rlaif_score_s":%s,"rlaif_update_s":%s,"torch_rollout_s":%s,"torch_score_s":%s,' ..
        '"torch_update_s":%s,"rlaif_peak_rss_mb":%s,"torch_peak_rss_mb":%s,"rss_ratio":%s}\n', name, THREADS,
        num(r.seconds), num(t.seconds), num(ratio(t.seconds, r.seconds)), num(r.rollout_s), num(r.score_s),
        num(r.update_s), num(t.rollout_s), num(t.score_s), num(t.update_s), num(r.peak_rss_mb), num(t.peak_rss_mb),
        num(ratio(r.peak_rss_mb, t.peak_rss_mb))))
    else
      local bound = r.gemm_flops and r.params and r.gemm_flops / (2 * r.params)
      io.write(string.format('{"bench":"rl","case":"%s","threads":%d,"rlaif_tokens_per_s":%s,' ..
        '"torch_tokens_per_s":%s,"speedup":%s,"compute_bound_tokens_per_s":%s,"fraction_of_bound":%s,' ..
        '"gemm_gflops":%s,"rlaif_peak_rss_mb":%s,"torch_peak_rss_mb":%s}\n', name, THREADS, num(r.tokens_per_s),
        num(t.tokens_per_s), num(ratio(r.tokens_per_s, t.tokens_per_s)), num(bound),
        num(ratio(r.tokens_per_s, bound)), num(r.gemm_flops and r.gemm_flops / 1e9), num(r.peak_rss_mb),
        num(t.peak_rss_mb)))
    end
    io.flush()
  end
end
