-- scripts/bench/model.lua -- transformer training and generation, rlaif vs PyTorch.
--
-- Cases (the issue's table), each run in a fresh process so its peak RSS
-- (VmHWM) is its own:
--   gpt2_124m  GPT-2 124M shapes, batch 4 x 64: one training step
--              (forward + backward + AdamW), median of 5 after a warm-up step
--   small      4 layers, d_model 256, 4 heads, vocab 8192, batch 16 x 128: same
--   gen_b1     GPT-2 124M, greedy generation with the KV cache, 16-token prompt,
--   gen_b8     64 new tokens, batch 1 and 8: best of 2
-- When python3-torch is importable, scripts/bench/model_torch.py runs the same
-- work in PyTorch in the same benchmark and the line carries both and the ratio.
-- Threads: RLAIF_NUM_THREADS, default 2 (the issue's setting), for both.
-- Prints one JSON line per case.
--
-- Usage: rlaif scripts/bench/model.lua [--quick]     (--quick: small + gen_b1 only)
--        rlaif scripts/bench/model.lua --case NAME   (one case, used internally)

local rlaif = require "rlaif"
local core = require "rlaif.core"

local THREADS = tonumber(os.getenv("RLAIF_NUM_THREADS") or "") or 2

local CASES = {
  gpt2_124m = { V = 50257, L = 12, H = 12, C = 768, B = 4, T = 64 },
  small = { V = 8192, L = 4, H = 4, C = 256, B = 16, T = 128 },
  gen_b1 = { V = 50257, L = 12, H = 12, C = 768, B = 1, T = 16, new = 64 },
  gen_b8 = { V = 50257, L = 12, H = 12, C = 768, B = 8, T = 16, new = 64 },
}
local ORDER = { "gpt2_124m", "small", "gen_b1", "gen_b8" }

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

-- ---- one case, in this process ----

local function run_case(name)
  local c = assert(CASES[name], "unknown case " .. name)
  rlaif.set_threads(THREADS)
  local m = rlaif.model.new { arch = "gpt2", vocab_size = c.V, n_layer = c.L, n_head = c.H, d_model = c.C,
                             max_seq = 1024, seed = 1 }
  local x = 12345
  local function rnd()
    x = (x * 1103515245 + 12345) % 2147483648
    return x % c.V
  end
  local ids, tg = {}, {}
  for b = 1, c.B do
    ids[b], tg[b] = {}, {}
    for t = 1, c.T do ids[b][t], tg[b][t] = rnd(), rnd() end
  end
  local sec, tps
  if c.new then
    local best = math.huge
    for _ = 1, 2 do
      local t0 = core.clock()
      m:generate(ids, { max_new_tokens = c.new, temperature = 0, stop = false })
      best = math.min(best, core.clock() - t0)
    end
    sec, tps = best, c.B * c.new / best
  else
    local times = {}
    for s = 1, 6 do
      local t0 = core.clock()
      m:lm_loss(ids, tg)
      m:adamw_step { lr = 1e-4, weight_decay = 0.1 }
      m:zero_grad()
      if s > 1 then times[#times + 1] = core.clock() - t0 end
    end
    table.sort(times)
    sec = times[(#times + 1) // 2]
    tps = c.B * c.T / sec
  end
  io.write(string.format('{"case":"%s","seconds":%s,"tokens_per_s":%s,"peak_rss_mb":%s}\n', name, num(sec),
    num(tps), num(peak_rss_mb())))
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
  local out = p:read("a")
  p:close()
  return parse(out:match("{[^\n]*\"case\"[^\n]*}"))
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
for _, name in ipairs(ORDER) do
  if not quick or name == "small" or name == "gen_b1" then
    local r = capture(env .. lua .. " scripts/bench/model.lua --case " .. name)
    local t = have_torch and capture(env .. "/usr/bin/python3 scripts/bench/model_torch.py " .. name) or nil
    r = r or {}
    t = t or {}
    io.write(string.format(
      '{"bench":"model","case":"%s","threads":%d,"rlaif_s":%s,"torch_s":%s,"speedup":%s,' ..
      '"rlaif_tokens_per_s":%s,"torch_tokens_per_s":%s,"rlaif_peak_rss_mb":%s,"torch_peak_rss_mb":%s}\n',
      name, THREADS, num(r.seconds), num(t.seconds), num(t.seconds and r.seconds and t.seconds / r.seconds),
      num(r.tokens_per_s), num(t.tokens_per_s), num(r.peak_rss_mb), num(t.peak_rss_mb)))
    io.flush()
  end
end
