-- scripts/bench/llm.lua -- rlaif.llm throughput and client CPU against a loopback
-- server that answers every request after a fixed 50 ms (tests/servers/fake_llm.mjs
-- --delay 50), at concurrency 1, 16 and 256, and the official `openai` npm SDK
-- (scripts/bench/llm_sdk.mjs) making the same requests at the same concurrency in
-- the same run.
--
-- Requests: chat completions, max_tokens = 1, logprobs = 5 (the labeler's request),
-- a distinct prompt each, no cache. Each run starts with a warm-up of
-- min(concurrency, 256) requests (connections opened) that is not timed.
--   rps             achieved requests per second
--   ideal           concurrency / 0.050 s
--   efficiency      rps / ideal (target >= 0.95 at 256)
--   cpu_us_per_req  client process CPU time per request: os.clock(), i.e. clock(3) =
--                   CLOCK_PROCESS_CPUTIME_ID, the same user+sys (all threads) that
--                   getrusage(RUSAGE_SELF) reports; of this process only, nothing subtracted
--                   (the server and the SDK are other processes) (target <= 50)
--   ratio_vs_sdk    rps / SDK rps at the same concurrency (target >= 2 at 256)
-- N = 5000 per concurrency (RLAIF_BENCH_LLM_N); concurrency 1 uses RLAIF_BENCH_LLM_N1
-- (default 300: 5000 sequential 50 ms requests take over 4 minutes per client).
-- The SDK is installed with npm into build/bench-llm at bench time; without node or
-- npm those lines say "skipped". Prints one JSON line per measurement.
--
-- The server runs as RLAIF_BENCH_LLM_WORKERS node:cluster workers (default 2): one
-- single-threaded node process answering 5,000 req/s is itself close to saturation on a
-- small machine. Its ceiling is measured in the same run with wrk (Debian package `wrk`,
-- when installed): the same request at the same concurrency from a client that costs
-- almost nothing, reported as impl = "wrk" (efficiency = the best any client can reach).

local llm = require "rlaif.llm"
local core = require "rlaif.core"

local N = tonumber(os.getenv("RLAIF_BENCH_LLM_N") or "") or 5000
local N1 = tonumber(os.getenv("RLAIF_BENCH_LLM_N1") or "") or 300
local WORKERS = tonumber(os.getenv("RLAIF_BENCH_LLM_WORKERS") or "") or 2
local DELAY = 0.050

local function emit(t) io.write(llm.encode_json(t), "\n") io.stdout:flush() end

local function sh(cmd) return os.execute(cmd) == true end

if not sh("command -v node >/dev/null 2>&1") then
  emit { bench = "llm", skipped = "node is not installed (the fake server needs it)" }
  return
end

local function read_file(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- ---- the server ----
local tmp = os.tmpname()
local port_file, pid_file = tmp .. ".port", tmp .. ".pid"
sh(string.format("node tests/servers/fake_llm.mjs --port 0 --delay 50 --port-file %s --ttl 3600 --quiet "
  .. "--workers %d >/dev/null 2>&1 & echo $! > %s", port_file, WORKERS, pid_file))
local port
for _ = 1, 200 do
  port = tonumber(read_file(port_file) or "")
  if port then break end
  sh("sleep 0.05")
end
local pid = tonumber(read_file(pid_file) or "")
local wrk_script = tmp .. ".wrk.lua"
local function cleanup()
  if pid then sh("kill " .. pid .. " 2>/dev/null") end
  for _, p in ipairs { port_file, pid_file, wrk_script, tmp } do os.remove(p) end
end
if not port then
  cleanup()
  emit { bench = "llm", skipped = "the fake server did not start" }
  return
end
local base = "http://127.0.0.1:" .. port .. "/v1"

-- ---- the SDK ----
local sdk_ok = read_file("build/bench-llm/node_modules/openai/package.json") ~= nil
if not sdk_ok and sh("command -v npm >/dev/null 2>&1") then
  sh("mkdir -p build/bench-llm && cd build/bench-llm && "
    .. "([ -f package.json ] || echo '{\"private\":true}' > package.json) && "
    .. "npm install --no-audit --no-fund --silent openai >/dev/null 2>&1")
  sdk_ok = read_file("build/bench-llm/node_modules/openai/package.json") ~= nil
end

local function run_sdk(conc, n)
  if not sdk_ok then return nil end
  local f = io.popen(string.format("node scripts/bench/llm_sdk.mjs --url %s --n %d --concurrency %d", base, n, conc))
  local out = f:read("a")
  f:close()
  local line = out:match("(%b{})%s*$")
  return line and llm.decode_json(line)
end

-- ---- the server's ceiling (wrk) ----
local wrk_ok = sh("command -v wrk >/dev/null 2>&1")
local function run_wrk(conc)
  if not wrk_ok then return nil end
  local _, body = llm.build("openai-chat", base, "fake-model",
    { messages = { { role = "user", content = "wrk request: which is better?" } }, max_tokens = 1, logprobs = 5,
      temperature = 0 })
  local f = assert(io.open(wrk_script, "w"))
  f:write(string.format("wrk.method = \"POST\"\nwrk.body = %q\n", body),
    "wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    "wrk.headers[\"Authorization\"] = \"Bearer sk-bench-not-a-key\"\n")
  f:close()
  local p = io.popen(string.format("wrk -t1 -c%d -d3s -s %s %s/chat/completions 2>/dev/null", conc, wrk_script, base))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("Requests/sec:%s*([%d%.]+)")), out:match("Latency%s+([%d%.]+%a+)")
end

-- ---- rlaif ----
local function requests(tag, n)
  local reqs = {}
  for i = 1, n do
    reqs[i] = { messages = { { role = "user", content = tag .. " request " .. i .. ": which is better?" } },
                max_tokens = 1, logprobs = 5, temperature = 0 }
  end
  return reqs
end

local function run_rlaif(conc, n)
  local c = llm.client { api = "openai-chat", base_url = base, model = "fake-model", api_key = "sk-bench-not-a-key",
                         concurrency = conc, max_retries = 2 }
  c:complete_many(requests("warmup", math.min(conc, 256)))
  local reqs = requests("rlaif", n)
  collectgarbage()
  local cpu0, t0 = os.clock(), core.clock()
  local res = c:complete_many(reqs)
  local secs, cpu = core.clock() - t0, os.clock() - cpu0
  local errors = 0
  for i = 1, n do
    if not (res[i].ok and #res[i].choices[1].tokens[1].top == 5) then errors = errors + 1 end
  end
  c:close()
  return { seconds = secs, rps = n / secs, cpu_us_per_req = cpu * 1e6 / n, errors = errors }
end

for _, conc in ipairs { 1, 16, 256 } do
  local n = conc == 1 and N1 or N
  local ideal = conc / DELAY
  local ceiling
  if conc > 1 then
    local rps, lat = run_wrk(conc)
    ceiling = rps
    if rps then
      emit { bench = "llm", impl = "wrk", concurrency = conc, seconds = 3, rps = rps, ideal = ideal,
             efficiency = rps / ideal, mean_latency = lat, server_workers = WORKERS }
    else
      emit { bench = "llm", impl = "wrk", concurrency = conc, skipped = "wrk is not installed (apt install wrk)" }
    end
  end
  local r = run_rlaif(conc, n)
  emit { bench = "llm", impl = "rlaif", concurrency = conc, n = n, seconds = r.seconds, rps = r.rps, ideal = ideal,
         efficiency = r.rps / ideal, cpu_us_per_req = r.cpu_us_per_req, errors = r.errors, server_workers = WORKERS,
         of_server_ceiling = ceiling and r.rps / ceiling or nil }
  local s = run_sdk(conc, n)
  if s then
    emit { bench = "llm", impl = "openai-node", version = s.version, concurrency = conc, n = n, seconds = s.seconds,
           rps = s.rps, ideal = ideal, efficiency = s.rps / ideal, cpu_us_per_req = s.cpu_us_per_req,
           errors = s.errors }
    emit { bench = "llm", concurrency = conc, ratio_vs_sdk = r.rps / s.rps,
           cpu_ratio_sdk_over_rlaif = s.cpu_us_per_req / r.cpu_us_per_req }
  else
    emit { bench = "llm", impl = "openai-node", concurrency = conc, skipped = "openai npm SDK unavailable" }
  end
end
cleanup()
