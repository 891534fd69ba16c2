-- scripts/bench/model.lua -- transformer training and generation, rlaif vs PyTorch,
-- each as a share of this machine's bound (scripts/bench/roofline.lua, measured
-- first in the same run).
--
-- Cases (the issue's table), each run in a fresh process so its peak RSS
-- (VmHWM) is its own:
--   gpt2_124m  GPT-2 124M shapes, batch 4 x 64: one training step
--              (forward + backward + AdamW), median of 5 after a warm-up step;
--              then the per-phase split, median of 5 each: forward_s (m:lm_loss
--              with backward = false), backward_s (the full m:lm_loss minus that,
--              same iteration), adamw_s (m:adamw_step + m:zero_grad); PyTorch:
--              the same three phases timed inside its step
--   small      4 layers, d_model 256, 4 heads, vocab 8192, batch 16 x 128: same
--   gen_b1     GPT-2 124M, greedy generation with the KV cache, 16-token prompt,
--   gen_b16    64 new tokens, batch 1, 16 and 64: best of 2
--   gen_b64
--   gen_b1_bf16   the same with the weight matrices in bf16 (m:to_bf16; PyTorch:
--   gen_b16_bf16  the model in torch.bfloat16; not at batch 16, where PyTorch
--                 1.13's bf16 on CPU takes minutes); rss_mb = resident memory
--                 after the run (the peak includes the float32 model converted)
--   gen_b1_busy   gen_b1 beside one busy loop per core (shared cores: both
--                 rlaif and PyTorch run under the same load; the bound is the
--                 quiet machine's)
-- Bounds (roofline: the time of the work at the machine's limits):
--   training   3 x the forward FLOP (matrix products and attention scores) at
--              the sgemm rate at the model's shapes on THREADS threads (at
--              least THREADS x the one-thread rate: roofline.limits); per phase
--              forward 1 x, backward 2 x, AdamW 32 bytes per parameter at the
--              read bandwidth (p, g, m, v read; p, m, v written; g zeroed)
--   generation the prompt's forward pass, then per new token max(bytes / read
--              bandwidth, FLOP / sgemm rate), bytes = every weight matrix and the
--              tied LM head (float32) plus the KV cache read, FLOP = 2 x those
--              parameters x batch; batch 1 is bound by the read, 16 and 64 by GEMM
-- share = bound time / measured time (1 = at the limit), for rlaif and PyTorch.
-- When python3-torch is importable, scripts/bench/model_torch.py runs the same
-- work in PyTorch in the same benchmark and the line carries both and the ratio;
-- PyTorch reaches BLIS through libblas, so it gets the kernels (BLIS_ARCH_TYPE)
-- and threads (BLIS_NUM_THREADS) rlaif uses, and torch.set_num_threads.
-- Threads: RLAIF_NUM_THREADS, default 2 (the issue's setting), for both. A
-- PyTorch case that takes over 10 minutes (batch 64 on busy cores) is cut off:
-- its figures are null.
-- Prints the roofline lines, then one JSON line per case.
--
-- Usage: rlaif scripts/bench/model.lua [--quick]     (--quick: small + gen_b1 only)
--        rlaif scripts/bench/model.lua --only a,b    (the named cases)
--        rlaif scripts/bench/model.lua --case NAME   (one case, used internally)

local rlaif = require "rlaif"
local core = require "rlaif.core"

local THREADS = tonumber(os.getenv("RLAIF_NUM_THREADS") or "") or 2

local CASES = {
  gpt2_124m = { V = 50257, L = 12, H = 12, C = 768, B = 4, T = 64, phases = true },
  small = { V = 8192, L = 4, H = 4, C = 256, B = 16, T = 128 },
  gen_b1 = { V = 50257, L = 12, H = 12, C = 768, B = 1, T = 16, new = 64 },
  gen_b16 = { V = 50257, L = 12, H = 12, C = 768, B = 16, T = 16, new = 64 },
  gen_b64 = { V = 50257, L = 12, H = 12, C = 768, B = 64, T = 16, new = 64 },
  gen_b1_bf16 = { V = 50257, L = 12, H = 12, C = 768, B = 1, T = 16, new = 64, bf16 = true },
  gen_b16_bf16 = { V = 50257, L = 12, H = 12, C = 768, B = 16, T = 16, new = 64, bf16 = true, no_torch = true },
  gen_b1_busy = { V = 50257, L = 12, H = 12, C = 768, B = 1, T = 16, new = 64, busy = "gen_b1" },
}
local ORDER = { "gpt2_124m", "small", "gen_b1", "gen_b16", "gen_b64", "gen_b1_bf16", "gen_b16_bf16", "gen_b1_busy" }

local function rss_mb(field)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match((field or "VmHWM") .. ":%s*(%d+)")
  return kb and tonumber(kb) / 1024 or nil
end
local function peak_rss_mb() return rss_mb("VmHWM") end

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
  if c.bf16 then m:to_bf16() end
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
  local sec, tps, phases
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
    if c.phases then
      local f, b, a = {}, {}, {}
      for s = 1, 5 do
        local t0 = core.clock()
        m:lm_loss(ids, tg, nil, { backward = false })
        local t1 = core.clock()
        m:lm_loss(ids, tg)
        local t2 = core.clock()
        m:adamw_step { lr = 1e-4, weight_decay = 0.1 }
        m:zero_grad()
        local t3 = core.clock()
        f[s], b[s], a[s] = t1 - t0, (t2 - t1) - (t1 - t0), t3 - t2
      end
      local function median(v)
        table.sort(v)
        return v[(#v + 1) // 2]
      end
      phases = string.format(',"forward_s":%s,"backward_s":%s,"adamw_s":%s',
        num(median(f)), num(median(b)), num(median(a)))
    end
  end
  collectgarbage()
  io.write(string.format('{"case":"%s","seconds":%s,"tokens_per_s":%s,"peak_rss_mb":%s,"rss_mb":%s%s}\n', name,
    num(sec), num(tps), num(peak_rss_mb()), num(rss_mb("VmRSS")), phases or ""))
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

local roofline = dofile("scripts/bench/roofline.lua")

-- the bound of a case in seconds, and which limit sets it
local function bound(c, roof)
  local gf, bw = roofline.limits(roof, THREADS)
  gf, bw = gf * 1e9, bw * 1e9
  local blockp = c.L * 12 * c.C * c.C
  local function attn(rows, S) return 4.0 * rows * c.L * S * c.C end   -- q.k and p.v, full rows
  if not c.new then
    local N = c.B * c.T
    local fwd = (2.0 * N * (blockp + c.V * c.C) + attn(N, c.T)) / gf
    return 3 * fwd, "gemm", { forward = fwd, backward = 2 * fwd, adamw = 32.0 * (blockp + c.V * c.C) / bw }
  end
  -- the prompt: every position through the blocks, the LM head on the last one
  local wb = c.bf16 and 2.0 or 4.0   -- bytes per weight
  local s = math.max(wb * (blockp + c.V * c.C) / bw,
    (2.0 * c.B * c.T * blockp + 2.0 * c.B * c.V * c.C + attn(c.B * c.T, c.T)) / gf)
  local limit
  for i = 1, c.new - 1 do
    local S = c.T + i
    local bytes = wb * (blockp + c.V * c.C) + 8.0 * c.B * c.L * S * c.C
    local flop = 2.0 * c.B * (blockp + c.V * c.C) + attn(c.B, S)
    local tr, tg = bytes / bw, flop / gf
    s = s + math.max(tr, tg)
    limit = tr >= tg and "read" or "gemm"
  end
  return s, limit
end

local quick = arg and arg[1] == "--quick"
local only
if arg and arg[1] == "--only" then
  only = {}
  for n in (arg[2] or ""):gmatch("[%w_]+") do
    if not CASES[n] then error("model.lua: unknown case " .. n) end
    only[n] = true
  end
end
local roof, why = roofline.measure()
if roof then
  io.write(table.concat(roof.lines, "\n"), "\n")
else
  io.write(string.format('{"bench":"roofline","skipped":%q}\n', why))
end
io.flush()
local have_torch = os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
local lua = interpreter()
local env = string.format("RLAIF_NUM_THREADS=%d LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/?.so;;' ",
  THREADS)
local torch_env = env .. string.format("BLIS_ARCH_TYPE=%s BLIS_NUM_THREADS=%d ", rlaif.info().blis_arch, THREADS)
local function div(a, b) return a and b and a / b or nil end

-- one busy loop per core (shell processes, ended by their pids)
local function start_busy()
  local p = io.popen("n=$(nproc 2>/dev/null || echo 2); i=0; while [ $i -lt $n ]; do " ..
    "timeout 900 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!; i=$((i + 1)); done")
  local pids = {}
  for pid in p:read("a"):gmatch("%d+") do pids[#pids + 1] = pid end
  p:close()
  return pids
end
local function stop_busy(pids)
  if #pids > 0 then os.execute("kill " .. table.concat(pids, " ") .. " 2>/dev/null") end
end

for _, name in ipairs(ORDER) do
  if only and only[name] or not only and (not quick or name == "small" or name == "gen_b1") then
    local busy = CASES[name].busy and start_busy() or {}
    local r = capture(env .. lua .. " scripts/bench/model.lua --case " .. name)
    local t = have_torch and not CASES[name].no_torch
      and capture(torch_env .. "timeout 600 /usr/bin/python3 scripts/bench/model_torch.py " ..
        (CASES[name].busy or name)) or nil
    stop_busy(busy)
    r = r or {}
    t = t or {}
    local bs, limit, pb
    if roof then bs, limit, pb = bound(CASES[name], roof) end
    local split = ""
    if r.forward_s then   -- the training step's phases: seconds, share of the bound, PyTorch's
      local parts = {}
      for _, ph in ipairs { "forward", "backward", "adamw" } do
        local rs, ts, b = r[ph .. "_s"], t[ph .. "_s"], pb and pb[ph]
        parts[#parts + 1] = string.format('"rlaif_%s_s":%s,"torch_%s_s":%s,"bound_%s_s":%s,"rlaif_%s_share":%s',
          ph, num(rs), ph, num(ts), ph, num(b), ph, num(div(b, rs)))
      end
      split = "," .. table.concat(parts, ",")
    end
    io.write(string.format(
      '{"bench":"model","case":"%s","threads":%d,"rlaif_s":%s,"torch_s":%s,"speedup":%s,' ..
      '"bound_s":%s,"bound":%s,"rlaif_share":%s,"torch_share":%s,' ..
      '"rlaif_tokens_per_s":%s,"torch_tokens_per_s":%s,"bound_tokens_per_s":%s,' ..
      '"rlaif_peak_rss_mb":%s,"rlaif_rss_mb":%s,"torch_peak_rss_mb":%s%s}\n',
      name, THREADS, num(r.seconds), num(t.seconds), num(div(t.seconds, r.seconds)), num(bs),
      limit and '"' .. limit .. '"' or "null", num(div(bs, r.seconds)), num(div(bs, t.seconds)),
      num(r.tokens_per_s), num(t.tokens_per_s),
      num(bs and r.tokens_per_s and r.seconds and r.tokens_per_s * r.seconds / bs),
      num(r.peak_rss_mb), num(r.rss_mb), num(t.peak_rss_mb), split))
    io.flush()
  end
end
